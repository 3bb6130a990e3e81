"""``scratchnet serve`` on a language model, over HTTP: the next character and the heads' weights
against the loops backend's forward pass computed here, one head's terms against q . k / sqrt(d)
computed here with NumPy, a sample streamed in chunks as the loops backend samples it, and every bad
request a 4xx with a one-line message."""

from __future__ import annotations

import http.client
import json
import math
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serve_helpers import Running, request, running
from serve_text_helpers import text_model
from subprocesses import ROOT, run_scratchnet
from test_serve_api import raw_exchange

from scratchnet.core.decoding import Decoder
from scratchnet.core.sampling import Policy, sample_text
from scratchnet.io.model import load_model
from scratchnet.serve.text_api import MAX_GENERATE, TextSession
from scratchnet.teaching.explain_tokens import vocabulary_of


@pytest.fixture(scope="module", params=["documents", "running"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running(TextSession(str(text_model(request.param, tmp_path_factory)))) as live:
        yield live


def loops_of(live: Running) -> tuple[Any, Any]:
    loaded = load_model(live.session.path, backend="loops")
    return loaded.network, vocabulary_of(loaded.metadata)


def ids_for(vocabulary: Any, text: str) -> list[int]:
    start = [] if vocabulary.boundary_id is None else [vocabulary.boundary_id]
    return start + [vocabulary.characters.index(c) for c in text]


def attention_layers(network: Any) -> list[Any]:
    """The loops attention layers, found by their attributes (inside each residual block)."""
    found = []
    for layer in network.layers:
        for inner in [layer, *getattr(layer, "layers", [])]:
            if hasattr(inner, "attention_weights"):
                found.append(inner)
    return found


def test_the_page_of_a_language_model_is_the_text_page(served: Running) -> None:
    page = request(served.port, "GET", "/")
    assert page.status == 200 and b"/static/text.js" in page.body and b"/static/app.js" not in page.body
    info = request(served.port, "GET", "/api/model").json()
    assert info["kind"] == "text" and info["attention"] == [
        {"place": "2.1", "name": info["attention"][0]["name"], "heads": 4}
    ]
    assert info["max_text"] == info["context"] - (info["layout"] == "documents")


@pytest.mark.parametrize("text", ["em", "ella", "no"])
def test_the_next_character_and_the_heads_are_the_loops_forward_pass(served: Running, text: str) -> None:
    network, vocabulary = loops_of(served)
    if any(c not in vocabulary.characters for c in text):
        pytest.skip(f"{text!r} is not in this model's vocabulary")
    answer = request(served.port, "POST", "/api/text/predict", {"text": text, "top": 5})
    assert answer.status == 200, answer.body
    got = answer.json()
    ids = ids_for(vocabulary, text)
    assert got["ids"] == ids
    expected = network.forward([ids])[0][-1]  # the loops backend, float64; the model ends in a Softmax
    assert math.fsum(expected) == pytest.approx(1.0)
    assert got["probabilities"] == pytest.approx(expected, abs=1e-5)
    assert [item["id"] for item in got["top"]] == sorted(range(len(expected)), key=lambda k: -expected[k])[:5]
    layers = attention_layers(network)
    assert len(got["heads"]) == 4 * len(layers)
    for item in got["heads"]:
        weights = item["weights"]
        assert [len(row) for row in weights] == list(range(1, len(ids) + 1))  # causal: s <= t only
        assert all(math.fsum(row) == pytest.approx(1.0, abs=1e-5) for row in weights)
        recorded = layers[0].attention_weights[0][item["head"]]
        for t, row in enumerate(weights):
            assert row == pytest.approx(recorded[t][: t + 1], abs=1e-5)
            assert all(value == 0.0 for value in recorded[t][t + 1 :])  # the masked ones the page leaves out


def test_a_cell_s_terms_are_q_dot_k_over_sqrt_d_their_softmax_and_the_weighted_values(served: Running) -> None:
    network, vocabulary = loops_of(served)
    text = "".join(c for c in "ellie to" if c in vocabulary.characters)[:5]
    ids = ids_for(vocabulary, text)
    position = len(ids) - 2
    answer = request(
        served.port, "POST", "/api/text/terms", {"text": text, "place": "2.1", "head": 2, "position": position}
    )
    assert answer.status == 200, answer.body
    got = answer.json()
    network.forward([ids])
    layer = attention_layers(network)[0]
    d = layer.head_dim
    cols = slice(2 * d, 3 * d)
    q = np.array(layer.queries[0][position][cols])
    keys = np.array([layer.keys[0][s][cols] for s in range(position + 1)])
    values = np.array([layer.values[0][s][cols] for s in range(position + 1)])
    scores = keys @ q / np.sqrt(d)  # (20.2)
    weights = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()  # (20.3)
    assert [term["score"] for term in got["terms"]] == pytest.approx(list(scores), abs=1e-12)
    assert [term["weight"] for term in got["terms"]] == pytest.approx(list(weights), abs=1e-12)
    assert got["weighted_sum"] == pytest.approx(list(weights @ values), abs=1e-12)  # (20.4)
    assert got["weights_sum"] == pytest.approx(1.0)
    assert [got["equations"][k][0] for k in ("query", "scores", "softmax", "sum", "projection")] == [
        "20.1", "20.2", "20.3", "20.4", "20.6",
    ]  # fmt: skip
    assert got["lines"][0].startswith(f"Layer 2.1 (CausalSelfAttention(16, 4 heads)), head 2, position {position}")


def stream(port: int, body: dict[str, Any]) -> tuple[http.client.HTTPResponse, list[bytes]]:
    """POST /api/text/generate and read its answer line by line, as it comes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/api/text/generate", json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    lines = [line for line in iter(response.readline, b"")]
    connection.close()
    return response, lines


@pytest.mark.parametrize(("prefix", "temperature", "top_k"), [("", 1.0, None), ("a", 0.8, 5)])
def test_generate_streams_what_the_loops_backend_samples_for_the_seed(
    served: Running, prefix: str, temperature: float, top_k: int | None
) -> None:
    body: dict[str, Any] = {"text": prefix, "length": 40, "seed": 7, "temperature": temperature}
    if top_k is not None:
        body["top_k"] = top_k
    response, lines = stream(served.port, body)
    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Type") == "application/x-ndjson"
    events = [json.loads(line) for line in lines]
    assert events[-1]["done"] is True and all("text" in event for event in events[:-1])
    text = "".join(event["text"] for event in events[:-1])
    network, vocabulary = loops_of(served)
    policy = Policy(temperature, top_k)
    expected = "".join(sample_text(Decoder(network), vocabulary, prefix=prefix, length=40, policy=policy, seed=7))
    assert prefix + text == expected
    assert events[-1]["count"] == len(text) and len(text) <= 40
    assert events[-1]["reason"] == ("length" if len(text) == 40 else "boundary")


def one_line_error(reply: Any, status: int, words: str) -> None:
    assert reply.status == status, reply.body
    message = reply.json()["error"]
    assert words in message and "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/api/text/predict", {"text": "EMMA"}, "the character 'E' (U+0045) is not in the vocabulary"),
        ("/api/text/predict", {"text": "e" * 40}, "the text has 40 characters; this model reads at most"),
        ("/api/text/predict", {"text": 5}, "'text' must be a string, got int"),
        ("/api/text/predict", {"text": "e", "top": 0}, "'top' must be in 1..100"),
        ("/api/text/predict", {"text": "e", "extra": 1}, "unknown field 'extra'"),
        ("/api/text/predict", ["e"], "the request body must be a JSON object"),
        ("/api/text/terms", {"text": "e", "place": "3", "head": 0}, "'place' must name an attention layer (2.1)"),
        ("/api/text/terms", {"text": "e", "place": "2.1", "head": 4}, "'head' must be in 0..3"),
        ("/api/text/terms", {"text": "e", "place": "2.1", "head": 0, "position": 9}, "'position' must be in 0.."),
        ("/api/text/generate", {"text": "e", "length": MAX_GENERATE + 1}, f"'length' must be in 1..{MAX_GENERATE}"),
        ("/api/text/generate", {"text": "e", "temperature": -1}, "'temperature' must be a number from 0 to 100"),
        ("/api/text/generate", {"text": "e", "top_k": 0}, "'top_k' must be in 1.."),
        ("/api/text/generate", {"text": "é"}, "is not in the vocabulary"),
    ],
)
def test_bad_requests_are_a_400_with_one_line(served: Running, path: str, body: Any, words: str) -> None:
    one_line_error(request(served.port, "POST", path, body), 400, words)


def test_bad_json_an_oversized_body_and_wrong_methods_are_refused(served: Running) -> None:
    one_line_error(request(served.port, "POST", "/api/text/predict", raw=b'{"text": "e",}'), 400, "request body")
    one_line_error(request(served.port, "POST", "/api/text/predict", raw=b'{"text": NaN}'), 400, "request body")
    status, answer, closed = raw_exchange(
        served.port,
        b"POST /api/text/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1048577\r\n\r\n",
    )
    assert status == 413 and "the limit is 1048576" in answer["error"] and closed
    one_line_error(request(served.port, "GET", "/api/text/generate"), 405, "takes POST, not GET")
    one_line_error(request(served.port, "POST", "/api/predict", {"pixels": [[0]]}), 404, "no such page")


def test_the_cli_serves_the_text_page_for_a_language_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``scratchnet serve`` picks the page by the model: a language model gets text.html."""
    model: Path = text_model("documents", tmp_path_factory)
    command = [sys.executable, "-m", "scratchnet", "serve", str(model), "--port", "0"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"Serving {model} at http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[-1].split("/")[0])
        assert b"/static/text.js" in request(port, "GET", "/").body
    finally:
        process.terminate()
        process.wait(10)


def test_a_cell_s_terms_are_what_explain_text_prints(served: Running) -> None:
    """The page's printout of a cell is ``scratchnet explain --text --layer --head --position``'s own."""
    got = request(served.port, "POST", "/api/text/terms", {"text": "e", "place": "2.1", "head": 1}).json()
    printed = run_scratchnet("explain", served.session.path, "--text", "e", "--layer", "2", "--head", "1")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    start = lines.index(got["lines"][0])
    assert lines[start : start + len(got["lines"])] == got["lines"]


def test_an_http_1_0_client_gets_the_stream_unchunked_until_the_connection_closes(served: Running) -> None:
    body = json.dumps({"text": "", "length": 5, "seed": 1, "temperature": 0}).encode()
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as connection:
        connection.sendall(
            b"POST /api/text/generate HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        received = b""
        while chunk := connection.recv(65536):  # the server closes the connection at the end
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding" not in head and b"Connection: close" in head
    events = [json.loads(line) for line in rest.splitlines()]
    assert events[-1]["done"] is True and events[-1]["count"] == len(events) - 1
