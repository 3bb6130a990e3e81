"""The text sparkline used by ``scratchnet train`` for the loss per epoch."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchnet.teaching.sparkline import BLOCKS, sparkline


def test_rising_series_uses_every_level() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"


def test_falling_loss() -> None:
    assert sparkline([2.0, 1.0, 0.5, 0.0]) == "█▅▃▁"


def test_empty_is_empty() -> None:
    assert sparkline([]) == ""


def test_constant_is_mid_height() -> None:
    assert sparkline([3.0, 3.0, 3.0]) == "▄▄▄"
    assert sparkline([5.0]) == "▄"


def test_nan_and_inf_are_gaps_and_do_not_move_the_scale() -> None:
    assert sparkline([0.0, math.nan, 1.0, math.inf]) == "▁ █ "
    assert sparkline([math.nan, math.nan]) == "  "


def test_width_averages_runs() -> None:
    assert sparkline([0, 0, 1, 1, 2, 2, 3, 3], width=4) == sparkline([0, 1, 2, 3])
    assert len(sparkline(list(range(100)), width=10)) == 10
    assert sparkline([1, 2], width=10) == "▁█"  # short series are not stretched


def test_width_with_nan_runs() -> None:
    assert sparkline([math.nan, math.nan, 0.0, 1.0], width=2) == " ▄"


def test_bad_width() -> None:
    with pytest.raises(ValueError):
        sparkline([1.0], width=0)


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=60), st.none() | st.integers(1, 30))
def test_any_input_gives_blocks_and_gaps(values: list[float], width: int | None) -> None:
    line = sparkline(values, width)
    expected = len(values) if width is None else min(len(values), width)
    assert len(line) == expected
    assert set(line) <= set(BLOCKS) | {" "}
    finite = [v for v in values if math.isfinite(v)]
    if width is None and finite and min(finite) < max(finite):
        assert line[values.index(min(finite))] == BLOCKS[0]
        assert line[values.index(max(finite))] == BLOCKS[-1]
