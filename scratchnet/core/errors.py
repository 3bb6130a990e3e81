"""The exception hierarchy: every error scratchnet raises on bad input is a ScratchnetError."""

from __future__ import annotations

from collections.abc import Iterable


class ScratchnetError(Exception):
    """Root of every error scratchnet raises on purpose; its message is one line for the user."""


class ShapeError(ScratchnetError):
    """Arrays or nested lists whose shapes do not fit together."""


class LabelError(ScratchnetError):
    """Labels that are not integers in the range the network's output allows."""


class ConfigError(ScratchnetError):
    """An invalid setting: an architecture, a hyperparameter, a CLI flag."""


class ModelFormatError(ScratchnetError):
    """A model file pair (NAME.json + NAME.npz) that is damaged, unsafe or not understood."""


class DatasetError(ScratchnetError):
    """A dataset file that is missing, damaged or truncated, or that cannot be downloaded."""


class TrainingError(ScratchnetError):
    """Training that cannot go on, for example a loss that became NaN or infinite."""


class InteropError(ScratchnetError):
    """A model file of another framework's format (ONNX, safetensors) that cannot be read or written:
    damaged, built of operators scratchnet has no layer for, or needing a package not installed."""


def quoted_list(items: Iterable[object], limit: int = 5) -> str:
    """``['a', 'b']``, or the first ``limit`` items and how many more: how an error message quotes a
    list that a file controls (tensor names, class names), so the message stays one short line."""
    values = list(items)
    shown = ", ".join(_quoted(value) for value in values[:limit])
    more = f", ... and {len(values) - limit} more" if len(values) > limit else ""
    return f"[{shown}{more}]"


def _quoted(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
