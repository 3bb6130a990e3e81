"""The 2-D toy datasets of the Train mode (TensorFlow Playground's kind): spirals, circles, xor and
Gaussian blobs, generated in the server from a seed, with noise and a held-out test part.

Every set lies in about [-1, 1] x [-1, 1]; ``noise`` is the standard deviation of the Gaussian
noise added to each coordinate, in those units. The points of a set are a pure function of
``(name, points, noise, classes, test_fraction, seed)``; the test part is the last
``round(test_fraction * points)`` of a seeded shuffle. Sizes are bounded by :data:`MAX_POINTS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from scratchnet.core.errors import ConfigError
from scratchnet.core.rng import derive_seed
from scratchnet.data import Dataset

Points = tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]
MIN_POINTS = 20
MAX_POINTS = 2000
MAX_CLASSES = 6
TOY_LABEL = 2801  # derive_seed(seed, TOY_LABEL): the generator of a toy set's points
TURNS = 1.25  # how far each arm of the spiral winds


def _spiral(n: int, classes: int, rng: np.random.Generator) -> Points:
    """``classes`` arms: arm k at angle ``2 pi k / classes + 2 pi TURNS t``, radius ``t`` in [0.05, 1]."""
    labels = np.arange(n) % classes
    t = 0.05 + 0.95 * rng.random(n)
    angle = 2 * math.pi * labels / classes + 2 * math.pi * TURNS * t
    return np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1), labels


def _circles(n: int, classes: int, rng: np.random.Generator) -> Points:
    """Class 0 in the disc of radius 0.5, class 1 in the ring from 0.7 to 1."""
    labels = np.arange(n) % 2
    radius = np.where(labels == 0, 0.5 * np.sqrt(rng.random(n)), 0.7 + 0.3 * rng.random(n))
    angle = 2 * math.pi * rng.random(n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1), labels


def _xor(n: int, classes: int, rng: np.random.Generator) -> Points:
    """Uniform in the square, kept 0.05 off the axes; class 1 where x and y have the same sign."""
    xy = rng.uniform(0.05, 1.0, (n, 2)) * rng.choice([-1.0, 1.0], (n, 2))
    return xy, (xy[:, 0] * xy[:, 1] > 0).astype(np.intp)


def _blobs(n: int, classes: int, rng: np.random.Generator) -> Points:
    """``classes`` Gaussian blobs (std 0.15) centred on the circle of radius 0.6."""
    labels = np.arange(n) % classes
    angle = 2 * math.pi * labels / classes
    centres = 0.6 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return centres + 0.15 * rng.standard_normal((n, 2)), labels


# name -> (generator, default classes, whether the number of classes can be chosen)
TOY_SETS: dict[str, tuple[Callable[[int, int, np.random.Generator], Points], int, bool]] = {
    "spiral": (_spiral, 2, True),
    "circles": (_circles, 2, False),
    "xor": (_xor, 2, False),
    "blobs": (_blobs, 3, True),
}


def toy_dataset(
    name: str,
    points: int = 400,
    noise: float = 0.1,
    classes: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """The toy set ``name`` as a table of two features (x, y), float32, with its test part held out."""
    if name not in TOY_SETS:
        raise ConfigError(f"unknown toy set {name!r}; choose one of {', '.join(TOY_SETS)}")
    make, default, choosable = TOY_SETS[name]
    count = default if classes is None else classes
    if count != default and not choosable:
        raise ConfigError(f"the {name} set has {default} classes, not {count}")
    if not 2 <= count <= MAX_CLASSES:
        raise ConfigError(f"a toy set has 2 to {MAX_CLASSES} classes, not {count}")
    if not MIN_POINTS <= points <= MAX_POINTS:
        raise ConfigError(f"a toy set has {MIN_POINTS} to {MAX_POINTS} points, not {points}")
    if not (math.isfinite(noise) and 0.0 <= noise <= 1.0):
        raise ConfigError(f"the noise must be in [0, 1], not {noise}")
    if not (math.isfinite(test_fraction) and 0.0 <= test_fraction <= 0.9):
        raise ConfigError(f"the test fraction must be in [0, 0.9], not {test_fraction}")
    rng = np.random.default_rng(derive_seed(seed, TOY_LABEL))
    xy, labels = make(points, count, rng)
    xy = xy + noise * rng.standard_normal(xy.shape)
    order = rng.permutation(points)
    xy, labels = xy[order].astype(np.float32), labels[order].astype(np.uint8)
    cut = points - round(test_fraction * points)
    if cut < 2:
        raise ConfigError(f"the test fraction {test_fraction} leaves fewer than 2 training points")
    names = tuple(f"class {k}" for k in range(count))
    return Dataset(name, xy[:cut], labels[:cut], xy[cut:], labels[cut:], names, scale=1.0)
