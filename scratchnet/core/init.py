"""Initializer rules (spec/math.md, section 10): which distribution each scheme draws from, given a
weight's fan-in and fan-out. The backends draw the numbers (``scratchnet/loops/init.py``,
``scratchnet/vectorized/init.py``) from :mod:`scratchnet.core.rng`, so both start from the same
parameters for the same seed. Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from scratchnet.core.errors import ConfigError

INITIALIZERS = (
    "he_normal",
    "he_uniform",
    "glorot_normal",
    "glorot_uniform",
    "uniform",
    "zeros",
    "gpt_normal",
    "normal",
)
WEIGHT_STREAM = 0  # the stream of a layer's seed that its weights come from
BIAS_STREAM = 1  # ... and its biases
# A layer with two weights (attention's in_proj_weight and out_proj.weight) draws the second from
# these streams (eq. 10.11).
SECOND_WEIGHT_STREAM = 2
SECOND_BIAS_STREAM = 3
GPT_STD = 0.02  # GPT-2's N(0, 0.02) for every weight and embedding (eq. 10.11)
NORMAL_STD = GPT_STD  # the std of ``init="normal"`` when no ``std`` is given (eq. 10.12)

Distribution = tuple[Literal["normal", "symmetric", "classic", "zeros"], float]
"""("normal", std): std * N(0, 1); ("symmetric", limit): U(-limit, limit) as limit * (2u - 1);
("classic", 0.5): U(-0.5, 0.5) as u - 0.5; ("zeros", 0.0)."""


def check_initializer(name: str) -> str:
    """``name`` when it is a known initializer, else a ConfigError listing the known ones."""
    if name not in INITIALIZERS:
        raise ConfigError(f"unknown initializer {name!r}; choose one of {', '.join(INITIALIZERS)}")
    return name


def check_std(init: str, std: float | None, name: str = "std") -> float | None:
    """``std`` when it may be given: a finite number > 0, and only with ``init="normal"`` (eq. 10.12),
    which draws N(0, std^2); ConfigError otherwise. None means "not given"."""
    if std is None:
        return None
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not 0.0 < std < math.inf:
        raise ConfigError(f"{name} must be a finite number > 0, got {std!r}")
    if init != "normal":
        raise ConfigError(f"{name} sets the spread of init 'normal', not of {init!r}; add init='normal'")
    return float(std)


def init_description(init: str, **stds: float | None) -> dict[str, Any]:
    """The init options a layer's ``describe()`` names: ``init``, and each std only when given (so a
    layer without them describes itself as before)."""
    return {"init": init, **{name: std for name, std in stds.items() if std is not None}}


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` ``(out, in, *kernel)``, as PyTorch computes them:
    each is its axis times the kernel's size (1 for a Dense weight ``(out, in)``)."""
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def weight_distribution(name: str, fan_in: int, fan_out: int, std: float | None = None) -> Distribution:
    """The distribution scheme ``name`` draws weights from (eq. 10.5-10.9, 10.11, 10.12); ``std`` is
    the spread of ``normal`` (0.02 when None), unused by the others."""
    check_initializer(name)
    if name == "normal":  # N(0, std^2), whatever the fans (eq. 10.12)
        return ("normal", NORMAL_STD if std is None else std)
    if name == "zeros":
        return ("zeros", 0.0)
    if name == "uniform":  # the classic tutorial's U(-0.5, 0.5)
        return ("classic", 0.5)
    if name == "gpt_normal":  # GPT-2's N(0, 0.02), whatever the fans (eq. 10.11)
        return ("normal", GPT_STD)
    if name in ("he_normal", "glorot_normal"):
        variance = 2.0 / fan_in if name == "he_normal" else 2.0 / (fan_in + fan_out)
        return ("normal", math.sqrt(variance))
    return ("symmetric", math.sqrt(6.0 / fan_in if name == "he_uniform" else 6.0 / (fan_in + fan_out)))


def bias_distribution(name: str) -> Distribution:
    """Biases: U(-0.5, 0.5) for the classic ``uniform`` scheme, zeros otherwise (eq. 10.10)."""
    check_initializer(name)
    return ("classic", 0.5) if name == "uniform" else ("zeros", 0.0)


def dense_description(in_features: int, out_features: int, bias: bool, init: str, std: float | None) -> dict[str, Any]:
    """A Dense layer's ``describe()``, the same in both backends: ``bias`` and ``std`` only when they
    differ from the defaults, so a layer without them describes itself (and is saved) as before."""
    described: dict[str, Any] = {"type": "Dense", "in_features": in_features, "out_features": out_features}
    if not bias:
        described["bias"] = False
    return {**described, **init_description(init, std=std)}
