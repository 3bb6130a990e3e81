"""Shared by the tests of ``scratchnet serve``: two small trained models (an MLP and a CNN, trained
once per test session), a server running in a thread, and requests to it with any headers."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from test_evaluate import real_data_dir

from scratchnet.data.images import Feeder
from scratchnet.data.preprocess import preprocess
from scratchnet.io.model import load_model
from scratchnet.serve.routes import Served
from scratchnet.serve.server import Server, make_server
from scratchnet.training.train import TrainConfig, train

MODELS = {
    "mlp": {"hidden": (32,), "input_mean": 0.1307, "input_std": 0.3081},
    "cnn": {"layers": "conv(8, 3), relu, maxpool(2), flatten"},
}
_trained: dict[str, Path] = {}


def data_dir_or_skip() -> Path:
    found = real_data_dir()
    if found is None:
        pytest.skip("no real dataset directory (set SCRATCHNET_DATA_DIR or provide ../shared/data)")
    return found


def trained_model(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model ``kind`` ("mlp" or "cnn"), trained for one epoch on 3,000 MNIST images, once per session."""
    if kind not in _trained:
        out = tmp_path_factory.mktemp(f"serve-{kind}") / f"{kind}.json"
        config = TrainConfig(epochs=1, limit=3000, validation=0, **MODELS[kind])  # type: ignore[arg-type]
        train(config, data_dir=data_dir_or_skip(), out=out, log=lambda line: None, check=False, progress=False)
        _trained[kind] = out
    return _trained[kind]


@dataclass
class Running:
    """A server running in a thread: its session, address and the server itself."""

    session: Any  # a Session (an image model) or a TextSession (a language model)
    server: Server
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


@contextmanager
def running(session: Served, **options: Any) -> Iterator[Running]:
    """``session`` served on a free port of 127.0.0.1 until the block ends (``options``: make_server's)."""
    server = make_server(session, "127.0.0.1", 0, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Running(session, server, "127.0.0.1", server.port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    raw: bytes | None = None,
) -> Reply:
    """One request on a new connection: ``body`` sent as JSON (or ``raw`` bytes as they are)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = {"Content-Type": "application/json"} if data is not None else {}
        sent.update(headers or {})
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def expected_probabilities(model: Path, image: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], Any]:
    """What the library gives for ``image`` (any size, bright ink on black), computed here without the
    server: the preprocessed 28x28 image and the vectorized network's probabilities for it."""
    loaded = load_model(model)
    shape = tuple(loaded.network.input_shape)
    feeder = Feeder.from_metadata(loaded.metadata, "vectorized", loaded.dtype, shape)
    pixels = preprocess(image).pixels
    return pixels, np.asarray(loaded.network.forward(feeder.inputs(pixels[None]))[0], dtype=np.float64)


def seven(size: int = 280, scale: float = 1.0, at: tuple[float, float] = (0.0, 0.0)) -> npt.NDArray[np.uint8]:
    """A 7 of thick strokes on a black ``size`` x ``size`` canvas (``scale`` 1: most of the canvas,
    moved by ``at`` in pixels): a bar along the top and a slanted stem."""
    image = np.zeros((size, size), np.uint8)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    width = max(1.0, 0.07 * size * scale)
    for (r0, c0), (r1, c1) in (((0.2, 0.25), (0.2, 0.75)), ((0.2, 0.75), (0.85, 0.45))):
        a = np.array([r0, c0]) * size * scale + at
        b = np.array([r1, c1]) * size * scale + at
        d = b - a
        t = np.clip(((rows - a[0]) * d[0] + (cols - a[1]) * d[1]) / float(d @ d), 0.0, 1.0)
        distance = np.hypot(rows - (a[0] + t * d[0]), cols - (a[1] + t * d[1]))
        image[distance <= width / 2] = 255
    return image
