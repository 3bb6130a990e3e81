"""What streaming costs the Train mode of ``scratchnet serve``: the same small run trained with no page
attached, and with a page attached (a client reading ``GET /api/train/events``, as the page does).

A server runs in this process on 127.0.0.1 (port 0). Each round starts the spiral run of the
settings below from step 0 (same seed, so the same steps) and lets it run to its end (``--steps``
steps); the worker thread's wall-clock time is measured from its resume to its last step. With a
page, a client thread reads the event stream for the whole run (each event is a state: curves,
the 64x64 decision regions, the activations, drawn by the server up to 5 times a second). The
rounds alternate, ``--repeats`` of each; the best time of each is compared, and the overhead is
``with / without - 1`` (the issue's target: at most 10%).

    python tools/bench_serve_train.py                  # 3 x 3000 steps of each
    python tools/bench_serve_train.py --steps 20 --repeats 1     # a smoke run: says nothing of speed

The machine should be otherwise idle: the figure is a ratio of two timings.
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from scratchnet.serve.server import make_server
from scratchnet.serve.train_api import TrainAPI

POINTS = 400
TEST_FRACTION = 0.25  # 300 training points
BATCH = 30  # 10 steps an epoch


def run_body(steps: int, layers: str, backend: str) -> dict[str, Any]:
    epochs = max(1, -(-steps // (round(POINTS * (1 - TEST_FRACTION)) // BATCH)))
    return {
        "data": {"kind": "toy", "name": "spiral", "points": POINTS, "noise": 0.1, "test_fraction": TEST_FRACTION},
        "network": {"layers": layers},
        "optimizer": {"type": "adam", "lr": 0.01},
        "batch_size": BATCH,
        "epochs": epochs,
        "backend": backend,
        "seed": 1,
        "snapshot_every": 10,
        "paused": True,
    }


def post(port: int, path: str, body: Any) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        reply = connection.getresponse()
        answer = json.loads(reply.read())
        if reply.status != 200:
            raise SystemExit(f"bench_serve_train: {path}: {answer.get('error')}")
        return answer
    finally:
        connection.close()


class Page(threading.Thread):
    """A page attached: reads the event stream until told to stop; counts the states it got."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.states, self.bytes = port, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", "/api/train/events")
            reply = connection.getresponse()
            while not self.stop.is_set():
                line = reply.fp.readline()
                if not line:
                    break
                self.bytes += len(line)
                self.states += line.startswith(b"event: state")
        finally:
            connection.close()


def one_round(train: TrainAPI, port: int, body: dict[str, Any], with_page: bool) -> tuple[float, int, int]:
    """(seconds from resume to the run's end, states the page got, bytes it read)."""
    post(port, "/api/train/start", body)
    run = train.run
    assert run is not None
    page = Page(port) if with_page else None
    if page is not None:
        page.start()
        while page.states == 0:  # attached: it has the first state
            time.sleep(0.01)
    started = time.perf_counter()
    post(port, "/api/train/control", {"action": "resume"})
    with run.condition:
        run.condition.wait_for(lambda: run.status != "running", timeout=3600)
    seconds = time.perf_counter() - started
    if run.status != "finished":
        raise SystemExit(f"bench_serve_train: the run ended {run.status}: {run.reason}")
    if page is None:
        return seconds, 0, 0
    page.stop.set()
    post(port, "/api/train/control", {"action": "lr", "lr": 0.01})  # one more state: the reader wakes and stops
    page.join(10)
    return seconds, page.states, page.bytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="steps of each run (default 3000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind (default 3)")
    parser.add_argument("--layers", default="dense(16), relu, dense(16), relu", help="the network (compact notation)")
    parser.add_argument("--backend", default="vectorized", choices=("vectorized", "loops"))
    args = parser.parse_args(argv)
    body = run_body(args.steps, args.layers, args.backend)
    with tempfile.TemporaryDirectory() as folder:
        train = TrainAPI(Path(folder), idle_seconds=1e9)  # no idle stop: the run without a page must go on
        server = make_server(None, "127.0.0.1", 0, train=train)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        try:
            times: dict[bool, list[float]] = {False: [], True: []}
            states = 0
            for _ in range(args.repeats):
                for with_page in (False, True):
                    seconds, got, _ = one_round(train, server.port, body, with_page)
                    times[with_page].append(seconds)
                    states += got
        finally:
            server.shutdown()
            server.server_close()
    run = train.run
    steps = 0 if run is None else run.loop.global_step
    best = {kind: min(values) for kind, values in times.items()}
    print(f"the spiral run: {steps} steps of {args.layers!r} ({args.backend}), batch {BATCH}, best of {args.repeats}")
    print(f"  without a page: {best[False]:.3f} s ({steps / best[False]:.0f} steps/s)")
    print(
        f"  with a page:    {best[True]:.3f} s ({steps / best[True]:.0f} steps/s), "
        f"{states / args.repeats:.0f} states streamed per run"
    )
    print(f"streaming overhead: {100 * (best[True] / best[False] - 1):+.1f}% (target: at most +10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
