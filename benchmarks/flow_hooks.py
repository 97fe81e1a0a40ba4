"""What instruments (``flowstage.hooks``) cost: the same runs with none registered
and with one that overrides every hook and counts.

Cases, each run once to warm up, then ``--repeat`` times without and with the
instrument in alternating order, on each backend; CPU time of this process
(``time.process_time``) and wall time, medians:

* windows: ``Flow.from_iterable(range(n)).partition(stages=2,
  window=Window.count(10)).reduce(int, add).emit("state")``: one trigger per 10
  events (``n / 10`` ``on_trigger_fired`` calls), the heaviest use of a hook a flow
  makes;
* engine: a producer and a consumer in a ``StageGroup``, ``10 * n`` integers with
  ``max_demand=1000``: hooks fire only at each stage's start and end.

    python benchmarks/flow_hooks.py [--events N] [--repeat K] [--backend NAME] [--quick]

Comparing against a version without hooks is ``benchmarks/compare.py``'s job.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from _common import available_backends, run_on

import flowstage
from flowstage import Flow, StageGroup, Window, hooks

ROWS: tuple[str, ...] = (
    "windows: count(10) reduce, no instrument",
    "windows: count(10) reduce, counting instrument",
    "engine: producer → consumer, no instrument",
    "engine: producer → consumer, counting instrument",
)

DEFAULT_EVENTS = 300_000
QUICK_EVENTS = 3_000


class Counting(hooks.Instrument):
    """Overrides every hook; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def on_stage_started(self, event: hooks.StageStarted) -> None:
        self.calls += 1

    def on_stage_stopped(self, event: hooks.StageStopped) -> None:
        self.calls += 1

    def on_stage_failed(self, event: hooks.StageFailed) -> None:
        self.calls += 1

    def on_events_discarded(self, event: hooks.EventsDiscarded) -> None:
        self.calls += 1

    def on_trigger_fired(self, event: hooks.TriggerFired) -> None:
        self.calls += 1


def add(x: int, acc: int) -> int:
    return acc + x


class Numbers(flowstage.Producer[int]):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.next, self.n = 0, n

    def handle_demand(self, demand: int) -> list[int]:
        end = min(self.next + demand, self.n)
        out, self.next = list(range(self.next, end)), end
        if end == self.n:
            self.finish()
        return out


class Summer(flowstage.Consumer[int]):
    total = 0

    def handle_events(self, events: list[int], from_: Any) -> None:
        self.total += sum(events)


async def windows(n: int) -> None:
    flow = (
        Flow.from_iterable(range(n))
        .partition(stages=2, window=Window.count(10))
        .reduce(int, add)
        .emit("state")
    )
    assert sum(await flow.to_list()) == sum(range(n))


async def engine(n: int) -> None:
    async with StageGroup() as group:
        p = group.start(Numbers(10 * n))
        c = group.start(Summer(subscribe_to=[(p, {"max_demand": 1000})]))
        await group.wait()
    assert c.total == sum(range(10 * n))


def timed(backend: str, run: Callable[[int], Awaitable[None]], n: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    run_on(backend, run, n)
    return time.process_time() - cpu, time.perf_counter() - wall


def measure(backend: str, n: int, repeat: int) -> list[tuple[str, float, float, int]]:
    rows = []
    for label, run in (
        ("windows: count(10) reduce", windows),
        ("engine: producer → consumer", engine),
    ):
        plain: list[tuple[float, float]] = []
        counted: list[tuple[float, float]] = []
        calls = 0
        timed(backend, run, n)  # warm-up: imports, caches
        for i in range(2 * repeat):
            if (i + i // 2) % 2 == 0:  # plain, counted, counted, plain, ...
                plain.append(timed(backend, run, n))
                continue
            inst = Counting()
            with hooks.instrumented(inst):
                counted.append(timed(backend, run, n))
            calls = inst.calls
        for suffix, samples, ncalls in (
            ("no instrument", plain, 0),
            ("counting instrument", counted, calls),
        ):
            rows.append(
                (
                    f"{label}, {suffix}",
                    statistics.median(s[0] for s in samples),
                    statistics.median(s[1] for s in samples),
                    ncalls,
                )
            )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=None, help="events per windows run")
    parser.add_argument("--repeat", type=int, default=None, help="runs of each case")
    parser.add_argument("--backend", action="append", choices=available_backends())
    parser.add_argument("--quick", action="store_true", help="a small run on asyncio")
    args = parser.parse_args(argv)
    n = args.events or (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    repeat = args.repeat or (1 if args.quick else 7)
    backends = args.backend or (["asyncio"] if args.quick else available_backends())
    print(f"## Instruments: {n:,} events in windows of 10, {10 * n:,} through the engine\n")
    print("| backend | case | hook calls | CPU median s | wall median s |")
    print("|---|---|---:|---:|---:|")
    for backend in backends:
        for label, cpu, wall, calls in measure(backend, n, repeat):
            print(f"| {backend} | {label} | {calls:,} | {cpu:.3f} | {wall:.3f} |")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
