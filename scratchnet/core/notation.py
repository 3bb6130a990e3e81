"""A compact notation for architectures, for the command line and for summaries::

    input(1x28x28), conv(32, 3), relu, maxpool(2), conv(64, 3, padding=1), relu, maxpool(2),
    flatten, dropout(0.5), dense(10)

Items are separated by commas; each is a layer type's name, case-insensitive, with ``_`` ignored
and a ``2d`` suffix optional (``conv``, ``Conv2D``, ``max_pool``, ``leaky_relu``), and its options
in parentheses: first those the registry lists as ``positional`` (a convolution's out_channels and
kernel_size, a Dense layer's out_features), then any as ``name=value``. A pair is ``3x5`` or one
number for both axes. Options the input shape fixes (in_channels, in_features, num_features) are
filled in from it, so they are never written. ``input(...)`` gives one sample's shape when the
caller does not. The layer the loss needs last (Softmax for cross-entropy) is added when missing.
Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from scratchnet.core.architecture import LOSSES, canonical, plan, validate
from scratchnet.core.errors import ConfigError
from scratchnet.core.loss_options import loss_description
from scratchnet.core.registry import LAYER_TYPES, LayerType, Shape, options_of, output_for_loss

_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.S)


def split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for position, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"unbalanced ')' at character {position + 1} of {text!r}")
        elif char == "," and depth == 0:
            parts.append(text[start:position])
            start = position + 1
    if depth != 0:
        raise ConfigError(f"unbalanced '(' in {text!r}")
    parts.append(text[start:])
    return parts


def _key(name: str) -> str:
    return name.lower().replace("_", "")


def resolve(name: str) -> LayerType:
    """The registered layer type a notation name stands for (``conv`` is Conv2D)."""
    wanted = _key(name)
    for entry in LAYER_TYPES.values():
        key = _key(entry.name)
        if wanted in (key, key.removesuffix("2d")):
            return entry
    names = ", ".join(_key(entry.name).removesuffix("2d") for entry in LAYER_TYPES.values())
    raise ConfigError(f"unknown layer {name!r}; known: {names}")


def parse_value(text: str) -> Any:
    """``3`` -> 3, ``0.5`` -> 0.5, ``3x5`` -> [3, 5], ``he_uniform`` -> "he_uniform"."""
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"\d+(x\d+)+", text):
        return [int(part) for part in text.split("x")]
    try:
        return float(text)
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        return text
    raise ConfigError(f"cannot read the value {text!r}")


def parse_item(text: str) -> tuple[str, list[Any], dict[str, Any]]:
    """``conv(32, 3, stride=2)`` -> ("conv", [32, 3], {"stride": 2})."""
    match = _ITEM.match(text)
    if match is None:
        raise ConfigError(f"expected name or name(options), got {text.strip()!r}")
    name, inside = match.group(1), match.group(2)
    positional: list[Any] = []
    named: dict[str, Any] = {}
    if inside is not None and inside.strip():
        for argument in split_top_level(inside):
            if "=" in argument:
                key, value = argument.split("=", 1)
                named[key.strip()] = parse_value(value)
            elif named:
                raise ConfigError(f"{text.strip()!r}: a positional option after a named one")
            else:
                positional.append(parse_value(argument))
    return name, positional, named


def parse(
    text: str,
    *,
    input_shape: Sequence[int] | None = None,
    loss: str = "cross_entropy",
    init: str | None = None,
    label_smoothing: float = 0.0,
) -> dict[str, Any]:
    """The architecture ``text`` describes (see the module's docstring); ``init`` is the default
    initializer of the layers that take one; ``label_smoothing`` (cross-entropy only) is written into
    the loss when not 0 (spec/math.md eq. 5.7). ConfigError naming the item that is wrong."""
    if loss not in LOSSES:
        raise ConfigError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    loss_spec = loss_description(LOSSES[loss], label_smoothing=label_smoothing)
    items = [item for item in split_top_level(text) if item.strip()]
    if not items:
        raise ConfigError("an architecture needs at least one layer")
    shape: Shape | None = None if input_shape is None else tuple(int(n) for n in input_shape)
    start = shape
    layers: list[dict[str, Any]] = []
    for number, item in enumerate(items, start=1):
        where = f"item {number} {item.strip()!r}"
        name, positional, named = parse_item(item)
        if _key(name) == "input":
            if number != 1 or named or not positional:
                raise ConfigError(f"{where}: input(C, H, W) or input(CxHxW) comes first, with the shape only")
            flat = [n for value in positional for n in (value if isinstance(value, list) else [value])]
            if not all(isinstance(n, int) and n >= 1 for n in flat):
                raise ConfigError(f"{where}: the input shape must be positive integers")
            shape = start = tuple(flat)
            continue
        if shape is None or start is None:
            raise ConfigError("the notation needs the input shape: start with input(C, H, W) or input(features)")
        try:
            entry = resolve(name)
            layer = _layer(entry, positional, named, shape, init)
            shape = tuple(entry.output_shape(options_of(layer, "this layer"), shape))
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        layers.append(layer)
    if not layers:
        raise ConfigError("an architecture needs at least one layer after input(...)")
    loss_type = LOSSES[loss]
    needed = output_for_loss(loss_type)
    if needed is not None and layers[-1]["type"] != needed:
        layers.append({"type": needed})
    assert start is not None  # every layer above needed it
    description = {"input_shape": list(start), "layers": layers}
    description.update({"loss": loss_spec, "l2": 0.0, "l1": 0.0})
    plan(description)  # the whole chain fits
    return canonical(validate(description))


def _layer(
    entry: LayerType, positional: Sequence[Any], named: Mapping[str, Any], shape: Shape, init: str | None
) -> dict[str, Any]:
    if len(positional) > len(entry.positional):
        takes = ", ".join(entry.positional) or "no options by position"
        raise ConfigError(f"{entry.name} takes {takes}")
    layer: dict[str, Any] = {"type": entry.name}
    layer.update(entry.from_input(shape) if entry.from_input is not None else {})
    layer.update(zip(entry.positional, positional))
    for key, value in named.items():
        if key in layer and key not in entry.positional:
            raise ConfigError(f"{key} comes from the input shape; leave it out")
        layer[key] = value
    if init is not None and any(option.name == "init" for option in entry.options):
        layer.setdefault("init", init)
    return layer


def notation(description: Mapping[str, Any]) -> str:
    """The compact notation of an architecture: options the input shape fixes and defaults left
    out (the inverse of :func:`parse`, up to those)."""
    checked = plan(description)
    items = ["input(" + "x".join(map(str, checked.input_shape)) + ")"]
    for kind, options, shape in checked.layers():
        entry = LAYER_TYPES[kind]
        implied = entry.from_input(shape) if entry.from_input is not None else {}
        arguments = [_written(options[name]) for name in entry.positional]
        for option in entry.options:
            value = options[option.name]
            same = options[option.default_from] if option.default_from is not None else option.default
            if option.name in entry.positional or option.name in implied or value in (option.default, same):
                continue
            if option.name == "seed":
                continue
            arguments.append(f"{option.name}={_written(value)}")
        name = _key(entry.name).removesuffix("2d")
        items.append(f"{name}({', '.join(arguments)})" if arguments else name)
    return ", ".join(items)


def _written(value: Any) -> str:
    if isinstance(value, tuple):
        return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"
    return str(value)


def outline(description: Mapping[str, Any]) -> str:
    """How a summary line names a network: ``784-128-10`` (the widths) for a network of flat
    samples, the compact notation for others (whose shapes alone would hide their layers)."""
    checked = plan(description)
    return checked.outline() if len(checked.input_shape) == 1 else notation(checked.description)
