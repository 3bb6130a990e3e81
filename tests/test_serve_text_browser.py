"""``scratchnet serve``'s page of a language model in a real browser: Playwright drives Debian's
chromium to type a text and see the next character's bars follow it, click a cell of a head's map and
see its terms, press generate and see the sample arrive, and type a character the model does not
know. Skipped when playwright or chromium is missing."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import Running, running
from serve_text_helpers import text_model

from scratchnet.io.model import load_model
from scratchnet.serve.text_api import TextSession
from scratchnet.teaching.explain_tokens import vocabulary_of

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARGS += ["--disable-sync", "--no-first-run"]
MARGIN = 30  # pixels of a head's map before its first cell (its labels), as text.js draws it


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running(TextSession(str(text_model("documents", tmp_path_factory)))) as live:
        yield live


class Page:
    """The text page of the served model, recording what the browser's console says."""

    def __init__(self, browser: Any, live: Running, viewport: tuple[int, int] = (1360, 900)) -> None:
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.goto(live.url)
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_selector('body[data-busy="0"]', state="attached", timeout=20000)

    def type(self, text: str) -> None:
        self.page.locator("#text").press_sequentially(text, delay=30)
        self.settle()

    def bars(self) -> list[tuple[str, float]]:
        names = self.page.locator("#bars .prob .name").all_inner_texts()
        values = self.page.locator("#bars .prob .value").all_inner_texts()
        return [(name, float(value.rstrip("%")) / 100) for name, value in zip(names, values)]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, served: Running) -> Iterator[Page]:
    opened = Page(browser, served)
    yield opened
    opened.close()


def loops_probabilities(live: Running, text: str) -> list[float]:
    """The next character's probabilities after ``text``, from the loops backend, computed here."""
    loaded = load_model(live.session.path, backend="loops")
    vocabulary = vocabulary_of(loaded.metadata)
    ids = [vocabulary.boundary_id, *(vocabulary.characters.index(c) for c in text)]
    probabilities: list[float] = loaded.network.forward([ids])[0][-1]
    return probabilities


def labels_of(live: Running, ids: list[int]) -> list[str]:
    vocabulary = vocabulary_of(load_model(live.session.path, backend="loops").metadata)
    return [vocabulary.decode([k]).replace("\n", "⏎ end") for k in ids]


def test_the_bars_follow_the_text_as_it_is_typed(page: Page, served: Running) -> None:
    shown = []
    for text in ("e", "em", "emm"):
        page.type(text[-1])
        bars = page.bars()
        expected = loops_probabilities(served, text)
        ranked = sorted(range(len(expected)), key=lambda k: -expected[k])[: len(bars)]
        assert [name for name, _ in bars] == labels_of(served, ranked)
        assert [p for _, p in bars] == pytest.approx([expected[k] for k in ranked], abs=0.0006)  # shown to 0.1%
        shown.append(bars)
    assert shown[0] != shown[1] != shown[2]
    assert page.page.locator("#heads canvas").count() == 4  # one attention layer of 4 heads
    assert page.problems == []


def test_a_click_on_a_cell_opens_its_terms(page: Page) -> None:
    page.type("ella")
    canvas = page.page.locator('#heads canvas[data-head="2"]')
    length = 5  # the boundary token and "ella"
    cell = max(8, min(26, 240 // length))
    canvas.click(position={"x": MARGIN + 1.5 * cell, "y": MARGIN + 3.5 * cell})  # t = 3, s = 1
    page.page.wait_for_selector("#terms .title")
    page.settle()
    terms = page.page.locator("#terms")
    title = terms.locator(".title").inner_text()
    assert title == "Layer 2.1 (CausalSelfAttention(16, 4 heads)), head 2, position 3 ('l')"
    equations = terms.locator(".equation b").all_inner_texts()
    assert equations == ["(20.1)", "(20.2)", "(20.3)", "(20.4)", "(20.6)"]
    rows = terms.locator("table.terms tr")
    assert rows.count() == 1 + 4 + 1  # the heading, s = 0..3, the sums
    assert "clicked" in (rows.nth(2).get_attribute("class") or "")  # s = 1
    weights = [float(rows.nth(k).locator("td").nth(5).inner_text()) for k in range(1, 5)]
    assert math.fsum(weights) == pytest.approx(1.0, abs=1e-5)
    assert "(20.2) the scores" in (terms.locator("details pre").text_content() or "")
    page.type("a")  # the explanation follows the text
    assert page.page.locator("#terms .title").inner_text() == title
    assert page.problems == []


def test_generate_streams_a_sample(page: Page) -> None:
    page.type("a")
    page.page.fill("#length", "200")
    page.page.evaluate(  # counts the additions to the sample's text, each a read of the stream
        """() => { window.updates = 0; new MutationObserver((changes) => {
        window.updates += changes.filter((change) => change.type === "characterData").length; })
        .observe(document.querySelector('#sample'), {subtree: true, characterData: true}); }"""
    )
    page.page.click("#generate")
    page.page.wait_for_selector("#generate:not([disabled])")
    page.settle()
    sample = page.page.locator("#sample").inner_text()
    status = page.page.locator("#generate-status").inner_text()
    found = re.fullmatch(r"(\d+) characters? in [0-9.]+ s: the (document ended|length was reached)", status)
    assert found is not None, status
    assert sample.startswith("a") and len(sample) == 1 + int(found.group(1))
    updates = page.page.evaluate("window.updates")
    assert 2 <= updates <= len(sample) - 1  # the characters came in pieces, not in one answer
    assert page.problems == []


def test_a_character_outside_the_vocabulary_is_named_under_the_text(page: Page) -> None:
    page.type("eE")
    error = page.page.locator("#text-error")
    assert error.is_visible()
    assert error.inner_text() == "the text: the character 'E' (U+0045) is not in the vocabulary of 22 characters"
    assert page.page.locator("#text").get_attribute("aria-invalid") == "true"
    assert all("status of 400" in problem for problem in page.problems)  # the browser logs the refused request
    page.page.locator("#text").press("Backspace")
    page.settle()
    assert not error.is_visible() and page.page.locator("#text").get_attribute("aria-invalid") == "false"


def test_on_a_phone_the_page_is_one_column_as_wide_as_the_screen(browser: Any, served: Running) -> None:
    phone = Page(browser, served, viewport=(390, 844))
    try:
        phone.type("emma")
        canvas = phone.page.locator('#heads canvas[data-head="0"]')
        cell = max(8, min(26, 240 // 5))
        canvas.click(position={"x": MARGIN + 0.5 * cell, "y": MARGIN + 4.5 * cell})  # t = 4, s = 0
        phone.page.wait_for_selector("#terms .title")
        phone.settle()
        assert phone.page.locator("#terms .title").inner_text().endswith("head 0, position 4 ('a')")
        assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out
        assert phone.problems == []
    finally:
        phone.close()
