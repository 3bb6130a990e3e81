"""Narrowing a network for the cross-check: the same layer types, less work.

The loops backend computes every product in Python, so a big network is cross-checked as a
narrower copy: every layer's width (the option its registry entry names as ``width``:
``out_features``, ``out_channels``) capped, except the output layer's. A network of flat samples
(an MLP) is narrowed to hidden widths of at most :data:`CHECK_WIDTH` when it has more than
:data:`CHECK_MAX_PARAMS` parameters; a network of images always, to at most :data:`CHECK_CHANNELS`
channels, on the smallest square image (from 8 pixels up) its layers fit. ``scratchnet train`` and
``scratchnet check`` both narrow this way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scratchnet.core import notation
from scratchnet.core.architecture import LOSSES, plan
from scratchnet.core.errors import ConfigError

CHECK_MAX_PARAMS = 250_000  # above this a network of flat samples is checked as a narrower copy
CHECK_WIDTH = 64  # the hidden width of that narrower copy
CHECK_CHANNELS = 4  # the channels (and widths) of a network of images' narrower copy
CHECK_TOKENS = 16  # the sequence length a big language model's narrower copy is checked on
SMALLEST_SIDE = 8  # the smallest square image a narrowed network of images is tried on


def narrowed(text: str, width: int, *, keep_last: bool = False) -> str:
    """``text`` (items in the compact notation, without ``input``) with every layer's width (the
    option its registry entry names as ``width``: out_channels, out_features, embedding_dim) at most
    ``width``, inside containers too; with ``keep_last``, the last top-level layer that has a width
    (the output layer) keeps its own."""
    items = [item for item in notation.split_top_level(text) if item.strip()]
    widths = [index for index, item in enumerate(items) if _width_of(item) is not None]
    kept = widths[-1] if keep_last and widths else None
    return ", ".join(item.strip() if index == kept else _narrowed_item(item, width) for index, item in enumerate(items))


def narrowed_network(text: str, width: int, length: int) -> str:
    """``text`` (a whole network, its ``input`` first) :func:`narrowed` to ``width``, and a token
    input's sequences cut to at most ``length`` (attention's work grows with their square)."""
    items = [item for item in notation.split_top_level(text) if item.strip()]
    tokens = notation.TOKENS_INPUT.match(items[0]) if items else None
    if tokens is not None:
        start = f"input(tokens {tokens.group(1)} x {min(int(tokens.group(2)), length)})"
    elif items and notation.parse_item(items[0])[0].strip().lower() == "input":
        start = items[0].strip()
    else:
        return narrowed(text, width)
    return ", ".join([start, narrowed(", ".join(items[1:]), width)])


def _width_of(item: str) -> str | None:
    if notation.container_items(item) is not None:
        return None
    name, _, _ = notation.parse_item(item)
    return None if name.strip().lower() == "input" else notation.resolve(name).width


def _narrowed_item(item: str, width: int) -> str:
    container = notation.container_items(item)
    if container is not None:
        name = notation.parse_item(item.split("(", 1)[0])[0]
        return f"{name}({narrowed(', '.join(container[1]), width)})"
    name, positional, named = notation.parse_item(item)
    option = _width_of(item)
    if option is not None:
        entry = notation.resolve(name)
        if option in named:
            named[option] = min(int(named[option]), width)
        elif option in entry.positional[: len(positional)]:
            index = entry.positional.index(option)
            positional[index] = min(int(positional[index]), width)
    arguments = [_text(value) for value in positional] + [f"{key}={_text(value)}" for key, value in named.items()]
    return f"{name}({', '.join(arguments)})" if arguments else name


def _text(value: Any) -> str:
    return "x".join(map(str, value)) if isinstance(value, list) else notation.written(value)


def narrowed_architecture(
    description: Mapping[str, Any], width: int, input_shape: tuple[int, ...] | None = None
) -> dict[str, Any]:
    """``description`` with every width but the output layer's at most ``width``, for inputs of
    ``input_shape`` (default: its own); ConfigError when its layers do not fit that input."""
    checked = plan(description)
    layers = notation.notation(checked.description).split(", ", 1)[1]  # without its input(...)
    loss = next(key for key, name in LOSSES.items() if name == checked.description["loss"]["type"])
    shape = checked.input_shape if input_shape is None else input_shape
    copy = notation.parse(narrowed(layers, width, keep_last=True), input_shape=shape, loss=loss)
    copy.update({key: checked.description[key] for key in ("l2", "l1") if key in checked.description})
    return copy


def _narrowed_tokens(description: Mapping[str, Any], width: int, length: int) -> dict[str, Any]:
    """A token network with every width but its output layer's at most ``width`` (the vocabulary stays),
    on sequences of at most ``length`` tokens."""
    checked = plan(description)
    items = notation.split_top_level(notation.notation(checked.description))
    tokens = notation.TOKENS_INPUT.match(items[0])
    assert tokens is not None  # a token network's notation starts with its input(tokens V x T)
    start = f"input(tokens {tokens.group(1)} x {min(int(tokens.group(2)), length)})"
    loss = next(key for key, name in LOSSES.items() if name == checked.description["loss"]["type"])
    copy = notation.parse(f"{start}, {narrowed(', '.join(items[1:]), width, keep_last=True)}", loss=loss)
    copy.update({key: checked.description[key] for key in ("l2", "l1") if key in checked.description})
    return copy


def checked_copy(description: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The architecture the cross-check runs on (see the module's text), and how a line names it."""
    full = plan(description)
    if full.vocabulary is not None and full.parameter_count > CHECK_MAX_PARAMS:  # a big language model
        copy = _narrowed_tokens(full.description, CHECK_WIDTH, CHECK_TOKENS)
        return copy, f"{plan(copy).outline()} (the layer types of {full.outline()}, narrowed)"
    if len(full.input_shape) == 1:
        if full.parameter_count <= CHECK_MAX_PARAMS:
            return full.description, notation.outline(full.description)
        copy = narrowed_architecture(full.description, CHECK_WIDTH)
        return copy, f"{plan(copy).outline()} (the layer types of {full.outline()}, narrowed)"
    shape = full.input_shape
    for side in range(SMALLEST_SIDE, max(shape[-2:]) + 1):
        try:
            copy = narrowed_architecture(full.description, CHECK_CHANNELS, (*shape[:-2], side, side))
        except ConfigError:
            continue
        if plan(copy).description != full.description:
            return copy, f"{notation.notation(copy)} (the layer types of the run's network, narrowed)"
        break
    return full.description, notation.notation(full.description)
