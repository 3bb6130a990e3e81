"""The bounds every architecture keeps, whatever its source: a model file, an ONNX or safetensors
import, the notation or the Python API (docs/errors.md, "Hostile input").

They are checked once, where an architecture becomes a :class:`~scratchnet.core.architecture.Plan`
(and each layer's options are read), from its integers alone and before anything is allocated, so
no loader, importer or command has to remember them. They are written over what every layer type
has, not per type: every integer option (sizes, kernels, strides, padding; a vocabulary size, a
sequence length or a number of heads added later fall under the same bound), every float option,
every inferred shape, the arrays' total size and the number of classes. Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from scratchnet.core.errors import ConfigError

__all__ = [
    "MAX_AXES",
    "MAX_CLASSES",
    "MAX_LAYERS",
    "MAX_NESTING",
    "MAX_PARAMETERS",
    "MAX_SAMPLE_VALUES",
    "MAX_SIZE",
    "check_count",
    "check_shape",
    "option_problem",
]

MAX_SIZE = 1 << 20  # 1,048,576: every integer option of a layer, and every axis of a sample's shape
MAX_AXES = 8  # axes of one sample's shape (scratchnet's layers use 1 or 3)
MAX_SAMPLE_VALUES = 1 << 24  # 16,777,216: the values of one sample, at the input and after every layer
MAX_PARAMETERS = 1 << 28  # 268,435,456 numbers in all of a network's arrays (1 GiB in float32)
MAX_CLASSES = 1 << 20  # 1,048,576 outputs per sample (the classes a command names and lists)
MAX_LAYERS = 10_000  # layers of a network, those inside its containers included
MAX_NESTING = 16  # containers inside containers (a residual block in a residual block is 2)


def option_problem(name: str, kind: str, value: Any, maximum: int) -> str | None:
    """Why an option's converted ``value`` is out of bounds, or None: an integer (or each of a
    pair) of magnitude at most ``maximum``, a float finite."""
    if kind in ("int", "pair"):
        values = value if isinstance(value, tuple) else (value,)
        largest = max(abs(v) for v in values)
        if largest > maximum:
            return f"{name} is {_shown(value)}, more than the limit of {maximum}"
    if kind == "float" and not math.isfinite(value):
        return f"{name} must be a finite number, got {value!r}"
    return None


def check_shape(shape: Sequence[int], what: str) -> None:
    """ConfigError unless the sample shape ``shape`` has at most MAX_AXES axes, each at most MAX_SIZE,
    and at most MAX_SAMPLE_VALUES values; ``what`` names it (``"layer 3 (Conv2D) gives"``)."""
    if len(shape) > MAX_AXES:
        raise ConfigError(f"{what} {len(shape)} axes per sample, more than the limit of {MAX_AXES}")
    if max(shape, default=0) > MAX_SIZE:
        raise ConfigError(f"{what} shape {_shown(tuple(shape))}, with an axis more than the limit of {MAX_SIZE}")
    values = math.prod(shape)
    if values > MAX_SAMPLE_VALUES:
        raise ConfigError(
            f"{what} shape {_shown(tuple(shape))}: {values} values per sample, "
            f"more than the limit of {MAX_SAMPLE_VALUES}"
        )


def check_count(count: int, limit: int, what: str) -> None:
    """ConfigError unless ``count`` of ``what`` (``"parameters"``) is at most ``limit``."""
    if count > limit:
        raise ConfigError(f"the network has {count} {what}, more than the limit of {limit}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."
