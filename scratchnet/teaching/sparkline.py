"""A one-line text chart of a series of numbers, such as the loss per epoch: ``▇▅▃▂▂▁▁``.

Standard library only, so ``scratchnet train`` can print it whether or not matplotlib is installed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"
MISSING = " "  # drawn for a NaN or infinite value


def sparkline(values: Sequence[float], width: int | None = None) -> str:
    """One block character per value, the lowest value ``▁`` and the highest ``█``.

    With ``width``, a longer series is shrunk to ``width`` characters by averaging consecutive
    values (a shorter one is not stretched). A NaN or infinite value is drawn as a space and
    ignored in the scale; a constant series is drawn at mid height; an empty series is ``""``.
    """
    if width is not None and width < 1:
        raise ValueError(f"sparkline width must be at least 1, got {width}")
    points = [float(v) for v in values]
    if width is not None and len(points) > width:
        points = _shrink(points, width)
    finite = [v for v in points if math.isfinite(v)]
    if not finite:
        return MISSING * len(points)
    low, high = min(finite), max(finite)
    top = len(BLOCKS) - 1
    chars = []
    for v in points:
        if not math.isfinite(v):
            chars.append(MISSING)
        elif high == low:
            chars.append(BLOCKS[top // 2])
        else:
            level = round((v / 2 - low / 2) / (high / 2 - low / 2) * top)  # halves: no overflow
            chars.append(BLOCKS[min(top, max(0, level))])
    return "".join(chars)


def _shrink(points: list[float], width: int) -> list[float]:
    """``width`` averages of consecutive runs of ``points`` (the runs differ in length by at most one).

    A run containing a NaN or infinite value averages only its finite values; a run of none is NaN.
    """
    n = len(points)
    out = []
    for k in range(width):
        run = points[k * n // width : (k + 1) * n // width]
        finite = [v for v in run if math.isfinite(v)]
        out.append(sum(finite) / len(finite) if finite else math.nan)
    return out
