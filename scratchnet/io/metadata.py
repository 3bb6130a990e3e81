"""The model document's ``metadata`` (spec/model-format.md, section 1.5): the members every file has,
and the ``input`` member checked against the network it describes, so that a command feeding the
model never prepares a sample of a shape the network cannot take. Standard library only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from scratchnet.core.bounds import MAX_AXES, MAX_SIZE
from scratchnet.core.registry import describe_shape

__all__ = ["input_problem", "metadata_problem"]

_CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_KINDS = ("image", "features")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def metadata_problem(metadata: Any) -> str | None:
    """Why ``metadata`` is not valid version 1 metadata, or None. Unknown members are allowed (and ignored)."""
    if not isinstance(metadata, dict):
        return "must be an object"
    if not isinstance(metadata.get("scratchnet_version"), str):
        return "'scratchnet_version' must be a string"
    created = metadata.get("created")
    if not isinstance(created, str) or not _CREATED.fullmatch(created):
        return f"'created' must be a UTC time like 2024-01-31T12:00:00Z, got {_short(created)}"
    try:
        datetime.fromisoformat(created[:-1] + "+00:00")
    except ValueError:
        return f"'created' is not a valid time: {_short(created)}"
    if "training" not in metadata:
        return None
    training = metadata["training"]
    if not isinstance(training, dict):
        return "'training' must be an object"
    checks: dict[str, tuple[str, Any]] = {
        "dataset": ("a string", lambda v: isinstance(v, str)),
        "epochs": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
        "optimizer": ("an object", lambda v: isinstance(v, dict)),
        "seed": ("an integer", _is_int),
        "final_metrics": ("an object of numbers", lambda v: isinstance(v, dict) and all(map(_is_number, v.values()))),
        "history": ("a list of objects", lambda v: isinstance(v, list) and all(isinstance(e, dict) for e in v)),
    }
    for key, (kind, ok) in checks.items():
        if key in training and not ok(training[key]):
            return f"'training.{key}' must be {kind}"
    return None


def input_problem(metadata: dict[str, Any], network_input: Sequence[int]) -> str | None:
    """Why ``metadata``'s ``input`` member does not describe samples the network of input shape
    ``network_input`` takes, or None (also when it has none). ``input.shape`` must be positive
    integers, at most :data:`~scratchnet.core.bounds.MAX_SIZE` each, holding as many values as the
    network's input; ``input.kind`` one of image and features, a features shape one axis."""
    if "input" not in metadata:
        return None
    spec = metadata["input"]
    if not isinstance(spec, dict):
        return f"'input' must be an object, got {_short(spec)}"
    kind = spec.get("kind", "image")
    if kind not in _KINDS:
        return f"'input.kind' must be one of {list(_KINDS)}, got {_short(kind)}"
    if "shape" not in spec:
        return None
    shape = spec["shape"]
    if not isinstance(shape, list) or not shape or not all(_is_int(n) and n >= 1 for n in shape):
        return f"'input.shape' must be a non-empty list of positive integers, got {_short(shape)}"
    if len(shape) > MAX_AXES or max(shape) > MAX_SIZE:
        return f"'input.shape' {_short(shape)} has more than {MAX_AXES} axes or an axis of more than {MAX_SIZE}"
    if kind == "features" and len(shape) != 1:
        return f"'input.shape' of features must be one axis [F], got {_short(shape)}"
    values, expected = math.prod(shape), math.prod(network_input)
    if values != expected:
        return (
            f"'input.shape' {_short(shape)} is {values} values per sample, "
            f"but the network takes {describe_shape(tuple(network_input))} ({expected} values)"
        )
    return None
