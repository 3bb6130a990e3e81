"""The Train page of ``scratchnet serve --train`` in a real browser: Playwright drives Debian's chromium
to start runs, watch them learn, pause, step, click a weight, scrub back and resume, and checks what
the page shows against the server's API and the library's own numbers. Skipped when playwright or
chromium is missing (as tests/test_serve_browser.py)."""

from __future__ import annotations

import base64
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from serve_helpers import data_dir_or_skip
from train_serve_helpers import TrainServer, train_server

from scratchnet.data.images import Feeder
from scratchnet.io.model import load_model
from scratchnet.serve.toy_data import toy_dataset

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARGS += ["--disable-sync", "--no-first-run"]
CLASS_COLOURS = [(47, 111, 222), (228, 87, 46), (31, 157, 85)]  # train_draw.js's first three


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[TrainServer]:
    found = data_dir_or_skip()
    with train_server(tmp_path / "models", str(found)) as live:
        yield live


class TrainPage:
    """The Train page, recording what the browser's console says."""

    def __init__(self, browser: Any, live: TrainServer, viewport: tuple[int, int] = (1440, 1000)) -> None:
        self.live = live
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.goto(f"http://127.0.0.1:{live.port}/")
        self.page.wait_for_selector("#to-predict", state="hidden")  # /api/train/info has answered

    def settle(self) -> None:
        """Wait until the page has the answers to every request it made."""
        self.page.wait_for_selector('body[data-busy="0"]', state="attached", timeout=20000)

    def set(self, selector: str, value: str) -> None:
        if self.page.locator(selector).evaluate("(node) => node.tagName") == "SELECT":
            self.page.select_option(selector, value)
        else:
            self.page.fill(selector, value)
            self.page.dispatch_event(selector, "input")

    def step(self) -> int:
        return int(self.page.get_attribute("#step-count", "data-step") or "0")

    def wait_for_step(self, at_least: int, timeout: float = 60000) -> None:
        self.page.wait_for_function(
            "(n) => Number(document.querySelector('#step-count').dataset.step || 0) >= n", arg=at_least, timeout=timeout
        )

    def test_loss(self) -> float:
        return float(self.page.get_attribute("#test-loss", "data-value") or "nan")

    def canvas(self, selector: str) -> npt.NDArray[np.uint8]:
        """A canvas's RGBA pixels."""
        data = self.page.evaluate(
            """(selector) => {
                const canvas = document.querySelector(selector);
                const rgba = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
                let text = "";
                for (let k = 0; k < rgba.length; k++) text += String.fromCharCode(rgba[k]);
                return [canvas.width, canvas.height, btoa(text)];
            }""",
            selector,
        )
        width, height, pixels = data
        return np.frombuffer(base64.b64decode(pixels), np.uint8).reshape(height, width, 4)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, served: TrainServer) -> Iterator[TrainPage]:
    opened = TrainPage(browser, served)
    yield opened
    opened.close()
    assert opened.problems == []  # the browser's console logged no error


def start_spiral(page: TrainPage, lr: str = "0.02") -> None:
    """The spiral, 200 points, a ReLU network of two hidden layers of 16, Adam: started from the page."""
    page.set("#data-kind", "toy")
    page.set("#toy-name", "spiral")
    page.set("#toy-points", "200")
    page.set("#toy-noise", "0.05")
    page.set("#net-depth", "2")
    page.set("#net-width", "16")
    page.set("#net-activation", "relu")
    assert page.page.input_value("#net-layers") == "dense(16), relu, dense(16), relu"
    page.set("#opt-type", "adam")
    page.set("#opt-lr", lr)
    page.set("#epochs", "100000")  # 1,000 epochs of 5 steps end within seconds: the tests pause it themselves
    page.page.click("#start")


def test_the_spiral_learns_live_test_loss_falls_and_the_regions_change(page: TrainPage) -> None:
    start_spiral(page)
    page.wait_for_step(1)
    page.page.wait_for_function("() => document.querySelector('#test-loss').dataset.value !== ''")
    assert page.page.get_attribute("body", "data-run") == "running"
    early_loss, early_step = page.test_loss(), page.step()
    early = page.canvas("#regions")
    page.wait_for_step(early_step + 300)
    later_loss, later = page.test_loss(), page.canvas("#regions")
    state = page.live.ok("GET", "/api/train/state")
    page.page.click("#pause")
    page.page.wait_for_selector('body[data-run="paused"]')
    assert later_loss < early_loss - 0.1, (early_loss, later_loss)
    assert later.shape == early.shape == (320, 320, 4)
    changed = np.any(later != early, axis=2).mean()
    assert changed > 0.05, changed  # the decision regions were redrawn, and moved
    # the points are drawn over the regions: the server's training points, each in its class's colour
    points, regions = state["run"]["points"]["train"], state["regions"]
    assert len(points["x"]) == 160  # 200 points, 20% of them for the test
    (x0, x1), (y0, y1) = regions["x"], regions["y"]
    right = 0
    for x, y, label in zip(points["x"], points["y"], points["label"]):
        column, row = int((x - x0) / (x1 - x0) * 320), int((1 - (y - y0) / (y1 - y0)) * 320)
        right += tuple(later[min(row, 319), min(column, 319), :3]) == CLASS_COLOURS[label]
    assert right >= 0.7 * len(points["x"])  # the others are under another point
    assert float(page.page.inner_text("#test-loss")) == pytest.approx(page.test_loss(), rel=1e-3)
    # the curves are drawn, and the page says what runs
    assert page.canvas("#loss-curve")[:, :, 3].any()
    line = page.page.inner_text("#run-line")
    assert "dense(16), relu, dense(16), relu" in line and "spiral, 200 points" in line and "paused" in line


def test_an_mnist_subset_trains_and_the_first_layer_changes(page: TrainPage) -> None:
    page.set("#data-kind", "mnist")
    page.set("#image-limit", "500")
    page.set("#image-test-limit", "100")
    page.set("#net-depth", "1")
    page.set("#net-width", "16")
    assert page.page.input_value("#net-layers") == "flatten, dense(16), relu"  # the simple controls' MLP
    page.set("#net-layers", "conv(8, 5), relu, maxpool(2), flatten")  # the server draws layer 0's weights
    page.set("#opt-lr", "0.01")
    page.page.click("#start")
    page.page.wait_for_selector("#filters canvas")
    page.wait_for_step(1)
    assert page.page.is_hidden("#regions-panel") and page.page.is_visible("#filters-panel")
    assert page.page.locator("#filters canvas").count() == 8  # one image per filter
    first = page.canvas('#filters canvas[data-unit="0"]')
    assert first.shape == (5, 5, 4)
    before = np.stack([page.canvas(f'#filters canvas[data-unit="{k}"]') for k in range(8)])
    step = page.step()
    page.wait_for_step(step + 40)
    page.page.click("#pause")
    page.page.wait_for_selector('body[data-run="paused"]')
    after = np.stack([page.canvas(f'#filters canvas[data-unit="{k}"]') for k in range(8)])
    assert np.any(after != before, axis=3).mean() > 0.2  # the first layer's filters moved
    state = page.live.ok("GET", "/api/train/state")
    filters = state["filters"]
    assert (filters["count"], filters["height"], filters["width"]) == (8, 5, 5)
    # each filter is drawn in the diverging colours: white where a weight is 0, orange > 0, blue < 0
    assert state["step"] == page.step()
    values = np.asarray(filters["values"]).reshape(8, 5, 5)
    shown = after[:, :, :, :3].astype(int)
    clear = np.abs(values) > 0.05 * np.abs(values).max(axis=(1, 2), keepdims=True)
    assert np.array_equal((shown[..., 0] > shown[..., 2])[clear], (values > 0)[clear])
    assert page.page.locator("#activations .act").count() == len(state["activations"]["layers"])


def pause(page: TrainPage) -> None:
    page.page.click("#pause")
    page.page.wait_for_selector('body[data-run="paused"]')
    page.settle()


def downloaded_model(live: TrainServer, folder: Path) -> Any:
    """The run as it is now, from GET /api/train/download, loaded by the loops backend."""
    reply = live.get("/api/train/download")
    assert reply.status == 200
    archive = folder / "run.zip"
    archive.write_bytes(reply.body)
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
        opened.extractall(folder)
    model = next(name for name in names if name.endswith(".json"))
    return load_model(str(folder / model), backend="loops")


def test_pause_step_and_click_a_weight_shows_the_gradient_explain_backward_gives(
    page: TrainPage, tmp_path: Path
) -> None:
    start_spiral(page)
    page.wait_for_step(30)
    pause(page)
    before = page.step()
    page.page.click("#step")
    page.page.wait_for_function(
        "(n) => Number(document.querySelector('#step-count').dataset.step) === n", arg=before + 1
    )
    assert page.page.get_attribute("body", "data-run") == "paused"
    # the loops backend's gradient of the same state, on test sample 0 (the one inspect differentiates)
    loaded = downloaded_model(page.live, tmp_path)
    network = loaded.network
    data = toy_dataset("spiral", points=200, noise=0.05, test_fraction=0.2, seed=1)
    feeder = Feeder.from_metadata(loaded.metadata, "loops", "float64", tuple(network.input_shape))
    x, label = feeder.inputs(data.test_images[:1])[0], int(data.test_labels[0])
    network.loss(network.forward([x]), [label])
    network.backward()
    grads = np.array(network.grads()["0.weight"], dtype=np.float64)
    j, i = (int(k) for k in np.unravel_index(np.argmax(np.abs(grads)), grads.shape))
    assert abs(grads[j, i]) > 1e-6  # a weight whose gradient is not 0, so the check means something
    weights = np.array(network.params()["0.weight"], dtype=np.float64)
    # layer 0's map shows these weights: orange (red > blue) where positive, blue where negative
    page.settle()
    drawn = page.canvas('#weights canvas[data-parameter="0.weight"]')[..., :3].astype(int)
    assert drawn.shape[:2] == weights.shape
    clear = np.abs(weights) > 0.05 * np.abs(weights).max()
    assert np.array_equal((drawn[..., 0] > drawn[..., 2])[clear], (weights > 0)[clear])
    # click that weight on layer 0's map (one row per unit j, one column per input i)
    canvas = page.page.locator('#weights canvas[data-parameter="0.weight"]')
    box = canvas.bounding_box()
    rows, cols = grads.shape
    canvas.click(position={"x": (i + 0.5) * box["width"] / cols, "y": (j + 0.5) * box["height"] / rows})
    page.page.wait_for_selector("#inspect-gradient")
    page.settle()
    title = page.page.inner_text("#inspect .title")
    assert title.startswith(f"0.weight[{j},{i}] = ") and "for test sample 0" in title
    assert float(page.page.get_attribute("#inspect-value", "data-value") or "nan") == pytest.approx(weights[j, i])
    shown = float(page.page.get_attribute("#inspect-gradient", "data-value") or "nan")
    assert shown == pytest.approx(float(grads[j, i]), rel=1e-6, abs=1e-12)
    fd = float(page.page.get_attribute("#inspect-fd", "data-value") or "nan")
    assert fd == pytest.approx(shown, rel=1e-4, abs=1e-9)
    assert page.page.inner_text("#inspect .check") == "✓ agree"
    # the printout under the card is explain --backward's, and its last line gives the same gradient
    page.page.click("#inspect summary")
    last = (page.page.text_content("#inspect-lines") or "").rstrip().split("\n")[-1]
    assert last.startswith(f"dL/d0.weight[{j},{i}] = ") and "; finite difference " in last
    assert float(last.split(" = ")[1].split(";")[0]) == pytest.approx(float(grads[j, i]), rel=1e-5)
    # each factor of the chain rule carries its equation number; Adam's update is shown row by row
    factors = page.page.locator("#inspect table.factors tr")
    assert factors.count() >= 3 and all(factors.nth(k).inner_text().startswith("(") for k in range(factors.count()))
    rows = dict(
        line.split("\t") for line in page.page.inner_text("#inspect table.kv:not(.factors)").split("\n") if "\t" in line
    )
    assert {"m = b1 m + (1 - b1) g (8.11)", "v = b2 v + (1 - b2) g² (8.12)", "m̂ = m / (1 - b1^t) (8.13)"} < set(rows)
    m_before, m_after = (float(v) for v in rows["m = b1 m + (1 - b1) g (8.11)"].split(" → "))
    g = float(rows["g (its gradient on the batch)"])
    assert m_after == pytest.approx(0.9 * m_before + 0.1 * g, rel=1e-4, abs=1e-9)  # (8.11), with Adam's beta1
    assert float(rows["new value"]) == pytest.approx(weights[j, i] + float(rows["step (the change)"]), rel=1e-5)
    # another sample: its activations are shown, and the same weight's gradient is its own
    x3, label3 = feeder.inputs(data.test_images[3:4])[0], int(data.test_labels[3])
    network.loss(network.forward([x3]), [label3])
    network.backward()
    expected = float(np.array(network.grads()["0.weight"], dtype=np.float64)[j, i])
    page.page.fill("#sample-index", "3")
    page.page.click("#sample-show")
    page.page.wait_for_function(
        "() => document.querySelector('#inspect .title') && document.querySelector('#inspect .title').textContent"
        ".includes('for test sample 3')"
    )
    page.settle()
    assert page.page.inner_text("#sample-note").startswith(f"test sample 3, label {label3}")
    shown = float(page.page.get_attribute("#inspect-gradient", "data-value") or "nan")
    assert shown == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_scrub_back_and_resume_from_there(page: TrainPage) -> None:
    start_spiral(page)
    page.wait_for_step(80)
    pause(page)
    live_regions = page.canvas("#regions")
    kept = page.live.ok("GET", "/api/train/snapshots")["kept"]
    target = next(snapshot for snapshot in kept if snapshot["step"] == 20)
    page.page.eval_on_selector(
        "#travel", "(slider, step) => { slider.value = String(step); slider.dispatchEvent(new Event('input')); }", 20
    )
    page.page.wait_for_selector('body[data-travel="past"]')
    page.page.wait_for_function("() => document.querySelector('#step-count').dataset.step === '20'")
    page.settle()
    assert page.page.inner_text("#travel-label") == "step 20"
    assert page.test_loss() == pytest.approx(target["test_loss"], rel=1e-9)
    past_regions = page.canvas("#regions")
    assert np.any(past_regions != live_regions, axis=2).mean() > 0.01  # step 20's regions, not the live ones
    assert "kept step 20" in page.page.inner_text("#run-line")
    page.page.click("#fork")
    page.page.wait_for_selector('body[data-travel="live"]')
    page.settle()
    state = page.live.ok("GET", "/api/train/state")
    assert state["step"] == 20 and state["status"] == "paused" and page.step() == 20
    assert state["test_loss"] == pytest.approx(target["test_loss"], rel=1e-9)
    assert np.array_equal(page.canvas("#regions"), past_regions)  # the run is step 20's again
    assert max(state["curves"]["step"]) == 20  # its curves end there: the later steps are gone
    page.page.click("#pause")  # "Resume"
    page.wait_for_step(40)
    pause(page)
    assert page.live.ok("GET", "/api/train/snapshots")["kept"][-1]["step"] >= 40


def test_a_csv_file_trains_and_one_over_the_bound_is_refused_before_it_is_sent(page: TrainPage, tmp_path: Path) -> None:
    assert page.page.inner_text("#csv-bound") == "1 MB"  # the bound the server gives, shown by the field
    big = tmp_path / "big.csv"
    big.write_text("x,y,label\n" + "0.5,0.25,1\n" * 100_000)  # 1.1 MB
    page.set("#data-kind", "csv")
    page.page.set_input_files("#csv-file", str(big))
    page.page.click("#start")
    page.page.wait_for_selector("#setup-error:not([hidden])")
    assert page.page.inner_text("#setup-error") == f"big.csv is {big.stat().st_size} bytes; the limit is 1048576"
    assert page.live.ok("GET", "/api/train/state")["status"] == "idle"  # nothing was sent
    rows = ["x,y,label"]
    for k in range(80):  # two clusters, one per class
        rows.append(f"{(k % 2) * 2 - 1 + 0.01 * (k % 7)},{0.02 * (k % 5)},{k % 2}")
    table = tmp_path / "two.csv"
    table.write_text("\n".join(rows) + "\n")
    page.page.set_input_files("#csv-file", str(table))
    page.page.click("#start")
    page.wait_for_step(1)
    assert page.page.is_hidden("#setup-error")
    assert page.page.inner_text("#csv-note") == "two.csv: 80 rows, samples of 2, 2 classes"
    state = page.live.ok("GET", "/api/train/state")
    assert state["run"]["data"]["kind"] == "csv" and state["regions"] is not None  # 2-D: the regions are drawn
    pause(page)


def test_a_second_tab_watches_the_live_rate_is_recorded_and_the_run_saves(
    browser: Any, page: TrainPage, tmp_path: Path
) -> None:
    start_spiral(page)
    page.wait_for_step(10)
    second = TrainPage(browser, page.live, viewport=(1000, 800))
    try:
        second.wait_for_step(1)
        second.wait_for_step(second.step() + 10)  # the same run, going on in the second tab
        assert second.page.get_attribute("body", "data-run") == "running"
        assert "spiral, 200 points" in second.page.inner_text("#run-line")
        page.page.eval_on_selector(
            "#live-lr", "(slider) => { slider.value = '-3'; slider.dispatchEvent(new Event('change')); }"
        )
        page.page.wait_for_function("() => document.querySelector('#run-line').textContent.includes('lr 0.001')")
        changes = page.live.ok("GET", "/api/train/state")["lr_changes"]
        assert [(c["from"], c["to"]) for c in changes] == [(0.02, 0.001)]
        second.page.wait_for_function("() => document.querySelector('#run-line').textContent.includes('lr 0.001')")
        assert second.problems == []
    finally:
        second.close()
    pause(page)
    page.page.fill("#save-name", "../spiral run")  # a name, never a path
    page.page.click("#save")
    page.page.wait_for_function("() => document.querySelector('#save-note').textContent !== ''")
    note = page.page.inner_text("#save-note")
    saved = sorted(path.name for path in (tmp_path / "models").iterdir())
    assert saved == ["spiral-run.json", "spiral-run.npz"]  # in the models folder, under a safe name
    assert note.startswith("saved as ") and saved[0] in note
