"""``scratchnet plot``: each kind writes a PNG of the expected size; without matplotlib, one clear line."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from subprocesses import run_without

import scratchnet
from scratchnet.builders import build_network
from scratchnet.cli import main
from scratchnet.core.architecture import mlp

HISTORY = [
    {"epoch": 1, "loss": 0.9, "train_accuracy": 0.71, "validation_accuracy": 0.80},
    {"epoch": 2, "loss": 0.5, "train_accuracy": 0.85, "validation_accuracy": 0.86},
    {"epoch": 3, "loss": 0.4, "train_accuracy": 0.88, "validation_accuracy": None},
]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:16]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "small.json"
    net = build_network(mlp([784, 12, 10]), backend="loops", seed=5)
    scratchnet.save(
        net,
        path,
        metadata={
            "dataset": "mnist",
            "input": {"scale": 255.0, "mean": 0.0, "std": 1.0},
            "training": {"history": HISTORY},
        },
    )
    return path


@pytest.mark.parametrize(("kind", "size"), [("curves", (500, 200)), ("weights", (400, 400))])
def test_plots_from_the_model_file(
    kind: str, size: tuple[int, int], model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / f"{kind}.png"
    assert main(["plot", kind, str(model), "--out", str(out), "--dpi", "50"]) == 0
    assert out.stat().st_size > 1000
    assert png_size(out) == size
    assert f"({size[0]}x{size[1]} px)" in capsys.readouterr().out


@pytest.mark.parametrize(("kind", "size"), [("confusion", (400, 350)), ("misclassified", (400, 400))])
def test_plots_on_the_test_set(kind: str, size: tuple[int, int], model: Path, tmp_path: Path, data_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / f"{kind}.png"
    assert main(["plot", kind, str(model), "--out", str(out), "--data-dir", str(data_dir), "--dpi", "50"]) == 0
    assert out.stat().st_size > 1000
    assert png_size(out) == size


def test_default_size(model: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    assert main(["plot", "curves", str(model), "--out", str(out)]) == 0
    assert png_size(out) == (1000, 400)


def test_plot_direct_functions_handle_edge_cases(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from scratchnet.teaching import plots

    out = tmp_path / "none.png"
    plots.plot_misclassified([], [], [], [], ["a", "b"], out, dpi=20)
    assert png_size(out) == plots.pixel_size("misclassified", 20) == (160, 160)
    plots.plot_confusion([[0, 0], [0, 0]], ["a", "b"], out, dpi=20)
    assert png_size(out) == (160, 140)


def test_plot_errors(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    bare = tmp_path / "bare.json"
    scratchnet.save(build_network(mlp([784, 4, 10]), backend="loops"), bare)
    assert main(["plot", "curves", str(bare), "--out", str(tmp_path / "c.png")]) == 1
    assert "no training history" in capsys.readouterr().err
    tiny = tmp_path / "tiny.json"
    scratchnet.save(build_network(mlp([2, 4, 3]), backend="loops"), tiny)
    assert main(["plot", "weights", str(tiny), "--out", str(tmp_path / "w.png")]) == 1
    assert "28x28 images, but it has 2 inputs" in capsys.readouterr().err
    assert main(["plot", "curves", str(model), "--out", str(tmp_path / "c.jpg")]) == 1
    assert "give a name ending in .png" in capsys.readouterr().err


BLOCKED = """
    from scratchnet.cli import main
    raise SystemExit(main(sys.argv[1:]))
    """


@pytest.mark.parametrize("kind", ["curves", "confusion", "misclassified", "weights"])
def test_without_matplotlib_a_clear_message(kind: str, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "never.png"
    done = run_without("matplotlib", BLOCKED, "plot", kind, str(model), "--out", str(out), timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        'scratchnet plot: error: plotting needs matplotlib, which is not installed: pip install "scratchnet[plot]"\n'
    )
    assert not out.exists()
