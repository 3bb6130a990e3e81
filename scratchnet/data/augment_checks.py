"""What both augmentation modules share (:mod:`scratchnet.data.augment` for NumPy arrays and
:mod:`scratchnet.data.augment_lists` for lists): the labels of their seeds and the checks of their
settings, each a one-line ConfigError. Standard library only."""

from __future__ import annotations

from scratchnet.core.errors import ConfigError

# The labels of the augmentations' seeds: image k of a batch draws from derive_seed(seed, LABEL) (eq. 22.1).
SHIFT, FLIP, AFFINE, ERASE, CROP, ERASE_NOISE = 77, 78, 79, 80, 81, 82


def check_padding(padding: int) -> None:
    if padding < 0:
        raise ConfigError(f"the crop padding must be 0 or more pixels, got {padding}")


def check_affine(degrees: float, scale: float) -> None:
    """Rotations up to 180 degrees either way, scale factors 1 - scale to 1 + scale with 0 <= scale < 1."""
    if not 0.0 <= degrees <= 180.0:
        raise ConfigError(f"the rotation must be between 0 and 180 degrees, got {degrees}")
    if not 0.0 <= scale < 1.0:
        raise ConfigError(f"the scaling must be in [0, 1) (factors 1 - s to 1 + s), got {scale}")


def check_erase(probability: float, area: tuple[float, float], ratio: float, tries: int, fill: float | str) -> None:
    """A probability, area fractions 0 < low <= high <= 1, r1 in (0, 1], at least one try, a number or 'noise'."""
    if not 0.0 <= probability <= 1.0:
        raise ConfigError(f"the erasing probability must be in [0, 1], got {probability}")
    if not 0.0 < area[0] <= area[1] <= 1.0:
        raise ConfigError(f"the erased area must be fractions 0 < low <= high <= 1 of the image, got {area}")
    if not 0.0 < ratio <= 1.0:
        raise ConfigError(f"the erasing aspect ratio r1 must be in (0, 1] (ratios r1 to 1/r1), got {ratio}")
    if tries < 1:
        raise ConfigError(f"the erasing needs at least 1 try, got {tries}")
    if isinstance(fill, str) and fill != "noise":
        raise ConfigError(f"the erasing fill is a number or 'noise', got {fill!r}")


def check_integer_fill(fill: float | str) -> None:
    """An integer (uint8) image is erased with a whole number 0..255 or with noise."""
    if fill != "noise" and not (float(fill) == int(float(fill)) and 0.0 <= float(fill) <= 255.0):
        raise ConfigError(f"a uint8 image is erased with a whole number 0..255 (or 'noise'), got {fill}")
