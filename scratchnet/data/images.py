"""Images: loading one 28x28 grey image (.npy, or PNG with Pillow), drawing it in a terminal, and
turning batches of uint8 images into network inputs (scaling, normalisation, seeded random shifts).

Images stay uint8 ``(n, 28, 28)`` until a batch is fed to a network; :func:`to_inputs` scales just
that batch, so a dataset never exists as floats all at once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.core.errors import ConfigError, ScratchnetError, ShapeError
from scratchnet.core.rng import derive_seed
from scratchnet.vectorized import rng as vector_rng

Images = npt.NDArray[np.uint8]
SIDE = 28
SHADES = " ░▒▓█"  # dark (0) to bright (255), as MNIST draws ink bright on black
PNG_HINT = (
    "reading PNG files needs Pillow: pip install scratchnet[png] (or pip install pillow); .npy files work without it"
)


# ---- network inputs ----


def take_images(images: Images, indices: npt.NDArray[np.intp]) -> Images:
    """``images[indices]``, each image copied as one block of bytes: NumPy's fancy indexing copies
    uint8 images pixel by pixel, and the gather of every training batch costs ~1.5x as much."""
    if not images.flags.c_contiguous or images.ndim < 2 or images.shape[0] == 0:
        return images[indices]
    size = images[0].size
    blocks = images.reshape(images.shape[0], size).view(np.dtype((np.void, size)))[:, 0]  # one item per image
    taken: Images = np.take(blocks, indices).view(np.uint8).reshape((len(indices), *images.shape[1:]))
    return taken


@dataclass(frozen=True)
class Feeder:
    """How uint8 images become a backend's inputs: ``(pixel / 255 - mean) / std`` as float arrays of
    ``dtype`` (vectorized) or as lists of Python floats (loops). Saved with a model, as its
    ``input`` metadata, so evaluation feeds it exactly as training did."""

    backend: str = "vectorized"
    dtype: str = "float32"
    mean: float = 0.0
    std: float = 1.0

    def inputs(self, images: Images) -> Any:
        if self.backend == "loops":
            return to_inputs(images, "float64", self.mean, self.std).tolist()
        return to_inputs(images, self.dtype, self.mean, self.std)

    def metadata(self, shape: tuple[int, ...]) -> dict[str, Any]:
        return {"shape": list(shape), "scale": 255.0, "mean": self.mean, "std": self.std}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], backend: str, dtype: str) -> Feeder:
        """The feeder a model's metadata describes (plain pixel / 255 when it says nothing)."""
        spec = metadata.get("input")
        if spec is None:
            return cls(backend, dtype)
        if not isinstance(spec, Mapping):
            raise ConfigError("the model's 'input' metadata must be an object")
        mean, std, scale = spec.get("mean", 0.0), spec.get("std", 1.0), spec.get("scale", 255.0)
        numbers = (mean, std, scale)
        if (
            any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in numbers)
            or std <= 0
            or scale != 255.0
        ):
            raise ConfigError(f"the model's input metadata is not understood: {dict(spec)!r:.120}")
        return cls(backend, dtype, float(mean), float(std))


def to_inputs(images: Images, dtype: str = "float32", mean: float = 0.0, std: float = 1.0) -> npt.NDArray[Any]:
    """A batch of uint8 images ``(n, 28, 28)`` as network inputs ``(n, 784)``: ``(pixel/255 - mean) / std``."""
    flat = images.reshape(images.shape[0], -1).astype(dtype)
    flat /= np.asarray(255.0, dtype)
    if mean != 0.0:
        flat -= np.asarray(mean, dtype)
    if std != 1.0:
        flat /= np.asarray(std, dtype)
    return flat


def shift_images(images: Images, max_shift: int, seed: int, stream: int) -> Images:
    """Each image moved by its own random (dy, dx), each in -max_shift..max_shift, filling with 0.

    The shifts are uniforms of stream ``stream`` of ``seed`` (scratchnet.core.rng), so a batch gets the same
    shifts on every run, in either backend, and after a resume.
    """
    if max_shift <= 0:
        return images
    n, height, width = images.shape
    draws = vector_rng.uniforms(derive_seed(seed, 77), stream, 2 * n)
    offsets = np.floor(draws * (2 * max_shift + 1)).astype(np.intp) - max_shift
    dy, dx = offsets[:n], offsets[n:]
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    rows = (max_shift - dy)[:, None] + np.arange(height)[None, :]  # output row r reads padded row r + s - dy
    cols = (max_shift - dx)[:, None] + np.arange(width)[None, :]
    shifted: Images = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return shifted


def flip_images(images: Images, seed: int, stream: int) -> Images:
    """Each image mirrored left to right with probability 1/2 (uniforms of stream ``stream`` of ``seed``).

    For datasets whose classes look the same mirrored (Fashion-MNIST's clothes), not for digits.
    """
    draws = vector_rng.uniforms(derive_seed(seed, 78), stream, images.shape[0])
    flipped = images.copy()
    chosen = draws < 0.5
    flipped[chosen] = images[chosen, :, ::-1]
    return flipped


# ---- one image from a file ----


def as_image(array: Any, source: str) -> Images:
    """A 28x28 (or 784-long) grey image as uint8: integers 0..255, or floats in [0, 1] (scaled by 255)."""
    image = np.asarray(array)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.shape == (SIDE * SIDE,):
        image = image.reshape(SIDE, SIDE)
    if image.shape != (SIDE, SIDE):
        raise ShapeError(f"{source}: expected a 28x28 grey image, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image
    if image.dtype.kind in "iu":
        if image.min() < 0 or image.max() > 255:
            raise ShapeError(f"{source}: integer pixels must be in 0..255")
        return image.astype(np.uint8)
    if image.dtype.kind == "f":
        if not np.isfinite(image).all():
            raise ShapeError(f"{source}: pixels must be finite numbers")
        if image.min() < 0.0 or image.max() > 255.0:
            raise ShapeError(f"{source}: float pixels must be in [0, 1] (or 0..255)")
        scale = 255.0 if image.max() <= 1.0 else 1.0
        return np.clip(np.rint(image * scale), 0, 255).astype(np.uint8)
    raise ShapeError(f"{source}: pixels of type {image.dtype} are not numbers")


def load_image(path: str | os.PathLike[str], *, invert: bool = False) -> Images:
    """A 28x28 grey image from a ``.npy`` file (NumPy only) or a PNG (needs Pillow), as uint8.

    ``invert`` turns dark ink on white paper into MNIST's bright ink on black.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise ScratchnetError(f"{name}: no such image file")
    suffix = os.path.splitext(name)[1].lower()
    if suffix == ".npy":
        try:
            array = np.load(name, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ScratchnetError(f"{name}: not a readable .npy file ({error})") from None
        image = as_image(array, name)
    elif suffix == ".png":
        image = as_image(read_png(name), name)
    else:
        raise ConfigError(f"{name}: unsupported image type {suffix or '(none)'}; give a .png or .npy file")
    return (255 - image).astype(np.uint8) if invert else image


def read_png(path: str) -> Images:
    """The PNG's pixels as 8-bit grey (colour is converted), via Pillow."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ScratchnetError(f"{path}: {PNG_HINT}") from None
    try:
        with Image.open(path) as picture:
            grey: Images = np.asarray(picture.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ScratchnetError(f"{path}: not a readable PNG ({error})") from None
    return grey


# ---- drawing ----


def draw(image: Images) -> str:
    """The image as text: one line per row, two characters per pixel (terminal cells are about
    twice as tall as wide), shaded with ' ░▒▓█' from 0 to 255, inside a frame."""
    levels = (image.astype(np.int64) * len(SHADES)) // 256
    width = 2 * image.shape[1]
    lines = ["┌" + "─" * width + "┐"]
    for row in levels:
        lines.append("│" + "".join(SHADES[int(v)] * 2 for v in row) + "│")
    lines.append("└" + "─" * width + "┘")
    return "\n".join(lines)
