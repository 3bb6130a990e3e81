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
from scratchnet.core.registry import Shape
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
    "Dense": lambda o, s: f"nn.Linear({o['in_features']}, {o['out_features']}{'' if o['bias'] else ', bias=False'})",
    "Dropout": lambda o, s: f"nn.Dropout(p={o['rate']!r})",
    "ReLU": lambda o, s: "nn.ReLU()",
    "LeakyReLU": lambda o, s: f"nn.LeakyReLU(negative_slope={o['alpha']!r})",
    "Sigmoid": lambda o, s: "nn.Sigmoid()",
    "Tanh": lambda o, s: "nn.Tanh()",
    "Identity": lambda o, s: "nn.Identity()",
    "Softmax": lambda o, s: "nn.Softmax(dim=1)" if len(s) == 1 else "nn.Softmax(dim=-1)",
    "Conv2D": lambda o, s: (
        f"nn.Conv2d({o['in_channels']}, {o['out_channels']}, kernel_size={_pair(o['kernel_size'])}, "
        f"stride={_pair(o['stride'])}, padding={_pair(o['padding'])})"
    ),
    # no padding, so AvgPool2d's count_include_pad changes nothing; both round the output size down
    "MaxPool2D": lambda o, s: f"nn.MaxPool2d(kernel_size={_pair(o['kernel_size'])}, stride={_pair(o['stride'])})",
    "AvgPool2D": lambda o, s: f"nn.AvgPool2d(kernel_size={_pair(o['kernel_size'])}, stride={_pair(o['stride'])})",
    "Flatten": lambda o, s: "nn.Flatten()",
    "BatchNorm": _batch_norm,
    "Embedding": lambda o, s: f"nn.Embedding({o['num_embeddings']}, {o['embedding_dim']})",
    "PositionEmbedding": lambda o, s: f"PositionEmbedding({o['max_length']}, {o['dim']})",
    "LayerNorm": lambda o, s: (
        f"nn.LayerNorm({o['dim']}, eps={o['eps']!r}, elementwise_affine={o['affine']!r}, bias={o['bias']!r})"
    ),
    # PyTorch's default eps is the dtype's machine epsilon: scratchnet's is always written
    "RMSNorm": lambda o, s: f"nn.RMSNorm({o['dim']}, eps={o['eps']!r}, elementwise_affine={o['affine']!r})",
    "GELU": lambda o, s: f"nn.GELU(approximate={o['approximate']!r})",
    "CausalSelfAttention": lambda o, s: (
        f"CausalSelfAttention({o['dim']}, {o['heads']}, bias={o['bias']!r}, dropout={o['dropout']!r})"
    ),
}

# The modules PyTorch has no class for, written into the script that uses them (their tensors are
# named as scratchnet names them): GPT-2's position table, and nn.MultiheadAttention with its causal mask.
TORCH_CLASSES: dict[str, str] = {
    "PositionEmbedding": '''
class PositionEmbedding(nn.Module):
    """GPT-2's learned positions, added to the input: y[n, t] = x[n, t] + weight[t] (spec/math.md 17.3)."""

    def __init__(self, max_length: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_length, dim).normal_(0.0, 0.02))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight[: x.shape[1]]
''',
    "CausalSelfAttention": '''
class CausalSelfAttention(nn.MultiheadAttention):
    """Self-attention in which position t sees the positions s <= t (spec/math.md 20): its tensors
    are nn.MultiheadAttention's (in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias)."""

    def __init__(self, dim: int, heads: int, bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__(dim, heads, dropout=dropout, bias=bias, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        length = x.shape[1]
        future = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)  # True: s > t, masked
        return super().forward(x, x, x, attn_mask=future, need_weights=False)[0]
''',
}


# A container's module is its class, called with the modules of the layers it holds (pytorch_script):
# Residual is an nn.Sequential whose forward adds its input, so its modules' tensors are "3.0.weight".
TORCH_MODULES["Residual"] = lambda o, s: "Residual"
TORCH_CLASSES["Residual"] = '''
class Residual(nn.Sequential):
    """y = x + f(x), f the modules it holds in order (scratchnet's Residual, spec/math.md 23)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)
'''

# Tensors a PyTorch module keeps beyond the registry's arrays: BatchNorm's count of training batches.
COUNTERS = {"BatchNorm": "num_batches_tracked"}


def counter_names(checked: Plan) -> list[str]:
    """The ``"<index>.num_batches_tracked"`` names of the plan's BatchNorm layers."""
    sites = every_layer(walk(checked))  # a container's layers too: "3.0.num_batches_tracked"
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
    counters = {name.rsplit(".", 1)[0]: name for name in counter_names(model.plan)}  # by the layer's prefix
    tensors: dict[str, npt.NDArray[Any]] = {}
    for name, value in model.arrays.items():
        tensors[name] = value
        prefix = name.rsplit(".", 1)[0]
        if prefix in counters and name.endswith(".running_var"):
            tensors[counters[prefix]] = np.array(steps, dtype=np.int64)
    return tensors
