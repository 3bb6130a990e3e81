"""``scratchnet plot filters`` and ``plot feature-maps``: PNGs of the expected size for a convolutional
network; ``plot weights`` points a CNN to ``filters``; without matplotlib, one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
from subprocesses import run_without
from test_plots import BLOCKED, png_size

import scratchnet
from scratchnet.builders import build_network
from scratchnet.cli import main
from scratchnet.core import notation
from scratchnet.core.architecture import mlp


@pytest.fixture
def cnn(tmp_path: Path) -> Path:
    """conv(6, 3), relu, maxpool(2), conv(4, 3), relu, flatten, dense(10), trained on nothing."""
    arch = notation.parse("input(1x28x28), conv(6, 3), relu, maxpool(2), conv(4, 3), relu, flatten, dense(10)")
    path = tmp_path / "cnn.json"
    scratchnet.save(
        build_network(arch, backend="loops", seed=4),
        path,
        metadata={"dataset": "mnist", "input": {"shape": [1, 28, 28], "scale": 255.0, "mean": 0.1, "std": 0.3}},
    )
    return path


@pytest.mark.parametrize(
    "options",
    [[], ["--layer", "3"], ["--layer", "3", "--channel", "5"]],
    ids=["first-conv", "second-conv-every-channel", "second-conv-one-channel"],
)
def test_filters(options: list[str], cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "filters.png"
    assert main(["plot", "filters", str(cnn), "--out", str(out), "--dpi", "50", *options]) == 0
    assert out.stat().st_size > 1000
    assert png_size(out) == (400, 400)
    assert "(400x400 px)" in capsys.readouterr().out


@pytest.mark.parametrize("options", [[], ["--layer", "3"], ["--layer", "2", "--index", "7"]])
def test_feature_maps(options: list[str], cnn: Path, tmp_path: Path, data_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "maps.png"
    command = ["plot", "feature-maps", str(cnn), "--out", str(out), "--data-dir", str(data_dir), "--dpi", "50"]
    assert main([*command, *options]) == 0
    assert out.stat().st_size > 1000
    assert png_size(out) == (500, 400)


def test_plot_functions_directly(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from scratchnet.teaching import plots

    out = tmp_path / "direct.png"
    kernels = [[[[(o - 2) * 0.1 + u - v for v in range(3)] for u in range(3)]] for o in range(5)]
    plots.plot_filters(kernels, out, dpi=20)
    assert png_size(out) == plots.pixel_size("filters", 20) == (160, 160)
    image = [[(r * 9 + c * 5) % 256 for c in range(28)] for r in range(28)]
    maps = [[[float(r == c) for c in range(26)] for r in range(26)] for _ in range(3)]
    plots.plot_feature_maps(maps, image, out, source="a test", layer_name="layer 1 (ReLU)", dpi=20)
    assert png_size(out) == plots.pixel_size("feature-maps", 20) == (200, 160)
    blank = [[[0.0] * 4] * 4]  # one scale from 0 to 0: drawn black, not an error
    plots.plot_feature_maps(blank, image, out, dpi=20)
    assert png_size(out) == (200, 160)


def test_errors_are_one_line(cnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = str(tmp_path / "x.png")
    mlp_path = tmp_path / "mlp.json"
    scratchnet.save(build_network(mlp([784, 4, 10]), backend="loops"), mlp_path)
    kernels = "the model is a convolutional network, its first weights are kernels: draw them with plot filters"
    for args, message in (
        (["weights", str(cnn)], kernels),
        (["filters", str(mlp_path)], "the model has no Conv2D layer, so no filters"),
        (["filters", str(cnn), "--layer", "2"], "--layer 2 is not a Conv2D layer; the Conv2D layers are 0, 3"),
        (["filters", str(cnn), "--channel", "1"], "--channel 1: layer 0 has input channels 0..0"),
        (["feature-maps", str(cnn), "--layer", "5"], "layer 5 (Flatten) outputs (484,), not (channels, height, width)"),
        (["feature-maps", str(mlp_path)], "the network has no Conv2D layer, so no feature maps"),
        (["feature-maps", str(cnn), "--layer", "9"], "--layer 9: the network has layers 0..7"),
        (["curves", str(cnn), "--index", "3"], "--index goes with plot feature-maps, not curves"),
        (["feature-maps", str(cnn), "--channel", "3"], "--channel goes with plot filters, not feature-maps"),
    ):
        assert main(["plot", *args, "--out", out]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("kind", ["filters", "feature-maps"])
def test_without_matplotlib_a_clear_message(kind: str, cnn: Path, tmp_path: Path) -> None:
    out = tmp_path / "never.png"
    done = run_without("matplotlib", BLOCKED, "plot", kind, str(cnn), "--out", str(out), timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        'scratchnet plot: error: plotting needs matplotlib, which is not installed: pip install "scratchnet[plot]"\n'
    )
    assert not out.exists()
