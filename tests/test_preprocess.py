"""MNIST-faithful preprocessing (scratchnet.data.preprocess), shared by ``predict --image`` and ``serve``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from serve_helpers import seven
from test_evaluate import small_model  # noqa: F401  (the module-scoped fixture)

from scratchnet.cli import main
from scratchnet.core.errors import ScratchnetError, ShapeError
from scratchnet.data import load_dataset
from scratchnet.data.images import draw
from scratchnet.data.preprocess import BOX, CENTRE, area_weights, preprocess


def centre_of_mass(image: npt.NDArray[np.uint8]) -> tuple[float, float]:
    mass = image.astype(np.float64)
    total = mass.sum()
    return float(mass.sum(axis=1) @ np.arange(image.shape[0]) / total), float(
        mass.sum(axis=0) @ np.arange(image.shape[1]) / total
    )


def ink_box(image: npt.NDArray[np.uint8]) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


@pytest.mark.parametrize(
    ("size", "scale", "at"),
    [
        (28, 0.35, (1.0, 15.0)),  # small, in the top right corner of a 28x28 image
        (280, 0.3, (170.0, 10.0)),  # small, low on the left of a canvas
        (280, 1.0, (0.0, 0.0)),  # a whole canvas
        (600, 0.5, (40.0, 250.0)),
    ],
)
def test_an_off_centre_digit_comes_out_centred_and_sized_as_mnists(
    size: int, scale: float, at: tuple[float, float]
) -> None:
    image = seven(size, scale, at)
    _, _, height, width = ink_box(image)
    out = preprocess(image)
    assert out.pixels.shape == (28, 28) and out.pixels.dtype == np.uint8
    top, left, out_height, out_width = ink_box(out.pixels)
    assert max(out_height, out_width) == BOX  # the longer side fits the 20x20 box ...
    assert out_width / out_height == pytest.approx(width / height, abs=0.08)  # ... keeping the aspect ratio
    row, col = centre_of_mass(out.pixels)
    assert abs(row - CENTRE) <= 0.5 and abs(col - CENTRE) <= 0.5  # centred as MNIST's are
    assert out.box == (*ink_box(image)[:2], height, width)
    assert out.offset == (top, left) and out.size == (out_height, out_width)
    assert out.note().startswith("made to look like MNIST's digits") and not out.unchanged
    assert 200 <= int(out.pixels.max()) <= 255  # the strokes stay bright, with anti-aliased edges
    assert len(np.unique(out.pixels)) > 3


def test_mnist_test_images_come_out_unchanged(data_dir: Path) -> None:
    images = load_dataset("mnist", data_dir, splits=("test",)).test_images
    unchanged = [preprocess(image).unchanged for image in images]
    assert sum(unchanged) >= 9990  # 9,997 of the 10,000: their ink is 20 pixels high and centred
    assert preprocess(images[0]).note() == ""


def test_area_averaging_is_exact_and_keeps_the_mean() -> None:
    assert np.array_equal(area_weights(20, 20), np.eye(20))
    for source, target in [(7, 3), (3, 7), (190, 20), (20, 19), (1, 20), (20, 1)]:
        weights = area_weights(source, target)
        assert weights.shape == (target, source)
        assert np.allclose(weights.sum(axis=1), 1.0)  # each output pixel is a mean
        assert np.allclose(weights.sum(axis=0), target / source)  # each input counts as much as its area
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (30, 12))
    scaled = area_weights(30, 20) @ image @ area_weights(12, 8).T
    assert scaled.mean() == pytest.approx(image.mean())


def test_area_averaging_is_the_mean_over_each_output_pixels_area() -> None:
    # An independent way to the same numbers: repeat each pixel `target` times along each axis, so that
    # every output pixel covers exactly `source` of the repeated ones, and take their plain mean.
    rng = np.random.default_rng(2)
    for (height, width), (rows, cols) in [((115, 91), (20, 16)), ((13, 7), (20, 11)), ((29, 31), (19, 20))]:
        image = rng.uniform(0, 255, (height, width))
        repeated = np.repeat(np.repeat(image, rows, axis=0), cols, axis=1)
        reference = repeated.reshape(rows, height, cols, width).mean(axis=(1, 3))
        ours = area_weights(height, rows) @ image @ area_weights(width, cols).T
        assert np.allclose(ours, reference, rtol=0, atol=1e-9)


def test_area_averaging_agrees_with_pillows_box_filter_on_whole_factors() -> None:
    # Pillow's BOX filter is area averaging when the factor is whole (for others it weighs whole pixels)
    image_module = pytest.importorskip("PIL.Image")
    digit = seven(200, 0.8, (20.0, 30.0))[:160, 40:160]  # 160x120: 8 times 20x15
    ours = np.rint(area_weights(160, 20) @ digit.astype(np.float64) @ area_weights(120, 15).T)
    theirs = np.asarray(image_module.fromarray(digit).resize((15, 20), image_module.Resampling.BOX))
    assert np.abs(ours - theirs.astype(np.float64)).max() <= 1  # rounding of halves


def test_a_light_background_level_is_subtracted_and_the_digit_stays_inside() -> None:
    digit = seven(280, 0.6, (50.0, 60.0))
    grey = np.where(digit > 0, 255, 40).astype(np.uint8)  # the same strokes on dark grey paper
    assert np.array_equal(preprocess(grey).pixels, preprocess(np.where(digit > 0, 215, 0).astype(np.uint8)).pixels)
    assert preprocess(grey).background == 40 and "background level 40" in preprocess(grey).note()
    lopsided = np.zeros((100, 100), np.uint8)
    lopsided[10:90, 50] = 255
    lopsided[80:90, 20:80] = 255  # most of the ink at the bottom: the centre of mass is low in the box
    out = preprocess(lopsided)
    assert int(out.pixels.sum()) > 0 and out.offset[0] + out.size[0] <= 28 and out.offset[0] >= 0


def test_what_preprocess_refuses() -> None:
    with pytest.raises(ScratchnetError, match="blank"):
        preprocess(np.zeros((28, 28), np.uint8))
    with pytest.raises(ScratchnetError, match="blank"):
        preprocess(np.full((50, 40), 90, np.uint8))  # all background
    for bad in (np.zeros((28, 28), np.float64), np.zeros((2, 28, 28), np.uint8), np.zeros((0, 5), np.uint8)):
        with pytest.raises(ShapeError, match="2-D uint8"):
            preprocess(bad)


def test_predict_image_preprocesses_as_serve_does(
    small_model: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, _ = small_model
    small = seven(28, 0.35, (1.0, 15.0))
    np.save(tmp_path / "small.npy", small)
    assert main(["predict", str(model), "--image", str(tmp_path / "small.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("note: made to look like MNIST's digits") and "--no-preprocess" in lines[0]
    assert "\n".join(lines[2:32]) == draw(preprocess(small).pixels)  # it draws what the network saw
    assert main(["predict", str(model), "--image", str(tmp_path / "small.npy"), "--no-preprocess"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "\n".join(lines[1:31]) == draw(small)
    assert main(["predict", str(model), "--index", "0", "--no-preprocess"]) == 1  # --image only
    assert "apply to --image only" in capsys.readouterr().err
