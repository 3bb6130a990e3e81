"""Augmentations (spec/math.md section 22): the NumPy functions of scratchnet.data.augment against their
standard-library twins in scratchnet.data.augment_lists (the same batch for the same seed), and each
against expectations worked out by hand or by PyTorch's grid_sample."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from subprocesses import ROOT, run_without

from scratchnet.core.errors import ConfigError, ShapeError
from scratchnet.data import augment, augment_lists, images

# ---- the two modules give the same batch ----


@st.composite
def batches(draw: st.DrawFn, *, integer: bool | None = None) -> np.ndarray[Any, Any]:
    """1-5 images (n, H, W) or (n, C, H, W) of 1-9 rows and columns, uint8 or float64."""
    n, height, width = draw(st.integers(1, 5)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    channels = draw(st.sampled_from([None, 1, 3]))
    shape = (n, height, width) if channels is None else (n, channels, height, width)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if integer if integer is not None else draw(st.booleans()):
        return rng.integers(0, 256, shape).astype(np.uint8)
    return rng.random(shape) * draw(st.sampled_from([1.0, 255.0]))


seeds = st.integers(0, 2**64 - 1)
streams = st.integers(0, 2**20)


@settings(max_examples=60, deadline=None)
@given(batch=batches(), seed=seeds, stream=streams, shift=st.integers(0, 4), padding=st.integers(0, 4))
def test_shift_flip_crop_agree_exactly(
    batch: np.ndarray[Any, Any], seed: int, stream: int, shift: int, padding: int
) -> None:
    lists = batch.tolist()
    assert augment.shift_images(batch, shift, seed, stream).tolist() == augment_lists.shift_images(
        lists, shift, seed, stream
    )
    assert augment.flip_images(batch, seed, stream).tolist() == augment_lists.flip_images(lists, seed, stream)
    assert augment.crop_images(batch, padding, seed, stream).tolist() == augment_lists.crop_images(
        lists, padding, seed, stream
    )


@settings(max_examples=60, deadline=None)
@given(
    batch=batches(),
    seed=seeds,
    stream=streams,
    probability=st.sampled_from([0.0, 0.5, 1.0]),
    low=st.floats(0.01, 0.5),
    spread=st.floats(0.0, 0.5),
    ratio=st.floats(0.1, 1.0),
    tries=st.integers(1, 12),
    fill=st.sampled_from([0, 17, "noise"]),
)
def test_erasing_agrees_exactly(
    batch: np.ndarray[Any, Any],
    seed: int,
    stream: int,
    probability: float,
    low: float,
    spread: float,
    ratio: float,
    tries: int,
    fill: float | str,
) -> None:
    options: dict[str, Any] = {"area": (low, low + spread), "ratio": ratio, "tries": tries, "fill": fill}
    expected = augment_lists.erase_images(batch.tolist(), probability, seed, stream, **options)
    assert augment.erase_images(batch, probability, seed, stream, **options).tolist() == expected


@settings(max_examples=60, deadline=None)
@given(
    batch=batches(),
    seed=seeds,
    stream=streams,
    degrees=st.floats(0.0, 180.0),
    scale=st.floats(0.0, 0.9),
    fill=st.sampled_from([0.0, 3.0]),
)
def test_affine_agrees_to_1e12(
    batch: np.ndarray[Any, Any], seed: int, stream: int, degrees: float, scale: float, fill: float
) -> None:
    actual = augment.affine_images(batch, degrees, scale, seed, stream, fill=fill)
    expected = augment_lists.affine_images(batch.tolist(), degrees, scale, seed, stream, fill=fill)
    assert actual.dtype == batch.dtype and actual.shape == batch.shape
    if batch.dtype == np.uint8:
        assert actual.tolist() == expected  # rounded from the same floats
    else:
        assert np.max(np.abs(actual - np.asarray(expected)), initial=0.0) <= 1e-12


def test_old_names_still_import_from_images() -> None:
    assert images.shift_images is augment.shift_images
    assert images.flip_images is augment.flip_images


def test_lists_module_needs_no_numpy() -> None:
    script = f"""
        import importlib, types
        package = types.ModuleType("scratchnet.data")  # its __init__ loads datasets, which need NumPy
        package.__path__ = [{str(ROOT / "scratchnet" / "data")!r}]
        sys.modules["scratchnet.data"] = package
        lists = importlib.import_module("scratchnet.data.augment_lists")
        batch = [[[1, 2, 3], [4, 5, 6], [7, 8, 9]]] * 4
        lists.erase_images(lists.crop_images(lists.affine_images(batch, 30.0, 0.2, 1, 2), 1, 1, 2), 1.0, 1, 2)
        assert "numpy" not in sys.modules
        print("augmented without numpy")
        """
    result = run_without("numpy", script)
    assert result.returncode == 0, result.stderr
    assert "augmented without numpy" in result.stdout


# ---- the affine transform against hand-computed images and PyTorch ----


def test_identity_and_zero_settings_leave_images_as_they_are() -> None:
    batch = np.random.default_rng(1).random((3, 2, 5, 6))
    assert np.array_equal(augment.warp_images(batch, [0.0] * 3, [1.0] * 3), batch)
    assert augment.affine_images(batch, 0.0, 0.0, 1, 2) is batch
    pixels = np.arange(30, dtype=np.uint8).reshape(1, 5, 6)
    assert augment_lists.warp_images(pixels.tolist(), [0.0], [1.0]) == pixels.tolist()


def test_a_quarter_turn_is_rot90() -> None:
    # +90 degrees turns the picture counter-clockwise as drawn: the top row becomes the left column.
    image = np.arange(1, 17, dtype=np.float64).reshape(1, 4, 4) * 10.0
    turned = augment.warp_images(image, [90.0], [1.0])
    assert np.allclose(turned[0], np.rot90(image[0]), rtol=0, atol=1e-12)
    assert turned[0, 0].tolist() == pytest.approx([40.0, 80.0, 120.0, 160.0], abs=1e-12)  # the old right column
    both = augment_lists.warp_images(image.astype(np.uint8).tolist(), [-90.0], [1.0])
    assert both == np.rot90(image[0].astype(np.uint8), -1)[None].tolist()


def test_pure_scaling_interpolates_linearly_about_the_centre() -> None:
    # Bilinear interpolation reproduces a linear image a*r + b*s + c exactly between pixel centres:
    # scaled by 2 about the centre (2, 2), output (r, s) reads input (2 + (r - 2) / 2, 2 + (s - 2) / 2).
    r, s = np.meshgrid(np.arange(5.0), np.arange(5.0), indexing="ij")
    image = (3.0 * r + 5.0 * s + 1.0)[None]
    doubled = augment.warp_images(image, [0.0], [2.0])[0]
    expected = 3.0 * (2 + (r - 2) / 2) + 5.0 * (2 + (s - 2) / 2) + 1.0
    assert np.allclose(doubled, expected, rtol=0, atol=1e-12)
    # Halved: output (r, s) reads input (2 + 2 (r - 2), 2 + 2 (s - 2)), outside the image at the border.
    halved = augment_lists.warp_images(image.tolist(), [0.0], [0.5], fill=-1.0)[0]
    assert halved[2][2] == image[0, 2, 2] and halved[1][1] == image[0, 0, 0] and halved[3][1] == image[0, 4, 0]
    assert halved[0] == [-1.0] * 5 and [row[4] for row in halved] == [-1.0] * 5


def test_bilinear_weights_between_four_pixels() -> None:
    # 45 degrees on a 2x2 image (centre (0.5, 0.5)): output (0, 0) reads (y, x) = (0.5 - sqrt(2) / 2, 0.5),
    # between the two pixels of the top row (weight 1/2 each) and the fill above them (row -1).
    image = np.array([[[10.0, 30.0], [50.0, 70.0]]])
    fill = 2.0
    turned = augment.warp_images(image, [45.0], [1.0], fill=fill)[0]
    fy = 1.5 - 0.5 * math.sqrt(2.0)  # y - floor(y) = y + 1, as y = -0.207... is in (-1, 0)
    expected = (1 - fy) * fill + fy * (0.5 * 10.0 + 0.5 * 30.0)
    assert turned[0, 0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("shape", [(3, 1, 8, 8), (2, 2, 7, 10)])
def test_affine_matches_pytorch_grid_sample(shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    batch = np.random.default_rng(3).random(shape)
    angles, scales = [-27.0, 12.5, 170.0][: shape[0]], [0.8, 1.15, 1.0][: shape[0]]
    height, width = shape[-2:]
    cy, cx = (height - 1) / 2, (width - 1) / 2
    thetas = []
    for angle, factor in zip(angles, scales):
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        # align_corners=True: normalised x = (col - cx) / cx; input = centre + R^-1 (output - centre) / scale
        thetas.append([[c / factor, -s * cy / (cx * factor), 0.0], [s * cx / (cy * factor), c / factor, 0.0]])
    grid = torch.nn.functional.affine_grid(torch.tensor(thetas, dtype=torch.float64), list(shape), align_corners=True)
    expected = torch.nn.functional.grid_sample(
        torch.tensor(batch), grid, mode="bilinear", padding_mode="zeros", align_corners=True
    ).numpy()
    assert np.allclose(augment.warp_images(batch, angles, scales), expected, rtol=0, atol=1e-9)


def test_affine_draws_angles_and_scales_in_their_ranges() -> None:
    parameters = augment.affine_parameters(2000, 15.0, 0.1, seed=4, stream=9)
    angles, scales = [a for a, _ in parameters], [s for _, s in parameters]
    assert -15.0 <= min(angles) < -14.0 and 14.0 < max(angles) <= 15.0
    assert 0.9 <= min(scales) < 0.91 and 1.09 < max(scales) <= 1.1
    assert parameters == augment_lists.affine_parameters(2000, 15.0, 0.1, seed=4, stream=9)


# ---- erasing and crops against their definitions ----


def erased_box(before: np.ndarray[Any, Any], after: np.ndarray[Any, Any]) -> tuple[int, int, int, int] | None:
    """(top, left, height, width) of the changed pixels of one grey image, checked to be a full rectangle."""
    changed = np.argwhere(before != after)
    if len(changed) == 0:
        return None
    (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0)
    assert np.all(after[top : bottom + 1, left : right + 1] == 0)  # the whole rectangle is erased
    return int(top), int(left), int(bottom - top + 1), int(right - left + 1)


def test_erased_rectangles_lie_inside_with_the_right_area_and_ratio() -> None:
    batch = np.random.default_rng(5).integers(1, 256, (400, 28, 28)).astype(np.uint8)  # no zero pixel
    low, high, ratio = 0.02, 0.4, 0.3
    erased = augment.erase_images(batch, 0.5, seed=6, stream=7, area=(low, high), ratio=ratio)
    boxes = [erased_box(b, a) for b, a in zip(batch, erased)]
    count = sum(box is not None for box in boxes)
    assert 160 <= count <= 240  # about half the images (p = 0.5)
    for box in boxes:
        if box is None:
            continue
        top, left, h, w = box
        assert top >= 0 and left >= 0 and top + h <= 28 and left + w <= 28
        # h = round(sqrt(A r)), w = round(sqrt(A / r)) with A in [low, high] * 784 and r in [ratio, 1 / ratio]
        root_low, root_high = math.sqrt(low * 784), math.sqrt(high * 784)
        assert (root_low * math.sqrt(ratio) - 0.5) ** 2 <= h * w
        assert h * w <= (root_high / math.sqrt(ratio) + 0.5) * (root_high * math.sqrt(ratio) + 0.5)
        # h / w <= (a + 1/2) / (b - 1/2) with a <= b / ratio and b >= w - 1/2 (and the same for w / h)
        assert w == 1 or h / w <= ((w - 0.5) / ratio + 0.5) / (w - 1)
        assert h == 1 or w / h <= ((h - 0.5) / ratio + 0.5) / (h - 1)
    areas = [h * w / 784 for box in boxes if box is not None for _, _, h, w in [box]]
    assert low - 0.01 <= min(areas) < 0.1 and 0.3 < max(areas) <= high + 0.05


def test_erasing_by_probability_and_fill() -> None:
    batch = np.full((50, 3, 10, 12), 200, np.uint8)
    assert augment.erase_images(batch, 0.0, 1, 2) is batch
    every = augment.erase_images(batch, 1.0, 1, 2, area=(0.1, 0.2), fill=9)
    for image in every:
        changed = image != 200
        assert np.all(image[changed] == 9)
        assert np.array_equal(changed[0], changed[1]) and np.array_equal(changed[0], changed[2])  # every channel
        assert 12 - 4 <= changed[0].sum() <= 24 + 8  # 10% to 20% of 120 pixels, give or take the rounding
    noisy = augment.erase_images(batch, 1.0, 1, 2, area=(0.3, 0.3), fill="noise")
    values = noisy[noisy != 200]
    assert len(np.unique(values)) > 100  # uniform noise over 0..255
    floats = augment.erase_images(batch.astype(np.float32) / 255, 1.0, 1, 2, area=(0.3, 0.3), fill="noise")
    assert floats.dtype == np.float32 and float(floats.max()) <= 1.0


def test_crops_are_windows_of_the_padded_image() -> None:
    batch = np.random.default_rng(8).integers(0, 256, (200, 2, 6, 5)).astype(np.uint8)
    padding = 2
    cropped = augment.crop_images(batch, padding, seed=1, stream=3)
    padded = np.pad(batch, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    offsets = set()
    for k in range(len(batch)):
        found = [
            (top, left)
            for top in range(2 * padding + 1)
            for left in range(2 * padding + 1)
            if np.array_equal(cropped[k], padded[k, :, top : top + 6, left : left + 5])
        ]
        assert found, k
        offsets.update(found)
    assert offsets == {(top, left) for top in range(5) for left in range(5)}  # every offset occurs
    assert augment.crop_images(batch, 0, 1, 3) is batch
    assert not np.array_equal(cropped, augment.crop_images(batch, padding, seed=1, stream=4))


@pytest.mark.parametrize(
    "call",
    [
        lambda b: augment.crop_images(b, -1, 0, 0),
        lambda b: augment.affine_images(b, 200.0, 0.0, 0, 0),
        lambda b: augment.affine_images(b, 10.0, 1.0, 0, 0),
        lambda b: augment.erase_images(b, 1.5, 0, 0),
        lambda b: augment.erase_images(b, 0.5, 0, 0, area=(0.5, 0.2)),
        lambda b: augment.erase_images(b, 0.5, 0, 0, ratio=0.0),
        lambda b: augment.erase_images(b, 0.5, 0, 0, tries=0),
        lambda b: augment.erase_images(b, 0.5, 0, 0, fill="mean"),
        lambda b: augment.erase_images(b, 0.5, 0, 0, fill=0.5),  # not a uint8 pixel
        lambda b: augment_lists.erase_images(b.tolist(), 0.5, 0, 0, fill=300),
        lambda b: augment_lists.affine_images(b.tolist(), -1.0, 0.0, 0, 0),
    ],
)
def test_settings_out_of_range_are_one_line_errors(call: Any) -> None:
    with pytest.raises(ConfigError) as error:
        call(np.zeros((2, 4, 4), np.uint8))
    assert "\n" not in str(error.value)


def test_shapes_and_types_that_are_not_images_are_refused() -> None:
    with pytest.raises(ShapeError):
        augment.crop_images(np.zeros((4, 4), np.uint8), 1, 0, 0)
    with pytest.raises(ShapeError):
        augment.affine_images(np.zeros((2, 4, 4), np.int64), 10.0, 0.0, 0, 0)
    with pytest.raises(ShapeError):
        augment_lists.crop_images([[1, 2], [3, 4]], 1, 0, 0)


def test_large_batches_are_warped_in_chunks_alike() -> None:
    # 3 images of 160x160: more pixels than WARP_CHUNK, so the NumPy version warps them in chunks.
    batch = np.random.default_rng(9).integers(0, 256, (3, 160, 160)).astype(np.uint8)
    assert augment.WARP_CHUNK < 3 * 160 * 160
    expected = augment_lists.affine_images(batch.tolist(), 30.0, 0.2, seed=2, stream=5)
    assert augment.affine_images(batch, 30.0, 0.2, seed=2, stream=5).tolist() == expected


def test_empty_batches_stay_empty() -> None:
    for empty in (np.zeros((0, 5, 5), np.uint8), np.zeros((2, 3, 0, 5))):
        for result in (
            augment.affine_images(empty, 10.0, 0.1, 0, 0),
            augment.erase_images(empty, 0.5, 0, 0, fill="noise"),
            augment.crop_images(empty, 2, 0, 0),
            augment.flip_images(empty, 0, 0),
        ):
            assert result.shape == empty.shape and result.dtype == empty.dtype
    assert augment_lists.affine_images([], 10.0, 0.1, 0, 0) == augment_lists.erase_images([], 0.5, 0, 0) == []
    assert augment_lists.crop_images([], 2, 0, 0) == augment_lists.shift_images([], 2, 0, 0) == []
