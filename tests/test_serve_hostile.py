"""``scratchnet serve`` against hostile clients and a model whose outputs overflow (issue 23, items
13, 14 and 20): real sockets to a server started here on 127.0.0.1, with a deadline of about a second
so that the slow clients are cut within seconds. Every loop here is bounded and stops by itself."""

from __future__ import annotations

import json
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serve_helpers import Running, data_dir_or_skip, request, running
from subprocesses import run_scratchnet
from train_serve_helpers import SPIRAL, TrainServer, train_server

from scratchnet.builders import build_network
from scratchnet.core import notation
from scratchnet.io.model import save
from scratchnet.serve.api import Session
from scratchnet.serve.server import DEADLINE, MAX_CONNECTIONS, MAX_INT_DIGITS
from scratchnet.serve.train_request import EVENT_STREAMS

ROOT = Path(__file__).resolve().parent.parent
SHORT = 1.0  # the deadline of the servers here, in seconds
FLOAT32_MAX = float(np.finfo(np.float32).max)  # about 3.4e38


def model_file(folder: Path, name: str, first: float = 0.01, second: float = 0.01) -> Path:
    """An MLP 784-16-10 of float32 whose weights are all ``first`` (layer 0) and ``second`` (layer 2)."""
    net: Any = build_network(notation.parse("input(784), dense(16), relu, dense(10)"), dtype="float32", seed=1)
    net.layers[0].weight[...] = first
    net.layers[2].weight[...] = second
    net.layers[0].bias[...] = 0.0
    net.layers[2].bias[...] = 0.0
    save(net, folder / name, metadata={"dataset": "mnist"})
    return folder / f"{name}.json"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A small model (its answers mean nothing) served with a deadline of SHORT seconds."""
    model = model_file(tmp_path_factory.mktemp("hostile"), "tiny")
    with running(Session(str(model), test_set=False), deadline=SHORT) as live:
        yield live


def exchange(port: int, data: bytes, *, wait: float = 10.0) -> bytes:
    """Send ``data``, then everything the server sends until it closes the connection (or ``wait`` s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        connection.sendall(data)
        received = b""
        ends = time.monotonic() + wait
        while time.monotonic() < ends:
            more = connection.recv(65536)
            if not more:
                break
            received += more
        return received


def status_and_json(received: bytes) -> tuple[bytes, dict[str, Any]]:
    """The status line of an answer and its JSON body."""
    head, _, body = received.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], json.loads(body)


def post_head(length: str) -> bytes:
    return (
        "POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode("latin-1")


# ---- item 13: client errors are 400s ----


@pytest.mark.parametrize(
    ("length", "message"),
    [
        ("9" * 5000, "has 5000 digits"),
        ("\xb2", "must be one number of bytes"),  # superscript two: str.isdigit() says yes, int() no
        ("-5", "must be one number of bytes"),
        ("12, 12", "must be one number of bytes"),
    ],
)
def test_a_content_length_that_is_no_size_is_a_400(tiny: Running, length: str, message: str) -> None:
    status, answer = status_and_json(exchange(tiny.port, post_head(length)))
    assert status == b"HTTP/1.1 400 Bad Request" and answer["status"] == 400
    assert message in answer["error"] and len(answer["error"]) < 200


def test_two_content_lengths_are_a_400(tiny: Running) -> None:
    data = post_head("2").replace(b"\r\n\r\n", b"\r\nContent-Length: 20\r\n\r\n") + b"{}"
    status, answer = status_and_json(exchange(tiny.port, data))
    assert status.startswith(b"HTTP/1.1 400") and "one number of bytes" in answer["error"]


@pytest.mark.parametrize("digits", [4301, 5000, MAX_INT_DIGITS + 1])
def test_a_huge_json_integer_is_a_400(tiny: Running, digits: int) -> None:
    body = b'{"pixels": [[0]], "width": ' + b"7" * digits + b"}"
    reply = request(tiny.port, "POST", "/api/predict", raw=body)
    answer = reply.json()
    assert (reply.status, answer["status"]) == (400, 400)
    assert answer["error"] == (
        f"the request body holds an integer of {digits} digits, more than the limit of {MAX_INT_DIGITS}"
    )


def test_a_long_integer_out_of_range_is_named_in_short(tiny: Running) -> None:
    reply = request(
        tiny.port,
        "POST",
        "/api/explain",
        raw=b'{"pixels": [[0, 0, 0], [0, 255, 0], [0, 0, 0]], "layer": 0, "unit": [' + b"9" * 900 + b"]}",
    )
    assert reply.status == 400
    assert reply.json()["error"] == "'unit index' must be in 0..1048576, got a number of 900 digits"


# ---- item 14: outputs that overflow ----


def test_a_model_whose_outputs_overflow_gets_a_422_naming_the_layer(tmp_path: Path) -> None:
    # 100 pixels of 255 fed as 1.0 each: layer 0 gives 100 * 1e30 = 1e32 per unit (finite in float32),
    # layer 2 then 16 * 1e32 * 1e37 = 1.6e70, far beyond float32's 3.4e38.
    assert 100 * 1e30 < FLOAT32_MAX < 16 * 100 * 1e30 * 1e37
    image = np.zeros((28, 28), np.int64)
    image[5:15, 10:20] = 255
    body = {"pixels": image.tolist(), "preprocess": False}
    late = model_file(tmp_path, "late", first=1e30, second=1e37)
    early = model_file(tmp_path, "early", first=1e37, second=1.0)  # 100 * 1e37 overflows at once
    for model, layer in ((late, "layer 2 (Dense(16, 10))"), (early, "layer 0 (Dense(784, 16))")):
        with running(Session(str(model), test_set=False)) as live:
            reply = request(live.port, "POST", "/api/predict", body)
            assert reply.status == 422, reply.body
            assert reply.json() == {
                "error": f"the model's outputs overflow float32 at {layer}: its weights are too large",
                "status": 422,
            }
            assert request(live.port, "GET", "/api/model").status == 200  # the server goes on
    with running(Session(str(model_file(tmp_path, "plain")), test_set=False)) as live:
        assert request(live.port, "POST", "/api/predict", body).status == 200


def test_a_test_image_that_overflows_gets_a_422(tmp_path: Path) -> None:
    model = model_file(tmp_path, "late", first=1e30, second=1e37)
    with running(Session(str(model), str(data_dir_or_skip()))) as live:
        reply = request(live.port, "GET", "/api/test?index=0")  # MNIST's first test image, a 7, has ink
        assert reply.status == 422 and "overflow float32 at layer 2" in reply.json()["error"]


def test_an_answer_holding_infinity_is_a_422_not_a_500(tiny: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiny.session, "explain", lambda body: {"z": float("inf")})
    reply = request(tiny.port, "POST", "/api/explain", {"pixels": [[0]]})
    assert reply.status == 422 and "not finite" in reply.json()["error"]


def test_evaluate_says_in_one_line_where_the_outputs_overflow(tmp_path: Path) -> None:
    model = model_file(tmp_path, "late", first=1e30, second=1e37)
    done = run_scratchnet("evaluate", str(model), "--data-dir", str(data_dir_or_skip()))
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "scratchnet evaluate: warning: the model's outputs overflow float32 at layer 2 (Dense): its weights are "
        "too large; its predictions where they overflow mean nothing\n"
    )
    assert "test accuracy" in done.stdout
    plain = run_scratchnet("evaluate", str(model_file(tmp_path, "plain")), "--data-dir", str(data_dir_or_skip()))
    assert plain.returncode == 0 and plain.stderr == ""


# ---- item 20: slow clients, many connections, clients that leave ----


def trickle(port: int, head: bytes, drip: bytes, every: float = 0.2, most: int = 40) -> tuple[float, bytes]:
    """Send ``head``, then a byte of ``drip`` every ``every`` seconds (at most ``most`` bytes), until
    the server answers or closes: the seconds that took from connecting, and what it sent."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        if head:
            connection.sendall(head)
        for k in range(most):
            ready, _, _ = select.select([connection], [], [], every)
            if ready:
                break
            if drip:
                try:
                    connection.sendall(drip[k % len(drip) : k % len(drip) + 1])
                except OSError:
                    break
        received = b""
        while True:
            try:
                more = connection.recv(65536)
            except OSError:
                break
            if not more:
                break
            received += more
        return time.monotonic() - started, received


def test_a_client_trickling_its_headers_is_cut_at_the_deadline(tiny: Running) -> None:
    seconds, received = trickle(tiny.port, b"GET /api/model HTTP/1.1\r\n", b"X-Slow: aaaaaaaa\r\n")
    assert SHORT <= seconds < SHORT + 2.5  # with a timeout per read, it would go on for the 8 s of its bytes
    status, answer = status_and_json(received)
    assert status == b"HTTP/1.1 408 Request Timeout" and answer["status"] == 408
    assert answer["error"] == f"the request did not arrive in full within {SHORT:g} seconds"


def test_a_client_trickling_its_body_is_cut_at_the_deadline(tiny: Running) -> None:
    seconds, received = trickle(tiny.port, post_head("200"), b'{"pixels": [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]}    ')
    assert SHORT <= seconds < SHORT + 2.5
    status, answer = status_and_json(received)
    assert status.startswith(b"HTTP/1.1 408") and answer["status"] == 408


def test_an_idle_connection_is_closed_at_the_deadline_without_an_answer(tiny: Running) -> None:
    seconds, received = trickle(tiny.port, b"", b"")
    assert SHORT <= seconds < SHORT + 2.5 and received == b""


def test_a_keep_alive_connection_gets_a_fresh_deadline_for_each_request(tiny: Running) -> None:
    with socket.create_connection(("127.0.0.1", tiny.port), timeout=10) as connection:
        for _ in range(3):  # three requests spread over more than one deadline, each well within its own
            connection.sendall(b"GET /api/model HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received = b""
            while b"\r\n\r\n" not in received:
                received += connection.recv(65536)
            assert received.startswith(b"HTTP/1.1 200")
            head, _, body = received.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.startswith(b"Content-Len")))
            while len(body) < length:
                body += connection.recv(65536)
            time.sleep(SHORT * 0.6)


def connections_of(live: Running) -> int:
    with live.server.connections_lock:
        return live.server.connections


def wait_until(condition: Any, seconds: float = 10.0) -> bool:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_connections_beyond_the_cap_get_a_503_at_once(tmp_path: Path) -> None:
    model = model_file(tmp_path, "tiny")
    logged: list[str] = []
    with running(Session(str(model), test_set=False), deadline=5.0, max_connections=3) as live:
        live.server.log = logged.append
        threads = threading.active_count()
        held = [socket.create_connection(("127.0.0.1", live.port), timeout=10) for _ in range(3)]
        try:
            assert wait_until(lambda: connections_of(live) == 3)
            for _ in range(30):  # half-open connections: they send nothing
                started = time.monotonic()
                with socket.create_connection(("127.0.0.1", live.port), timeout=10) as extra:
                    received = b""
                    while more := extra.recv(65536):
                        received += more
                assert time.monotonic() - started < 2.0  # refused at once, not at the deadline
                status, answer = status_and_json(received)
                assert status == b"HTTP/1.1 503 Service Unavailable" and answer["status"] == 503
                assert "serves 3 connections at once" in answer["error"]
            assert threading.active_count() <= threads + 3  # one thread per connection served, none for the rest
        finally:
            for connection in held:
                connection.close()
        assert wait_until(lambda: connections_of(live) == 0)
        assert request(live.port, "GET", "/api/model").status == 200
    assert logged == [
        "scratchnet serve: 3 connections are open, the most it serves at once: new ones get 503 until one closes"
    ]


def test_a_client_that_leaves_before_its_answer_costs_one_line(
    tiny: Running, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    logged: list[str] = []
    monkeypatch.setattr(tiny.server, "log", logged.append)
    asked, left = threading.Event(), threading.Event()

    def slow(body: Any) -> dict[str, Any]:
        asked.set()
        left.wait(10)
        return {"values": [0.5] * 300_000}  # megabytes: more than the socket's buffers can hold

    monkeypatch.setattr(tiny.session, "predict", slow)
    connection = socket.create_connection(("127.0.0.1", tiny.port), timeout=10)
    body = b'{"pixels": [[0]]}'
    connection.sendall(post_head(str(len(body))) + body)
    assert asked.wait(10)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
    connection.close()
    left.set()
    assert wait_until(lambda: len(logged) >= 1)
    time.sleep(0.2)
    assert len(logged) == 1 and "\n" not in logged[0]
    assert logged[0].startswith("scratchnet serve: the client at 127.0.0.1:")
    assert logged[0].endswith(
        ("(POST /api/predict HTTP/1.1): BrokenPipeError", "(POST /api/predict HTTP/1.1): ConnectionResetError")
    )
    assert "Traceback" not in capfd.readouterr().err
    assert request(tiny.port, "GET", "/api/model").status == 200


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"GET /\r\n", b"HTTP/1.1 505 HTTP Version Not Supported"),  # HTTP/0.9
        (b"GET /api/model\r\n\r\n", b"HTTP/1.1 505 HTTP Version Not Supported"),
        (b"hello\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET / FOO/1.1\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET / HTTP/2.0\r\n\r\n", b"HTTP/1.1 505 HTTP Version Not Supported"),
        (b"GET / / / HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"HTTP/1.1 414 Request-URI Too Long"),
    ],
)
def test_a_malformed_request_line_gets_a_status_line(tiny: Running, line: bytes, status: bytes) -> None:
    received = exchange(tiny.port, line)
    got, answer = status_and_json(received)
    assert got == status and answer["status"] == int(status.split()[1])
    assert len(answer["error"]) <= 300


def test_the_documented_bounds_are_the_servers() -> None:
    text = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
    assert f"within {DEADLINE:g} seconds" in text and f"at most {MAX_CONNECTIONS} connections at once" in text


# ---- the same hostile clients against the Train mode's API (issue 28) ----

TRAIN_POSTS = ["/api/train/start", "/api/train/control", "/api/train/fork", "/api/train/inspect", "/api/train/save"]


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainServer]:
    """A Train-mode server with a deadline of SHORT seconds and a paused spiral run."""
    with train_server(tmp_path_factory.mktemp("hostile-train") / "models", deadline=SHORT) as live:
        live.ok("POST", "/api/train/start", SPIRAL)
        yield live


def train_head(path: str, length: str, kind: str = "application/json") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\nContent-Length: {length}\r\n\r\n"
    ).encode("latin-1")


@pytest.mark.parametrize("path", [*TRAIN_POSTS, "/api/train/upload"])
@pytest.mark.parametrize("length", ["9" * 5000, "\xb2", "-5", "12, 12"])
def test_the_train_api_refuses_a_content_length_that_is_no_size(training: TrainServer, path: str, length: str) -> None:
    kind = "text/csv" if path.endswith("upload") else "application/json"
    status, answer = status_and_json(exchange(training.port, train_head(path, length, kind)))
    assert status.startswith(b"HTTP/1.1 400") and answer["status"] == 400 and len(answer["error"]) < 200


@pytest.mark.parametrize("path", TRAIN_POSTS)
def test_the_train_api_refuses_a_huge_integer_and_a_body_over_the_limit(training: TrainServer, path: str) -> None:
    reply = request(training.port, "POST", path, raw=b'{"step": ' + b"7" * 5000 + b"}")
    assert reply.status == 400 and "5000 digits" in reply.json()["error"]
    status, answer = status_and_json(exchange(training.port, train_head(path, str(2 << 20))))
    assert status.startswith(b"HTTP/1.1 413") and answer["status"] == 413


def test_an_upload_over_the_limit_is_a_413_before_it_is_read(training: TrainServer) -> None:
    status, answer = status_and_json(exchange(training.port, train_head("/api/train/upload", str(2 << 20), "text/csv")))
    assert (
        status.startswith(b"HTTP/1.1 413")
        and answer["error"] == f"the request body is {2 << 20} bytes; the limit is {1 << 20}"
    )


@pytest.mark.parametrize("path", ["/api/train/start", "/api/train/upload"])
def test_a_client_trickling_a_train_request_is_cut_at_the_deadline(training: TrainServer, path: str) -> None:
    seconds, received = trickle(training.port, train_head(path, "300"), b'{"data": {"kind": "toy"}}    ')
    assert SHORT <= seconds < SHORT + 2.5
    status, answer = status_and_json(received)
    assert status.startswith(b"HTTP/1.1 408") and answer["status"] == 408


def test_a_binary_upload_is_a_one_line_400(training: TrainServer) -> None:
    garbage = bytes(range(256)) * 64 + b"\x00\xff" * 1000
    reply = request(training.port, "POST", "/api/train/upload", raw=garbage, headers={"Content-Type": "text/csv"})
    answer = reply.json()
    assert reply.status == 400 and "\n" not in answer["error"] and len(answer["error"]) <= 300


def open_stream(port: int) -> socket.socket:
    """An event stream, its headers read (the caller closes it)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(b"GET /api/train/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    assert received.startswith(b"HTTP/1.1 200")
    return connection


def test_event_streams_are_capped_and_freed_when_their_pages_leave(training: TrainServer) -> None:
    streams = [open_stream(training.port) for _ in range(EVENT_STREAMS)]
    try:
        refused = request(training.port, "GET", "/api/train/events")
        assert refused.status == 503 and "poll GET /api/train/state" in refused.json()["error"]
        assert request(training.port, "GET", "/api/train/state").status == 200  # polling still works
    finally:
        for connection in streams:
            connection.close()
    training.ok(
        "POST", "/api/train/control", {"action": "step"}
    )  # a new state: each stream writes, and finds its page gone
    assert wait_until(lambda: training.train.streams == 0)
    open_stream(training.port).close()
