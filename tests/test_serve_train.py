"""The Train mode of ``scratchnet serve`` (issue 28, items 1-3), over HTTP: a spiral run learns; one
step moves a weight by exactly the optimizer's update; inspect's gradient is both backends' and a
finite difference computed here; a fork restores the exact parameters of its step; the bounds and
4xx answers; the idle stop. Runs are tiny (a few hundred steps of a 2-16-16-2 network)."""

from __future__ import annotations

import io
import math
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serve_helpers import data_dir_or_skip, request
from subprocesses import run_scratchnet
from tool_modules import tool
from train_serve_helpers import SPIRAL, TrainServer, read_events, train_server

from scratchnet.builders import build_network
from scratchnet.data import load_dataset
from scratchnet.data.images import Feeder
from scratchnet.io.model import load_model
from scratchnet.serve.snapshots import SnapshotRing, take
from scratchnet.serve.toy_data import toy_dataset
from scratchnet.training.checkpoint import RunState

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def live(tmp_path: Path) -> Iterator[TrainServer]:
    with train_server(tmp_path / "models") as server:
        yield server


def start(live: TrainServer, **changes: Any) -> dict[str, Any]:
    return dict(live.ok("POST", "/api/train/start", {**SPIRAL, **changes}))


def step(live: TrainServer, steps: int = 1) -> dict[str, Any]:
    return dict(live.ok("POST", "/api/train/control", {"action": "step", "steps": steps}))


def downloaded(live: TrainServer, folder: Path) -> Path:
    """The run as a model, downloaded and unzipped into ``folder``: its JSON file."""
    reply = live.get("/api/train/download")
    assert reply.status == 200 and reply.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(reply.body)) as archive:
        names = archive.namelist()
        archive.extractall(folder)
    assert len(names) == 2 and {Path(name).suffix for name in names} == {".json", ".npz"}
    return folder / next(name for name in names if name.endswith(".json"))


def params_of(model: Path) -> dict[str, Any]:
    return {name: np.array(value) for name, value in load_model(model).network.params().items()}


# ---- item 1: live training ----


def test_the_spiral_run_learns_and_its_regions_change(live: TrainServer) -> None:
    first = start(live, paused=False)
    assert first["run"]["network"]["notation"] == "2-16-16-2"
    assert first["run"]["sizes"] == {"train": 150, "test": 50}
    assert len(first["run"]["points"]["train"]["x"]) == 150
    state = live.wait_for(lambda s: s["step"] >= 400)
    live.ok("POST", "/api/train/control", {"action": "pause"})
    losses = [loss for loss in state["curves"]["test_loss"] if loss is not None]
    assert losses[0] > math.log(2) * 0.9  # about chance, or worse, before training ...
    assert state["test_loss"] < 0.3 and state["test_accuracy"] >= 0.9  # ... learned: two spirals of 25 test points
    before, after = first["regions"], state["regions"]
    assert before["size"] == after["size"] == 64 and len(after["predicted"]) == 64 * 64
    changed = sum(a != b for a, b in zip(before["predicted"], after["predicted"]))
    assert changed > 100  # the decision regions were redrawn
    assert state["diagnostics"] is not None and state["diagnostics"]["layers"]


def test_the_regions_are_the_networks_classes_on_the_grid(live: TrainServer, tmp_path: Path) -> None:
    start(live)
    state = step(live, 20)
    loaded = load_model(downloaded(live, tmp_path))
    feeder = Feeder.from_metadata(loaded.metadata, "vectorized", "float64", (2,))
    regions = state["regions"]
    (x0, x1), (y0, y1) = regions["x"], regions["y"]
    for row, col in ((0, 0), (10, 50), (40, 7), (63, 63)):  # row 0 is the top (the highest y)
        x = x0 + (col + 0.5) * (x1 - x0) / 64
        y = y1 - (row + 0.5) * (y1 - y0) / 64
        outputs = np.asarray(loaded.network.forward(feeder.inputs(np.array([[x, y]]))))
        assert regions["predicted"][row * 64 + col] == int(np.argmax(outputs))


def test_events_stream_the_states_and_a_second_page_watches_the_same_run(live: TrainServer) -> None:
    start(live, paused=False)
    first, second = read_events(live.port, 3), read_events(live.port, 2)
    assert first[0]["run"] is not None and first[1]["run"] is None and first[2]["run"] is None
    assert first[0]["step"] < first[1]["step"] < first[2]["step"]
    assert {state["run_id"] for state in first + second} == {1}
    live.ok("POST", "/api/train/control", {"action": "pause"})


def test_the_learning_rate_changes_and_is_recorded(live: TrainServer, tmp_path: Path) -> None:
    start(live)
    step(live, 5)
    state = live.ok("POST", "/api/train/control", {"action": "lr", "lr": 0.005})
    assert state["lr"] == 0.005 and state["lr_changes"] == [{"step": 5, "from": 0.02, "to": 0.005}]
    state = step(live, 5)
    assert state["curves"]["lr"][-1] == 0.005
    model = load_model(downloaded(live, tmp_path))
    assert any(record.get("changed") for record in model.metadata["training"]["history"])


def test_an_mnist_subset_shows_its_first_layer_changing(live: TrainServer) -> None:
    data_dir_or_skip()
    body = {
        "data": {"kind": "mnist", "limit": 200, "test_limit": 100},
        "network": {"layers": "flatten, dense(8), relu"},
    }
    first = start(live, **body, batch_size=20)
    assert first["regions"] is None and first["run"]["points"] is None
    filters = first["filters"]
    assert (filters["count"], filters["height"], filters["width"]) == (8, 28, 28)
    later = step(live, 10)["filters"]
    assert later["values"] != filters["values"]


# ---- item 3: one step made visible ----


@pytest.mark.parametrize("backend", ["vectorized", "loops"])
@pytest.mark.parametrize("optimizer", [{"type": "sgd", "lr": 0.1}, {"type": "adam", "lr": 0.02}])
def test_a_step_moves_a_weight_by_exactly_the_optimizers_update(
    live: TrainServer, optimizer: dict[str, Any], backend: str
) -> None:
    start(live, optimizer=optimizer, backend=backend)
    step(live, 7)
    where = {"parameter": "2.weight", "index": [4, 9]}
    seen = live.ok("POST", "/api/train/inspect", where)
    update = seen["update"]
    w, g, lr = seen["value"], update["gradient"], optimizer["lr"]
    if optimizer["type"] == "sgd":  # (8.1) w - lr * g, in float32 (vectorized) or float64 (loops)
        kind = np.float32 if backend == "vectorized" else np.float64
        expected = float(kind(w) - kind(lr) * kind(g))
    else:  # (8.11-8.13), by hand, in float64
        m = 0.9 * update["m"]["before"] + 0.1 * g
        v = 0.999 * update["v"]["before"] + 0.001 * g * g
        t = update["t"]
        assert t == 8 and update["m"]["after"] == pytest.approx(m, rel=1e-5)
        assert update["v"]["after"] == pytest.approx(v, rel=1e-5)
        assert update["m_hat"] == pytest.approx(m / (1 - 0.9**t), rel=1e-5)
        expected = w - lr * (m / (1 - 0.9**t)) / (math.sqrt(v / (1 - 0.999**t)) + 1e-8)
    assert update["new_value"] == pytest.approx(expected, rel=1e-5, abs=1e-7)
    after = step(live)
    assert after["step"] == 8
    assert live.ok("POST", "/api/train/inspect", where)["value"] == update["new_value"]  # exactly


def test_inspect_gives_both_backends_gradient_and_a_finite_difference(live: TrainServer, tmp_path: Path) -> None:
    start(live)
    step(live, 30)
    live.ok("POST", "/api/train/control", {"action": "sample", "split": "train", "index": 11})
    weights = [("2.weight", (5, 3)), ("0.weight", (7, 1)), ("4.bias", (1,))]
    model = downloaded(live, tmp_path)
    data = toy_dataset("spiral", 200, 0.05, None, 0.25, 1)  # SPIRAL's data, made here
    for name, index in weights:
        seen = live.ok("POST", "/api/train/inspect", {"parameter": name, "index": list(index)})
        assert seen["sample"] == {"split": "train", "index": 11, "label": int(data.train_labels[11])}
        chain = seen["chain"]
        assert chain["lines"][-1].startswith(f"dL/d{name}[{','.join(map(str, index))}] = ")
        expected = []
        for backend in ("loops", "vectorized"):
            loaded = load_model(model, backend="loops")
            net: Any = build_network(loaded.architecture, backend=backend, dtype="float64")
            params = loaded.network.params()
            net.set_params(params if backend == "loops" else {k: np.array(v) for k, v in params.items()})
            feeder = Feeder.from_metadata(loaded.metadata, backend, "float64", (2,))
            x = feeder.inputs(data.train_images[11:12])
            label = [int(data.train_labels[11])]
            net.loss(net.forward(x, training=False), label if backend == "loops" else np.array(label))
            net.backward()
            expected.append(float(np.asarray(net.grads()[name], dtype=np.float64)[index]))
            if backend == "loops":
                w = float(np.asarray(params[name])[index])
                h = 1e-6
                losses = []
                for shifted in (w + h, w - h):
                    changed = {k: np.array(v) for k, v in params.items()}
                    changed[name][index] = shifted
                    net.set_params({k: v.tolist() for k, v in changed.items()})
                    losses.append(net.loss(net.forward(x, training=False), label))
                difference = (losses[0] - losses[1]) / (2 * h)
        assert chain["gradient"] == pytest.approx(expected[0], rel=1e-9, abs=1e-12)
        assert chain["gradient"] == pytest.approx(expected[1], rel=1e-9, abs=1e-12)
        assert chain["finite_difference"] == pytest.approx(difference, rel=1e-4, abs=1e-8)
        assert chain["gradient"] == pytest.approx(difference, rel=1e-4, abs=1e-8)
    dense = live.ok("POST", "/api/train/inspect", {"parameter": "2.weight", "index": [5, 3]})["chain"]
    factors = {factor["symbol"]: factor for factor in dense["factors"]}
    delta, a = factors["delta_j"]["value"], factors["a_i"]["value"]
    assert factors["a_i"]["equation"] == "3.2" and delta * a == pytest.approx(dense["gradient"], rel=1e-9, abs=1e-15)
    if factors["delta_j"]["equation"] == "4":  # delta_j = (sum_k w_kj delta_k) f'(z_j)
        product = factors["sum_k w_kj delta_k"]["value"] * factors["f'(z_j)"]["value"]
        assert delta == pytest.approx(product, rel=1e-9, abs=1e-15)


# ---- item 2: time travel ----


@pytest.mark.parametrize("backend", ["vectorized", "loops"])
def test_a_fork_restores_the_exact_parameters_of_its_step(live: TrainServer, tmp_path: Path, backend: str) -> None:
    start(live, backend=backend)
    step(live, 10)
    at_ten = params_of(downloaded(live, tmp_path / "a"))
    step(live, 12)
    kept = live.ok("GET", "/api/train/snapshots")
    assert [entry["step"] for entry in kept["kept"]] == [0, 5, 10, 15, 20]
    past = live.ok("GET", "/api/train/snapshot?step=10")
    assert past["past"] == 10 and past["curves"]["step"] == [0, 5, 10]
    forked = live.ok("POST", "/api/train/fork", {"step": 10})
    assert (forked["status"], forked["step"]) == ("paused", 10) and forked["snapshots"]["last"] == 10
    after_fork = params_of(downloaded(live, tmp_path / "b"))
    assert all(np.array_equal(at_ten[name], after_fork[name]) for name in at_ten)
    step(live, 5)  # the same batches and optimizer state: the same parameters as a run never forked
    forked_on = params_of(downloaded(live, tmp_path / "c"))
    start(live, backend=backend)
    step(live, 15)
    straight = params_of(downloaded(live, tmp_path / "d"))
    assert all(np.array_equal(forked_on[name], straight[name]) for name in straight)


def test_the_loops_backend_trains_the_same_run(live: TrainServer) -> None:
    start(live)
    vectorized = step(live, 10)
    loops = start(live, backend="loops")
    assert loops["run"]["backend"] == "loops"
    later = step(live, 10)  # the same batches and initial weights, in float64 rather than float32
    assert later["step"] == 10 and later["test_loss"] == pytest.approx(vectorized["test_loss"], rel=1e-4)


# ---- saving ----


def test_save_writes_a_model_under_a_safe_name_and_never_overwrites_unasked(live: TrainServer, tmp_path: Path) -> None:
    start(live)
    step(live, 3)
    saved = live.ok("POST", "/api/train/save", {"name": "../../etc/my spiral!"})
    assert saved["name"] == "etc-my-spiral" and Path(saved["path"]).parent == tmp_path / "models"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["etc-my-spiral.json", "etc-my-spiral.npz"]
    again = live.post("/api/train/save", {"name": "etc-my-spiral"})
    assert again.status == 409 and "overwrite" in again.json()["error"]
    step(live, 2)
    assert live.ok("POST", "/api/train/save", {"name": "etc-my-spiral", "overwrite": True})["replaced"] is True
    model = load_model(tmp_path / "models" / "etc-my-spiral.json")
    assert model.metadata["training"]["served"]["step"] == 5
    assert not (tmp_path / "etc").exists()


# ---- bounds and 4xx ----

BAD_STARTS = [
    ({}, "missing field 'data'"),
    ({"data": {"kind": "toy", "name": "moons"}}, "'data.name' must be one of spiral, circles, xor, blobs"),
    ({"data": {"kind": "toy", "name": "spiral", "points": 5000}}, "'data.points' must be in 20..2000"),
    ({"data": {"kind": "toy", "name": "xor", "classes": 3}}, "the xor set has 2 classes, not 3"),
    ({"data": {"kind": "toy", "name": "spiral", "noise": float("1e400")}}, "Infinity is not a JSON number"),
    ({"data": {"kind": "toy", "name": "spiral", "noise": 2}}, "'data.noise' must be in 0..1, got 2"),
    ({"data": {"kind": "mnist", "limit": 100000}}, "'data.limit' must be in 100..10000"),
    ({"data": {"kind": "csv", "upload": "upload-none"}}, "no upload 'upload-none' is kept"),
    ({"data": {"kind": "file", "path": "/etc/passwd"}}, "'data.kind' must be one of toy, mnist, fashion-mnist, csv"),
    ({**SPIRAL, "backend": "gpu"}, "'backend' must be one of vectorized, loops"),
    ({**SPIRAL, "batch_size": 0}, "'batch_size' must be in 1..1000"),
    ({**SPIRAL, "network": {"layers": "dense(4096), relu, dense(4096)"}}, "the network has"),
    (
        {**SPIRAL, "backend": "loops", "network": {"layers": "dense(100), relu, dense(100), relu"}},
        "the network has 10602 parameters; the loops backend takes at most 5000",
    ),
    ({**SPIRAL, "network": {"layers": "dense(100000), relu, dense(100000)"}}, "more than the limit"),
    ({**SPIRAL, "network": {"layers": "dense(x)"}}, "dense"),
    ({**SPIRAL, "optimizer": {"type": "adam", "lr": -1}}, "lr"),
    ({**SPIRAL, "optimizer": {"type": "adam", "schedule": {"type": "cosine"}}}, "no learning-rate schedule"),
    ({**SPIRAL, "extra": 1}, "unknown field 'extra'"),
]


@pytest.mark.parametrize(("body", "message"), BAD_STARTS)
def test_a_bad_start_is_a_one_line_400(live: TrainServer, body: dict[str, Any], message: str) -> None:
    reply = live.post("/api/train/start", body)
    answer = reply.json()
    assert reply.status in (400, 404) and answer["status"] == reply.status, answer
    assert message in answer["error"] and "\n" not in answer["error"] and len(answer["error"]) < 400


def test_one_run_per_server_and_the_409s(live: TrainServer) -> None:
    assert live.post("/api/train/control", {"action": "pause"}).status == 409  # no run yet
    start(live, paused=False)
    assert live.post("/api/train/start", SPIRAL).status == 409  # running: pause it first
    assert live.post("/api/train/inspect", {"parameter": "0.weight", "index": [0, 0]}).status == 409
    assert live.post("/api/train/control", {"action": "step"}).status == 409
    live.ok("POST", "/api/train/control", {"action": "pause"})
    assert start(live)["run_id"] == 2  # paused: replaced
    assert live.get("/api/train/snapshot?step=3").status == 404  # not a kept step
    assert live.post("/api/train/fork", {"step": 7}).status == 404
    for body, message in (
        ({"action": "jump"}, "'action' must be one of"),
        ({"action": "lr", "lr": 0}, "'lr' must be in"),
        ({"action": "step", "steps": 100000}, "'steps' must be in 1..1000"),
        ({"action": "sample", "index": 50}, "'index' must be in 0..49"),
        ({"parameter": "0.weight", "index": [99, 0]}, "'index' must be in 0..15"),
        ({"parameter": "9.weight", "index": [0, 0]}, "'parameter' must be one of the trained arrays"),
    ):
        path = "/api/train/inspect" if "parameter" in body else "/api/train/control"
        reply = live.post(path, body)
        assert reply.status == 400 and message in reply.json()["error"], reply.json()


def test_the_train_api_has_the_predict_apis_host_and_body_checks(live: TrainServer) -> None:
    evil = request(live.port, "GET", "/api/train/state", headers={"Host": "evil.example"})
    assert evil.status == 403 and "not for Host 'evil.example'" in evil.json()["error"]
    assert request(live.port, "GET", "/api/train/events", headers={"Host": "evil.example"}).status == 403
    wrong_type = request(live.port, "POST", "/api/train/start", raw=b"{}", headers={"Content-Type": "text/plain"})
    assert wrong_type.status == 415
    assert request(live.port, "POST", "/api/train/start", raw=b'{"data": NaN}').status == 400
    assert request(live.port, "POST", "/api/train/start", raw=b'{"data": 1, "data": 2}').status == 400
    assert live.get("/api/train/start").status == 405 and live.post("/api/train/state", {}).status == 405


def test_an_uploaded_csv_trains(live: TrainServer) -> None:
    rows = [f"{x / 10:.1f},{(x * 7) % 10 / 10:.1f},{'left' if x < 30 else 'right'}" for x in range(60)]
    csv = ("x,y,label\n" + "\n".join(rows) + "\n").encode()
    reply = request(live.port, "POST", "/api/train/upload", raw=csv, headers={"Content-Type": "text/csv"})
    answer = reply.json()
    assert reply.status == 200 and (answer["rows"], answer["features"], answer["class_names"]) == (
        60,
        [2],
        ["left", "right"],
    )
    state = start(live, data={"kind": "csv", "upload": answer["upload"], "test_fraction": 0.25})
    # stratified: a quarter of each class's 30 rows, 7.5, rounded up
    assert state["run"]["sizes"] == {"train": 44, "test": 16} and state["regions"] is not None
    bad = request(live.port, "POST", "/api/train/upload", raw=b"a,b\n1,2\n1,x\n", headers={"Content-Type": "text/csv"})
    assert bad.status == 400 and "\n" not in bad.json()["error"] and "/tmp" not in bad.json()["error"]


def test_a_run_with_no_page_stops(tmp_path: Path) -> None:
    with train_server(tmp_path, idle_seconds=0.5) as live:
        start(live, paused=False)
        run = live.train.run
        assert run is not None
        ends = time.monotonic() + 20.0  # nothing asks for the run from here on
        while run.status == "running" and time.monotonic() < ends:
            time.sleep(0.1)
        state = live.ok("GET", "/api/train/state")
        assert state["status"] == "stopped" and "no page has asked for the run for 0.5 seconds" in state["reason"]
        assert live.ok("POST", "/api/train/control", {"action": "resume"})["status"] == "running"
        live.ok("POST", "/api/train/control", {"action": "pause"})


def test_serve_needs_a_model_or_train(tmp_path: Path) -> None:
    result = run_scratchnet("serve", cwd=tmp_path)
    assert result.returncode != 0
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("serve needs a model (MODEL.json), or --train for the Train mode")
    )


def test_the_streaming_benchmark_runs_a_tiny_round(capsys: pytest.CaptureFixture[str]) -> None:
    """A smoke run of tools/bench_serve_train.py: 20 steps each way (its figure means nothing here)."""
    assert tool("bench_serve_train").main(["--steps", "20", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("the spiral run: 20 steps of 'dense(16), relu, dense(16), relu' (vectorized)")
    assert lines[1].startswith("  without a page: ") and lines[2].startswith("  with a page: ")
    assert lines[3].startswith("streaming overhead: ") and lines[3].endswith("(target: at most +10%)")


def test_serve_train_serves_the_train_mode_until_ctrl_c(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "scratchnet", "serve", "--train", "--port", "0", "--models", str(tmp_path / "m")]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("Serving the Train mode at http://127.0.0.1:") and "(Ctrl-C stops)" in line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        info = request(port, "GET", "/api/train/info").json()
        assert info["models"] == str(tmp_path / "m") and info["model_mode"] is False
        assert request(port, "GET", "/api/model").status == 404
        assert request(port, "GET", "/").status == 200
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130 and err == "scratchnet serve: interrupted\n" and out == ""


def test_inspect_shows_a_convolution_weights_gradient_on_mnist(live: TrainServer, tmp_path: Path) -> None:
    data_dir_or_skip()
    body = {
        "data": {"kind": "mnist", "limit": 100, "test_limit": 100},
        "network": {"layers": "conv(2, 3), relu, flatten"},
    }
    start(live, **body, batch_size=10)
    state = step(live, 3)
    assert state["filters"]["parameter"] == "0.weight" and state["filters"]["count"] == 2
    assert (state["filters"]["height"], state["filters"]["width"]) == (3, 3)
    seen = live.ok("POST", "/api/train/inspect", {"parameter": "0.weight", "index": [1, 0, 2, 0]})
    chain = seen["chain"]
    assert chain["factors"] == [] and any(row["equation"] for row in chain["rows"])
    loaded = load_model(downloaded(live, tmp_path))
    net: Any = build_network(loaded.architecture, backend="vectorized", dtype="float64")
    net.set_params({k: np.array(v, dtype=np.float64) for k, v in loaded.network.params().items()})
    feeder = Feeder.from_metadata(loaded.metadata, "vectorized", "float64", (1, 28, 28))
    test = load_dataset("mnist", data_dir_or_skip(), splits=("test",), download=False)
    x = feeder.inputs(test.test_images[:1])
    net.loss(net.forward(x), np.array([int(test.test_labels[0])]))
    net.backward()
    expected = float(net.grads()["0.weight"][1, 0, 2, 0])
    assert seen["sample"] == {"split": "test", "index": 0, "label": int(test.test_labels[0])}
    assert chain["gradient"] == pytest.approx(expected, rel=1e-7, abs=1e-12)
    assert chain["finite_difference"] == pytest.approx(expected, rel=1e-3, abs=1e-7)


def test_a_run_that_diverges_stops_and_its_state_is_still_json(live: TrainServer) -> None:
    start(live, optimizer={"type": "sgd", "lr": 1e8}, paused=False)
    state = live.wait_for(lambda s: s["status"] != "running", seconds=60)
    assert state["status"] == "stopped" and "the run diverged" in state["reason"]
    assert live.get("/api/train/state").status == 200 and len(read_events(live.port, 1)) == 1
    assert live.ok("GET", "/api/train/snapshots")["kept"][0]["step"] == 0  # it can go back to before it


def test_a_step_that_fails_stops_the_run_in_one_line(live: TrainServer, monkeypatch: pytest.MonkeyPatch) -> None:
    start(live)
    run = live.train.run
    assert run is not None

    def broken() -> float:
        raise RuntimeError("no memory left, say")

    monkeypatch.setattr(run.loop, "step", broken)
    state = step(live)
    assert state["status"] == "stopped"
    assert state["reason"] == "the run failed at step 0: RuntimeError: no memory left, say"
    assert live.ok("GET", "/api/train/info")["toy_sets"]["spiral"]["classes"] == 2  # the server goes on


def test_the_snapshot_ring_keeps_the_latest_within_its_count_and_bytes() -> None:
    state = RunState()

    def snapshot(step: int, floats: int) -> Any:
        return take(step, 0.0, {"0.weight": np.zeros(floats)}, {"step": step, "arrays": {}}, 0.1, state, {}, [])

    ring = SnapshotRing(every=5, capacity=3, max_bytes=10**9)
    for k in range(6):
        ring.keep(snapshot(5 * k, 10))
    assert [s.step for s in ring.kept] == [15, 20, 25]
    ring = SnapshotRing(every=5, capacity=100, max_bytes=3 * 800 + 100)  # three snapshots of 100 float64
    for k in range(6):
        ring.keep(snapshot(5 * k, 100))
    assert [s.step for s in ring.kept] == [15, 20, 25] and ring.nbytes == 3 * 800 + 3 * 8  # + the step counts
    ring.drop_after(15)
    assert [s.step for s in ring.kept] == [15] and ring.nbytes == 808


def test_the_toy_sets_are_what_they_say_and_seeded() -> None:
    xor = toy_dataset("xor", 400, 0.0, None, 0.25, 7)
    assert (len(xor.train_labels), len(xor.test_labels)) == (300, 100)
    points, labels = (
        np.concatenate([xor.train_images, xor.test_images]),
        np.concatenate([xor.train_labels, xor.test_labels]),
    )
    assert np.array_equal(labels, (points[:, 0] * points[:, 1] > 0).astype(np.uint8))
    circles = toy_dataset("circles", 400, 0.0, None, 0.0, 1)
    radius = np.hypot(circles.train_images[:, 0], circles.train_images[:, 1])
    assert radius[circles.train_labels == 0].max() <= 0.5 + 1e-6
    assert radius[circles.train_labels == 1].min() >= 0.7 - 1e-6 and radius.max() <= 1.0 + 1e-6
    blobs = toy_dataset("blobs", 600, 0.0, 5, 0.0, 1)
    assert blobs.num_classes == 5 and np.bincount(blobs.train_labels).tolist() == [120] * 5
    again, other = toy_dataset("spiral", 200, 0.1, None, 0.2, 3), toy_dataset("spiral", 200, 0.1, None, 0.2, 4)
    first = toy_dataset("spiral", 200, 0.1, None, 0.2, 3)
    assert np.array_equal(first.train_images, again.train_images) and not np.array_equal(
        first.train_images, other.train_images
    )
    assert np.hypot(*toy_dataset("spiral", 200, 0.0, 3, 0.0, 1).train_images.T).max() <= 1.0 + 1e-6
