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
    ``dtype`` (vectorized) or as lists of Python floats (loops), each sample of ``shape``: the
    network's input shape, ``(784,)`` for an MLP (the default) and ``(1, 28, 28)`` for a
    convolutional network. Saved with a model, as its ``input`` metadata, so evaluation feeds it
    exactly as training did."""

    backend: str = "vectorized"
    dtype: str = "float32"
    mean: float = 0.0
    std: float = 1.0
    shape: tuple[int, ...] | None = None

    def inputs(self, images: Images) -> Any:
        flat = to_inputs(images, "float64" if self.backend == "loops" else self.dtype, self.mean, self.std)
        if self.shape is not None:
            if math.prod(self.shape) != flat.shape[1]:
                raise ShapeError(
                    f"the network takes samples of shape {self.shape}, but the images have "
                    f"{flat.shape[1]} pixels ({tuple(images.shape[1:])})"
                )
            flat = flat.reshape(flat.shape[0], *self.shape)
        return flat.tolist() if self.backend == "loops" else flat

    def metadata(self, shape: tuple[int, ...]) -> dict[str, Any]:
        return {"shape": list(shape), "scale": 255.0, "mean": self.mean, "std": self.std}

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, Any], backend: str, dtype: str, shape: tuple[int, ...] | None = None
    ) -> Feeder:
        """The feeder a model's metadata describes (plain pixel / 255 when it says nothing), giving
        samples of ``shape`` (the network's input shape; None: flat)."""
        spec = metadata.get("input")
        if spec is None:
            return cls(backend, dtype, shape=shape)
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
        return cls(backend, dtype, float(mean), float(std), shape)


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
        hint = "; resize it to 28x28 first" if image.ndim == 2 else ""
        raise ShapeError(f"{source}: expected a 28x28 grey image, got shape {image.shape}{hint}")
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


# An image whose darkest and brightest pixels differ by less than this shows nothing to classify.
BLANK_CONTRAST = 24
NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """An image file made ready for a model trained on MNIST-style data: ``pixels``, 28x28 uint8 with
    bright ink on a dark background; ``notes``, what was done to get there, one sentence each."""

    pixels: Images
    notes: tuple[str, ...] = ()


def read_image(path: str | os.PathLike[str], *, invert: bool | None = None) -> LoadedImage:
    """A 28x28 grey image from a ``.npy`` file (NumPy only) or a PNG (needs Pillow), as MNIST draws digits.

    * A transparent PNG is composited onto a background that contrasts with its ink (its alpha is
      where the ink is).
    * A light background (the median of the border pixels above mid-grey: dark ink on white paper)
      is inverted, and a note says so; ``invert=True`` always inverts, ``invert=False`` never does.
    * A blank image (every pixel within BLANK_CONTRAST of the others) is refused: a model would
      still give it a confident class.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise ScratchnetError(f"{name}: no such image file")
    suffix = os.path.splitext(name)[1].lower()
    notes: list[str] = []
    if suffix == ".npy":
        image = as_image(read_npy(name), name)
    elif suffix == ".png":
        grey, alpha = read_png_with_alpha(name)
        if alpha is not None:
            grey, background = composite(grey, alpha)
            notes.append(f"transparent pixels drawn as {background} (the background the ink stands out on)")
        image = as_image(grey, name)
    else:
        raise ConfigError(f"{name}: unsupported image type {suffix or '(none)'}; give a .png or .npy file")
    low, high = int(image.min()), int(image.max())
    if high - low < BLANK_CONTRAST:
        raise ScratchnetError(
            f"{name}: the image is blank (every pixel is between {low} and {high}): there is nothing to classify"
        )
    light = has_light_background(image)
    if invert is None and light:
        notes.append(
            "light background: inverted to light ink on dark, as the training images are (--no-invert keeps it)"
        )
        invert = True
    elif invert is False and light:
        notes.append("light background kept (--no-invert), although the training images have a dark one")
    elif invert:
        notes.append("inverted (--invert)")
    return LoadedImage((255 - image).astype(np.uint8) if invert else image, tuple(notes))


def load_image(path: str | os.PathLike[str], *, invert: bool | None = None) -> Images:
    """The pixels of :func:`read_image`: a 28x28 uint8 image with bright ink on a dark background."""
    return read_image(path, invert=invert).pixels


def has_light_background(image: Images) -> bool:
    """Whether the image's border (its outermost pixels, where a centred digit leaves the paper) is
    lighter than mid-grey, as dark ink on white paper is; MNIST's background is black."""
    border = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    return bool(np.median(border) > 127)


def composite(grey: Images, alpha: Images) -> tuple[Images, str]:
    """``grey`` over a white or a black background, by ``alpha``: white under dark ink, black under
    light ink (the ink's shade is the alpha-weighted mean of ``grey``), so the ink stays visible."""
    weight = alpha.astype(np.float64) / 255.0
    ink = float(np.sum(grey * weight) / np.sum(weight)) if np.sum(weight) > 0 else 0.0
    background, name = (255.0, "white") if ink < 128 else (0.0, "black")
    mixed = grey.astype(np.float64) * weight + background * (1.0 - weight)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8), name


def read_npy(name: str) -> Any:
    """The array of a ``.npy`` file, never unpickled; one-line errors for what is not one."""
    try:
        with open(name, "rb") as handle:
            magic = handle.read(len(NPY_MAGIC))
    except OSError as error:
        raise ScratchnetError(f"{name}: cannot read the file ({error.strerror or error})") from None
    if magic != NPY_MAGIC:
        raise ScratchnetError(f"{name}: not a .npy file (it does not begin as one does); save images with numpy.save")
    try:
        return np.load(name, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):  # an object array: Python objects, which scratchnet never unpickles
            raise ScratchnetError(f"{name}: holds Python objects, not numbers; give an array of pixel values") from None
        raise ScratchnetError(f"{name}: not a readable .npy file ({error})") from None
    except (OSError, EOFError) as error:
        raise ScratchnetError(f"{name}: not a readable .npy file ({error})") from None


def read_png(path: str) -> Images:
    """The PNG's pixels as 8-bit grey (colour is converted, transparency dropped), via Pillow."""
    return read_png_with_alpha(path)[0]


def read_png_with_alpha(path: str) -> tuple[Images, Images | None]:
    """The PNG's pixels as 8-bit grey, and its alpha (None when it has no transparency), via Pillow."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ScratchnetError(f"{path}: {PNG_HINT}") from None
    try:
        with Image.open(path) as picture:
            transparent = "A" in picture.getbands() or "transparency" in picture.info
            if not transparent:
                return np.asarray(picture.convert("L"), dtype=np.uint8), None
            both = np.asarray(picture.convert("LA"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ScratchnetError(f"{path}: not a readable PNG ({error})") from None
    grey, alpha = both[..., 0], both[..., 1]
    return grey, (None if bool(np.all(alpha == 255)) else alpha)


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
