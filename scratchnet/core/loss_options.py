"""A network's loss as data: ``{"type": "CrossEntropy"}``, with CrossEntropy's options when not their
defaults, e.g. ``{"type": "CrossEntropy", "ignore_index": -1, "label_smoothing": 0.1}``.

``ignore_index`` is a target the loss skips (padding, spec/math.md eq. 16.3; PyTorch's default -100
is not written down); ``label_smoothing`` is PyTorch's eps in [0, 1], which trains towards
``(1 - eps) one-hot(y) + eps / K`` (eq. 5.7, 5.8; 0, the default, is not written down, so a
description without it is exactly what it was before the option existed). Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scratchnet.core.errors import ConfigError
from scratchnet.core.registry import LOSS_TYPES

LOSS_OPTIONS: dict[str, tuple[str, ...]] = {"CrossEntropy": ("ignore_index", "label_smoothing")}
"""The options each loss type takes besides ``type`` (the others take none)."""


def label_smoothing_of(value: Any) -> float:
    """``value`` as a label-smoothing eps: a number in [0, 1] (ConfigError in one line otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"label_smoothing must be a number in [0, 1], got {value!r:.80}")
    return float(value)


def check_loss(loss: Any) -> None:
    """ConfigError in one line unless ``loss`` is a valid loss description: a known ``type`` and
    only that type's options, each of the right kind and range."""
    if not isinstance(loss, Mapping) or loss.get("type") not in LOSS_TYPES:
        raise ConfigError(f"'loss' must be an object {{\"type\": one of {', '.join(LOSS_TYPES)}}}, got {loss!r:.80}")
    kind = loss["type"]
    for key in loss:
        if key == "type" or key in LOSS_OPTIONS.get(kind, ()):
            continue
        if any(key in options for options in LOSS_OPTIONS.values()):
            raise ConfigError(f"{key!r} is an option of CrossEntropy only, not of {kind}")
        raise ConfigError(f"'loss' ({kind}) has unknown option {key!r:.80}")
    ignore = loss.get("ignore_index", 0)
    if isinstance(ignore, bool) or not isinstance(ignore, int):
        raise ConfigError(f"'ignore_index' is an integer option of CrossEntropy only, got {ignore!r:.80}")
    if "label_smoothing" in loss:
        label_smoothing_of(loss["label_smoothing"])


def loss_description(loss_type: str, *, label_smoothing: float = 0.0) -> dict[str, Any]:
    """The description of a ``loss_type`` loss: ``{"type": loss_type}``, with ``label_smoothing``
    when it is not 0 (CrossEntropy only; ConfigError otherwise)."""
    eps = label_smoothing_of(label_smoothing)
    if eps == 0.0:
        return {"type": loss_type}
    description: dict[str, Any] = {"type": loss_type, "label_smoothing": eps}
    check_loss(description)
    return description
