"""Each layer type's PyTorch module, and the state dict ``torch.nn.Sequential`` keeps for the stack.

The names of the arrays are the registry's, ``"<layer index>.<name>"``, which are Sequential's too:
it counts every module, parameter-free ones included, as the registry counts layers, and PyTorch's
Linear, Conv2d and BatchNorm name their tensors ``weight``, ``bias``, ``running_mean`` and
``running_var`` as scratchnet does, in the same layouts (Dense ``(out, in)``, Conv2D ``(out, in, kh, kw)``).
The one tensor scratchnet has not is BatchNorm's ``num_batches_tracked``, which
``load_state_dict(strict=True)`` expects (see :func:`training_steps` for the count stored in it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.core.architecture import Plan
from scratchnet.core.errors import InteropError
from scratchnet.core.registry import Shape, layer_type, options_of
from scratchnet.core.walk import array_name, every_layer, walk
from scratchnet.interop.portable import Portable


def _pair(value: Any) -> str:
    return f"({int(value[0])}, {int(value[1])})"


def _batch_norm(options: Mapping[str, Any], shape: Shape) -> str:
    dimensions = 1 if len(shape) == 1 else 2  # BatchNorm1d normalizes (N, C), BatchNorm2d (N, C, H, W)
    eps, momentum = options["eps"], options["momentum"]
    return f"nn.BatchNorm{dimensions}d({options['num_features']}, eps={eps!r}, momentum={momentum!r})"


# Each layer type's module, as the Python expression that builds it, from its options and input shape.
TORCH_MODULES: dict[str, Callable[[Mapping[str, Any], Shape], str]] = {
    "Dense": lambda o, s: f"nn.Linear({o['in_features']}, {o['out_features']})",
    "Dropout": lambda o, s: f"nn.Dropout(p={o['rate']!r})",
    "ReLU": lambda o, s: "nn.ReLU()",
    "LeakyReLU": lambda o, s: f"nn.LeakyReLU(negative_slope={o['alpha']!r})",
    "Sigmoid": lambda o, s: "nn.Sigmoid()",
    "Tanh": lambda o, s: "nn.Tanh()",
    "Identity": lambda o, s: "nn.Identity()",
    "Softmax": lambda o, s: "nn.Softmax(dim=1)",
    "Conv2D": lambda o, s: (
        f"nn.Conv2d({o['in_channels']}, {o['out_channels']}, kernel_size={_pair(o['kernel_size'])}, "
        f"stride={_pair(o['stride'])}, padding={_pair(o['padding'])})"
    ),
    # no padding, so AvgPool2d's count_include_pad changes nothing; both round the output size down
    "MaxPool2D": lambda o, s: f"nn.MaxPool2d(kernel_size={_pair(o['kernel_size'])}, stride={_pair(o['stride'])})",
    "AvgPool2D": lambda o, s: f"nn.AvgPool2d(kernel_size={_pair(o['kernel_size'])}, stride={_pair(o['stride'])})",
    "Flatten": lambda o, s: "nn.Flatten()",
    "BatchNorm": _batch_norm,
}


def _residual(options: Mapping[str, Any], shape: Shape) -> str:
    """``Residual(<its modules>)``: the script defines ``Residual`` as an ``nn.Sequential`` whose
    forward adds its input (:data:`CLASSES`), so its modules' tensors are named ``3.0.weight``."""
    modules = []
    for description in options["layers"]:
        entry = layer_type(description["type"])
        held = options_of(description, "a held layer")
        module = TORCH_MODULES.get(entry.name)
        if module is None:
            raise InteropError(
                f"a Residual holds a {entry.name} layer, which has no PyTorch module in scratchnet's export"
            )
        modules.append(module(held, shape))
        shape = tuple(entry.output_shape(held, shape))
    return f"Residual({', '.join(modules)})"


TORCH_MODULES["Residual"] = _residual

# Classes the script defines when a layer type's module needs one, by type.
CLASSES = {
    "Residual": (
        "class Residual(nn.Sequential):\n"
        '    """y = x + f(x), f the modules it holds in order (scratchnet\'s Residual)."""\n\n'
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        return x + super().forward(x)\n"
    )
}

# Tensors a PyTorch module keeps beyond the registry's arrays: BatchNorm's count of training batches.
COUNTERS = {"BatchNorm": "num_batches_tracked"}


def counter_names(checked: Plan) -> list[str]:
    """The ``"<path>.num_batches_tracked"`` names of the plan's BatchNorm layers, those inside
    containers included (``"1.1.num_batches_tracked"``)."""
    sites = every_layer(walk(checked))
    return [array_name(site.path, COUNTERS[site.kind]) for site in sites if site.kind in COUNTERS]


def training_steps(model: Portable) -> int:
    """The number of training batches the model's BatchNorm layers saw, for ``num_batches_tracked``.

    scratchnet's training runs one training-mode forward pass per optimizer step, so this is the step
    count: that of the optimizer state saved with the model when there is one, else epochs times the
    steps of an epoch as the ``training`` metadata of ``scratchnet train`` records them, else 0.
    PyTorch reads the count only for a BatchNorm without momentum (a cumulative average), which
    scratchnet never builds, so the value changes no output."""
    if model.optimizer_step is not None:
        return model.optimizer_step
    training = model.metadata.get("training")
    if not isinstance(training, Mapping):
        return 0
    config = training.get("config")
    epochs, images = training.get("epochs"), training.get("train_images")
    batch = config.get("batch_size") if isinstance(config, Mapping) else None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (epochs, images, batch)):
        return 0
    assert isinstance(epochs, int) and isinstance(images, int) and isinstance(batch, int)
    return epochs * (1 if batch == 0 or images == 0 else math.ceil(images / batch))


def state_dict(model: Portable) -> dict[str, npt.NDArray[Any]]:
    """What ``torch.nn.Sequential(...).state_dict()`` holds for ``model``, in its order: the arrays,
    each BatchNorm's ``num_batches_tracked`` (int64, no axes) after its running statistics."""
    steps = training_steps(model)
    counters = {name.rsplit(".", 1)[0]: name for name in counter_names(model.plan)}
    tensors: dict[str, npt.NDArray[Any]] = {}
    for name, value in model.arrays.items():
        tensors[name] = value
        holder = name.rsplit(".", 1)[0]  # the layer's path: "3" of "3.running_var", "1.1" of "1.1.running_var"
        if holder in counters and name.endswith(".running_var"):
            tensors[counters[holder]] = np.array(steps, dtype=np.int64)
    return tensors
