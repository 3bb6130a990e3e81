"""A scratchnet model as a short Python file that builds the same ``torch.nn.Sequential`` and loads
its tensors from the safetensors file written beside it.

The Sequential has one module per scratchnet layer (:data:`~scratchnet.interop.torch_names.TORCH_MODULES`),
so its state dict has scratchnet's names, and ``load_state_dict(strict=True)`` checks that every
tensor is there with its shape. A final Softmax is kept as ``nn.Softmax(dim=1)``: the module computes
what scratchnet's ``forward`` does, probabilities, and ``model[:-1]`` gives the logits (what
``torch.nn.CrossEntropyLoss`` takes, to train on in PyTorch).
"""

from __future__ import annotations

from pathlib import Path

from scratchnet.core.errors import InteropError
from scratchnet.core.version import __version__
from scratchnet.core.walk import every_layer, walk
from scratchnet.interop.files import write_atomically
from scratchnet.interop.portable import Portable, portable_metadata
from scratchnet.interop.safetensors_io import write_safetensors
from scratchnet.interop.torch_names import CLASSES, TORCH_MODULES

_TEMPLATE = '''\
"""A scratchnet model as a torch.nn.Sequential (written by scratchnet {version} export --to pytorch).

    model = load()               # the module, in eval mode, with the tensors of WEIGHTS
    probabilities = model(x)     # x: a batch of shape (N, {shape}), inputs scaled as INPUT says
    logits = model[:-1](x)       # {logits}

Running this file loads the model and prints it. Needs torch and safetensors.
"""

import sys
from pathlib import Path

try:
    import torch
    from safetensors.torch import load_file
    from torch import nn
except ImportError:  # one line naming what to install, not a traceback
    sys.exit(f"{{__file__}}: needs PyTorch and safetensors: pip install torch safetensors")

SOURCE = {source!r}  # the scratchnet model
WEIGHTS = Path(__file__).with_name({weights!r})
DTYPE = torch.{dtype}
INPUT_SHAPE = {input_shape!r}  # one sample
INPUT = {input!r}  # inputs are (pixel / scale - mean) / std
CLASS_NAMES = {class_names!r}

{classes}
def build() -> nn.Sequential:
    """The network, with PyTorch's initial parameters."""
    return nn.Sequential(
{modules}
    )


def load(path: Path = WEIGHTS) -> nn.Sequential:
    """The network with the scratchnet model's tensors, in eval mode (no dropout, running statistics)."""
    model = build().to(DTYPE)
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval()


if __name__ == "__main__":
    print(load())
'''


def pytorch_script(model: Portable, weights: str, source: str) -> str:
    """The Python file building ``model`` as a ``torch.nn.Sequential`` that loads the safetensors
    file ``weights`` (a name beside it); ``source`` names the scratchnet model in its docstring."""
    checked = model.plan
    lines = []
    for index, (kind, options, shape) in enumerate(checked.layers()):
        module = TORCH_MODULES.get(kind)
        if module is None:
            raise InteropError(f"layer {index} ({kind}) has no PyTorch module in scratchnet's export")
        lines.append(f"        {module(options, shape)},  # {index}: {kind}")
    kinds = {site.kind for site in every_layer(walk(checked))}
    classes = "".join(f"\n{CLASSES[kind]}\n" for kind in sorted(kinds) if kind in CLASSES)
    portable_metadata(model.metadata)  # refuses a non-finite number before the script could print one
    last = checked.description["layers"][-1]["type"]
    logits = "the scores before the final Softmax" if last == "Softmax" else f"the network without its final {last}"
    return _TEMPLATE.format(
        source=source,
        version=__version__,
        weights=weights,
        shape=", ".join(map(str, checked.input_shape)),
        logits=logits,
        dtype=model.dtype,
        input_shape=tuple(checked.input_shape),
        input=model.metadata.get("input"),
        class_names=model.metadata.get("class_names"),
        modules="\n".join(lines),
        classes=classes,
    )


def write_pytorch(model: Portable, target: Path, source: str = "") -> list[Path]:
    """Write ``target`` (a ``.py``) and the safetensors beside it (same name, ``.safetensors``),
    the tensors first; return both paths."""
    if target.suffix != ".py":
        raise InteropError(f"{target}: the PyTorch script is a .py file")
    weights = target.with_suffix(".safetensors")
    script = pytorch_script(model, weights.name, source or "model")
    return [write_safetensors(model, weights), write_atomically(target, script.encode("utf-8"))]
