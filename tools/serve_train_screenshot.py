#!/usr/bin/env python3
"""Screenshot the Train page of ``scratchnet serve --train`` (docs/serve-train.png).

    python tools/serve_train_screenshot.py --out docs/serve-train.png

Serves the Train mode on a free port, opens the page in Debian's chromium (through Playwright: pip
install playwright; apt-get install chromium), starts the spiral of three classes with a ReLU
network from the page, lets it train until ``--steps``, pauses, clicks a first-layer weight whose
gradient is not 0 on the shown sample, and saves the page. Works from a checkout without installing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scratchnet.serve.server import make_server
from scratchnet.serve.train_api import TrainAPI

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
STEP_REACHED = "(n) => Number(document.querySelector('#step-count').dataset.step || 0) >= n"


def fill(page: Any, fields: dict[str, str]) -> None:
    for selector, value in fields.items():
        if page.locator(selector).evaluate("(node) => node.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
            page.dispatch_event(selector, "input")


def pick_weight(page: Any, train: TrainAPI, units: int) -> None:
    """Click the first unit's weight of layer 0 (input 0) whose gradient on the shown sample is not 0."""
    for j in range(units):
        answer = train.inspect({"parameter": "0.weight", "index": [j, 0]})
        if abs(answer["chain"]["gradient"]) > 1e-6:
            break
    canvas = page.locator('#weights canvas[data-parameter="0.weight"]')
    box = canvas.bounding_box()
    page.wait_for_selector('body[data-busy="0"]', state="attached")
    canvas.click(position={"x": 0.5 * box["width"] / 2, "y": (j + 0.5) * box["height"] / units})
    page.wait_for_selector("#inspect-gradient")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/serve-train.png", help="the PNG to write")
    parser.add_argument("--steps", type=int, default=1500, help="train until this step, then pause")
    parser.add_argument("--width", type=int, default=1440, help="the window's width in CSS pixels")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="scratchnet-train-shot-") as folder:
        train = TrainAPI(Path(folder) / "models")
        server = make_server(None, "127.0.0.1", 0, train=train)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": 900})
                page.goto(server.url)
                page.wait_for_selector("#to-predict", state="hidden")
                fields = {"#toy-name": "spiral", "#toy-points": "400", "#toy-noise": "0.05", "#toy-classes": "3"}
                fields |= {"#net-depth": "2", "#net-width": "32", "#net-activation": "relu", "#opt-lr": "0.01"}
                fill(page, fields)
                page.click("#start")
                page.wait_for_function(STEP_REACHED, arg=args.steps, timeout=300_000)
                page.click("#pause")
                page.wait_for_selector('body[data-run="paused"]')
                pick_weight(page, train, 32)
                page.wait_for_selector('body[data-busy="0"]', state="attached")
                page.screenshot(path=args.out, full_page=True)
                browser.close()
        finally:
            server.shutdown()
            server.server_close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
