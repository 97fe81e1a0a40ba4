"""I/O-bound map: every item awaits ``anyio.sleep(0.001)``, 100 at a time.

With 10,000 items and 100 in flight the ideal is 100 waves of 1 ms = 0.1 s. Cases
(each checks that every item was handled and that C items were in flight at the
peak):

* flow, stages=100, max_demand=1: ``Flow.from_iterable(items, stages=100,
  max_demand=1).map(async_fn).run()``; async callbacks are awaited in order within
  a stage, so ``stages`` is the concurrency.
* flow, stages=100, max_demand=2: the same with one event waiting in each stage.
* ConcurrentConsumer, max_demand=100 (default min_demand): one coroutine per event.
* ConcurrentConsumer, max_demand=100, min_demand=1: asks again after every handler.
* ConcurrentConsumer, concurrency=100, max_demand=200, min_demand=25: 100 handlers
  at most, with up to 100 more events waiting and asks every 25 handled, so a freed
  worker finds an event waiting instead of waiting for an ask.
* anyio baseline: a task group of 10,000 tasks sharing a ``CapacityLimiter(100)``.
* anyio baseline: 100 worker tasks pulling from one shared iterator.
* reference: the same 100 workers awaiting the backend's own sleep
  (``asyncio.sleep`` or ``trio.sleep``) instead of ``anyio.sleep``, so no library
  code runs per item: about what the event loop itself allows.

    python benchmarks/flow_io.py [--items N] [--concurrency C] [--repeat K]
                                 [--backend NAME] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import anyio
from _common import available_backends, run_on

import flowstage
from flowstage import Flow

ROWS: tuple[str, ...] = (
    "flow, stages=C, max_demand=1",
    "flow, stages=C, max_demand=2",
    "ConcurrentConsumer, max_demand=C",
    "ConcurrentConsumer, max_demand=C, min_demand=1",
    "ConcurrentConsumer, concurrency=C, max_demand=2C, min_demand=C/4",
    "anyio task group + CapacityLimiter(C)",
    "anyio C workers over one iterator",
    "reference: C workers, the loop's own sleep",
)

DELAY = 0.001


class Probe:
    """Counts handled items and the peak number of sleeps in flight."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.done = 0
        self.sleep: Callable[[float], Awaitable[Any]] = anyio.sleep

    async def work(self, item: int) -> int:
        self.active += 1
        if self.active > self.peak:
            self.peak = self.active
        try:
            await self.sleep(DELAY)
        finally:
            self.active -= 1
        self.done += 1
        return item


async def flow_map(n: int, c: int, probe: Probe, max_demand: int) -> None:
    flow = Flow.from_iterable(range(n), stages=c, max_demand=max_demand).map(probe.work)
    await flow.run()


async def concurrent_consumer(
    n: int, c: int, probe: Probe, min_demand: int | None, concurrency: int | None = None
) -> None:
    opts: dict[str, int] = {"max_demand": c if concurrency is None else 2 * c}
    if min_demand is not None:
        opts["min_demand"] = min_demand
    async with flowstage.StageGroup() as group:
        producer = group.start(flowstage.from_iterable(range(n)))
        group.start(
            flowstage.ConcurrentConsumer(
                probe.work, concurrency=concurrency, subscribe_to=[(producer, opts)]
            )
        )
        await group.wait()


async def limiter_baseline(n: int, c: int, probe: Probe) -> None:
    limiter = anyio.CapacityLimiter(c)

    async def one(item: int) -> None:
        async with limiter:
            await probe.work(item)

    async with anyio.create_task_group() as tg:
        for item in range(n):
            tg.start_soon(one, item)


async def workers_baseline(
    n: int, c: int, probe: Probe, sleep: Callable[[float], Awaitable[Any]] | None = None
) -> None:
    """``c`` workers over one iterator; ``sleep`` replaces the probe's ``anyio.sleep``."""
    if sleep is not None:
        probe.sleep = sleep
    items: Iterator[int] = iter(range(n))

    async def worker() -> None:
        for item in items:
            await probe.work(item)

    async with anyio.create_task_group() as tg:
        for _ in range(c):
            tg.start_soon(worker)


def native_sleep(backend: str) -> Callable[[float], Awaitable[Any]]:
    """The backend's own sleep, without anyio's layer."""
    if backend == "trio":
        import trio

        return trio.sleep
    import asyncio

    return asyncio.sleep


def cases(n: int, c: int, backend: str) -> list[tuple[str, Callable[[Probe], Awaitable[None]]]]:
    native = native_sleep(backend)
    return [
        (ROWS[0], lambda p: flow_map(n, c, p, 1)),
        (ROWS[1], lambda p: flow_map(n, c, p, 2)),
        (ROWS[2], lambda p: concurrent_consumer(n, c, p, None)),
        (ROWS[3], lambda p: concurrent_consumer(n, c, p, 1)),
        (ROWS[4], lambda p: concurrent_consumer(n, c, p, max(c // 4, 1), concurrency=c)),
        (ROWS[5], lambda p: limiter_baseline(n, c, p)),
        (ROWS[6], lambda p: workers_baseline(n, c, p)),
        (ROWS[7], lambda p: workers_baseline(n, c, p, native)),
    ]


def measure(n: int, c: int, repeat: int, backend: str) -> list[tuple[str, float, float, int]]:
    """``(case, median s, min s, peak concurrency)`` per case, alternating runs."""
    todo = cases(n, c, backend)
    times: dict[str, list[float]] = {name: [] for name, _ in todo}
    peaks: dict[str, int] = {name: 0 for name, _ in todo}
    for rep in range(repeat):
        order = todo[rep % len(todo) :] + todo[: rep % len(todo)]
        for name, func in order:
            probe = Probe()

            async def go(
                func: Callable[[Probe], Awaitable[None]] = func, probe: Probe = probe
            ) -> None:
                await func(probe)

            start = time.perf_counter()
            run_on(backend, go)
            times[name].append(time.perf_counter() - start)
            if probe.done != n:
                raise AssertionError(f"{name}: handled {probe.done} of {n} items")
            if probe.peak != min(c, n):
                raise AssertionError(f"{name}: {probe.peak} in flight at most, not {c}")
            peaks[name] = max(peaks[name], probe.peak)
    return [(name, statistics.median(ts), min(ts), peaks[name]) for name, ts in times.items()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--backend", action="append", default=None, help="asyncio, asyncio+uvloop or trio"
    )
    parser.add_argument("--quick", action="store_true", help="fewer items, asyncio only")
    args, _ = parser.parse_known_args(argv)
    backends: list[str] = args.backend or available_backends()
    n, c, repeat = args.items, args.concurrency, args.repeat
    if args.quick:
        n, repeat, backends = 2_000, 1, ["asyncio"]
    ideal = (n / c) * DELAY
    print(
        f"## I/O-bound map: {n:,} items x anyio.sleep({DELAY}), concurrency C={c}, "
        f"ideal {ideal:.3f} s, median of {repeat}\n"
    )
    print("| backend | case | median s | fastest s | vs ideal | items/s | peak in flight |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for backend in backends:
        for name, med, fast, peak in measure(n, c, repeat, backend):
            print(
                f"| {backend} | {name} | {med:.3f} | {fast:.3f} | {med / ideal:.2f}x | "
                f"{n / med:,.0f} | {peak} |"
            )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
