"""``scratchnet serve``'s JSON API and server, tested directly: good requests give the library's
numbers, bad ones a JSON error with a 4xx status, and no path reaches a file outside the static folder."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serve_helpers import Running, data_dir_or_skip, expected_probabilities, request, running, seven, trained_model
from subprocesses import ROOT

from scratchnet.builders import build_network
from scratchnet.cli import main
from scratchnet.core import notation
from scratchnet.core.errors import ConfigError
from scratchnet.data import load_dataset
from scratchnet.data.images import Feeder
from scratchnet.io.model import load_model, save
from scratchnet.serve import server as server_module
from scratchnet.serve.api import Session
from scratchnet.serve.server import MAX_BODY, is_loopback, serve, static_files
from scratchnet.teaching.explain import explain_unit, format_unit


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The MLP and then the CNN, each served on a free port with its test set."""
    model = trained_model(request.param, tmp_path_factory)
    with running(Session(str(model), str(data_dir_or_skip()))) as live:
        yield live


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    model = trained_model("mlp", tmp_path_factory)
    with running(Session(str(model), str(data_dir_or_skip()))) as live:
        yield live


def post(live: Running, path: str, body: Any, **kwargs: Any) -> Any:
    reply = request(live.port, "POST", path, body, **kwargs)
    assert reply.status == 200, reply.body
    return reply.json()


def canvas_body(image: np.ndarray) -> dict[str, Any]:
    return {"pixels": base64.b64encode(image.tobytes()).decode(), "width": image.shape[1], "height": image.shape[0]}


# ---- good requests ----


def test_model_describes_the_layers_the_page_draws(served: Running) -> None:
    info = request(served.port, "GET", "/api/model").json()
    assert info["class_names"] == [str(k) for k in range(10)] and info["dataset"] == "mnist"
    assert info["test_set"] == {"available": True, "size": 10000, "problem": ""}
    if info["input_shape"] == [784]:
        assert info["architecture"] == "784-32-10"
        assert info["layers"] == [{"index": 1, "explain": 0, "name": "Dense(784, 32) + ReLU", "shape": [32]}]
        assert info["output_layer"] == 2
    else:
        assert info["layers"] == [
            {"index": 1, "explain": 0, "name": "Conv2D(1 -> 8, 3x3) + ReLU", "shape": [8, 26, 26]},
            {"index": 2, "explain": 2, "name": "MaxPool2D(2x2)", "shape": [8, 13, 13]},
        ]
        assert info["output_layer"] == 4


def test_predict_gives_the_librarys_probabilities_for_the_preprocessed_image(served: Running) -> None:
    image = seven(280, 0.45, (120.0, 20.0))  # small and off-centre on a canvas
    pixels, expected = expected_probabilities(Path(served.session.path), image)
    as_base64 = post(served, "/api/predict", canvas_body(image))
    as_rows = post(served, "/api/predict", {"pixels": image.tolist()})
    for answer in (as_base64, as_rows):
        assert answer["image"] == pixels.tolist()
        assert answer["probabilities"] == pytest.approx(expected.tolist(), abs=1e-6)
        assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert answer["predicted"] == int(np.argmax(expected))
        assert answer["preprocessing"]["size"][0] == 20 and not answer["preprocessing"]["unchanged"]
        assert answer["preprocessing"]["note"].startswith("made to look like MNIST's digits")
    # the layers drawn are the network's own outputs, layer by layer
    network = served.session.network
    x = served.session.feeder.inputs(pixels[None])
    values = []
    with served.session.lock:  # the layers keep their last pass: take turns with the server's threads
        for layer in network.layers:
            x = layer.forward(x, False)
            values.append(np.asarray(x[0], dtype=np.float64).ravel())
    for shown in as_base64["layers"]:
        truth = values[shown["index"]]
        assert shown["low"] == pytest.approx(truth.min()) and shown["high"] == pytest.approx(truth.max())
        assert np.allclose(shown["values"], truth, rtol=1e-3, atol=1e-3 * max(1e-12, float(np.abs(truth).max())))


def test_a_test_image_is_fed_as_it_is_and_preprocessing_it_changes_nothing(served: Running) -> None:
    image = load_dataset("mnist", data_dir_or_skip(), splits=("test",)).test_images[0]
    plain = post(served, "/api/predict", {"pixels": image.tolist(), "preprocess": False})
    again = post(served, "/api/predict", {"pixels": image.tolist()})
    assert plain["preprocessing"] is None and again["preprocessing"]["unchanged"]
    assert plain["probabilities"] == again["probabilities"] and plain["image"] == image.tolist()
    test = request(served.port, "GET", "/api/test?index=0").json()
    assert test["probabilities"] == plain["probabilities"] and test["label"] == 7 and test["label_name"] == "7"


@pytest.mark.parametrize("which", ["output", "hidden"])
def test_explain_gives_the_numbers_of_scratchnet_explain(served: Running, which: str) -> None:
    image = seven(280, 0.8, (30.0, 30.0))
    pixels = post(served, "/api/predict", canvas_body(image))["image"]
    session = served.session
    loops = load_model(session.path, backend="loops")
    inputs = Feeder.from_metadata(loops.metadata, "loops", "float64", tuple(loops.network.input_shape)).inputs(
        np.asarray(pixels, np.uint8)[None]
    )[0]
    info = request(served.port, "GET", "/api/model").json()
    cnn = info["input_shape"] != [784]
    cases = (
        [(info["output_layer"], [7], "2.1")]
        if which == "output"
        else [(0, [3, 10, 12], "12.1"), (2, [1, 4, 5], "13.1")]
        if cnn
        else [(0, [5], "2.1")]
    )
    for layer, unit, equation in cases:
        body = {"pixels": pixels, "preprocess": False, "layer": layer, "unit": unit, "top": 6, "label": 7}
        answer = post(served, "/api/explain", body)
        ex, item = explain_unit(loops.network, inputs, layer, unit, 7, top=6, class_names=info["class_names"])
        assert answer["lines"] == format_unit(ex, item)  # the printout of scratchnet explain, line for line
        assert answer["equation"]["number"] == equation and answer["unit"] == unit
        assert f"({equation})" in answer["lines"][1]
        if "terms" in answer:
            products = [abs(t["product"]) for t in answer["terms"]]
            assert products == sorted(products, reverse=True) and len(products) <= 6  # largest first
            assert answer["z"] == item.z  # type: ignore[union-attr]
            assert answer["weighted_sum"] + answer["bias"] == pytest.approx(answer["z"])
            listed = sum(t["product"] for t in answer["terms"]) + answer["rest_sum"]
            assert listed == pytest.approx(answer["weighted_sum"])
        else:
            assert answer["a"] == max(max(row) for row in answer["window"])  # a max-pooling window
    output = post(
        served, "/api/explain", {"pixels": pixels, "preprocess": False, "layer": info["output_layer"], "unit": [3]}
    )
    assert output["activation"]["kind"] == "Softmax" and output["activation"]["number"] == "4.6"
    assert output["title"].endswith("neuron 3 (class '3')")


def test_the_test_set_by_index_at_random_and_the_next_misclassified(served: Running) -> None:
    data = load_dataset("mnist", data_dir_or_skip(), splits=("test",))
    for index in (0, 1, 9999):
        answer = request(served.port, "GET", f"/api/test?index={index}").json()
        assert answer["index"] == index and answer["label"] == int(data.test_labels[index])
        assert answer["image"] == data.test_images[index].tolist() and answer["count"] == 10000
    seen = {request(served.port, "GET", "/api/test?random").json()["index"] for _ in range(5)}
    assert len(seen) > 1
    after = 0
    for _ in range(3):
        answer = request(served.port, "GET", f"/api/test?misclassified_after={after}").json()
        assert answer["index"] > after and answer["predicted"] != answer["label"]
        skipped = [
            request(served.port, "GET", f"/api/test?index={k}").json() for k in range(after + 1, answer["index"])
        ][:5]
        assert all(s["predicted"] == s["label"] for s in skipped)  # none in between was wrong
        after = answer["index"]


def test_concurrent_requests_take_turns_with_the_model(mlp: Running) -> None:
    images = [seven(280, 0.3 + 0.1 * k, (10.0 * k, 5.0 * k)) for k in range(6)]
    expected = [post(mlp, "/api/predict", canvas_body(image))["probabilities"] for image in images]
    results: dict[int, Any] = {}

    def worker(k: int) -> None:
        results[k] = [post(mlp, "/api/predict", canvas_body(images[k]))["probabilities"] for _ in range(5)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answer == expected[k] for k in range(6) for answer in results[k])


def test_one_connection_carries_many_requests(mlp: Running) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", mlp.port, timeout=10)
    body = json.dumps(canvas_body(seven(100))).encode()
    for _ in range(3):
        connection.request("POST", "/api/predict", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["predicted"] in range(10)
        connection.request("GET", "/api/model")
        assert connection.getresponse().read().startswith(b"{")
    connection.close()


# ---- bad requests ----

GOOD = {"pixels": [[0] * 28] * 10 + [[0] * 10 + [255] * 8 + [0] * 10] * 8 + [[0] * 28] * 10}
BAD_PREDICTIONS: list[tuple[Any, str]] = [
    ([1, 2, 3], "must be a JSON object"),
    ({}, "missing field 'pixels'"),
    ({**GOOD, "colour": 1}, "unknown field 'colour'"),
    ({"pixels": "not base64!", "width": 2, "height": 2}, "not valid base64"),
    ({"pixels": base64.b64encode(b"abc").decode(), "width": 2, "height": 2}, "holds 3 bytes; a 2x2 image has 4"),
    ({"pixels": base64.b64encode(b"a" * 4).decode()}, "need 'width' and 'height'"),
    ({"pixels": "QUFB" * 1000, "width": 2, "height": 2}, "more than the 2x2 bytes"),
    ({"pixels": [[0.5] * 28] * 28}, "integer 0..255"),
    ({"pixels": [[True] * 28] * 28}, "integer 0..255"),
    ({"pixels": [["0"] * 28] * 28}, "integer 0..255"),
    ({"pixels": [[[0]] * 28] * 28}, "integer 0..255"),
    ({"pixels": [[256] * 28] * 28}, "integer 0..255"),
    ({"pixels": [[-1] * 28] * 28}, "integer 0..255"),
    ({"pixels": [[10**30] * 28] * 28}, "integer 0..255"),
    ({"pixels": [[0] * 28] * 27 + [[0] * 27]}, "same length"),
    ({"pixels": []}, "must be a list of rows"),
    ({"pixels": [[]]}, "1 to 1024 pixels"),
    ({"pixels": 7}, "must be a list of rows"),
    ({"pixels": [[1] * 1025]}, "1 to 1024 pixels"),
    ({**GOOD, "width": 27}, "'width' and 'height' say 27x"),
    ({**GOOD, "width": 0}, "'width' must be in 1..1024"),
    ({**GOOD, "width": 1.5}, "'width' must be a whole number"),
    ({**GOOD, "preprocess": "no"}, "'preprocess' must be true or false"),
    ({"pixels": [[0] * 28] * 28}, "the image is blank"),
    ({"pixels": [[9] * 30] * 30, "preprocess": False}, "must be 28x28, got 30x30"),
]


@pytest.mark.parametrize(("body", "message"), BAD_PREDICTIONS)
def test_a_bad_prediction_request_gets_a_json_error(mlp: Running, body: Any, message: str) -> None:
    reply = request(mlp.port, "POST", "/api/predict", body)
    assert reply.status == 400 and reply.headers["content-type"] == "application/json"
    answer = reply.json()
    assert message in answer["error"] and answer["status"] == 400 and b"Traceback" not in reply.body


BAD_EXPLANATIONS: list[tuple[dict[str, Any], str]] = [
    ({"layer": 0}, "missing field 'unit'"),
    ({"layer": 9, "unit": [0]}, "'layer' must be in 0..3"),
    ({"layer": 1, "unit": [0]}, "layer 1 is a ReLU"),
    ({"layer": 0, "unit": [32]}, "neuron 32: layer 0 has neurons 0..31"),
    ({"layer": 0, "unit": [0, 1]}, "[0, 1] is not a unit of layer 0 (Dense)"),
    ({"layer": 0, "unit": []}, "'unit' must be a list of 1 to 3 indices"),
    ({"layer": 0, "unit": "0"}, "'unit' must be a list"),
    ({"layer": 0, "unit": [-1]}, "'unit index' must be in 0.."),
    ({"layer": 0, "unit": [0], "top": 0}, "'top' must be in 1..100"),
    ({"layer": 0, "unit": [0], "top": 101}, "'top' must be in 1..100"),
    ({"layer": 0, "unit": [0], "label": 10}, "'label' must be in 0..9"),
    ({"layer": "0", "unit": [0]}, "'layer' must be a whole number"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_EXPLANATIONS)
def test_a_bad_explain_request_gets_a_json_error(mlp: Running, fields: dict[str, Any], message: str) -> None:
    reply = request(mlp.port, "POST", "/api/explain", {**GOOD, "preprocess": False, **fields})
    assert reply.status == 400, reply.body
    assert message in reply.json()["error"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("index=10000", "out of range: the test set has images 0..9999"),
        ("index=-1", "must be a whole number"),
        ("index=1e3", "must be a whole number"),
        ("index=", "must be a whole number"),
        ("index=1&index=2", "exactly one of"),
        ("index=1&random", "exactly one of"),
        ("", "exactly one of"),
        ("page=2", "unknown query parameter 'page'"),
        ("misclassified_after=x", "must be a whole number"),
    ],
)
def test_a_bad_test_image_request_gets_a_json_error(mlp: Running, query: str, message: str) -> None:
    reply = request(mlp.port, "GET", f"/api/test?{query}")
    assert reply.status == 400 and message in reply.json()["error"]


def test_http_errors_are_json_too(mlp: Running) -> None:
    good = json.dumps(GOOD).encode()
    cases = [
        (request(mlp.port, "GET", "/api/predict"), 405, "takes POST"),
        (request(mlp.port, "POST", "/api/model", GOOD), 405, "takes GET"),
        (request(mlp.port, "POST", "/", GOOD), 405, "takes GET"),
        (request(mlp.port, "PUT", "/api/predict", GOOD), 405, "method PUT is not allowed"),
        (request(mlp.port, "DELETE", "/"), 405, "method DELETE is not allowed"),
        (request(mlp.port, "BREW", "/"), 405, "method BREW is not allowed"),
        (request(mlp.port, "GET", "/api/nothing"), 404, "no such page or API endpoint"),
        (
            request(mlp.port, "POST", "/api/predict", raw=good, headers={"Content-Type": "text/plain"}),
            415,
            "as application/json",
        ),
        (request(mlp.port, "POST", "/api/predict", raw=b"{not json", headers={}), 400, "not JSON"),
        (request(mlp.port, "POST", "/api/predict", raw=b'{"pixels": NaN}'), 400, "holds NaN"),
        (request(mlp.port, "POST", "/api/predict", raw=b"\xff\xfe"), 400, "not UTF-8"),
        (request(mlp.port, "POST", "/api/predict", raw=b"[" * 100000 + b"]" * 100000), 400, "nested too deeply"),
        (
            request(mlp.port, "GET", "/api/model", headers={"Host": "evil.example:80"}),
            403,
            "not for Host 'evil.example:80'",
        ),
    ]
    for reply, status, message in cases:
        answer = reply.json()
        assert (reply.status, answer["status"]) == (status, status), (message, reply.body[:200])
        assert message in answer["error"] and b"Traceback" not in reply.body
    assert request(mlp.port, "GET", "/api/model", headers={"Host": f"localhost:{mlp.port}"}).status == 200


def raw_exchange(port: int, data: bytes) -> tuple[int, dict[str, Any], bool]:
    """Send ``data`` as it is; the status, the JSON answer, and whether the server then closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            more = connection.recv(65536)
            assert more, f"the server closed the connection after {received!r}"
            received += more
        head, _, body = received.partition(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        while len(body) < length:
            body += connection.recv(65536)
        connection.settimeout(2)
        try:
            closed = connection.recv(1) == b""
        except TimeoutError:
            closed = False
        return int(head.split()[1]), json.loads(body), closed


def test_the_request_body_is_bounded(mlp: Running) -> None:
    too_big = MAX_BODY + 1
    status, answer, closed = raw_exchange(
        mlp.port,
        f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {too_big}\r\n\r\n".encode(),
    )
    assert status == 413 and str(MAX_BODY) in answer["error"] and closed  # answered before the body, then closed
    at_limit = b'{"pixels": ' + b" " * (MAX_BODY - 13) + b"7}"
    assert len(at_limit) == MAX_BODY
    assert request(mlp.port, "POST", "/api/predict", raw=at_limit).json()["error"].startswith("'pixels' must be")
    status, answer, closed = raw_exchange(
        mlp.port, b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\r\n"
    )
    assert status == 411 and "Content-Length" in answer["error"] and closed
    status, answer, closed = raw_exchange(
        mlp.port,
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    assert status == 411 and closed
    status, answer, closed = raw_exchange(mlp.port, b"GET /a b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 400 and answer["status"] == 400 and "Bad request syntax" in answer["error"] and closed


TRAVERSALS = [
    "/static/../server.py",
    "/static/..%2fserver.py",
    "/static/%2e%2e/server.py",
    "/static/%2e%2e%2fapi.py",
    "/static/..\\server.py",
    "/static/app.js/../../api.py",
    "/../../../../etc/passwd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "//etc/passwd",
    "/static//etc/passwd",
    "/static/%00",
    "/static/",
    "/static",
    "/etc/passwd",
    "/server.py",
    "/static/../../pyproject.toml",
    "/%2e%2e/%2e%2e/pyproject.toml",
    "/static/index.html%00.py",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_reaches_a_file_outside_the_static_folder(mlp: Running, path: str) -> None:
    reply = request(mlp.port, "GET", path)
    assert reply.status == 404 and reply.json()["status"] == 404
    assert b"import" not in reply.body and b"root:" not in reply.body


def test_the_page_and_its_files_are_served_with_strict_headers(mlp: Running) -> None:
    page = request(mlp.port, "GET", "/")
    assert page.status == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert b'<canvas id="pad"' in page.body
    assert (
        page.headers["x-content-type-options"] == "nosniff"
        and "script-src 'self'" in page.headers["content-security-policy"]
    )
    assert page.headers["server"] == "scratchnet"
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"), ("index.html", "text/html")):
        reply = request(mlp.port, "GET", f"/static/{name}?v=2")
        assert reply.status == 200 and reply.headers["content-type"].startswith(kind)
    assert b"https://" not in request(mlp.port, "GET", "/static/app.js").body  # nothing from the network


def test_only_regular_files_of_the_static_folder_are_served(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>page</p>")
    (tmp_path / "app.js").write_text("1")
    (tmp_path / "notes.txt").write_text("not a page file")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.js").write_text("2")
    outside = tmp_path.parent / "outside.js"
    outside.write_text("secret")
    os.symlink(outside, tmp_path / "link.js")
    assert sorted(static_files(tmp_path)) == ["/", "/static/app.js", "/static/index.html"]


def test_an_internal_error_is_a_json_500_without_a_traceback(mlp: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[str] = []
    monkeypatch.setattr(mlp.server, "log", logged.append)

    def broken(body: Any) -> Any:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(mlp.session, "predict", broken)
    reply = request(mlp.port, "POST", "/api/predict", GOOD)
    assert reply.status == 500 and reply.json() == {
        "error": "internal error (ZeroDivisionError): division by zero",
        "status": 500,
    }
    assert logged == ["scratchnet serve: error in POST /api/predict: ZeroDivisionError: division by zero"]


# ---- the session, the server and the command ----


def test_a_model_that_is_not_of_28x28_images_is_refused(tmp_path: Path) -> None:
    net = build_network(notation.parse("input(4), dense(3)"), backend="vectorized", seed=1)
    save(net, tmp_path / "tiny", metadata={"dataset": "mnist"})
    with pytest.raises(ConfigError, match=r"takes inputs of shape \(4,\); serve shows models of 28x28 grey images"):
        Session(str(tmp_path / "tiny.json"))


def test_without_a_dataset_the_test_set_mode_is_off(tmp_path: Path) -> None:
    net = build_network(notation.parse("input(784), dense(16), relu, dense(10)"), backend="vectorized", seed=1)
    save(net, tmp_path / "bare")
    notes: list[str] = []
    session = Session(str(tmp_path / "bare.json"), log=notes.append)
    assert notes == [
        f"the test-set mode is off: {tmp_path / 'bare.json'} does not record the dataset it was trained on"
    ]
    with running(session) as live:
        reply = request(live.port, "GET", "/api/test?index=0")
        assert reply.status == 404 and "there is no test set" in reply.json()["error"]
        assert request(live.port, "GET", "/api/model").json()["test_set"]["available"] is False
        assert request(live.port, "POST", "/api/predict", GOOD).status == 200


def test_loopback_addresses() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "192.168.1.2", "example.org"))


def test_serve_says_where_opens_the_browser_and_closes_on_ctrl_c(mlp: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    closed: list[bool] = []
    monkeypatch.setattr("webbrowser.open", opened.append)

    def interrupted(self: server_module.Server, poll_interval: float = 0.5) -> None:
        raise KeyboardInterrupt

    original_close = server_module.Server.server_close

    def close(self: server_module.Server) -> None:
        closed.append(True)
        original_close(self)

    monkeypatch.setattr(server_module.Server, "serve_forever", interrupted)
    monkeypatch.setattr(server_module.Server, "server_close", close)
    said: list[str] = []
    warned: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        serve(mlp.session, "127.0.0.1", 0, open_browser=True, say=said.append, warn=warned.append)
    assert len(said) == 1 and said[0].startswith(f"Serving {mlp.session.path} at http://127.0.0.1:")
    assert opened == [said[0].split(" at ")[1].split()[0]] and closed == [True] and warned == []
    with pytest.raises(KeyboardInterrupt):
        serve(mlp.session, "0.0.0.0", 0, say=said.append, warn=warned.append)
    assert len(warned) == 1 and warned[0].startswith(
        "scratchnet serve: warning: listening on 0.0.0.0, not on 127.0.0.1"
    )


def test_a_port_in_use_is_one_line(mlp: Running, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", mlp.session.path, "--port", str(mlp.port), "--data-dir", str(data_dir_or_skip())]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"scratchnet serve: error: cannot listen on 127.0.0.1:{mlp.port}: ") and "\n" not in err
    assert "--port" in err


def test_the_command_serves_until_ctrl_c_and_exits_130(mlp: Running) -> None:
    command = [sys.executable, "-m", "scratchnet", "serve", mlp.session.path, "--port", "0"]
    command += ["--data-dir", str(data_dir_or_skip())]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith(f"Serving {mlp.session.path} at http://127.0.0.1:") and "(Ctrl-C stops)" in line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        assert request(port, "GET", "/api/model").json()["architecture"] == "784-32-10"
        started = time.perf_counter()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=20)
        assert time.perf_counter() - started < 5
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130 and err == "scratchnet serve: interrupted\n" and out == ""
