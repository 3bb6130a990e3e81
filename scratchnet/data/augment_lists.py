"""The standard-library twin of :mod:`scratchnet.data.augment`: the same augmentations of batches held as
nested lists, ``images[k][r][s]`` or ``images[k][c][r][s]``, with the same random draws (spec/math.md,
section 16). It imports no NumPy, so it runs where only the loops backend does.

Pixels are ints (0..255, as ``uint8_array.tolist()`` gives them) or floats; a batch whose first pixel
is an int is an integer batch, and the affine transform rounds its results as the NumPy version
rounds uint8 images. For the same seed and stream both modules give the same batch: exactly for
shifts, mirroring, crops and erasing, and for the affine transform (whose floats follow the same
operations in the same order, with ``math``'s cosine and sine in both) to within 1e-12.
"""

from __future__ import annotations

import math
from typing import Any

from scratchnet.core.errors import ShapeError
from scratchnet.core.rng import derive_seed, uniforms
from scratchnet.data.augment_checks import (
    AFFINE,
    CROP,
    ERASE,
    ERASE_NOISE,
    FLIP,
    SHIFT,
    check_affine,
    check_erase,
    check_integer_fill,
    check_padding,
)

Plane = list[list[Any]]
Batch = list[Any]


def shift_images(images: Batch, max_shift: int, seed: int, stream: int) -> Batch:
    """Each image moved by its own random (dy, dx) in -max_shift..max_shift, filling with 0 (eq. 22.2)."""
    if max_shift <= 0:
        return images
    n = len(images)
    draws = uniforms(derive_seed(seed, SHIFT), stream, 2 * n)
    out = []
    for k, image in enumerate(images):
        dy = math.floor(draws[k] * (2 * max_shift + 1)) - max_shift
        dx = math.floor(draws[n + k] * (2 * max_shift + 1)) - max_shift
        out.append(_each_plane(image, lambda plane, dy=dy, dx=dx: _moved(plane, -dy, -dx)))
    return out


def flip_images(images: Batch, seed: int, stream: int) -> Batch:
    """Each image mirrored left to right with probability 1/2 (eq. 22.3)."""
    draws = uniforms(derive_seed(seed, FLIP), stream, len(images))
    return [
        _each_plane(image, lambda plane: [row[::-1] for row in plane]) if u < 0.5 else _copy(image)
        for image, u in zip(images, draws)
    ]


def crop_images(images: Batch, padding: int, seed: int, stream: int) -> Batch:
    """Each image padded by ``padding`` zeros, then cropped back to its size at a random (top, left) in
    0..2*padding (eq. 22.4)."""
    _check(images)
    check_padding(padding)
    if padding == 0:
        return images
    draws = uniforms(derive_seed(seed, CROP), stream, 2 * len(images))
    out = []
    for k, image in enumerate(images):
        top = math.floor(draws[2 * k] * (2 * padding + 1))
        left = math.floor(draws[2 * k + 1] * (2 * padding + 1))
        # output (r, s) is padded (top + r, left + s), which is image (top + r - padding, left + s - padding)
        out.append(_each_plane(image, lambda plane, t=top, s=left: _moved(plane, t - padding, s - padding)))
    return out


def affine_parameters(n: int, degrees: float, scale: float, seed: int, stream: int) -> list[tuple[float, float]]:
    """The (angle in degrees, scale factor) of each of ``n`` images (eq. 22.5)."""
    draws = uniforms(derive_seed(seed, AFFINE), stream, 2 * n)
    return [(degrees * (2.0 * u - 1.0), 1.0 + scale * (2.0 * v - 1.0)) for u, v in zip(draws[0::2], draws[1::2])]


def affine_images(images: Batch, degrees: float, scale: float, seed: int, stream: int, *, fill: float = 0.0) -> Batch:
    """Each image rotated by a random angle in [-degrees, degrees] (counter-clockwise as drawn) and
    scaled by a random factor in [1 - scale, 1 + scale] about its centre, bilinear, ``fill`` outside
    (eq. 22.5-22.8)."""
    check_affine(degrees, scale)
    _check(images)
    if degrees == 0.0 and scale == 0.0:
        return images
    parameters = affine_parameters(len(images), degrees, scale, seed, stream)
    return warp_images(images, [a for a, _ in parameters], [s for _, s in parameters], fill=fill)


def warp_images(images: Batch, angles: list[float], scales: list[float], *, fill: float = 0.0) -> Batch:
    """Image ``k`` rotated by ``angles[k]`` degrees and scaled by ``scales[k]`` about its centre (eq. 22.6-22.8)."""
    integer = _check(images)
    if len(angles) != len(images) or len(scales) != len(images):
        raise ShapeError(
            f"warp_images needs one angle and one scale per image ({len(images)}), got {len(angles)}, {len(scales)}"
        )
    out = []
    for image, angle, factor in zip(images, angles, scales):
        radians = angle * (math.pi / 180.0)
        cos, sin = math.cos(radians), math.sin(radians)
        out.append(_each_plane(image, lambda plane, c=cos, s=sin, f=factor: _warp(plane, c, s, f, fill, integer)))
    return out


def _warp(plane: Plane, cos: float, sin: float, factor: float, fill: float, integer: bool) -> Plane:
    """One plane through the inverse map (22.6) and bilinear interpolation (22.7), rounded if ``integer`` (22.8)."""
    height, width = len(plane), len(plane[0])
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    floor = math.floor

    def pixel(i: int, j: int) -> float:
        return float(plane[i][j]) if 0 <= i < height and 0 <= j < width else fill

    out: Plane = []
    for r in range(height):
        dy = r - cy
        row: list[Any] = []
        for s in range(width):
            dx = s - cx
            x = cx + (cos * dx - sin * dy) / factor  # where output pixel (r, s) reads (22.6)
            y = cy + (sin * dx + cos * dy) / factor
            x0, y0 = floor(x), floor(y)
            fx, fy = x - x0, y - y0
            value = (
                (1.0 - fy) * (1.0 - fx) * pixel(y0, x0)
                + (1.0 - fy) * fx * pixel(y0, x0 + 1)
                + fy * (1.0 - fx) * pixel(y0 + 1, x0)
                + fy * fx * pixel(y0 + 1, x0 + 1)
            )  # (22.7), in augment.warp_images's order
            row.append(min(max(round(value), 0), 255) if integer else value)
        out.append(row)
    return out


def erase_parameters(
    shape: tuple[int, int],
    n: int,
    probability: float,
    seed: int,
    stream: int,
    area: tuple[float, float],
    ratio: float,
    tries: int,
) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of the rectangle erased in each of ``n`` images of ``shape`` (height,
    width); height 0 where nothing is (eq. 22.9-22.10)."""
    height, width = shape
    per = 1 + 4 * tries
    draws = uniforms(derive_seed(seed, ERASE), stream, n * per)
    low, high = area
    log_low = math.log(ratio)
    boxes = []
    for k in range(n):
        u = draws[k * per : (k + 1) * per]
        box = (0, 0, 0, 0)
        for i in range(tries):
            target = (low + (high - low) * u[1 + 4 * i]) * float(height * width)
            aspect = math.exp(log_low + (-2.0 * log_low) * u[2 + 4 * i])
            h, w = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 1 <= h <= height and 1 <= w <= width:
                top = math.floor(u[3 + 4 * i] * (height - h + 1.0))
                left = math.floor(u[4 + 4 * i] * (width - w + 1.0))
                box = (top, left, h, w) if u[0] < probability else (0, 0, 0, 0)
                break
        boxes.append(box)
    return boxes


def erase_images(
    images: Batch,
    probability: float,
    seed: int,
    stream: int,
    *,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: float = 0.3,
    tries: int = 10,
    fill: float | str = 0.0,
) -> Batch:
    """Random erasing (Zhong et al., 2017), as :func:`scratchnet.data.augment.erase_images` (eq. 22.9-22.11)."""
    check_erase(probability, area, ratio, tries, fill)
    integer = _check(images)
    if integer:
        check_integer_fill(fill)
    if probability == 0.0 or not images:
        return images
    grey = not isinstance(images[0][0][0], list)
    height, width = (len(images[0]), len(images[0][0])) if grey else (len(images[0][0]), len(images[0][0][0]))
    boxes = erase_parameters((height, width), len(images), probability, seed, stream, area, ratio, tries)
    noise_seed = derive_seed(seed, ERASE_NOISE)
    out = []
    for k, (image, (top, left, h, w)) in enumerate(zip(images, boxes)):
        planes = [_copy(image)] if grey else _copy(image)
        for c, plane in enumerate(planes):
            for r in range(top, top + h):
                if fill == "noise":  # (22.11): the uniform of pixel (k, c, r, s) in C order
                    start = ((k * len(planes) + c) * height + r) * width + left
                    values = uniforms(noise_seed, stream, w, start)
                    plane[r][left : left + w] = [math.floor(v * 256.0) for v in values] if integer else values
                else:
                    plane[r][left : left + w] = [int(float(fill)) if integer else float(fill)] * w
        out.append(planes[0] if grey else planes)
    return out


def _check(images: Batch) -> bool:
    """Whether the batch holds int pixels; ShapeError unless it is (n, H, W) or (n, C, H, W) lists."""
    try:
        first = images[0][0][0] if images else 0
        if isinstance(first, list):
            first = first[0]
    except (TypeError, IndexError):
        raise ShapeError("augmentations take images (n, height, width) or (n, channels, height, width)") from None
    if isinstance(first, (list, bool)) or not isinstance(first, (int, float)):
        raise ShapeError("augmentations take images (n, height, width) or (n, channels, height, width) of numbers")
    return isinstance(first, int)


def _each_plane(image: list[Any], transform: Any) -> list[Any]:
    """``transform`` applied to the image's one plane (grey, rows of numbers) or to each of its channels."""
    if image and image[0] and isinstance(image[0][0], list):
        return [transform(plane) for plane in image]
    result: list[Any] = transform(image)
    return result


def _moved(plane: Plane, dy: int, dx: int) -> Plane:
    """``out[r][s] = plane[r + dy][s + dx]``, 0 where that is outside the plane."""
    height, width = len(plane), len(plane[0])
    zero = 0 if isinstance(plane[0][0], int) else 0.0
    blank = [zero] * width
    out = []
    for r in range(height):
        source = plane[r + dy] if 0 <= r + dy < height else blank
        out.append([source[s + dx] if 0 <= s + dx < width else zero for s in range(width)])
    return out


def _copy(image: list[Any]) -> list[Any]:
    """A copy of an image's nested lists (the pixels are numbers, shared)."""
    return [_copy(item) if isinstance(item, list) else item for item in image] if image else []
