#!/usr/bin/env python3
"""Screenshot ``scratchnet serve``'s page of a language model (docs/serve-text.png).

    python tools/serve_text_screenshot.py MODEL.json --text emily --head 1 --cell 5 2 --out docs/serve-text.png

Serves MODEL on a free port, opens the page in Debian's chromium (through Playwright), types the
text, clicks cell (t, s) of head ``--head`` of the attention layer ``--layer`` (its place, the first
one by default), generates a sample with ``--seed`` and saves the page. Works from a checkout
without installing.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scratchnet.serve.server import make_server
from scratchnet.serve.text_api import TextSession

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
MARGIN = 30  # pixels of a head's map before its first cell, as text.js draws it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--text", default="emily")
    parser.add_argument("--layer", help="the place of the attention layer (default: the first)")
    parser.add_argument("--head", type=int, default=0)
    parser.add_argument("--cell", type=int, nargs=2, metavar=("T", "S"), help="default: the last position, s = 0")
    parser.add_argument("--seed", default="1")
    parser.add_argument("--out", default="docs/serve-text.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    session = TextSession(args.model)
    server = make_server(session, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    place = args.layer or session.attention[0].prefix
    length = len(args.text) + len(session.start)
    t, s = args.cell or (length - 1, 0)
    cell = max(8, min(26, 240 // length))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.goto(server.url)
            page.wait_for_selector('body[data-busy="0"]', state="attached")
            page.locator("#text").press_sequentially(args.text, delay=40)
            page.wait_for_selector('body[data-busy="0"]', state="attached")
            canvas = page.locator(f'#heads canvas[data-place="{place}"][data-head="{args.head}"]')
            canvas.click(position={"x": MARGIN + (s + 0.5) * cell, "y": MARGIN + (t + 0.5) * cell})
            page.wait_for_selector("#terms .title")
            page.fill("#seed", args.seed)
            page.click("#generate")
            page.wait_for_selector("#generate:not([disabled])")
            page.wait_for_selector('body[data-busy="0"]', state="attached")
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        server.shutdown()
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
