"""The optional packages: each is imported when a file of its format is read or written, and a
missing one is one line saying what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from scratchnet.core.errors import InteropError

# What installs each package: an extra of pyproject.toml, or the package itself for ONNX Runtime,
# which scratchnet never needs (only its tests and tools/onnx_agreement.py run models in it).
INSTALL = {
    "onnx": 'pip install "scratchnet[onnx]"',
    "safetensors": 'pip install "scratchnet[safetensors]"',
    "onnxruntime": "pip install onnxruntime",
}


def require(module: str, purpose: str) -> ModuleType:
    """``import module``, or an InteropError: ``<purpose> needs the onnx package: pip install "scratchnet[onnx]"``."""
    top = module.split(".", 1)[0]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InteropError(f"{purpose} needs the {top} package: {INSTALL[top]}") from None
