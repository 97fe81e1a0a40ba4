"""Windows and triggers over a stream of timestamped sensor readings.

Usage: python examples/windows.py

Readings are ``(timestamp_ms, sensor, value)``. Three views of the same stream:

* event time: ``Window.fixed(1, "second", by=timestamp)`` with one second of
  allowed lateness gives, per sensor partition, the average of each second; a
  window first closes on the watermark and again ("done") after the lateness;
* count: ``Window.count(n)`` batches every ``n`` readings a stage receives;
* processing time: a live source and ``trigger_periodically`` report running
  totals every ``tick`` seconds, while the global window ends with the data.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio

from flowstage.flow import Flow, Window

Reading = tuple[int, str, float]


def readings(n: int = 60, seed: int = 7) -> list[Reading]:
    """``n`` readings of three sensors, roughly every 100 ms, a few out of order."""
    rng = random.Random(seed)
    out: list[Reading] = []
    for i in range(n):
        ts = i * 100 + rng.randint(0, 40)
        out.append((ts, rng.choice("abc"), round(rng.uniform(10, 30), 1)))
    # Delay a few readings by up to 300 ms: they arrive late.
    for i in range(5, n, 17):
        out[i], out[i - 3] = out[i - 3], out[i]
    return out


def timestamp(r: Reading) -> int:
    return r[0]


def add_reading(acc: dict[str, list[float]], r: Reading) -> dict[str, list[float]]:
    acc.setdefault(r[1], []).append(r[2])
    return acc


def averages(
    acc: dict[str, list[float]], partition: tuple[int, int], trigger: tuple[str, Any, Any]
) -> tuple[list[Any], dict[str, list[float]]]:
    _kind, window_start, name = trigger
    rows = [
        (window_start, name, sensor, len(values), round(sum(values) / len(values), 2))
        for sensor, values in sorted(acc.items())
    ]
    return rows, acc


async def per_second_averages(events: Iterable[Reading]) -> list[Any]:
    """``(window start, trigger, sensor, readings, average)`` per sensor and second
    (event time); each window is reported at its watermark and when done."""
    window = Window.fixed(1, "second", timestamp).allowed_lateness(1, "second")
    flow = (
        Flow.from_iterable(events, stages=1, max_demand=10)
        .partition(stages=3, key=lambda r: r[1], window=window, max_demand=10)
        .reduce(dict, add_reading)
        .on_trigger(averages)
    )
    return sorted(await flow.to_list(), key=lambda e: (e[0], e[1] != "watermark", e[2]))


async def every_n(events: Iterable[Reading], n: int) -> list[list[str]]:
    """The sensors of every ``n`` readings, in arrival order (one stage)."""
    flow = (
        Flow.from_iterable(events, stages=1, window=Window.count(n))
        .reduce(list, lambda acc, r: [*acc, r[1]])
        .emit("state")
    )
    return await flow.to_list()


async def live(events: Iterable[Reading], speedup: float = 100.0) -> AsyncIterator[Reading]:
    """Replay ``events`` in (accelerated) processing time."""
    start = anyio.current_time()
    for r in events:
        await anyio.sleep(max(0.0, start + r[0] / 1000 / speedup - anyio.current_time()))
        yield r


async def running_totals(events: Iterable[Reading], tick_ms: int = 10) -> list[Any]:
    """Readings counted so far, reported every ``tick_ms`` of processing time."""
    window = Window.global_().trigger_periodically(tick_ms, "millisecond")
    flow = (
        Flow.from_async_iterable(live(events), stages=1, max_demand=1, window=window)
        .reduce(lambda: 0, lambda acc, _r: acc + 1)
        .on_trigger(lambda acc, _p, trigger: ([(trigger[2], acc)], acc))
    )
    return await flow.to_list()


async def amain() -> None:
    events = readings()
    print("per second averages (window start ms, trigger, sensor, readings, average):")
    for row in await per_second_averages(events):
        print("  ", row)
    print("sensors of every 10 readings:")
    for group in await every_n(events, 10):
        if group:  # the window open when the data ends may be empty
            print("  ", "".join(group))
    print("running totals every 10 ms while 60 readings replay at 100x:")
    for name, total in await running_totals(events):
        print("  ", name, total)


def main() -> None:
    anyio.run(amain)


if __name__ == "__main__":
    main()
