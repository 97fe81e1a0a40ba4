"""Take docs/dashboard.png: the web dashboard of a running example flow, in
headless Chromium (Debian's ``chromium`` and ``chromium-driver``, and selenium from
the dev extra).

    python docs/screenshot.py [output.png] [--seconds 8]

The flow counts words of an endless stream of lines: a source, a layer that
splits lines into words and awaits a little I/O per batch, and four partitions
counting words in one-second windows. The page is served the way the
integrations mount it (``/flowstage/`` and ``/flowstage/statistics``).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowstage import Flow, Window  # noqa: E402
from flowstage.dashboard.web import statistics_feed  # noqa: E402
from tests.dashboard.harness import serve, start_browser, wait_for  # noqa: E402

LINES = (
    "the quick brown fox jumps over the lazy dog",
    "demand flows upstream and events flow downstream",
    "a slow consumer slows its producers instead of filling memory",
    "every buffer has a size and a policy",
)


def lines() -> itertools.cycle[str]:
    return itertools.cycle(LINES)


async def words(line: str) -> list[str]:
    await anyio.sleep(0.0005)  # a little I/O per line
    return line.split()


def count(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


def shoot(browser: Any, output: Path) -> None:
    """A screenshot of the whole page, 1280 pixels wide."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1280, "height": int(height), "deviceScaleFactor": 1, "mobile": False},
    )
    browser.save_screenshot(str(output))


async def main(output: Path, seconds: float) -> None:
    flow = (
        Flow.from_iterable(lines(), max_demand=200)
        .map(words)
        .flat_map(lambda ws: ws)
        .partition(stages=4, window=Window.periodic(1, "second"))
        .reduce(dict, count)
    )
    browser = await anyio.to_thread.run_sync(start_browser, 1280, 900)
    try:
        async with (
            flow.start() as running,
            serve(lambda: statistics_feed(running, interval=0.25)) as url,
        ):
            await anyio.to_thread.run_sync(browser.get, url)
            await anyio.to_thread.run_sync(
                wait_for, browser, lambda d: d.find_elements("css selector", "tr.stage")
            )
            await anyio.sleep(seconds)  # let the charts fill
            await anyio.to_thread.run_sync(shoot, browser, output)
            running.stop()
    finally:
        await anyio.to_thread.run_sync(browser.quit)
    print(f"wrote {output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--seconds", type=float, default=8.0)
    arguments = parser.parse_args()
    anyio.run(main, arguments.output, arguments.seconds)
