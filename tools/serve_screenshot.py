#!/usr/bin/env python3
"""Screenshot ``scratchnet serve``'s page (docs/serve.png) and measure a prediction's round trip.

    python tools/serve_screenshot.py MODEL.json --data-dir ../shared/data --out docs/serve.png
    python tools/serve_screenshot.py MODEL.json --data-dir ../shared/data --measure 50

Serves MODEL on a free port, opens the page in Debian's chromium (through Playwright: pip install
playwright; apt-get install chromium), draws a 7 with the mouse, clicks class 7 to show its
weighted sum, and saves the page. ``--measure N`` instead times N predictions of a 280x280 canvas:
from the page (fetch, as the page sends them), from Python (http.client on one connection) and in
the model alone, and prints their medians. Works from a checkout without installing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scratchnet.serve.api import Session
from scratchnet.serve.server import make_server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARGS += ["--disable-sync", "--no-first-run"]
SEVEN = [(60, 55), (215, 55), (210, 75), (165, 150), (130, 235)]

# A 7 on a 280x280 canvas, as the page would send it (bright ink on black), built in the page.
CANVAS_JS = """() => {
    const grey = new Uint8Array(280 * 280);
    for (let r = 50; r < 70; r++) for (let c = 60; c < 220; c++) grey[r * 280 + c] = 255;
    for (let r = 70; r < 240; r++) {
        const left = Math.round(205 - 0.45 * (r - 70));
        for (let c = left; c < left + 22; c++) grey[r * 280 + c] = 255;
    }
    let binary = "";
    for (let k = 0; k < grey.length; k += 0x8000) {
        binary += String.fromCharCode.apply(null, grey.subarray(k, k + 0x8000));
    }
    return btoa(binary);
}"""
TIMES_JS = """async ([body, n]) => {
    const times = [];
    for (let i = 0; i < n; i++) {
        const started = performance.now();
        const headers = {"Content-Type": "application/json"};
        const response = await fetch("/api/predict", {method: "POST", headers, body});
        await response.json();
        times.push(performance.now() - started);
    }
    return times;
}"""


def screenshot(page: Any, out: Path) -> None:
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + SEVEN[0][0], box["y"] + SEVEN[0][1])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(SEVEN, SEVEN[1:]):
        for t in range(1, 13):
            page.mouse.move(box["x"] + x0 + (x1 - x0) * t / 12, box["y"] + y0 + (y1 - y0) * t / 12)
    page.mouse.up()
    page.wait_for_selector('body[data-busy="0"]', state="attached")
    page.click('.prob[data-class="7"]')
    page.wait_for_selector('body[data-busy="0"]', state="attached")
    page.wait_for_timeout(300)  # the bars' transition
    page.screenshot(path=str(out), full_page=True)
    print(f"wrote {out}")


def measure(page: Any, port: int, n: int) -> None:
    pixels = page.evaluate(CANVAS_JS)
    body = json.dumps({"pixels": pixels, "width": 280, "height": 280})
    page.evaluate(TIMES_JS, [body, 5])  # warm up
    browser = page.evaluate(TIMES_JS, [body, n])
    connection = http.client.HTTPConnection("127.0.0.1", port)
    python, model, server = [], [], []
    for _ in range(n + 5):
        started = time.perf_counter()
        connection.request("POST", "/api/predict", body, {"Content-Type": "application/json"})
        answer = json.loads(connection.getresponse().read())
        python.append(1000 * (time.perf_counter() - started))
        model.append(answer["milliseconds"])
        server.append(answer["server_milliseconds"])
    connection.close()
    kb = len(body) / 1000
    print(f"request {kb:.0f} kB; medians of {n}:")
    print(f"  from the page (fetch, chromium):   {statistics.median(browser):.1f} ms")
    print(f"  from Python (http.client):         {statistics.median(python[5:]):.1f} ms")
    print(f"  in the server (decode to encode):  {statistics.median(server[5:]):.1f} ms")
    print(f"  in the model (forward pass):       {statistics.median(model[5:]):.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default="docs/serve.png")
    parser.add_argument("--measure", type=int, metavar="N", help="time N predictions instead of a screenshot")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    session = Session(args.model, args.data_dir)
    server = make_server(session, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.goto(server.url)
            page.wait_for_selector('body[data-busy="0"]', state="attached")
            if args.measure:
                measure(page, server.port, args.measure)
            else:
                screenshot(page, Path(args.out))
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
