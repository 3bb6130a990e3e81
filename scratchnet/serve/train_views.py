"""What the Train page draws of a run at one moment: the decision regions of 2-D data, the first
layer's weights as small images, each layer's output for one sample, all computed from a
:class:`~scratchnet.serve.train_session.Frame`'s copied parameters by a vectorized float64 twin of
the network (the same architecture and parameter layout), so drawing never touches the network
that trains, and the loops backend's runs are drawn as fast as the vectorized ones.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from scratchnet.builders import build_network
from scratchnet.core.interface import Network
from scratchnet.data.images import Feeder
from scratchnet.serve.api import rounded
from scratchnet.teaching.explain import layer_names

GRID = 64  # the decision-region grid is GRID x GRID
MARGIN = 0.1  # the grid reaches this part of the points' span beyond them
MAX_FILTERS = 32
MAX_LAYER_VALUES = 4096
DIGITS = 4


class Viewer:
    """A vectorized float64 twin of a run's network, with the run's input scaling, that draws frames."""

    def __init__(self, architecture: dict[str, Any], feeder: Feeder, train_points: npt.NDArray[Any]) -> None:
        self.network: Network[Any, Any] = build_network(architecture, backend="vectorized", dtype="float64", seed=0)
        self.feeder = replace(feeder, backend="vectorized", dtype="float64")
        self.names = layer_names(self.network)
        self.two_d = train_points.ndim == 2 and train_points.shape[1] == 2
        self.bounds: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0)
        if self.two_d and len(train_points):
            low, high = train_points.min(axis=0).astype(float), train_points.max(axis=0).astype(float)
            pad = MARGIN * np.maximum(high - low, 1e-6)
            self.bounds = (low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1])
        x0, x1, y0, y1 = self.bounds
        xs = x0 + (np.arange(GRID) + 0.5) * (x1 - x0) / GRID
        ys = y1 - (np.arange(GRID) + 0.5) * (y1 - y0) / GRID  # row 0 is the top: the highest y
        grid_x, grid_y = np.meshgrid(xs, ys)
        self.grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)

    def load(self, params: dict[str, Any]) -> None:
        self.network.set_params(params)

    def outputs(self, samples: npt.NDArray[Any]) -> list[npt.NDArray[np.float64]]:
        """Each layer's outputs for ``samples`` (at inference)."""
        values: Any = self.feeder.inputs(samples)
        outputs = []
        with np.errstate(all="ignore"):
            for layer in self.network.layers:
                values = layer.forward(values, False)
                outputs.append(np.asarray(values, dtype=np.float64))
        return outputs

    def regions(self) -> dict[str, Any] | None:
        """The class and its probability at each point of the grid (2-D data only)."""
        if not self.two_d:
            return None
        probabilities = self.outputs(self.grid)[-1]
        x0, x1, y0, y1 = self.bounds
        return {
            "size": GRID,
            "x": [x0, x1],
            "y": [y0, y1],
            "predicted": np.argmax(probabilities, axis=1).tolist(),
            "confidence": finite(np.round(np.max(probabilities, axis=1), 3)),
        }

    def filters(self, params: dict[str, Any], image_shape: tuple[int, ...]) -> dict[str, Any] | None:
        """The first weights (of the first layer that has any) as small images: a Dense layer's units
        over a grey image's pixels, or a Conv2D layer's filters (first input channel); None for 2-D
        data or another layer."""
        first = next((name for name in params if name.endswith(".weight")), None)
        if self.two_d or first is None:
            return None
        weight = np.asarray(params[first], dtype=np.float64)
        if weight.ndim == 2 and len(image_shape) >= 2 and weight.shape[1] == math.prod(image_shape[-2:]):
            height, width = image_shape[-2:]
            images = weight[:MAX_FILTERS].reshape(-1, height, width)
        elif weight.ndim == 4:
            images = weight[:MAX_FILTERS, 0]
        else:
            return None
        images = np.where(np.isfinite(images), images, 0.0)  # a diverged run's NaN: JSON has none
        return {
            "layer": int(first.split(".", 1)[0]),
            "parameter": first,
            "count": int(images.shape[0]),
            "height": int(images.shape[1]),
            "width": int(images.shape[2]),
            "low": float(images.min()),
            "high": float(images.max()),
            "values": rounded(images.ravel()),
        }

    def activations(self, sample: npt.NDArray[Any]) -> list[dict[str, Any]]:
        """Each layer's output for one sample (flat, at most MAX_LAYER_VALUES values each)."""
        layers = []
        for index, output in enumerate(self.outputs(sample[None])):
            values = output[0].ravel()[:MAX_LAYER_VALUES]
            values = np.where(np.isfinite(values), values, 0.0)
            layers.append(
                {
                    "index": index,
                    "name": self.names[index],
                    "shape": list(output.shape[1:]),
                    "low": float(values.min()) if values.size else 0.0,
                    "high": float(values.max()) if values.size else 0.0,
                    "values": rounded(values),
                }
            )
        return layers


def finite(values: npt.NDArray[np.float64]) -> list[float | None]:
    """The values as a list, None for any that is not finite (JSON has no NaN)."""
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]


def points_json(samples: npt.NDArray[Any], labels: npt.NDArray[Any]) -> dict[str, list[Any]]:
    return {
        "x": np.round(samples[:, 0].astype(np.float64), DIGITS).tolist(),
        "y": np.round(samples[:, 1].astype(np.float64), DIGITS).tolist(),
        "label": labels.astype(int).tolist(),
    }
