"""The spiral demo's data and training: why a network needs a non-linearity.

Three interleaved spiral arms of 2-D points, one class per arm, are made in code. A model with no
hidden layer (``Dense(2, 3) -> Softmax``) can only cut the plane with straight lines, so it cannot
separate them; one hidden ReLU layer (``Dense(2, H) -> ReLU -> Dense(H, 3) -> Softmax``) can.
Everything here uses the loops backend and the standard library only, so it runs without NumPy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from scratchnet.builders import build_network
from scratchnet.core import rng
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ConfigError
from scratchnet.loops import Adam, Network


@dataclass(frozen=True)
class Spiral:
    """Points ``(x, y)`` in about [-1, 1]^2 and their class labels (the arm each point lies on)."""

    points: list[list[float]]
    labels: list[int]
    classes: int


@dataclass
class TrainedModel:
    """A network trained on the spiral, its training accuracy and its mean loss per epoch."""

    name: str
    network: Network
    accuracy: float
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class DemoResult:
    data: Spiral
    linear: TrainedModel
    relu: TrainedModel


def make_spiral(points_per_class: int = 100, classes: int = 3, noise: float = 0.2, seed: int = 0) -> Spiral:
    """The classic spiral data set (as in Stanford's CS231n notes).

    Class ``c``'s k-th point has radius ``r = k / (n - 1)`` and angle
    ``t = 4 c + 4 r + noise * N(0, 1)`` (radians), at ``(r sin t, r cos t)``. The normal numbers come
    from ``scratchnet.core.rng`` (eq. 10.3), so a seed gives the same points everywhere.
    """
    if points_per_class < 2 or classes < 2:
        raise ConfigError(f"a spiral needs at least 2 classes of 2 points, got {classes} x {points_per_class}")
    if not noise >= 0.0:
        raise ConfigError(f"noise must be >= 0, got {noise}")
    normals = rng.normals(seed, 0, points_per_class * classes)
    points: list[list[float]] = []
    labels: list[int] = []
    for c in range(classes):
        for k in range(points_per_class):
            r = k / (points_per_class - 1)
            t = 4.0 * c + 4.0 * r + noise * normals[c * points_per_class + k]
            points.append([r * math.sin(t), r * math.cos(t)])
            labels.append(c)
    return Spiral(points, labels, classes)


def linear_model(classes: int = 3, seed: int = 0) -> Network:
    """No hidden layer: ``Dense(2, classes) -> Softmax``, a linear classifier (softmax regression)."""
    net: Network = build_network(mlp([2, classes]), backend="loops", seed=seed)
    return net


def relu_model(hidden: int = 32, classes: int = 3, seed: int = 0) -> Network:
    """One hidden layer: ``Dense(2, hidden) -> ReLU -> Dense(hidden, classes) -> Softmax``."""
    net: Network = build_network(mlp([2, hidden, classes], activation="relu"), backend="loops", seed=seed)
    return net


def accuracy(network: Network, points: Sequence[Sequence[float]], labels: Sequence[int]) -> float:
    """The fraction of points whose predicted class is their label."""
    predicted = network.predict(points)
    return sum(1 for p, y in zip(predicted, labels) if p == y) / len(labels)


def train(
    name: str,
    network: Network,
    data: Spiral,
    *,
    epochs: int = 60,
    batch_size: int = 32,
    lr: float = 0.02,
    seed: int = 0,
) -> TrainedModel:
    """Mini-batch Adam (eq. 8.11-8.13) on cross-entropy; batches in a new order each epoch (eq. 10.4)."""
    optimizer = Adam(lr=lr)
    n = len(data.points)
    losses = []
    started = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(seed, epoch, n)
        total = 0.0
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            outputs = network.forward([data.points[i] for i in batch], training=True)
            total += network.loss(outputs, [data.labels[i] for i in batch]) * len(batch)
            network.backward()
            optimizer.step(network)
        losses.append(total / n)
    seconds = time.perf_counter() - started
    return TrainedModel(name, network, accuracy(network, data.points, data.labels), losses, seconds)


def run_demo(*, points_per_class: int = 100, hidden: int = 32, epochs: int = 60, seed: int = 0) -> DemoResult:
    """Make the spiral, then train the linear model and the ReLU network on it with the same settings."""
    data = make_spiral(points_per_class, seed=seed)
    linear = train("no hidden layer (linear)", linear_model(data.classes, seed), data, epochs=epochs, seed=seed)
    relu = train(
        f"one hidden layer of {hidden} ReLUs", relu_model(hidden, data.classes, seed), data, epochs=epochs, seed=seed
    )
    return DemoResult(data, linear, relu)


def decision_grid(
    network: Network, rows: int, cols: int, extent: tuple[float, float, float, float] = (-1.1, 1.1, -1.1, 1.1)
) -> list[list[int]]:
    """The predicted class at the centre of each cell of a ``rows`` x ``cols`` grid over
    ``extent = (x_min, x_max, y_min, y_max)``; row 0 is the top (largest y)."""
    x_min, x_max, y_min, y_max = extent
    centres = [
        [x_min + (col + 0.5) * (x_max - x_min) / cols, y_max - (row + 0.5) * (y_max - y_min) / rows]
        for row in range(rows)
        for col in range(cols)
    ]
    predicted = network.predict(centres)
    return [predicted[row * cols : (row + 1) * cols] for row in range(rows)]
