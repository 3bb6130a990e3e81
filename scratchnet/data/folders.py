"""Image folders: ``DIR/CLASS/*.png`` (one sub-folder per class), and single pictures, read with Pillow.

Every picture becomes uint8 ``(channels, height, width)``: grey (``channels=1``; 16-bit grey is
scaled to 8 bits) or RGB (``channels=3``; transparency is dropped). By default the first picture
decides both its channels (grey if it is grey) and the size of all: one of another size is refused,
naming it, unless a ``size`` is asked for, when every picture is resized to it (bilinear, as Pillow
does it, which averages when it shrinks). The array of a folder is allocated once, from the number
of files, and filled picture by picture.

Pillow is the optional ``png`` extra (``pip install scratchnet[png]``). A file that Pillow cannot
read (not an image, truncated, damaged) is a :class:`~scratchnet.core.errors.DatasetError` naming it.

A picture's size is read from its header (Pillow does that without decoding it) and checked before
it is decoded: at most MAX_PICTURE_PIXELS each, and at most MAX_TOTAL_PIXELS for all the pictures
read at once; the array of a folder's pictures is checked against MAX_IMAGES_BYTES before it is
allocated. A name that is not a regular file (a FIFO, a device) is refused unopened.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import DatasetError
from scratchnet.core.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy", globals(), "np")

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_IMAGES_BYTES",
    "MAX_PICTURE_PIXELS",
    "MAX_TOTAL_PIXELS",
    "Folder",
    "PixelBudget",
    "class_folders",
    "image_files",
    "read_folder",
    "read_picture",
    "read_pictures",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
PILLOW_HINT = "reading images needs Pillow: pip install scratchnet[png] (or pip install pillow)"
GREY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N")
MAX_SIDE = 4096  # a larger --image-size would be gigabytes for a few thousand pictures
#: The most pixels one picture may declare (8192x8192), checked before it is decoded.
MAX_PICTURE_PIXELS = 1 << 26
#: The most pixels the pictures read at once (a folder, or predict's pictures) may declare in all,
#: checked before each is decoded: a quarter of a million 12-megapixel photos take hours to decode.
MAX_TOTAL_PIXELS = 1 << 35
#: The largest array of pictures (pictures x channels x height x width bytes), checked before it is allocated.
MAX_IMAGES_BYTES = 2 << 30


class PixelBudget:
    """The pixels pictures declare, counted before each is decoded: a DatasetError for a picture of
    more than MAX_PICTURE_PIXELS, or once all of them declare more than ``total``."""

    def __init__(self, total: int = MAX_TOTAL_PIXELS) -> None:
        self.total = total
        self.spent = 0

    def spend(self, name: str, width: int, height: int) -> None:
        pixels = width * height
        if pixels > MAX_PICTURE_PIXELS:
            raise DatasetError(
                f"{name}: {height}x{width} pixels (height x width), more than the {MAX_PICTURE_PIXELS:,} a picture "
                "may have"
            )
        self.spent += pixels
        if self.spent > self.total:
            raise DatasetError(
                f"{name}: the pictures read so far hold more than {self.total:,} pixels in all, the most that are "
                "read at once"
            )


@dataclass(frozen=True, eq=False)
class Folder:
    """A folder of class folders read: ``images`` uint8 ``(n, channels, height, width)``, ``labels``
    the class folder of each image, ``files`` their paths, and how many were ``resized``."""

    path: str
    images: npt.NDArray[np.uint8]
    labels: list[str]
    files: list[str]
    channels: int
    size: tuple[int, int]
    resized: int


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise DatasetError(PILLOW_HINT) from None
    return Image


def image_files(folder: Path) -> list[Path]:
    """The pictures under ``folder`` (in sub-folders too), by their suffix, sorted by path; hidden
    files and folders (``.name``) are left out."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                found.append(Path(root) / name)
    return sorted(found)


def class_folders(path: str | os.PathLike[str]) -> list[tuple[str, list[Path]]]:
    """``(class name, its pictures)`` for each sub-folder of ``path``, by name; a DatasetError when
    there are none, or when one holds no pictures."""
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder")
    try:
        subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as error:
        raise DatasetError(f"{folder}: cannot list the folder ({error.strerror or error})") from None
    if not subs:
        loose = " (the pictures in it are not sorted into class folders)" if image_files(folder) else ""
        raise DatasetError(
            f"{folder}: no class folders{loose}; put each class's pictures in a folder of its own, "
            f"{folder}{os.sep}CLASS{os.sep}*.png"
        )
    classes = []
    for sub in subs:
        files = image_files(sub)
        if not files:
            raise DatasetError(f"{sub}: the class folder holds no pictures ({', '.join(IMAGE_SUFFIXES[:4])}, ...)")
        classes.append((sub.name, files))
    return classes


def channels_of(picture: Any) -> int:
    """1 for a grey picture, 3 for any other."""
    return 1 if picture.mode in GREY_MODES else 3


def read_picture(
    path: str | os.PathLike[str],
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    budget: PixelBudget | None = None,
) -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
    """The picture at ``path`` as uint8 ``(channels, height, width)`` (channels by default: its own,
    1 or 3), resized to ``size`` (height, width) when that is given and differs; with the picture's
    own size. Its declared size is spent from ``budget`` (a fresh one by default) before it is
    decoded."""
    image = _pillow()
    name = os.fspath(path)
    budget = PixelBudget() if budget is None else budget
    try:
        if not stat.S_ISREG(os.stat(name).st_mode):
            raise DatasetError(f"{name}: not a regular file")
        with warnings.catch_warnings():
            # Pillow warns of (and from twice that refuses) pictures far over MAX_PICTURE_PIXELS: the
            # budget below refuses them in one line
            warnings.simplefilter("ignore", image.DecompressionBombWarning)
            picture = image.open(name)
        with picture:
            budget.spend(name, int(picture.width), int(picture.height))
            picture.load()
            own = (int(picture.height), int(picture.width))
            wanted = channels_of(picture) if channels is None else channels
            converted = _converted(picture, wanted, image)
            if size is not None and size != own:
                converted = converted.resize((size[1], size[0]), image.Resampling.BILINEAR)
            pixels = np.asarray(converted, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"{name}: no such image file") from None
    except image.DecompressionBombError:
        raise DatasetError(f"{name}: more than the {MAX_PICTURE_PIXELS:,} pixels a picture may have") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise DatasetError(f"{name}: not a readable image ({error})") from None
    if pixels.ndim == 2:
        pixels = pixels[None]
    else:
        pixels = np.ascontiguousarray(pixels.transpose(2, 0, 1))
    return pixels, own


def _converted(picture: Any, channels: int, image: Any) -> Any:
    """The picture as 8-bit grey ("L") or RGB; 16-bit and 32-bit grey scaled down to 0..255."""
    if channels == 3:
        return picture.convert("RGB")
    if picture.mode.startswith("I") or picture.mode == "F":
        values = np.asarray(picture, dtype=np.float64)
        top = float(values.max()) if values.size else 0.0
        if top > 255.0:
            values = values * (255.0 / (65535.0 if top <= 65535.0 else top))
        return image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))  # 2-D uint8: mode L
    return picture.convert("L")


def read_pictures(
    files: Sequence[Path], channels: int | None, size: tuple[int, int] | None, *, resize: bool
) -> tuple[npt.NDArray[np.uint8], int, tuple[int, int], int]:
    """The pictures ``files`` as one uint8 ``(n, channels, height, width)`` array, with their channels,
    size and how many were resized. Channels and size default to the first picture's; a picture of
    another size is refused unless ``resize``. The pictures' declared sizes are checked before each
    is decoded (:class:`PixelBudget`), the array's size before it is allocated (MAX_IMAGES_BYTES)."""
    budget = PixelBudget()
    first, own = read_picture(files[0], channels, size if resize else None, budget)
    channels = int(first.shape[0])
    shape = (int(first.shape[1]), int(first.shape[2]))
    needed = len(files) * channels * shape[0] * shape[1]
    if needed > MAX_IMAGES_BYTES:
        raise DatasetError(
            f"{files[0]}: {len(files):,} pictures of {channels}x{shape[0]}x{shape[1]} are {needed:,} bytes, more than "
            f"the {MAX_IMAGES_BYTES:,} read at once; give --image-size H,W to make them smaller"
        )
    images = np.empty((len(files), channels, *shape), np.uint8)
    images[0] = first
    resized = int(own != shape)
    for k, path in enumerate(files[1:], start=1):
        pixels, own = read_picture(path, channels, shape if resize else None, budget)
        if pixels.shape[1:] != shape:
            raise DatasetError(
                f"{path}: {own[0]}x{own[1]} pixels (height x width), but {files[0]} is {shape[0]}x{shape[1]}; "
                "give --image-size H,W to resize every picture to one size"
            )
        images[k] = pixels
        resized += int(own != shape)
    return images, channels, shape, resized


def read_folder(
    path: str | os.PathLike[str], *, channels: int | None = None, size: tuple[int, int] | None = None
) -> Folder:
    """The pictures of the class folders of ``path`` (:func:`class_folders`), by class then by name."""
    if channels not in (None, 1, 3):
        raise DatasetError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if size is not None and not all(1 <= side <= MAX_SIDE for side in size):
        raise DatasetError(f"an image size must be 1..{MAX_SIDE} pixels each way, got {size[0]}x{size[1]}")
    classes = class_folders(path)
    files = [file for _, found in classes for file in found]
    labels = [name for name, found in classes for _ in found]
    images, channels, shape, resized = read_pictures(files, channels, size, resize=size is not None)
    return Folder(os.fspath(path), images, labels, [os.fspath(f) for f in files], channels, shape, resized)
