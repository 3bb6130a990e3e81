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
from scratchnet.core.walk import LayerSite, walk

VOCABULARY_OPTION = "num_embeddings"  # the option of a layer reading tokens that the vocabulary sets
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
    """The registered layer type a notation name stands for (``conv`` is Conv2D, ``attention``
    CausalSelfAttention: a registry entry's ``aliases``)."""
    wanted = _key(name)
    for entry in LAYER_TYPES.values():
        key = _key(entry.name)
        if wanted in (key, key.removesuffix("2d"), *map(_key, entry.aliases)):
            return entry
    names = ", ".join(written_name(entry) for entry in LAYER_TYPES.values())
    raise ConfigError(f"unknown layer {name!r}; known: {names}")


def written_name(entry: LayerType) -> str:
    """How the notation writes a layer type: its first alias, else its name in lower case without
    ``_`` or a ``2d`` suffix (``conv``, ``attention``, ``layernorm``)."""
    return entry.aliases[0] if entry.aliases else _key(entry.name).removesuffix("2d")


def container_items(text: str) -> tuple[LayerType, list[str]] | None:
    """For an item naming a container type (``residual(layernorm, attention(4))``), its type and the
    items of the layers it holds; None for any other item."""
    match = _ITEM.match(text)
    if match is None or not match.group(1) or _key(match.group(1)) in ("input",):
        return None
    try:
        entry = resolve(match.group(1))
    except ConfigError:
        return None
    if entry.children is None:
        return None
    return entry, [item for item in split_top_level(match.group(2) or "") if item.strip()]


def parse_value(text: str) -> Any:
    """``3`` -> 3, ``0.5`` -> 0.5, ``3x5`` -> [3, 5], ``false`` -> False, ``he_uniform`` -> "he_uniform"."""
    text = text.strip()
    if text.lower() in ("true", "false"):  # a bool option: layernorm(bias=false)
        return text.lower() == "true"
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


TOKENS_INPUT = re.compile(r"^\s*input\s*\(\s*tokens\s+(\d+)\s*x\s*(\d+)\s*\)\s*$", re.I)


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
    vocabulary: int | None = None
    first = len(items)
    tokens = TOKENS_INPUT.match(items[0])
    if tokens is not None:  # input(tokens V x T): sequences of up to T ids 0..V-1
        vocabulary, length = int(tokens.group(1)), int(tokens.group(2))
        if vocabulary < 1 or length < 1:
            raise ConfigError(f"item 1 {items[0].strip()!r}: the vocabulary and the length must be at least 1")
        shape, items = (length,), items[1:]
    elif _key(parse_item(items[0])[0]) == "input":
        shape = _input_shape(items[0])
        items = items[1:]
    if shape is None:
        raise ConfigError("the notation needs the input shape: start with input(C, H, W) or input(features)")
    start = shape
    first -= len(items) - 1  # items are numbered as written: input(...) is item 1
    layers, shape = _parse_layers(items, shape, init, vocabulary, "item ", first)
    if not layers:
        raise ConfigError("an architecture needs at least one layer after input(...)")
    loss_type = LOSSES[loss]
    needed = output_for_loss(loss_type)
    if needed is not None and layers[-1]["type"] != needed:
        layers.append({"type": needed})
    description: dict[str, Any] = {"input_shape": list(start), "layers": layers}
    if vocabulary is not None:
        description["vocabulary"] = vocabulary
    description.update({"loss": loss_spec, "l2": 0.0, "l1": 0.0})
    plan(description)  # the whole chain fits
    return canonical(validate(description))


def _input_shape(item: str) -> Shape:
    _, positional, named = parse_item(item)
    where = f"item 1 {item.strip()!r}"
    if named or not positional:
        raise ConfigError(f"{where}: input(C, H, W) or input(CxHxW) comes first, with the shape only")
    flat = [n for value in positional for n in (value if isinstance(value, list) else [value])]
    if not all(isinstance(n, int) and n >= 1 for n in flat):
        raise ConfigError(f"{where}: the input shape must be positive integers")
    return tuple(flat)


def _parse_layers(
    items: Sequence[str], shape: Shape, init: str | None, vocabulary: int | None, prefix: str, first: int
) -> tuple[list[dict[str, Any]], Shape]:
    """The layers ``items`` describe, read in order from inputs of ``shape``, and their output shape;
    items are numbered from ``first`` after ``prefix`` (``item 4.2`` is item 2 inside item 4)."""
    layers: list[dict[str, Any]] = []
    for number, item in enumerate(items, start=first):
        where = f"{prefix}{number} {item.strip()!r}"
        try:
            container = container_items(item)
            if container is not None:
                entry, inner = container
                if not inner:
                    raise ConfigError(f"{entry.name} holds at least one layer")
                held, _ = _parse_layers(inner, shape, init, vocabulary, f"{prefix}{number}.", 1)
                layer: dict[str, Any] = {
                    "type": entry.name,
                    **{o.name: held for o in entry.options if o.kind == "layers"},
                }
            else:
                name, positional, named = parse_item(item)
                if _key(name) == "input":
                    raise ConfigError("input(C, H, W) or input(CxHxW) comes first, with the shape only")
                entry = resolve(name)
                layer = _layer(entry, positional, named, shape, init, vocabulary)
            shape = tuple(entry.output_shape(options_of(layer, "this layer"), shape))
        except ConfigError as error:
            message = str(error)
            raise ConfigError(message if message.startswith(prefix) else f"{where}: {message}") from None
        layers.append(layer)
    return layers, shape


def _layer(
    entry: LayerType,
    positional: Sequence[Any],
    named: Mapping[str, Any],
    shape: Shape,
    init: str | None,
    vocabulary: int | None = None,
) -> dict[str, Any]:
    if len(positional) > len(entry.positional):
        takes = ", ".join(entry.positional) or "no options by position"
        raise ConfigError(f"{entry.name} takes {takes}")
    layer: dict[str, Any] = {"type": entry.name}
    layer.update(entry.from_input(shape) if entry.from_input is not None else {})
    if entry.reads_tokens:  # an Embedding's number of ids is the input's vocabulary
        if vocabulary is None:
            raise ConfigError("reads token ids: start with input(tokens V x T), V ids in sequences of up to T")
        layer[VOCABULARY_OPTION] = vocabulary
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
    if checked.vocabulary is not None:
        items = [f"input(tokens {checked.vocabulary} x {checked.input_shape[0]})"]
    else:
        items = ["input(" + "x".join(map(str, checked.input_shape)) + ")"]
    return ", ".join(items + _items(walk(checked)))


def _items(sites: Sequence[LayerSite]) -> list[str]:
    items = []
    for site in sites:
        entry = LAYER_TYPES[site.kind]
        if site.children:
            items.append(f"{written_name(entry)}({', '.join(_items(site.children))})")
            continue
        implied = entry.from_input(site.input_shape) if entry.from_input is not None else {}
        if entry.reads_tokens:
            implied[VOCABULARY_OPTION] = site.options[VOCABULARY_OPTION]
        given = list(entry.positional)
        while given and site.options[given[-1]] == entry.option(given[-1]).default:
            given.pop()  # a default at the end goes unwritten: gelu, not gelu(none)
        arguments = [written(site.options[name]) for name in given]
        for option in entry.options:
            value = site.options[option.name]
            same = site.options[option.default_from] if option.default_from is not None else option.default
            if option.name in entry.positional or option.name in implied or value in (option.default, same):
                continue
            if option.name == "seed":
                continue
            arguments.append(f"{option.name}={written(value)}")
        name = written_name(entry)
        items.append(f"{name}({', '.join(arguments)})" if arguments else name)
    return items


def written(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"
    return str(value)


def outline(description: Mapping[str, Any]) -> str:
    """How a summary line names a network: ``784-128-10`` (the widths) for a network of flat
    samples, the compact notation for others (whose shapes alone would hide their layers)."""
    checked = plan(description)
    flat = len(checked.input_shape) == 1 and checked.vocabulary is None
    return checked.outline() if flat else notation(checked.description)
