"""The body of ``POST /api/train/start``, checked field by field (docs/serve.md, "Train mode API").

Every number is checked for its type and range here, before anything is built: a request never
names a path (the data come from the toy sets, the data folder or an upload kept in memory), and its
sizes are bounded (:data:`LIMITS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scratchnet.serve.api import RequestError, check_fields, whole
from scratchnet.serve.toy_data import MAX_CLASSES, MAX_POINTS, MIN_POINTS, TOY_SETS

IMAGE_SETS = ("mnist", "fashion-mnist")
BACKENDS = ("vectorized", "loops")
MAX_SEED = 2**31 - 1
IMAGE_LIMIT = (100, 10000)  # training images of an MNIST or Fashion-MNIST subset
IMAGE_TEST_LIMIT = (100, 2000)  # ... and test images
BATCH_SIZE = (1, 1000)
EPOCHS = (1, 100000)
SNAPSHOT_EVERY = (1, 10000)
STEP_STEPS = (1, 1000)  # steps of one "step" control
MAX_PARAMETERS = {"vectorized": 2_000_000, "loops": 5_000}
UPLOAD_BYTES = 1 << 20
UPLOADS_KEPT = 4
SNAPSHOTS_KEPT = 200
SNAPSHOT_BYTES = 256 << 20
CURVE_ENTRIES = 1000
EVENT_STREAMS = 8
IDLE_SECONDS = 60.0
LIMITS: dict[str, Any] = {  # what GET /api/train/info tells the page
    "toy_points": [MIN_POINTS, MAX_POINTS],
    "image_limit": list(IMAGE_LIMIT),
    "image_test_limit": list(IMAGE_TEST_LIMIT),
    "batch_size": list(BATCH_SIZE),
    "epochs": list(EPOCHS),
    "snapshot_every": list(SNAPSHOT_EVERY),
    "step_steps": list(STEP_STEPS),
    "parameters": MAX_PARAMETERS,
    "upload_bytes": UPLOAD_BYTES,
    "uploads_kept": UPLOADS_KEPT,
    "snapshots_kept": SNAPSHOTS_KEPT,
    "snapshot_bytes": SNAPSHOT_BYTES,
    "curve_entries": CURVE_ENTRIES,
    "event_streams": EVENT_STREAMS,
    "idle_seconds": IDLE_SECONDS,
}
DEFAULTS: dict[str, Any] = {
    "network": {"layers": "dense(16), relu, dense(16), relu"},
    "optimizer": {"type": "adam", "lr": 0.01},
    "batch_size": 32,
    "epochs": 1000,
    "backend": "vectorized",
    "seed": 0,
    "snapshot_every": 10,
    "paused": False,
}
MAX_LAYERS_TEXT = 2000  # characters of the network's notation


def number(value: Any, name: str, low: float, high: float) -> float:
    """``value`` when it is a JSON number in ``[low, high]``; RequestError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"'{name}' must be a number, got {type(value).__name__}")
    if isinstance(value, int) and abs(value) > 10**300:
        raise RequestError(f"'{name}' must be in {low:g}..{high:g}")
    if not (math.isfinite(value) and low <= value <= high):
        raise RequestError(f"'{name}' must be in {low:g}..{high:g}, got {value:g}")
    return float(value)


def text(value: Any, name: str, choices: tuple[str, ...] | None = None, most: int = 100) -> str:
    if not isinstance(value, str) or not value or len(value) > most:
        raise RequestError(f"'{name}' must be a text of 1 to {most} characters")
    if choices is not None and value not in choices:
        raise RequestError(f"'{name}' must be one of {', '.join(choices)}, got {value[:40]!r}")
    return value


@dataclass(frozen=True)
class DataRequest:
    """Where a run's data come from: a toy set, an image set's subset, or an upload."""

    kind: str
    name: str = ""
    points: int = 400
    noise: float = 0.1
    classes: int | None = None
    test_fraction: float = 0.2
    seed: int = 0
    limit: int = 1000
    test_limit: int = 500
    upload: str = ""

    def describe(self) -> dict[str, Any]:
        keys: tuple[str, ...]
        if self.kind == "toy":
            keys = ("kind", "name", "points", "noise", "classes", "test_fraction", "seed")
        elif self.kind == "csv":
            keys = ("kind", "upload", "test_fraction")
        else:
            keys = ("kind", "limit", "test_limit")
        return {key: getattr(self, key) for key in keys}


@dataclass(frozen=True)
class StartRequest:
    """A checked start request."""

    data: DataRequest
    layers: str
    optimizer: Mapping[str, Any]
    batch_size: int
    epochs: int
    backend: str
    seed: int
    snapshot_every: int
    paused: bool
    given: Mapping[str, Any] = field(default_factory=dict)


def data_request(value: Any) -> DataRequest:
    if not isinstance(value, dict) or "kind" not in value:
        raise RequestError("'data' must be an object with a 'kind': toy, mnist, fashion-mnist or csv")
    kind = text(value["kind"], "data.kind", ("toy", *IMAGE_SETS, "csv"))
    if kind == "toy":
        fields = check_fields(
            value, {"kind", "name", "points", "noise", "classes", "test_fraction", "seed"}, required={"name"}
        )
        name = text(fields["name"], "data.name", tuple(TOY_SETS))
        classes = fields.get("classes")
        return DataRequest(
            kind,
            name,
            points=whole(fields.get("points", 400), "data.points", MIN_POINTS, MAX_POINTS),
            noise=number(fields.get("noise", 0.1), "data.noise", 0.0, 1.0),
            classes=None if classes is None else whole(classes, "data.classes", 2, MAX_CLASSES),
            test_fraction=number(fields.get("test_fraction", 0.2), "data.test_fraction", 0.0, 0.9),
            seed=whole(fields.get("seed", 0), "data.seed", 0, MAX_SEED),
        )
    if kind == "csv":
        fields = check_fields(value, {"kind", "upload", "test_fraction"}, required={"upload"})
        return DataRequest(
            kind,
            upload=text(fields["upload"], "data.upload", most=40),
            test_fraction=number(fields.get("test_fraction", 0.2), "data.test_fraction", 0.0, 0.9),
        )
    fields = check_fields(value, {"kind", "limit", "test_limit"}, required=set())
    return DataRequest(
        kind,
        kind,
        limit=whole(fields.get("limit", 1000), "data.limit", *IMAGE_LIMIT),
        test_limit=whole(fields.get("test_limit", 500), "data.test_limit", *IMAGE_TEST_LIMIT),
    )


def start_request(body: Any) -> StartRequest:
    """The checked fields of a start request (RequestError, 400, for anything wrong)."""
    allowed = {"data", "network", "optimizer", "batch_size", "epochs", "backend", "seed", "snapshot_every", "paused"}
    fields = check_fields(body, allowed, required={"data"})
    given = {**DEFAULTS, **fields}
    network = given["network"]
    if not isinstance(network, dict) or set(network) != {"layers"}:
        raise RequestError("'network' must be an object with one field, 'layers' (the compact notation)")
    layers = text(network["layers"], "network.layers", most=MAX_LAYERS_TEXT)
    optimizer = given["optimizer"]
    if not isinstance(optimizer, dict) or "type" not in optimizer:
        raise RequestError('\'optimizer\' must be an object with a \'type\', such as {"type": "adam", "lr": 0.01}')
    if "schedule" in optimizer:
        raise RequestError("the Train mode takes no learning-rate schedule: change the rate with control 'lr'")
    paused = given["paused"]
    if not isinstance(paused, bool):
        raise RequestError("'paused' must be true or false")
    return StartRequest(
        data=data_request(given["data"]),
        layers=layers,
        optimizer=optimizer,
        batch_size=whole(given["batch_size"], "batch_size", *BATCH_SIZE),
        epochs=whole(given["epochs"], "epochs", *EPOCHS),
        backend=text(given["backend"], "backend", BACKENDS),
        seed=whole(given["seed"], "seed", 0, MAX_SEED),
        snapshot_every=whole(given["snapshot_every"], "snapshot_every", *SNAPSHOT_EVERY),
        paused=paused,
        given=fields,
    )
