"""``scratchnet plot`` drawn to be read (issue 25 items 19 and 20): the confusion matrix's few errors stand
out from empty cells, the text is at least 8 points, a figure of two misclassified images fits them with
their full class names, the kernels' numbers fit their taps, and ``plot feature-maps`` refuses an MLP
before it builds the loops network or looks for the test set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from subprocesses import run_scratchnet

import scratchnet
import scratchnet.cli.plot as cli_plot
from scratchnet.builders import build_network
from scratchnet.cli import main
from scratchnet.core.architecture import mlp

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from scratchnet.teaching import plots  # noqa: E402  (after the skip: it needs matplotlib)

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the plot functions save, kept for a look at their text and axes."""
    figures: list[Any] = []
    original = plots.save

    def keep(figure: Any, out: Any) -> None:
        figures.append(figure)
        original(figure, out)

    monkeypatch.setattr(plots, "save", keep)
    return figures


def texts(figure: Any) -> list[Any]:
    """The figure's heading and the titles and words of its axes (their hidden tick labels left out)."""
    found = [figure._suptitle] + [t for axes in figure.axes for t in (axes.title, *axes.texts)]
    return [t for t in found if t is not None and t.get_text()]


def colour_at(png: Path, figure: Any, axes: Any, x: float, y: float) -> tuple[int, int, int]:
    """The PNG's colour at data point (x, y) of ``axes`` (display y counts from the bottom)."""
    px, py = axes.transData.transform((x, y))
    with Image.open(png) as image:
        r, g, b = image.convert("RGB").getpixel((int(px), int(image.height - py)))
    return int(r), int(g), int(b)


def test_one_error_beside_a_diagonal_of_a_thousand_is_visible(tmp_path: Path, drawn: list[Any]) -> None:
    matrix = [[1000 if r == c else 0 for c in range(10)] for r in range(10)]
    matrix[3][5] = 1  # one 3 read as a 5
    matrix[7][1] = 9
    out = tmp_path / "confusion.png"
    plots.plot_confusion(matrix, [str(k) for k in range(10)], out)
    figure = drawn[0]
    axes = figure.axes[0]

    def cell(row: int, col: int) -> tuple[int, int, int]:
        return colour_at(out, figure, axes, col + 0.35, row + 0.35)  # near the corner, away from the count

    one, empty, nine, right = cell(3, 5), cell(5, 3), cell(7, 1), cell(4, 4)
    assert empty == (255, 255, 255)
    assert sum(abs(a - b) for a, b in zip(one, empty)) > 100, (one, empty)  # was 1 level in 255: invisible
    assert sum(abs(a - b) for a, b in zip(nine, one)) > 60, (nine, one)  # 9 errors darker than 1
    assert sum(abs(a - b) for a, b in zip(right, one)) > 100
    written = {(tuple(t.get_position()), t.get_text()) for t in axes.texts}
    assert ((5, 3), "1") in written and ((1, 7), "9") in written and ((4, 4), "1000") in written


@pytest.mark.parametrize("channels", [8, 63])
def test_feature_map_titles_are_at_least_8_points(channels: int, tmp_path: Path, drawn: list[Any]) -> None:
    image = [[(r * 9 + c * 5) % 256 for c in range(28)] for r in range(28)]
    maps = [[[float((r + c + k) % 7) for c in range(26)] for r in range(26)] for k in range(channels)]
    plots.plot_feature_maps(maps, image, tmp_path / "maps.png", source="mnist test image 0", layer_name="layer 1")
    titles = texts(drawn[0])
    assert len(titles) == channels + 2  # the input's, one per map, and the heading
    assert min(t.get_fontsize() for t in titles) >= 8


def test_two_misclassified_images_fill_a_figure_sized_for_two(tmp_path: Path, drawn: list[Any]) -> None:
    images = [[[(r * c) % 256 for c in range(28)] for r in range(28)]] * 2
    out = tmp_path / "two.png"
    plots.plot_misclassified(images, [0, 6], [9, 0], [12, 3456], FASHION, out, title="fashion.json")
    width, height = plots.png_size(out)
    assert width <= 450 and height <= 300  # was 800x800 for any number of images
    figure = drawn[0]
    shown = [axes for axes in figure.axes if axes.images]
    assert len(shown) == 2
    renderer = figure.canvas.get_renderer()
    area = sum(a.get_window_extent(renderer).width * a.get_window_extent(renderer).height for a in shown)
    assert area > 0.35 * width * height  # the images, not blank space, fill the figure
    titles = [axes.title for axes in shown]
    assert [t.get_text() for t in titles] == [
        "#12 true T-shirt/top\npred Ankle boot",
        "#3456 true Shirt\npred T-shirt/top",
    ]
    boxes = [t.get_window_extent(renderer) for t in titles]
    assert not boxes[0].overlaps(boxes[1]) and all(b.x0 >= 0 and b.x1 <= width for b in boxes)
    assert min(t.get_fontsize() for t in texts(figure)) >= 8
    many = [images[0]] * 36
    plots.plot_misclassified(many, [0] * 36, [1] * 36, list(range(36)), FASHION, out, total=500)
    assert plots.png_size(out) == plots.pixel_size("misclassified")  # 36 keep the 8x8-inch grid
    assert "true T-shirt/top" in drawn[1].axes[0].title.get_text()


@pytest.mark.parametrize(("outs", "ins"), [(8, 3), (16, 3), (6, 1), (4, 6)])
def test_kernel_numbers_fit_their_taps(outs: int, ins: int, tmp_path: Path, drawn: list[Any]) -> None:
    kernels = [
        [[[((o * 7 + c * 3 + u * 3 + v) % 11 - 5) / 7 for v in range(3)] for u in range(3)] for c in range(ins)]
        for o in range(outs)
    ]
    plots.plot_filters(kernels, tmp_path / "filters.png")
    figure = drawn[0]
    renderer = figure.canvas.get_renderer()
    numbers = 0
    for axes in figure.axes:
        if not axes.images:
            continue
        image = axes.images[0].get_window_extent(renderer)
        tap = min(image.width, image.height) / 3
        for text in axes.texts:
            numbers += 1
            assert text.get_fontsize() >= 5
            assert text.get_window_extent(renderer).width < 0.8 * tap, (text.get_text(), tap)  # was 0.92 for 8x3
    if (outs, ins) != (16, 3):  # 48 kernels of 3x3 on 8x8 inches: too small for numbers, so none
        assert numbers == outs * ins * 9
    assert sum(1 for axes in figure.axes if axes.images) == outs * ins


def test_feature_maps_of_an_mlp_are_refused_before_anything_is_loaded(tmp_path: Path) -> None:
    model = tmp_path / "mlp.json"
    metadata = {"dataset": "mnist", "input": {"scale": 255.0, "mean": 0.0, "std": 1.0}}
    scratchnet.save(build_network(mlp([784, 16, 10]), backend="vectorized", seed=2), model, metadata=metadata)
    missing = tmp_path / "no-such-data"
    out = tmp_path / "maps.png"
    done = run_scratchnet("plot", "feature-maps", str(model), "--data-dir", str(missing), "--out", str(out))
    assert done.returncode == 1
    assert done.stderr == "scratchnet plot: error: the network has no Conv2D layer, so no feature maps\n"
    assert not missing.exists() and not out.exists()


def test_the_architecture_is_checked_before_the_loops_network_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "mlp.json"
    scratchnet.save(build_network(mlp([784, 16, 10]), backend="vectorized", seed=2), model)
    built: list[str] = []

    def load_model(*args: Any, **kwargs: Any) -> Any:
        built.append("built")
        raise AssertionError("the network was built before the architecture was checked")

    monkeypatch.setattr(cli_plot, "load_model", load_model)
    for layer, message in (
        ([], "the network has no Conv2D layer, so no feature maps"),
        (["--layer", "1"], "layer 1 (ReLU) outputs (16,), not (channels, height, width) feature maps"),
        (["--layer", "9"], "--layer 9: the network has layers 0..3"),
    ):
        assert main(["plot", "feature-maps", str(model), "--out", str(tmp_path / "m.png"), *layer]) == 1
        assert capsys.readouterr().err == f"scratchnet plot: error: {message}\n"
    assert built == []
