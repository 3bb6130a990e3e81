"""Images: loading one 28x28 grey image (.npy, or PNG with Pillow), drawing it in a terminal, and
turning batches of samples into network inputs (scaling, normalisation); the seeded random shifts and
mirroring, importable from here, live in :mod:`scratchnet.data.augment` with the other augmentations.

Images stay uint8 ``(n, 28, 28)`` (or ``(n, height, width)``, ``(n, channels, height, width)``)
until a batch is fed to a network; :func:`to_inputs` scales just that batch, so a dataset never
exists as floats all at once. A table's features are standardized the same way, batch by batch.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scratchnet.core.architecture import default_sample
from scratchnet.core.errors import ConfigError, DatasetError, ScratchnetError, ShapeError
from scratchnet.core.lazy import lazy_module
from scratchnet.data.arrays import npy_header
from scratchnet.data.augment import flip_images as flip_images  # their home is data/augment.py
from scratchnet.data.augment import shift_images as shift_images
from scratchnet.data.byte_arrays import ByteArray
from scratchnet.data.folders import MAX_PICTURE_PIXELS, PixelBudget
from scratchnet.loops.tensor import reshape

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Images = npt.NDArray[np.uint8]
else:
    np = lazy_module("numpy", globals(), "np")

SIDE = 28
SHADES = " ░▒▓█"  # dark (0) to bright (255), as MNIST draws ink bright on black
PNG_HINT = (
    "reading PNG files needs Pillow: pip install scratchnet[png] (or pip install pillow); .npy files work without it"
)


# ---- network inputs ----


def take_images(images: npt.NDArray[Any], indices: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
    """``images[indices]``, each sample copied as one block of bytes: NumPy's fancy indexing copies
    uint8 images pixel by pixel, and the gather of every training batch costs ~1.5x as much."""
    if not images.flags.c_contiguous or images.ndim < 2 or images.shape[0] == 0:
        return images[indices]
    size = images[0].nbytes
    rows = images.reshape(images.shape[0], -1).view(np.uint8)
    blocks = rows.view(np.dtype((np.void, size)))[:, 0]  # one item per sample
    taken: npt.NDArray[Any] = np.take(blocks, indices).view(images.dtype).reshape((len(indices), *images.shape[1:]))
    return taken


Stat = float | tuple[float, ...]


@dataclass(frozen=True)
class Feeder:
    """How samples become a backend's inputs: ``(x / scale - mean) / std`` as float arrays of
    ``dtype`` (vectorized) or as lists of Python floats (loops), each sample of ``shape``: the
    network's input shape, ``(784,)`` for an MLP (the default) and ``(1, 28, 28)`` for a
    convolutional network.

    For images (``kind`` ``"image"``) ``x`` is a pixel, ``scale`` 255 (or 1 for pixels already in
    [0, 1]) and ``mean`` and ``std`` one number each. For a table of features (``"features"``)
    ``scale`` is 1 and ``mean`` and ``std`` have one number per feature: the training split's, so
    that every feature is standardized. Saved with a model, as its ``input`` metadata, so evaluation
    feeds it exactly as training did."""

    backend: str = "vectorized"
    dtype: str = "float32"
    mean: Stat = 0.0
    std: Stat = 1.0
    shape: tuple[int, ...] | None = None
    scale: float = 255.0
    kind: str = "image"

    def inputs(self, images: npt.NDArray[Any] | ByteArray) -> Any:
        if isinstance(images, ByteArray):  # NumPy absent: the loops backend's lists, computed in plain Python
            return self.input_lists(images)
        dtype = "float64" if self.backend == "loops" else self.dtype
        flat = to_inputs(images, dtype, self.mean, self.std, self.scale)
        if self.shape is not None:
            if math.prod(self.shape) != flat.shape[1]:
                what = "values" if self.kind == "features" else "pixels"
                raise ShapeError(
                    f"the network takes samples of shape {self.shape}, but the samples have "
                    f"{flat.shape[1]} {what} ({tuple(images.shape[1:])})"
                )
            flat = flat.reshape(flat.shape[0], *self.shape)
        return flat.tolist() if self.backend == "loops" else flat

    def input_lists(self, images: ByteArray) -> list[Any]:
        """:meth:`inputs` for the loops backend without NumPy: the same float64 values, as lists."""
        if self.shape is not None and math.prod(self.shape) != images.row:
            raise ShapeError(
                f"the network takes samples of shape {self.shape}, but the samples have "
                f"{images.row} pixels ({images.shape[1:]})"
            )
        rows = to_input_lists(images, self.mean, self.std, self.scale)
        if self.shape is None or len(self.shape) == 1:
            return rows
        return [reshape(row, self.shape) for row in rows]

    def metadata(self, shape: tuple[int, ...]) -> dict[str, Any]:
        """The model's ``input`` metadata for samples of ``shape`` (as a Dataset holds them)."""
        if self.kind == "features":
            return {"kind": "features", "shape": list(shape), "mean": _listed(self.mean), "std": _listed(self.std)}
        return {"kind": "image", "shape": list(shape), "scale": self.scale, "mean": self.mean, "std": self.std}

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, Any], backend: str, dtype: str, shape: tuple[int, ...] | None = None
    ) -> Feeder:
        """The feeder a model's metadata describes (plain pixel / 255 when it says nothing), giving
        samples of ``shape`` (the network's input shape; None: flat)."""
        spec = metadata.get("input")
        if spec is None and shape is not None and default_sample(shape)[0] == "features":
            return cls(backend, dtype, 0.0, 1.0, shape, 1.0, "features")  # a row of values, as they are
        if spec is None:
            return cls(backend, dtype, shape=shape)
        if not isinstance(spec, Mapping):
            raise ConfigError("the model's 'input' metadata must be an object")
        kind = spec.get("kind", "image")
        if kind == "features":
            size = None if shape is None else math.prod(shape)
            mean, std = _numbers(spec.get("mean"), size), _numbers(spec.get("std"), size)
            if mean is None or std is None or min(std) <= 0:
                raise ConfigError(f"the model's input metadata is not understood: {dict(spec)!r:.120}")
            return cls(backend, dtype, mean, std, shape, 1.0, "features")
        mean, std, scale = spec.get("mean", 0.0), spec.get("std", 1.0), spec.get("scale", 255.0)
        numbers = (mean, std, scale)
        if (
            kind != "image"
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in numbers)
            or std <= 0
            or scale not in (255.0, 1.0)
        ):
            raise ConfigError(f"the model's input metadata is not understood: {dict(spec)!r:.120}")
        return cls(backend, dtype, float(mean), float(std), shape, float(scale))


def _listed(value: Stat) -> list[float]:
    return [float(v) for v in value] if isinstance(value, tuple) else [float(value)]


def _numbers(value: Any, size: int | None) -> tuple[float, ...] | None:
    """``value`` as a tuple of floats if it is a list of finite numbers (``size`` of them, when
    given), else None."""
    if (
        isinstance(value, list)
        and len(value) > 0
        and (size is None or len(value) == size)
        and all(not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) for v in value)
    ):
        return tuple(float(v) for v in value)
    return None


def standardization(features: npt.NDArray[Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Each feature's mean and standard deviation over the samples ``(n, features)``, in float64; a
    feature that never changes gets the deviation 1 (it is then only centred)."""
    values = features.astype(np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std[~(std > 1e-12)] = 1.0
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def to_inputs(
    images: npt.NDArray[Any], dtype: str = "float32", mean: Stat = 0.0, std: Stat = 1.0, scale: float = 255.0
) -> npt.NDArray[Any]:
    """A batch of samples ``(n, ...)`` (uint8 images ``(n, 28, 28)``, say) as network inputs
    ``(n, values)`` (``(n, 784)``): ``(x / scale - mean) / std``, ``mean`` and ``std`` one number or
    one per value."""
    flat = images.reshape(images.shape[0], -1).astype(dtype)
    if scale != 1.0:
        flat /= np.asarray(scale, dtype)
    if isinstance(mean, tuple) or mean != 0.0:
        flat -= np.asarray(mean, dtype)
    if isinstance(std, tuple) or std != 1.0:
        flat /= np.asarray(std, dtype)
    return flat


def to_input_lists(images: ByteArray, mean: Stat = 0.0, std: Stat = 1.0, scale: float = 255.0) -> list[list[float]]:
    """:func:`to_inputs` in float64 without NumPy, one list a sample: the same operations in the same order
    (divide by ``scale``, subtract ``mean``, divide by ``std``), so the same numbers to the last bit."""
    rows = []
    for sample in images.flat_rows():
        values = [float(x) for x in sample]
        if scale != 1.0:
            values = [v / scale for v in values]
        if isinstance(mean, tuple):
            values = [v - m for v, m in zip(values, mean)]
        elif mean != 0.0:
            values = [v - mean for v in values]
        if isinstance(std, tuple):
            values = [v / d for v, d in zip(values, std)]
        elif std != 1.0:
            values = [v / std for v in values]
        rows.append(values)
    return rows


# ---- one image from a file ----


def as_image(array: Any, source: str) -> Images:
    """A grey image of any size (or a 784-long MNIST row) as uint8: integers 0..255, or floats in
    [0, 1] (scaled by 255). Making it the model's 28x28 is :mod:`scratchnet.data.preprocess`'s job."""
    image = np.asarray(array)
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.shape == (SIDE * SIDE,):
        image = image.reshape(SIDE, SIDE)
    if image.ndim != 2 or 0 in image.shape:
        raise ShapeError(f"{source}: expected a grey image (rows x columns), got shape {image.shape}")
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
    """A grey image of any size from a ``.npy`` file (NumPy only) or a PNG (needs Pillow), bright on dark
    as MNIST's images are (:func:`scratchnet.data.preprocess.prepare` then makes it the model's 28x28).

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
        with open(name, "rb") as handle:
            # the header first: its shape bounds what is allocated (MAX_PICTURE_PIXELS values)
            dtype, shape, fortran, _ = npy_header(name, name, handle)
            count = math.prod(shape)
            if count > MAX_PICTURE_PIXELS:
                raise ScratchnetError(
                    f"{name}: its header declares shape {shape!s:.60}, {count:,} values, more than the "
                    f"{MAX_PICTURE_PIXELS:,} a picture may have"
                )
            data = bytearray(count * dtype.itemsize)  # writable, as numpy.load's arrays are
            got = handle.readinto(data)
    except DatasetError as error:
        if "object array" in str(error):  # Python objects, which scratchnet never unpickles
            raise ScratchnetError(f"{name}: holds Python objects, not numbers; give an array of pixel values") from None
        raise
    except OSError as error:
        raise ScratchnetError(f"{name}: not a readable .npy file ({error.strerror or error})") from None
    if got != len(data):
        raise ScratchnetError(
            f"{name}: not a readable .npy file (its data is {got:,} bytes, its header declares "
            f"{count * dtype.itemsize:,})"
        )
    if dtype.itemsize == 0:
        return np.empty(shape, dtype)
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


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
        with warnings.catch_warnings():  # Pillow's warning of a huge picture: refused below, in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)
        with opened as picture:
            PixelBudget().spend(path, int(picture.width), int(picture.height))  # before it is decoded
            transparent = "A" in picture.getbands() or "transparency" in picture.info
            if not transparent:
                return np.asarray(picture.convert("L"), dtype=np.uint8), None
            both = np.asarray(picture.convert("LA"), dtype=np.uint8)
    except Image.DecompressionBombError:
        raise ScratchnetError(f"{path}: more than the {MAX_PICTURE_PIXELS:,} pixels a picture may have") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        raise ScratchnetError(f"{path}: not a readable PNG ({error})") from None
    grey, alpha = both[..., 0], both[..., 1]
    return grey, (None if bool(np.all(alpha == 255)) else alpha)


# ---- drawing ----


def draw(image: npt.NDArray[Any], scale: float = 255.0) -> str:
    """The image as text: one line per row, two characters per pixel (terminal cells are about
    twice as tall as wide), shaded with ' ░▒▓█' from 0 to ``scale`` (255), inside a frame; an image
    of several channels ``(C, H, W)`` is drawn as their mean."""
    grey = image.astype(np.float64)
    if grey.ndim == 3:
        grey = grey.mean(axis=0)
    pixels = np.clip(np.rint(grey * (255.0 / scale)), 0, 255).astype(np.int64)
    levels = (pixels * len(SHADES)) // 256
    width = 2 * image.shape[1]
    lines = ["┌" + "─" * width + "┐"]
    for row in levels:
        lines.append("│" + "".join(SHADES[int(v)] * 2 for v in row) + "│")
    lines.append("└" + "─" * width + "┘")
    return "\n".join(lines)


def __getattr__(name: str) -> Any:
    """``Images``, the type of a batch of images, for the modules that import it (they use NumPy)."""
    if name == "Images":
        import numpy.typing

        return numpy.typing.NDArray[np.uint8]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
