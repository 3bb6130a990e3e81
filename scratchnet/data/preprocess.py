"""MNIST-faithful preprocessing: a digit drawn anywhere in an image, at any size, made to look as
MNIST's digits do before a model trained on them sees it.

MNIST's digits were size-normalised to fit a 20x20 box, keeping their aspect ratio, with
anti-aliasing, and then placed in a 28x28 image with their centre of mass at its centre. A model
that scores 99% on the test set learned digits of that size at that place; the same digit drawn
small in a corner, or filling a whole canvas, is one it has never seen. :func:`preprocess` does
what MNIST did, in NumPy alone (so that the result is the same with or without Pillow):

1. the background level, the median of the border pixels, is subtracted (0 for a drawing on black,
   which is left as it is);
2. the image is cropped to the ink's bounding box (the pixels above 0);
3. the crop is scaled so that its longer side is 20 pixels, by area averaging: each output pixel is
   the mean of the source area it covers, which anti-aliases a shrinking and leaves an unchanged
   size exactly unchanged;
4. the scaled digit is placed in a 28x28 image with its centre of mass on pixel (14, 14), where
   MNIST's are, moved by whole pixels (halfway between two places, to the upper or left one) and
   clipped so that no ink leaves the image.

On MNIST's own test images it is the identity (for 9,997 of the 10,000: their ink is already 20
pixels on its longer side and centred so), so a test image fed through it is classified as before.
:func:`network_inputs` then applies a model's recorded input scaling through its
:class:`~scratchnet.data.images.Feeder`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.core.errors import ScratchnetError, ShapeError
from scratchnet.data.images import SIDE, Feeder, Images

BOX = 20  # MNIST's digits fit a 20x20 box ...
CENTRE = 14.0  # ... and their centre of mass is at row 14, column 14 (0-based) of the 28x28 image


@dataclass(frozen=True, eq=False)
class Preprocessed:
    """A digit as MNIST draws them: ``pixels``, 28x28 uint8, bright ink on black; and what was done."""

    pixels: Images
    background: int  # the level subtracted from every pixel (the median of the input's border)
    box: tuple[int, int, int, int]  # the ink's bounding box in the input: top, left, height, width
    size: tuple[int, int]  # the ink's height and width after scaling (the longer one is 20)
    offset: tuple[int, int]  # where the scaled ink's top-left corner went in the 28x28 image
    unchanged: bool  # whether the input was a 28x28 image that this leaves exactly as it was
    style: str = "digits"  # "digits": MNIST's normalisation; "fit": scaled whole to fit 28x28 (PICTURE_STYLES)

    def note(self) -> str:
        """One sentence saying what was done ("" when nothing was)."""
        if self.unchanged:
            return ""
        if self.style == "fit":
            _, _, height, width = self.box
            return (
                f"scaled from {height}x{width} to {self.size[0]}x{self.size[1]} to fit the model's 28x28 "
                "(its aspect ratio kept, centred on its background)"
            )
        _, _, height, width = self.box
        background = f"its background level {self.background} subtracted, " if self.background else ""
        return (
            f"made to look like MNIST's digits: {background}its {height}x{width}-pixel ink scaled to "
            f"{self.size[0]}x{self.size[1]} and centred by its centre of mass"
        )


# How a picture is made to look like a dataset's images before its model sees it, by the model's
# dataset: MNIST's digits were normalised (cropped, scaled into 20x20, centred by mass); Fashion-MNIST's
# items were trimmed and scaled to fill the frame, so a picture of one is scaled whole to fit 28x28.
PICTURE_STYLES: dict[str, str] = {"mnist": "digits", "fashion-mnist": "fit"}


def picture_style(dataset: str | None) -> str:
    """How pictures are prepared for a model of ``dataset``: "digits" (also for a model that does not
    name its dataset: the 28x28 grey models scratchnet knows are digit models) or "fit"."""
    return PICTURE_STYLES.get(dataset or "", "digits")


def prepare(image: npt.NDArray[Any], style: str, *, normalise: bool = True) -> Preprocessed:
    """``image`` (2-D uint8, any size, bright on dark) as a 28x28 input of a model whose pictures are
    prepared in ``style``: a digit normalised as MNIST's (:func:`preprocess`) unless ``normalise`` is
    False; anything else scaled whole to fit (:func:`fit`), which leaves a 28x28 image as it is."""
    if style == "digits" and normalise:
        return preprocess(image)
    return fit(image)


def fit(image: npt.NDArray[Any]) -> Preprocessed:
    """``image`` (2-D uint8, any size) scaled by area averaging so that its longer side is 28 pixels,
    and centred in a 28x28 image filled with its background level (the median of its border). A
    28x28 image is left exactly as it is. Fashion-MNIST's pictures were made this way: trimmed to the
    item, which then fills the frame."""
    _check_grey(image, "fit")
    height, width = image.shape
    if (height, width) == (SIDE, SIDE):
        return Preprocessed(image, 0, (0, 0, SIDE, SIDE), (SIDE, SIDE), (0, 0), True, "fit")
    scale = SIDE / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    scaled = area_weights(height, size[0]) @ image.astype(np.float64) @ area_weights(width, size[1]).T
    background = border_median(image)
    pixels = np.full((SIDE, SIDE), background, np.uint8)
    row, col = (SIDE - size[0]) // 2, (SIDE - size[1]) // 2
    pixels[row : row + size[0], col : col + size[1]] = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Preprocessed(pixels, background, (0, 0, height, width), size, (row, col), False, "fit")


def _check_grey(image: Any, function: str) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 2 or image.dtype != np.uint8 or 0 in image.shape:
        kind = (
            f"a {image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        )
        raise ShapeError(f"{function} takes a 2-D uint8 grey image, got {kind}")


def preprocess(image: npt.NDArray[Any]) -> Preprocessed:
    """The digit in ``image`` (2-D uint8, any size, bright ink on a dark background) cropped, scaled
    to fit 20x20 and centred by its centre of mass in 28x28, as MNIST's digits are (see the module).

    ShapeError when ``image`` is not a 2-D uint8 array; ScratchnetError when it holds no ink.
    """
    _check_grey(image, "preprocess")
    background = border_median(image)
    ink = image.astype(np.int64) - background
    np.clip(ink, 0, 255, out=ink)
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if len(rows) == 0:
        raise ScratchnetError("the image is blank: there is no ink to centre and classify")
    top, left = int(rows[0]), int(cols[0])
    height, width = int(rows[-1]) - top + 1, int(cols[-1]) - left + 1
    crop = ink[top : top + height, left : left + width].astype(np.float64)

    # Scale: the longer side becomes BOX pixels, the shorter one keeps the aspect ratio (at least 1).
    scale = BOX / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    scaled = area_weights(height, size[0]) @ crop @ area_weights(width, size[1]).T
    digit = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    mass = digit.astype(np.float64)
    total = float(mass.sum())
    if total == 0.0:
        raise ScratchnetError("the image's ink is too faint to show at MNIST's size")

    # Place: the centre of mass on (14, 14), by whole pixels, clipped so that the digit stays inside.
    # Halfway between two places, the one up or to the left (a digit centred on 13.5 stays put).
    centre_row = float(mass.sum(axis=1) @ np.arange(size[0])) / total
    centre_col = float(mass.sum(axis=0) @ np.arange(size[1])) / total
    row = min(max(math.ceil(CENTRE - centre_row - 0.5), 0), SIDE - size[0])
    col = min(max(math.ceil(CENTRE - centre_col - 0.5), 0), SIDE - size[1])
    pixels = np.zeros((SIDE, SIDE), np.uint8)
    pixels[row : row + size[0], col : col + size[1]] = digit
    unchanged = image.shape == (SIDE, SIDE) and bool(np.array_equal(pixels, image))
    return Preprocessed(pixels, background, (top, left, height, width), size, (row, col), unchanged)


def border_median(image: Images) -> int:
    """The median of the image's outermost pixels, rounded down: the level of its background."""
    if min(image.shape) <= 2:
        return int(np.median(image))
    border = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    return int(np.median(border))


def area_weights(source: int, target: int) -> npt.NDArray[np.float64]:
    """The ``(target, source)`` matrix of area averaging along one axis: output pixel i is the mean of
    the source over ``[i * source / target, (i + 1) * source / target)``, each source pixel k
    weighted by how much of ``[k, k + 1)`` lies in it. Every row sums to 1; for ``source == target``
    it is the identity, exactly."""
    edges = np.arange(target + 1) * source / target
    low, high = edges[:-1, None], edges[1:, None]
    k = np.arange(source)[None, :]
    overlap = np.clip(np.minimum(high, k + 1) - np.maximum(low, k), 0.0, None)
    weights: npt.NDArray[np.float64] = overlap * (target / source)
    return weights


def network_inputs(pixels: Images, feeder: Feeder) -> Any:
    """One 28x28 image as a batch of one network input, scaled as the model's ``feeder`` records
    (``(pixel / 255 - mean) / std``, in the network's input shape)."""
    return feeder.inputs(pixels[None])
