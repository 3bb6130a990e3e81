"""``scratchnet serve``'s page in a real browser: Playwright drives Debian's chromium (``.ci/run``
installs it) to draw digits with the mouse and a finger, browse the test set and click units, and
checks the page against the library's own numbers. Skipped when playwright or chromium is missing."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from serve_helpers import Running, data_dir_or_skip, expected_probabilities, running, trained_model

from scratchnet.data import load_dataset
from scratchnet.data.images import Feeder
from scratchnet.data.preprocess import preprocess
from scratchnet.io.model import load_model
from scratchnet.serve.api import Session
from scratchnet.teaching.explain import explain_unit, format_unit

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARGS += ["--disable-sync", "--no-first-run"]
SEVEN = [(60, 55), (215, 55), (210, 75), (165, 150), (130, 235)]  # a 7 on the 280x280 pad: bar, then stem


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    model = trained_model(request.param, tmp_path_factory)
    with running(Session(str(model), str(data_dir_or_skip()))) as live:
        yield live


class Page:
    """A page of the served model, recording what the browser's console says."""

    def __init__(self, browser: Any, live: Running, viewport: tuple[int, int] = (1360, 900), **context: Any) -> None:
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, **context)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.goto(live.url)
        self.page.wait_for_selector(".prob")
        self.settle()

    def settle(self) -> None:
        """Wait until the page shows the answers to every request it made."""
        self.page.wait_for_selector('body[data-busy="0"]', state="attached", timeout=20000)

    def draw(self, points: Sequence[tuple[float, float]], steps: int = 12) -> None:
        box = self.page.locator("#pad").bounding_box()
        mouse = self.page.mouse
        mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        mouse.down()
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            for t in range(1, steps + 1):
                mouse.move(box["x"] + x0 + (x1 - x0) * t / steps, box["y"] + y0 + (y1 - y0) * t / steps)
        mouse.up()
        self.settle()

    def canvas(self, selector: str) -> npt.NDArray[np.uint8]:
        """The red channel of a canvas, as the grey image it shows."""
        data = self.page.evaluate(
            """(selector) => {
                const canvas = document.querySelector(selector);
                const rgba = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
                let grey = "";
                for (let k = 0; k < rgba.length; k += 4) grey += String.fromCharCode(rgba[k]);
                return [canvas.width, canvas.height, btoa(grey)];
            }""",
            selector,
        )
        width, height, grey = data
        return np.frombuffer(base64.b64decode(grey), np.uint8).reshape(height, width)

    def shown(self) -> tuple[str, list[float]]:
        """The predicted class the page shows and the probability of each class's bar."""
        predicted = self.page.get_attribute("#prediction", "data-class") or ""
        bars = self.page.locator(".prob")
        return predicted, [float(bars.nth(k).get_attribute("data-p") or "nan") for k in range(bars.count())]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, served: Running) -> Iterator[Page]:
    opened = Page(browser, served)
    yield opened
    opened.close()
    assert opened.problems == []  # the browser's console logged no error


def test_drawing_shows_the_models_prediction_for_the_preprocessed_image(page: Page, served: Running) -> None:
    predicted, probabilities = page.shown()
    assert predicted == "" and page.page.inner_text("#predicted-p") == "draw a digit"
    page.draw(SEVEN)
    drawn = page.canvas("#pad")
    assert drawn.shape == (280, 280) and int(drawn.max()) == 255
    pixels, expected = expected_probabilities(Path(served.session.path), drawn)
    predicted, probabilities = page.shown()
    assert predicted == str(int(np.argmax(expected)))
    assert probabilities == pytest.approx(expected.tolist(), abs=1e-6)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(page.canvas("#seen"), pixels)  # the 28x28 image the network saw
    assert page.page.inner_text("#predicted-class") == predicted
    note = page.page.inner_text("#seen-note")
    assert note.startswith("The ink (") and ("scaled to 20x" in note or "x20 and centred" in note)
    # every hidden layer is drawn
    for layer in served.session.shown:
        node = page.page.locator(f'.layer[data-index="{layer.index}"]')
        assert node.count() == 1
        if len(layer.shape) == 3:
            assert node.locator("canvas").count() == layer.shape[0]
        else:
            assert node.locator(".cell").count() == layer.shape[0]
    page.page.click("#clear")
    page.settle()
    assert page.shown()[0] == "" and int(page.canvas("#seen").max()) == 0


def test_the_prediction_follows_the_pen_while_drawing(page: Page) -> None:
    box = page.page.locator("#pad").bounding_box()
    mouse = page.page.mouse
    mouse.move(box["x"] + 140, box["y"] + 40)
    mouse.down()
    for k in range(40):  # a long stroke, drawn slowly: predictions arrive before the pen is lifted
        mouse.move(box["x"] + 140, box["y"] + 40 + 5 * k)
        page.page.wait_for_timeout(15)
    page.page.wait_for_function("document.querySelector('#prediction').dataset.class !== ''", timeout=5000)
    assert page.shown()[0] != ""
    mouse.up()
    page.settle()


def test_a_finger_draws_too(browser: Any, served: Running) -> None:
    touch = Page(browser, served, has_touch=True)
    try:
        box = touch.page.locator("#pad").bounding_box()
        cdp = touch.context.new_cdp_session(touch.page)

        def finger(kind: str, x: float, y: float) -> None:
            points = [] if kind == "touchEnd" else [{"x": box["x"] + x, "y": box["y"] + y}]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

        finger("touchStart", 140, 40)
        for k in range(1, 21):
            finger("touchMove", 140 + k, 40 + 10 * k)
        finger("touchEnd", 0, 0)
        touch.settle()
        drawn = touch.canvas("#pad")
        assert int(drawn.max()) == 255
        _, expected = expected_probabilities(Path(served.session.path), drawn)
        assert touch.shown()[0] == str(int(np.argmax(expected)))
        assert touch.problems == []
    finally:
        touch.close()


def test_the_test_set_mode_shows_labelled_images(page: Page) -> None:
    data = load_dataset("mnist", data_dir_or_skip(), splits=("test",))
    page.page.click("#mode-test")
    page.settle()
    assert page.page.is_visible("#test-panel") and not page.page.is_visible("#pad")
    assert page.page.get_attribute("#test-label", "data-label") == str(int(data.test_labels[0]))
    assert page.page.inner_text("#test-caption").startswith("Test image 0 of 10000: label 7")
    assert np.array_equal(page.canvas("#test-image"), data.test_images[0])
    assert np.array_equal(page.canvas("#seen"), data.test_images[0])
    page.page.fill("#test-index", "123")
    page.page.click("#test-show")
    page.settle()
    assert page.page.get_attribute("#test-label", "data-label") == str(int(data.test_labels[123]))
    assert page.page.locator(f'.prob.label[data-class="{int(data.test_labels[123])}"]').count() == 1
    page.page.click("#test-random")
    page.settle()
    index = int(page.page.input_value("#test-index"))
    assert page.page.get_attribute("#test-label", "data-label") == str(int(data.test_labels[index]))
    assert np.array_equal(page.canvas("#test-image"), data.test_images[index])
    page.page.click("#test-wrong")
    page.settle()
    wrong = int(page.page.input_value("#test-index"))
    label = page.page.get_attribute("#test-label", "data-label")
    assert label == str(int(data.test_labels[wrong])) and page.shown()[0] != label
    assert "predicted wrong" in page.page.inner_text("#test-caption")
    assert sum(page.shown()[1]) == pytest.approx(1.0, abs=1e-5)
    page.page.click("#mode-draw")
    page.settle()
    assert page.page.is_visible("#pad") and page.shown()[0] == ""


def explained_lines(served: Running, pixels: npt.NDArray[np.uint8], layer: int, unit: list[int]) -> str:
    """The printout of scratchnet explain for one unit, computed here with the library."""
    loops = load_model(served.session.path, backend="loops")
    feeder = Feeder.from_metadata(loops.metadata, "loops", "float64", tuple(loops.network.input_shape))
    ex, item = explain_unit(loops.network, feeder.inputs(pixels[None])[0], layer, unit, top=12)
    return "\n".join(format_unit(ex, item))


def test_clicking_a_class_or_a_unit_shows_its_weighted_sum(page: Page, served: Running) -> None:
    page.draw(SEVEN)
    pixels = preprocess(page.canvas("#pad")).pixels
    output = max(i for i, kind in enumerate(served.session.kinds) if kind == "Dense")
    page.page.click('.prob[data-class="3"]')
    page.settle()
    explanation = page.page.locator("#explanation")
    assert "neuron 3 (class '3')" in explanation.locator(".title").inner_text()
    assert explanation.locator(".equation").inner_text().startswith("(2.1) Neuron.forward")
    assert "(4.6) softmax" in explanation.locator(".activation").inner_text()
    assert explanation.locator("pre").text_content() == explained_lines(served, pixels, output, [3])
    assert explanation.locator("table.terms tr").count() >= 5
    first = served.session.shown[0]
    if len(first.shape) == 1:  # the MLP: a hidden neuron
        page.page.click(f'.layer[data-index="{first.index}"] .cell[data-unit="5"]')
        page.settle()
        assert explanation.locator(".equation").inner_text().startswith("(2.1)")
        assert "(4.1) ReLU.f" in explanation.locator(".activation").inner_text()
        assert explanation.locator("pre").text_content() == explained_lines(served, pixels, first.explained, [5])
        return
    # the CNN: a unit of a feature map of the convolution, then of the max-pooling layer
    for layer, equation in ((served.session.shown[0], "(12.1) Conv2D.forward"), (served.session.shown[1], "(13.1)")):
        canvas = page.page.locator(f'.layer[data-index="{layer.index}"] canvas[data-channel="1"]')
        box = canvas.bounding_box()
        _, height, width = layer.shape
        i, j = height // 2, width // 2
        canvas.click(position={"x": (j + 0.5) * box["width"] / width, "y": (i + 0.5) * box["height"] / height})
        page.settle()
        assert explanation.locator(".title").inner_text().endswith(f"unit [1, {i}, {j}]")
        assert explanation.locator(".equation").inner_text().startswith(equation)
        assert explanation.locator("pre").text_content() == explained_lines(served, pixels, layer.explained, [1, i, j])


# ---- first use on a phone (issue 25 items 9, 10 and 29) ----

PHONE = (390, 844)  # a phone's viewport, in CSS pixels
CARD_AT_TOP = "() => Math.abs(document.querySelector('#explain-card').getBoundingClientRect().top) < 2"


def in_view(page: Page, selector: str) -> tuple[float, float]:
    """The top and bottom of ``selector``'s box relative to the viewport's top."""
    box = page.page.evaluate(
        "(s) => { const r = document.querySelector(s).getBoundingClientRect(); return [r.top, r.bottom]; }", selector
    )
    return float(box[0]), float(box[1])


@pytest.fixture(scope="module")
def big_mlp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The shape of the README's default model, 784-800-800-10 (untrained: the page's layout is what
    matters here), served without a test set."""
    from scratchnet.builders import build_network
    from scratchnet.core.architecture import mlp
    from scratchnet.io.model import save

    path = tmp_path_factory.mktemp("serve-big") / "big.json"
    metadata = {"dataset": "mnist", "input": {"scale": 255.0, "mean": 0.1307, "std": 0.3081}}
    save(build_network(mlp([784, 800, 800, 10]), backend="vectorized", seed=3), path, metadata=metadata)
    with running(Session(str(path), test_set=False)) as live:
        yield live


def test_a_unit_clicked_far_down_brings_its_weighted_sum_into_view(browser: Any, big_mlp: Running) -> None:
    phone = Page(browser, big_mlp, viewport=PHONE)
    try:
        page = phone.page
        phone.draw(SEVEN)
        page.click('.prob[data-class="3"]')  # the card is below the bars on a phone: it scrolls into view
        phone.settle()
        page.wait_for_function(CARD_AT_TOP)
        assert "neuron 3 (class '3')" in page.inner_text("#explanation .title")
        assert page.evaluate("document.documentElement.scrollHeight") > 3500  # the long page of the issue
        cell = '.layer[data-index="3"] .cell[data-unit="799"]'  # the last unit of the second hidden layer
        page.locator(cell).scroll_into_view_if_needed()
        assert in_view(phone, "#explain-card")[1] < 0  # the card is out of view, above
        page.click(cell)
        phone.settle()
        page.wait_for_function(CARD_AT_TOP)
        assert "neuron 799" in page.inner_text("#explanation .title")
        assert page.inner_text("#explanation .equation").startswith("(2.1)")
        top, bottom = in_view(phone, "#explain-card")
        assert abs(top) < 2 and bottom > 400  # the card, from its top, fills the screen
        assert in_view(phone, cell)[0] > PHONE[1]  # the unit is now out of view, below
        assert page.is_visible("#explain-back") and page.inner_text("#explain-back") == "↓ back to the unit"
        page.click("#explain-back")
        page.wait_for_function(
            "(cell) => { const r = document.querySelector(cell).getBoundingClientRect();"
            " return r.top >= 0 && r.bottom <= window.innerHeight; }",
            arg=cell,
        )
        assert not page.is_visible("#explain-back")
        # a unit clicked while the card's top is on screen: nothing moves
        page.locator('.layer[data-index="1"] .cell[data-unit="0"]').scroll_into_view_if_needed()
        page.evaluate("window.scrollTo(0, document.querySelector('#explain-card').offsetTop - 100)")
        before = page.evaluate("window.scrollY")
        page.click('.layer[data-index="1"] .cell[data-unit="0"]')
        phone.settle()
        assert page.evaluate("window.scrollY") == before and not page.is_visible("#explain-back")
        assert phone.problems == []
    finally:
        phone.close()


def test_a_bad_test_index_is_named_at_the_field(browser: Any, served: Running) -> None:
    data = load_dataset("mnist", data_dir_or_skip(), splits=("test",))
    phone = Page(browser, served, viewport=PHONE)
    try:
        page = phone.page
        page.click("#mode-test")
        phone.settle()
        page.fill("#test-index", "7")
        page.click("#test-show")
        phone.settle()
        assert page.get_attribute("#test-index", "aria-invalid") == "false" and not page.is_visible("#test-error")
        for typed, message in (
            ("10000", "There is no test image 10000: give a whole number from 0 to 9999. Still showing test image 7."),
            ("-1", "There is no test image -1: give a whole number from 0 to 9999. Still showing test image 7."),
            ("", "The index is empty or not a number: give a whole number from 0 to 9999. Still showing test image 7."),
        ):
            page.fill("#test-index", typed)
            page.click("#test-show")
            phone.settle()
            assert page.inner_text("#test-error") == message
            assert page.get_attribute("#test-index", "aria-invalid") == "true"
            field_bottom = in_view(phone, "#test-index")[1]
            error_top, error_bottom = in_view(phone, "#test-error")
            assert 0 <= error_top - field_bottom < 40 and error_bottom < PHONE[1]  # right under the field, on screen
            # the image, its caption and the prediction are still test image 7's
            assert page.inner_text("#test-caption").startswith("Test image 7 of 10000")
            assert np.array_equal(phone.canvas("#test-image"), data.test_images[7])
            assert page.get_attribute("#test-label", "data-label") == str(int(data.test_labels[7]))
        page.fill("#test-index", "12")
        page.press("#test-index", "Enter")
        phone.settle()
        assert not page.is_visible("#test-error") and page.get_attribute("#test-index", "aria-invalid") == "false"
        assert np.array_equal(phone.canvas("#test-image"), data.test_images[12])
        assert phone.problems == []
    finally:
        phone.close()


GREEN, RED, BLUE = "rgb(31, 157, 85)", "rgb(217, 45, 32)", "rgb(47, 111, 222)"


def fill_colour(page: Page, row: str) -> str:
    return str(page.page.eval_on_selector(f"{row} .fill", "(node) => getComputedStyle(node).backgroundColor"))


def test_a_wrong_prediction_reads_as_wrong(page: Page, served: Running) -> None:
    data = load_dataset("mnist", data_dir_or_skip(), splits=("test",))
    session = served.session
    outputs = session.network.forward(session.feeder.inputs(data.test_images[:200]))
    predicted = np.argmax(np.asarray(outputs), axis=1)
    labels = data.test_labels[:200].astype(int)
    right = int(np.flatnonzero(predicted == labels)[0])
    wrong = int(np.flatnonzero(predicted != labels)[0])
    page.page.click("#mode-test")
    page.settle()
    page.page.fill("#test-index", str(wrong))
    page.page.click("#test-show")
    page.settle()
    label, top = int(labels[wrong]), int(predicted[wrong])
    assert page.page.locator(".prob.top").get_attribute("data-class") == str(top)
    assert page.page.locator(".prob.top.wrong").count() == 1
    assert fill_colour(page, f'.prob[data-class="{top}"]') == RED
    assert fill_colour(page, f'.prob[data-class="{label}"]') == GREEN
    assert page.page.locator(f'.prob.label[data-class="{label}"]').count() == 1
    assert page.page.inner_text("#predicted-p").endswith(f"wrong: the label is {label}")
    other = next(k for k in range(10) if k not in (label, top))
    assert fill_colour(page, f'.prob[data-class="{other}"]') == BLUE
    page.page.fill("#test-index", str(right))
    page.page.click("#test-show")
    page.settle()
    label = int(labels[right])
    assert page.page.locator(".prob.wrong").count() == 0
    assert page.page.locator(".prob.top.label").get_attribute("data-class") == str(label)
    assert fill_colour(page, f'.prob[data-class="{label}"]') == GREEN
    assert "wrong" not in page.page.inner_text("#predicted-p")


def test_the_model_line_takes_one_line_on_a_phone(browser: Any, served: Running) -> None:
    phone = Page(browser, served, viewport=PHONE)
    try:
        page = phone.page
        font = page.eval_on_selector("#model-line", "(node) => parseFloat(getComputedStyle(node).fontSize)")
        height = page.eval_on_selector("#model-line", "(node) => node.getBoundingClientRect().height")
        assert height < 2 * font  # one line (it was 6 lines with a CNN)
        assert in_view(phone, "#pad")[0] < 150  # the pad is not pushed down (it was at 230 px with a CNN)
        full = page.get_attribute("#model-line", "title") or ""
        assert full.startswith(served.session.path + " · ") and full.endswith(" · trained on mnist")
        page.click("#model-line")  # a tap shows all of it
        opened = page.eval_on_selector("#model-line", "(node) => node.getBoundingClientRect().height")
        assert page.inner_text("#model-line") == full
        if "conv" in full:
            assert opened > 3 * font
        assert phone.problems == []
    finally:
        phone.close()
