"""Latency at a steady rate: events stamped at creation, timed on arrival.

A ticker task wakes about every millisecond and has the producer emit the events
due by then (``rate * elapsed``, 10,000/s by default), each stamped with
``time.perf_counter()`` when it is created. They pass two transforming stages and
reach a consumer that records ``perf_counter() - stamp``. Subscriptions use a small
``max_demand`` (10 by default) so batches stay small. The first 10 % of events are
a warm-up and are not counted.

Cases:

* stages: ``Producer → ProducerConsumer → ProducerConsumer → Consumer``; the ticker
  sends the producer a message and ``handle_info`` emits the due events.
* Flow: ``Flow.from_async_iterable(ticker).map(f).map(g)`` with one stage per layer
  (``partition`` between the maps), consumed by ``flow.stream()``.
* Flow over the stages case's timer-driven producer (``Flow.from_stages``): the same
  layers, without the async-iterable source (which pulls in a background task and
  adds one task switch per batch).

    python benchmarks/flow_latency.py [--rate R] [--seconds S] [--max-demand N]
                                      [--repeat K] [--backend NAME] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import anyio
from _common import available_backends, run_on

import flowstage
from flowstage import Flow

ROWS: tuple[str, ...] = (
    "stages: producer → pc → pc → consumer",
    "Flow: from_async_iterable → map → partition → map → stream",
    "Flow: from_stages(ticked producer) → map → partition → map → stream",
)

TICK = 0.001


class Ticked(flowstage.Producer[float]):
    """Emits the events it is told to create; demand is not needed to create them."""

    def handle_demand(self, demand: int) -> list[float]:
        return []

    def handle_info(self, message: Any) -> list[float]:
        return [time.perf_counter() for _ in range(message)]


class Pass(flowstage.ProducerConsumer[float, float]):
    def handle_events(self, events: list[float], from_: Any) -> list[float]:
        return [e + 0.0 for e in events]


class Record(flowstage.Consumer[float]):
    def __init__(self, latencies: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.latencies = latencies

    def handle_events(self, events: list[float], from_: Any) -> None:
        now = time.perf_counter()
        self.latencies.extend(now - e for e in events)


async def paced(rate: float, seconds: float) -> AsyncIterator[int]:
    """Yield how many events are due, about every millisecond, for ``seconds``."""
    start = time.perf_counter()
    sent = 0
    total = int(rate * seconds)
    while sent < total:
        await anyio.sleep(TICK)
        due = min(total, int((time.perf_counter() - start) * rate)) - sent
        if due > 0:
            sent += due
            yield due


async def run_stages(rate: float, seconds: float, max_demand: int) -> list[float]:
    latencies: list[float] = []
    opts = {"max_demand": max_demand}
    async with flowstage.StageGroup() as group:
        producer = group.start(Ticked())
        a = group.start(Pass(subscribe_to=[(producer, opts)]))
        b = group.start(Pass(subscribe_to=[(a, opts)]))
        group.start(Record(latencies, subscribe_to=[(b, opts)]))
        async for due in paced(rate, seconds):
            await producer.send_wait(due)
        producer.finish()
        await group.wait()
    return latencies


async def stamped(rate: float, seconds: float) -> AsyncIterator[float]:
    async for due in paced(rate, seconds):
        for _ in range(due):
            yield time.perf_counter()


def _same(e: float) -> float:
    return e + 0.0


async def run_flow(rate: float, seconds: float, max_demand: int) -> list[float]:
    latencies: list[float] = []
    flow = (
        Flow.from_async_iterable(stamped(rate, seconds), stages=1, max_demand=max_demand)
        .map(_same)
        .partition(stages=1, max_demand=max_demand)
        .map(_same)
    )
    async with flow.stream() as events:
        async for e in events:
            latencies.append(time.perf_counter() - e)
    return latencies


async def run_flow_from_stages(rate: float, seconds: float, max_demand: int) -> list[float]:
    latencies: list[float] = []
    async with flowstage.StageGroup() as group:
        producer = group.start(Ticked())
        flow = (
            Flow.from_stages([producer], stages=1, max_demand=max_demand)
            .map(_same)
            .partition(stages=1, max_demand=max_demand)
            .map(_same)
        )

        async def tick() -> None:
            async for due in paced(rate, seconds):
                await producer.send_wait(due)
            producer.finish()

        group_tasks = anyio.create_task_group()
        async with group_tasks:
            group_tasks.start_soon(tick)
            async with flow.stream() as events:
                async for e in events:
                    latencies.append(time.perf_counter() - e)
    return latencies


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def measure(
    rate: float, seconds: float, max_demand: int, repeat: int, backend: str
) -> list[tuple[str, float, float, float, int]]:
    """``(case, p50 ms, p99 ms, max ms, events)`` per case: medians over repeats."""
    cases: list[tuple[str, Callable[[float, float, int], Awaitable[list[float]]]]] = [
        (ROWS[0], run_stages),
        (ROWS[1], run_flow),
        (ROWS[2], run_flow_from_stages),
    ]
    expected = int(rate * seconds)
    stats: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in cases}
    for rep in range(repeat):
        order = cases[rep % len(cases) :] + cases[: rep % len(cases)]
        for name, func in order:
            lat = run_on(backend, func, rate, seconds, max_demand)
            if len(lat) != expected:
                raise AssertionError(f"{name}: {len(lat)} events arrived, expected {expected}")
            kept = sorted(lat[len(lat) // 10 :])
            stats[name].append(
                (percentile(kept, 0.5) * 1e3, percentile(kept, 0.99) * 1e3, kept[-1] * 1e3)
            )
    return [
        (
            name,
            statistics.median(s[0] for s in runs),
            statistics.median(s[1] for s in runs),
            statistics.median(s[2] for s in runs),
            expected,
        )
        for name, runs in stats.items()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--max-demand", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--quick", action="store_true", help="0.1 s, asyncio only")
    args, _ = parser.parse_known_args(argv)
    backends: list[str] = args.backend or available_backends()
    rate, seconds, repeat = args.rate, args.seconds, args.repeat
    if args.quick:
        seconds, repeat, backends = 0.1, 1, ["asyncio"]
    print(
        f"## Latency: {rate:,.0f} events/s for {seconds:g} s through four stages, "
        f"max_demand={args.max_demand}, median of {repeat} (first 10 % is warm-up)\n"
    )
    print("| backend | case | events | p50 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|")
    for backend in backends:
        for name, p50, p99, worst, events in measure(
            rate, seconds, args.max_demand, repeat, backend
        ):
            print(f"| {backend} | {name} | {events:,} | {p50:.3f} | {p99:.3f} | {worst:.3f} |")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
