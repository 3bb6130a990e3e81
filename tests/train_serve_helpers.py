"""Shared by the tests of the Train mode of ``scratchnet serve``: a server of the Train mode running in
a thread, requests to it, and a reader of its server-sent events."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve_helpers import Reply, request

from scratchnet.serve.api import Session
from scratchnet.serve.server import DEADLINE, Server, make_server
from scratchnet.serve.train_api import TrainAPI

SPIRAL: dict[str, Any] = {
    "data": {"kind": "toy", "name": "spiral", "points": 200, "noise": 0.05, "test_fraction": 0.25, "seed": 1},
    "network": {"layers": "dense(16), relu, dense(16), relu"},
    "optimizer": {"type": "adam", "lr": 0.02},
    "batch_size": 32,
    "seed": 3,
    "snapshot_every": 5,
    "paused": True,
}


@dataclass
class TrainServer:
    """A Train-mode server running in a thread."""

    train: TrainAPI
    server: Server
    port: int

    def get(self, path: str) -> Reply:
        return request(self.port, "GET", path)

    def post(self, path: str, body: Any) -> Reply:
        return request(self.port, "POST", path, body)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of a request that must succeed."""
        reply = request(self.port, method, path, body)
        assert reply.status == 200, (reply.status, reply.body[:300])
        return reply.json()

    def wait_for(self, done: Callable[[dict[str, Any]], bool], seconds: float = 60.0) -> dict[str, Any]:
        """Poll the state until ``done(state)``; fail after ``seconds``."""
        ends = time.monotonic() + seconds
        while True:
            state = self.ok("GET", "/api/train/state")
            if done(state):
                return dict(state)
            assert time.monotonic() < ends, (
                f"the run did not get there in {seconds} s: {state['status']} {state['step']}"
            )
            time.sleep(0.05)


@contextmanager
def train_server(
    models: Path,
    data_dir: str | None = None,
    *,
    session: Session | None = None,
    deadline: float = DEADLINE,
    **options: Any,
) -> Iterator[TrainServer]:
    """A server of the Train mode (and of ``session``, if given) on a free port of 127.0.0.1 until the
    block ends; ``options`` go to TrainAPI (e.g. ``idle_seconds``)."""
    train = TrainAPI(models, data_dir, model_mode=session is not None, **options)
    server = make_server(session, "127.0.0.1", 0, train=train, deadline=deadline)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield TrainServer(train, server, server.port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def read_events(port: int, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The first ``count`` states sent by ``GET /api/train/events``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/api/train/events")
        response = connection.getresponse()
        assert response.status == 200, response.read()[:300]
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        states: list[dict[str, Any]] = []
        kind = ""
        while len(states) < count:
            line = response.fp.readline().decode("utf-8").rstrip("\n")
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: ") and kind == "state":
                states.append(json.loads(line[len("data: ") :]))
        return states
    finally:
        connection.close()
