"""The container layer types of the layer registry: layers that hold other layers (spec/math.md,
section 23). ``Residual`` runs the layers it holds, f, on its input x and gives y = x + f(x): a
transformer block is two of them, and a residual CNN's block one. Registered when any part of
:mod:`scratchnet.core` is imported (``scratchnet/core/__init__.py`` imports this module). Standard
library only.

A container's option of kind ``"layers"`` is a list of layer descriptions; its entry's ``children``
returns it, :func:`scratchnet.core.walk.walk` visits them at their paths (``(3, 0)``) and their
arrays are named by the path (``"3.0.weight"``), as PyTorch names an ``nn.Sequential`` inside an
``nn.Sequential``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scratchnet.core.errors import ConfigError
from scratchnet.core.registry import LayerType, Option, Shape, describe_shape, layer_type, options_of, register


def chain_output(layers: Sequence[Mapping[str, Any]], shape: Shape) -> Shape:
    """The output shape of ``layers`` run in order on inputs of ``shape``; ConfigError naming the
    held layer that does not fit (``its layer 1 (Dense) expects ...``)."""
    for index, description in enumerate(layers):
        entry = layer_type(description.get("type"))
        options = options_of(description, f"its layer {index}")
        try:
            shape = tuple(entry.output_shape(options, shape))
        except ConfigError as error:
            raise ConfigError(f"its layer {index} ({entry.name}) {error}") from None
    return shape


def _residual_output(options: Mapping[str, Any], shape: Shape) -> Shape:
    inner = chain_output(options["layers"], shape)
    if inner != shape:  # y = x + f(x) (eq. 23.1) adds two tensors of one shape
        raise ConfigError(
            f"adds its input {describe_shape(shape)} to its layers' output {describe_shape(inner)}: "
            "they must have the same shape"
        )
    return shape


register(
    LayerType(
        name="Residual",
        options=(Option("layers", "layers"),),
        output_shape=_residual_output,
        children=lambda options: options["layers"],
        math="22",
    )
)
