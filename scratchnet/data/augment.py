"""Seeded data augmentation for batches of images, vectorized over the batch (spec/math.md, section 16).

Each function takes a batch ``(n, height, width)`` or ``(n, channels, height, width)`` of uint8 or
float pixels, a ``seed`` and a ``stream`` (the training step), and returns a new batch of the same
shape and type; every channel of an image is moved alike. Every random number is a uniform of
scratchnet's counter-based generator (eq. 10.2), drawn by image: image ``k`` takes the uniforms
``m k .. m k + m - 1`` of its augmentation's stream (eq. 22.1), so a batch gets the same draws on every
run, after a resume, and in :mod:`scratchnet.data.augment_lists` (the standard-library twin, which
gives the same batches: exactly, and for :func:`affine_images` to rounding at most).

Anything computed with a transcendental function (an angle's cosine, a ratio's exponential) is
computed per image with the ``math`` module, never NumPy's vectorized versions, which need not
round the same way: the pixels then follow from the same float operations in the same order.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import ShapeError
from scratchnet.core.lazy import lazy_module
from scratchnet.core.rng import derive_seed
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

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from scratchnet.vectorized import rng as vector_rng
else:
    np = lazy_module("numpy", globals(), "np")
    vector_rng = lazy_module("scratchnet.vectorized.rng", globals(), "vector_rng")

# Pixels warped at once: a batch's temporaries of up to this many float64 (512 kB) are reused from the heap,
# where larger ones are mapped afresh on each call (a 128-image MNIST batch: ~4 ms in chunks, ~18 ms at once).
WARP_CHUNK = 65536


def shift_images(images: npt.NDArray[Any], max_shift: int, seed: int, stream: int) -> npt.NDArray[Any]:
    """Each image moved by its own random (dy, dx), each in -max_shift..max_shift, filling with 0
    (eq. 22.2); images ``(n, height, width)`` or ``(n, channels, height, width)`` (every channel moved alike).

    The shifts are uniforms of stream ``stream`` of ``seed`` (scratchnet.core.rng), so a batch gets the same
    shifts on every run, in either backend, and after a resume.
    """
    if max_shift <= 0:
        return images
    n, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    draws = vector_rng.uniforms(derive_seed(seed, SHIFT), stream, 2 * n)
    offsets = np.floor(draws * (2 * max_shift + 1)).astype(np.intp) - max_shift
    dy, dx = offsets[:n], offsets[n:]
    planes = images.reshape(n, -1, height, width)  # a grey image is one plane
    padded = np.pad(planes, ((0, 0), (0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    rows = (max_shift - dy)[:, None] + np.arange(height)[None, :]  # output row r reads padded row r + s - dy
    cols = (max_shift - dx)[:, None] + np.arange(width)[None, :]
    return _windows(padded, rows, cols).reshape(images.shape)


def flip_images(images: npt.NDArray[Any], seed: int, stream: int) -> npt.NDArray[Any]:
    """Each image mirrored left to right with probability 1/2 (eq. 22.3; uniforms of stream ``stream``
    of ``seed``); images ``(n, height, width)`` or ``(n, channels, height, width)``.

    For datasets whose classes look the same mirrored (Fashion-MNIST's clothes), not for digits.
    """
    draws = vector_rng.uniforms(derive_seed(seed, FLIP), stream, images.shape[0])
    flipped = images.copy()
    chosen = draws < 0.5
    flipped[chosen] = images[chosen, ..., ::-1]
    return flipped


def crop_images(images: npt.NDArray[Any], padding: int, seed: int, stream: int) -> npt.NDArray[Any]:
    """Each image padded by ``padding`` zeros on every side, then cropped back to its size at a random
    offset (top, left), each in 0..2*padding (eq. 22.4)."""
    planes = _planes(images)
    check_padding(padding)
    if padding == 0:
        return images
    n, _, height, width = planes.shape
    draws = vector_rng.uniforms(derive_seed(seed, CROP), stream, 2 * n).reshape(n, 2)
    offsets = np.floor(draws * (2 * padding + 1)).astype(np.intp)
    padded = np.pad(planes, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    rows = offsets[:, 0, None] + np.arange(height)[None, :]  # output row r is padded row top + r
    cols = offsets[:, 1, None] + np.arange(width)[None, :]
    return _windows(padded, rows, cols).reshape(images.shape)


def affine_parameters(n: int, degrees: float, scale: float, seed: int, stream: int) -> list[tuple[float, float]]:
    """The (angle in degrees, scale factor) of each of ``n`` images (eq. 22.5): angle ``degrees * (2u - 1)``,
    scale ``1 + scale * (2u' - 1)``, from the image's two uniforms."""
    draws = vector_rng.uniforms(derive_seed(seed, AFFINE), stream, 2 * n).tolist()
    return [(degrees * (2.0 * u - 1.0), 1.0 + scale * (2.0 * v - 1.0)) for u, v in zip(draws[0::2], draws[1::2])]


def affine_images(
    images: npt.NDArray[Any], degrees: float, scale: float, seed: int, stream: int, *, fill: float = 0.0
) -> npt.NDArray[Any]:
    """Each image rotated about its centre by a random angle in [-degrees, degrees] (positive:
    counter-clockwise as drawn) and scaled by a random factor in [1 - scale, 1 + scale], with bilinear
    interpolation and ``fill`` outside the image (eq. 22.5-22.8)."""
    check_affine(degrees, scale)
    _planes(images)
    if degrees == 0.0 and scale == 0.0:
        return images
    parameters = affine_parameters(images.shape[0], degrees, scale, seed, stream)
    return warp_images(images, [a for a, _ in parameters], [s for _, s in parameters], fill=fill)


def warp_images(
    images: npt.NDArray[Any], angles: list[float], scales: list[float], *, fill: float = 0.0
) -> npt.NDArray[Any]:
    """Image ``k`` rotated by ``angles[k]`` degrees (counter-clockwise as drawn) and scaled by ``scales[k]``
    about its centre: the inverse map (eq. 22.6), bilinear interpolation (22.7), ``fill`` outside; uint8
    images are rounded half to even and clipped to 0..255 (22.8)."""
    planes = _planes(images)
    n, channels, height, width = planes.shape
    if len(angles) != n or len(scales) != n:
        raise ShapeError(f"warp_images needs one angle and one scale per image ({n}), got {len(angles)}, {len(scales)}")
    if n == 0 or images.size == 0:
        return images.copy()
    step = max(1, WARP_CHUNK // (channels * height * width))
    if n > step:  # a few images at a time: each image's pixels depend on it alone
        parts = [
            warp_images(images[k : k + step], angles[k : k + step], scales[k : k + step], fill=fill)
            for k in range(0, n, step)
        ]
        return np.concatenate(parts)
    radians = [a * (math.pi / 180.0) for a in angles]
    cos = np.array([math.cos(r) for r in radians])[:, None, None]
    sin = np.array([math.sin(r) for r in radians])[:, None, None]
    factor = np.array(scales, dtype=np.float64)[:, None, None]
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    dy = (np.arange(height, dtype=np.float64) - cy)[None, :, None]
    dx = (np.arange(width, dtype=np.float64) - cx)[None, None, :]
    x = cx + (cos * dx - sin * dy) / factor  # (n, height, width): where each output pixel reads (22.6)
    y = cy + (sin * dx + cos * dy) / factor
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0).reshape(n, -1, 1), (y - y0).reshape(n, -1, 1)
    # Each image framed by one pixel of ``fill``, as rows of channels: every corner outside the image
    # is clipped onto that frame, so it reads ``fill`` (22.7) with no mask.
    framed = np.full((n, height + 2, width + 2, channels), fill, dtype=np.float64)
    framed[:, 1:-1, 1:-1, :] = planes.transpose(0, 2, 3, 1)
    pixels = framed.reshape(-1, channels)
    rows, cols = _framed_index(y0, height), _framed_index(x0, width)  # corner (0, 0) in the frame
    rows *= width + 2
    rows += (np.arange(n) * ((height + 2) * (width + 2)))[:, None, None]
    row1 = rows + ((y0 >= -1) & (y0 < height)) * (width + 2)  # one row down, unless both are on the frame
    col1 = cols + ((x0 >= -1) & (x0 < width))
    v00, v01, v10, v11 = (pixels[(r + c).reshape(n, -1)] for r in (rows, row1) for c in (cols, col1))
    gy, gx = 1.0 - fy, 1.0 - fx
    warped = gy * gx * v00 + gy * fx * v01 + fy * gx * v10 + fy * fx * v11  # (22.7), in augment_lists's order
    return _as_type(warped.transpose(0, 2, 1), images.dtype).reshape(images.shape)


def _framed_index(coordinate: npt.NDArray[np.float64], size: int) -> npt.NDArray[np.intp]:
    """Row (or column) ``coordinate`` of an image of ``size`` rows as an index into the image framed by one
    pixel: -1 and less (and ``size`` and more) are the frame."""
    index = coordinate.astype(np.intp)
    np.clip(index, -1, size, out=index)
    index += 1
    return index


def erase_parameters(
    planes_shape: tuple[int, ...],
    probability: float,
    seed: int,
    stream: int,
    area: tuple[float, float],
    ratio: float,
    tries: int,
) -> npt.NDArray[np.intp]:
    """(top, left, height, width) of the rectangle erased in each image, ``(n, 4)``; height 0 where nothing
    is (eq. 22.9-22.10)."""
    n, _, height, width = planes_shape
    per = 1 + 4 * tries
    draws = vector_rng.uniforms(derive_seed(seed, ERASE), stream, n * per).reshape(n, per)
    low, high = area
    target = (low + (high - low) * draws[:, 1::4]) * float(height * width)  # (n, tries)
    log_low = math.log(ratio)
    log_ratio = (log_low + (-2.0 * log_low) * draws[:, 2::4]).ravel().tolist()
    aspect = np.array([math.exp(v) for v in log_ratio]).reshape(n, tries)  # math.exp in both backends
    h = np.rint(np.sqrt(target * aspect))
    w = np.rint(np.sqrt(target / aspect))
    fits = (h >= 1) & (h <= height) & (w >= 1) & (w <= width)
    first = np.argmax(fits, axis=1)  # the first try that fits
    rows = np.arange(n)
    h_k, w_k = h[rows, first], w[rows, first]
    top = np.floor(draws[:, 3::4][rows, first] * (height - h_k + 1.0))
    left = np.floor(draws[:, 4::4][rows, first] * (width - w_k + 1.0))
    chosen = (draws[:, 0] < probability) & fits[rows, first]
    boxes: npt.NDArray[np.intp] = (np.stack([top, left, h_k, w_k], axis=1) * chosen[:, None]).astype(np.intp)
    return boxes  # (0, 0, 0, 0): not erased


def erase_images(
    images: npt.NDArray[Any],
    probability: float,
    seed: int,
    stream: int,
    *,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: float = 0.3,
    tries: int = 10,
    fill: float | str = 0.0,
) -> npt.NDArray[Any]:
    """Random erasing (Zhong et al., 2017): with ``probability``, one rectangle of each image, of an area
    in ``area`` (fractions of the image) and aspect ratio (height / width) in [ratio, 1 / ratio], the
    first of ``tries`` random ones that fits, set to ``fill`` in every channel (eq. 22.9-22.11): a number,
    or ``"noise"``, uniform random pixels (0..255 for uint8 images, [0, 1) for float ones)."""
    check_erase(probability, area, ratio, tries, fill)
    planes = _planes(images)
    if images.dtype == np.uint8:
        check_integer_fill(fill)
    if probability == 0.0:
        return images
    height, width = planes.shape[2:]
    boxes = erase_parameters(planes.shape, probability, seed, stream, area, ratio, tries)
    top, left, h, w = (boxes[:, i, None, None] for i in range(4))
    r = np.arange(height)[None, :, None]
    s = np.arange(width)[None, None, :]
    inside = ((r >= top) & (r < top + h) & (s >= left) & (s < left + w))[:, None, :, :]  # (n, 1, H, W)
    erased = planes.copy()
    if fill == "noise":
        noise = vector_rng.uniforms(derive_seed(seed, ERASE_NOISE), stream, planes.size).reshape(planes.shape)
        values = np.floor(noise * 256.0) if images.dtype == np.uint8 else noise  # (22.11)
        np.copyto(erased, values.astype(images.dtype), where=np.broadcast_to(inside, planes.shape))
    else:
        np.copyto(erased, np.array(float(fill)).astype(images.dtype), where=np.broadcast_to(inside, planes.shape))
    return erased.reshape(images.shape)


def _planes(images: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The images as ``(n, channels, height, width)`` (a grey image is one plane); ShapeError otherwise."""
    if images.ndim not in (3, 4):
        raise ShapeError(
            f"augmentations take images (n, height, width) or (n, channels, height, width), got shape {images.shape}"
        )
    if images.dtype != np.uint8 and images.dtype.kind != "f":
        raise ShapeError(f"augmentations take uint8 or float pixels, got {images.dtype}")
    return images[:, None] if images.ndim == 3 else images


def _windows(padded: npt.NDArray[Any], rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
    """``padded[k, c, rows[k][r], cols[k][s]]`` for every image k, channel c and output pixel (r, s)."""
    n, channels = padded.shape[:2]
    window: npt.NDArray[Any] = padded[
        np.arange(n)[:, None, None, None],
        np.arange(channels)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    return window


def _as_type(values: npt.NDArray[np.float64], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """Float pixels as ``dtype``: uint8 rounded half to even and clipped to 0..255 (eq. 22.8)."""
    if dtype == np.uint8:
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return values.astype(dtype)
