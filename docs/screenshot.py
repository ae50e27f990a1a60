"""Make docs/report-riverside.png: the real report of the shipped endowment example.

Runs ``trimtab example riverside_endowment`` and ``trimtab run ... --out`` in a
temporary folder, opens its report.html in headless Chromium (Debian's
``chromium``, driven by playwright, every request but the file blocked) and
saves a screenshot of the page's first screens (summary, frontier, allocation).

    python docs/screenshot.py [OUT.png]      # default: docs/report-riverside.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from scenarios.cli import main

CHROMIUM = "/usr/bin/chromium"
#: Down to the end of this chart: the summary, the frontier, the allocation and the risk.
LAST = 'figure[data-chart="risk"]'


def screenshot(out: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        assert main(["example", "riverside_endowment", "--dir", str(folder)]) == 0
        scenario = folder / "riverside_endowment.toml"
        assert main(["run", str(scenario), "--out", str(folder / "out")]) == 0
        url = (folder / "out" / "report.html").resolve().as_uri()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            page.route("**/*", lambda r: r.continue_() if r.request.url == url else r.abort())
            page.goto(url)
            box = page.locator(LAST).bounding_box()
            height = box["y"] + box["height"] + 16
            clip = {"x": 0, "y": 0, "width": 900, "height": height}
            page.screenshot(path=str(out), full_page=True, clip=clip)
            browser.close()
    return out


if __name__ == "__main__":
    target = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("report-riverside.png")
    )
    print(screenshot(target))
