"""The spiral demo: the data, the two models (linear fails, ReLU succeeds) and the terminal drawing."""

from __future__ import annotations

import math

import pytest
from subprocesses import run_without

from scratchnet.cli import demo
from scratchnet.core.errors import ConfigError
from scratchnet.teaching.spiral import DemoResult, decision_grid, make_spiral, relu_model, run_demo


@pytest.fixture(scope="module")
def result() -> DemoResult:
    return run_demo(seed=0)


def test_spiral_data_is_seeded_and_shaped() -> None:
    data = make_spiral(50, seed=3)
    assert len(data.points) == 150 and data.labels == [0] * 50 + [1] * 50 + [2] * 50
    assert all(len(p) == 2 and math.hypot(*p) <= 1.0 + 1e-12 for p in data.points)
    assert make_spiral(50, seed=3) == data
    assert make_spiral(50, seed=4).points != data.points
    clean = make_spiral(50, noise=0.0)
    assert clean.points[49] == pytest.approx([math.sin(4.0), math.cos(4.0)])  # r = 1, t = 4 c + 4 r for c = 0
    with pytest.raises(ConfigError):
        make_spiral(1)


def test_relu_network_beats_the_linear_model_by_a_wide_margin(result: DemoResult) -> None:
    assert result.relu.accuracy > 0.90, result.relu.accuracy
    assert result.linear.accuracy < 0.60, result.linear.accuracy
    assert result.relu.losses[-1] < result.relu.losses[0] / 5
    assert [type(layer).__name__ for layer in result.linear.network.layers] == ["Dense", "Softmax"]
    assert [type(layer).__name__ for layer in result.relu.network.layers] == ["Dense", "ReLU", "Dense", "Softmax"]


def test_decision_grid_matches_predict(result: DemoResult) -> None:
    grid = decision_grid(result.relu.network, 3, 4, (-1.0, 1.0, -1.0, 1.0))
    assert len(grid) == 3 and all(len(row) == 4 for row in grid)
    # Row 0 is the top: cell (0, 0) is centred at x = -0.75, y = 2/3.
    assert grid[0][0] == result.relu.network.predict([[-0.75, 2.0 / 3.0]])[0]
    assert grid[2][3] == result.relu.network.predict([[0.75, -2.0 / 3.0]])[0]


def test_drawing_shows_regions_points_and_accuracies(result: DemoResult) -> None:
    text = demo.format_demo(result, rows=10, colour=False)
    assert f"training accuracy {result.linear.accuracy:.1%}" in text
    assert f"training accuracy {result.relu.accuracy:.1%}" in text
    framed = [line for line in text.splitlines() if line.startswith("    |")]
    assert len(framed) == 20 and all(len(line) == 4 + 2 + 20 for line in framed)
    body = "".join(framed)
    assert set(body) <= set("    |" + demo.REGION + demo.POINT)
    for char in demo.REGION + demo.POINT:
        assert char in body
    assert "\x1b[" not in text
    assert "\x1b[" in demo.format_demo(result, rows=4, colour=True)


def test_untrained_relu_model_is_not_already_good() -> None:
    data = make_spiral(seed=0)
    predicted = relu_model(seed=0).predict(data.points)
    assert sum(p == y for p, y in zip(predicted, data.labels)) / len(data.labels) < 0.6


BLOCKED = """
    from scratchnet.cli import main
    status = main(["demo", "spiral", "--points", "40", "--epochs", "40", "--rows", "8", "--color", "always"])
    assert "numpy" not in sys.modules
    raise SystemExit(status)
    """


def test_demo_command_runs_without_numpy() -> None:
    done = run_without("numpy", BLOCKED)
    assert done.returncode == 0, done.stderr
    assert "(a) no hidden layer (linear)" in done.stdout
    assert "(b) one hidden layer of 32 ReLUs" in done.stdout
    assert "\x1b[" in done.stdout
