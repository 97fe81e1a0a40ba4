"""Requests per second over a live source, with the terminal dashboard on screen.

Usage: python examples/live_dashboard.py [SECONDS]

A live source produces web requests (their paths) at a steady rate; the flow
partitions them by path, counts each path in one-second windows
(``Window.periodic``), and ``departition`` merges the partitions' counts of each
second into one line. Meanwhile ``show_dashboard`` redraws the flow's statistics
in place (needs ``pip install 'flowstage[dashboard]'``). At the end the script
checks that every request produced was counted in exactly one second.
"""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator

import anyio

from flowstage.dashboard.terminal import show_dashboard
from flowstage.flow import Flow, Window

PATHS = ["/", "/search", "/cart", "/checkout", "/product/1", "/product/2", "/product/3"]
WEIGHTS = [30, 20, 10, 3, 15, 12, 10]


async def requests(seconds: float, rate: int, produced: list[int]) -> AsyncIterator[str]:
    """``rate`` requests per second for ``seconds``, in ticks of 10 ms (a live
    source: each tick waits for its time). ``produced[0]`` counts them."""
    rng = random.Random(12)
    per_tick = max(1, rate // 100)
    start = anyio.current_time()
    for tick in range(round(seconds * 100)):
        await anyio.sleep(max(0.0, start + tick / 100 - anyio.current_time()))
        for path in rng.choices(PATHS, WEIGHTS, k=per_tick):
            produced[0] += 1
            yield path


def count(acc: dict[str, int], path: str) -> dict[str, int]:
    acc[path] = acc.get(path, 0) + 1
    return acc


def merge(total: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    for path, n in counts.items():
        total[path] = total.get(path, 0) + n
    return total


def per_second(
    seconds: float, rate: int, window_ms: int, produced: list[int]
) -> Flow[tuple[int, dict[str, int]]]:
    """``(window id, {path: requests})`` for every window of ``window_ms``."""
    return (
        Flow.from_async_iterable(requests(seconds, rate, produced), stages=1, max_demand=100)
        .partition(stages=2, window=Window.periodic(window_ms, "millisecond"))
        .reduce(dict, count)
        .emit("state")
        .departition(dict, merge, lambda total, window: (window, total))
    )


async def run(seconds: float = 5.0, rate: int = 2_000, window_ms: int = 1_000) -> int:
    """Run the live part; return the number of requests counted."""
    produced = [0]
    counted = 0
    flow = per_second(seconds, rate, window_ms, produced)
    print(
        f"{rate:,} requests/s for {seconds:g} s, counted per {window_ms:,} ms window "
        "(the dashboard below updates in place):"
    )
    async with flow.stream() as windows, anyio.create_task_group() as tg:
        tg.start_soon(lambda: show_dashboard(windows, interval=0.5))
        async for window, counts in windows:
            total = sum(counts.values())
            counted += total
            top = ", ".join(f"{p} {n:,}" for p, n in sorted(counts.items(), key=lambda kv: -kv[1]))
            print(f"  window {window}: {total:,} requests ({top[:70]})")
    print(f"{produced[0]:,} requests produced, {counted:,} counted")
    if counted != produced[0]:
        raise SystemExit("some requests were not counted")
    return counted


def main(seconds: float = 5.0, rate: int = 2_000, window_ms: int = 1_000) -> int:
    """Run the live part on asyncio; return the number of requests counted."""
    return anyio.run(run, seconds, rate, window_ms)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
