"""Stage-engine throughput: integer events per second through flowstage stages.

Cases (each is one row of the table, per event-loop backend):

* ``plain Python loop``: a generator yielding the integers ``0..N-1`` feeding a
  ``for`` loop that sums them. No framework: the yardstick for the other rows.
* ``plain Python, batches of 1000``: ``sum(list(range(c, c + 1000)))`` for each
  1000 events, no framework either. This is the work the stages below do with the
  events (build the list, sum it) without the engine, so it is the ceiling for
  them; the gap between a row and this one is the engine's own cost.
* ``producer → consumer, max_demand=M``: a producer whose ``handle_demand(d)`` returns
  ``list(range(c, c + d))`` and a consumer whose ``handle_events`` adds
  ``sum(events)`` to a total, subscribed with ``max_demand`` 100, 1000 and 5000
  (``min_demand`` is the default ``max_demand // 2``, so batches are ``M / 2``
  events).
* ``producer → producer-consumer → consumer, max_demand=1000``: the same, with an
  identity producer-consumer (``handle_events`` returns the events list) between
  them; both subscriptions use ``max_demand=1000``.

Every flowstage run starts a fresh :class:`flowstage.StageGroup`, and the clock
covers starting the stages, moving every event and waiting for all stages to stop.
The consumer checks the sum, so a run that loses or duplicates events fails.

Cases are interleaved (run 1 of every case, then run 2 of every case, ...) so a
slow patch of the machine hits all cases alike, and the table shows the median
of the runs. Usage::

    python benchmarks/engine.py [--events N] [--repeat K] [--backend NAME ...]
                                [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.util
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from _common import run_on

import flowstage

DEFAULT_EVENTS = 5_000_000
DEFAULT_REPEAT = 5
QUICK_EVENTS = 20_000
WARMUP_EVENTS = 50_000

BACKENDS: tuple[str, ...] = ("asyncio", "asyncio+uvloop", "trio")

# ---------------------------------------------------------------------------- stages


class RangeProducer(flowstage.Producer[int]):
    """Emits ``0, 1, ..., total - 1``, exactly as many as demanded, then finishes."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.next = 0
        self.total = total

    def handle_demand(self, demand: int) -> list[int] | None:
        start = self.next
        stop = min(start + demand, self.total)
        if stop <= start:
            return None
        self.next = stop
        if stop == self.total:
            self.finish()
        return list(range(start, stop))


class Identity(flowstage.ProducerConsumer[int, int]):
    """Passes every batch on unchanged."""

    def handle_events(self, events: list[int], from_: flowstage.Subscription[int]) -> list[int]:
        return events


class SumConsumer(flowstage.Consumer[int]):
    """Adds up the events (one C-level ``sum`` per batch) and counts batches."""

    def __init__(self, *, subscribe_to: Sequence[Any]) -> None:
        super().__init__(subscribe_to=subscribe_to)
        self.total = 0
        self.count = 0
        self.batches = 0

    def handle_events(self, events: list[int], from_: flowstage.Subscription[int]) -> None:
        self.total += sum(events)
        self.count += len(events)
        self.batches += 1


# ---------------------------------------------------------------------------- cases


def _numbers(n: int) -> Iterator[int]:
    yield from range(n)


def plain_loop(n: int) -> int:
    """The yardstick: a generator feeding a ``for`` loop that sums."""
    total = 0
    for x in _numbers(n):
        total += x
    return total


def plain_batches(n: int, size: int) -> int:
    """The stages' own work without the engine: build each batch, sum it."""
    total = 0
    for start in range(0, n, size):
        total += sum(list(range(start, min(start + size, n))))
    return total


async def run_chain(n: int, max_demand: int, with_producer_consumer: bool) -> SumConsumer:
    """Move ``n`` events producer → [producer-consumer →] consumer; return the consumer."""
    async with flowstage.StageGroup() as group:
        producer: flowstage.Stage = group.start(RangeProducer(n))
        if with_producer_consumer:
            producer = group.start(Identity(subscribe_to=[(producer, {"max_demand": max_demand})]))
        consumer = SumConsumer(subscribe_to=[(producer, {"max_demand": max_demand})])
        group.start(consumer)
        await group.wait()
    return consumer


@dataclass(frozen=True)
class Case:
    label: str
    #: ``None`` for the plain loops.
    max_demand: int | None
    with_producer_consumer: bool = False
    #: Batch size of the batched plain loop (``None``: per-event loop or stages).
    batch: int | None = None
    #: The case moves ``events // divisor`` events (small batches are slow).
    divisor: int = 1

    def events(self, n: int) -> int:
        return max(n // self.divisor, 1)

    async def run(self, n: int) -> tuple[int, float, int]:
        """Run once on ``n`` events; return ``(events, seconds, batches)``."""
        count = self.events(n)
        expected = count * (count - 1) // 2
        gc.collect()
        if self.batch is not None:
            t0 = time.perf_counter()
            total = plain_batches(count, self.batch)
            elapsed = time.perf_counter() - t0
            batches = -(-count // self.batch)
        elif self.max_demand is None:
            t0 = time.perf_counter()
            total = plain_loop(count)
            elapsed = time.perf_counter() - t0
            batches = 0
        else:
            t0 = time.perf_counter()
            consumer = await run_chain(count, self.max_demand, self.with_producer_consumer)
            elapsed = time.perf_counter() - t0
            total = consumer.total
            batches = consumer.batches
            if consumer.count != count:
                raise AssertionError(f"{self.label}: received {consumer.count} of {count} events")
        if total != expected:
            raise AssertionError(f"{self.label}: sum {total} != {expected}")
        return count, elapsed, batches


PLAIN = Case("plain Python loop", None)
CASES: tuple[Case, ...] = (
    PLAIN,
    Case("plain Python, batches of 1000", None, batch=1000),
    Case("producer → consumer, max_demand=100", 100, divisor=5),
    Case("producer → consumer, max_demand=1000", 1000),
    Case("producer → consumer, max_demand=5000", 5000),
    Case("producer → producer-consumer → consumer, max_demand=1000", 1000, True),
)

#: The case ``--profile`` runs under cProfile.
PROFILED = next(c for c in CASES if c.max_demand == 1000 and not c.with_producer_consumer)

#: The row labels the table has for each backend (checked by the smoke test).
ROWS: tuple[str, ...] = tuple(case.label for case in CASES)


# ---------------------------------------------------------------------------- runner


@dataclass
class Result:
    backend: str
    case: Case
    events: int
    rates: list[float]
    #: Batches the consumer handled per run (0 for the per-event plain loop).
    batches: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def backend_available(backend: str) -> str | None:
    """``None`` when ``backend`` can run here, else why not."""
    if backend == "asyncio+uvloop":
        if sys.platform == "win32":
            return "uvloop does not support Windows"
        if importlib.util.find_spec("uvloop") is None:
            return "uvloop is not installed (pip install uvloop)"
    elif backend == "trio" and importlib.util.find_spec("trio") is None:
        return "trio is not installed (pip install trio)"
    return None


async def _measure(cases: Sequence[Case], n: int, repeat: int, warmup: bool) -> list[Result]:
    if warmup:
        for case in cases:
            await case.run(min(n, WARMUP_EVENTS))
    results = [Result("", case, case.events(n), []) for case in cases]
    for rep in range(repeat):
        # Interleave the cases and rotate their order, so drift hits all alike.
        shift = rep % len(cases)
        for result in results[shift:] + results[:shift]:
            count, elapsed, batches = await result.case.run(n)
            result.rates.append(count / elapsed)
            result.batches = batches
    return results


def measure(backend: str, n: int, repeat: int, warmup: bool = True) -> list[Result]:
    results: list[Result] = run_on(backend, _measure, CASES, n, repeat, warmup)
    for result in results:
        result.backend = backend
    return results


def _millions(rate: float) -> str:
    return f"{rate / 1e6:.2f} M"


def format_table(results: Sequence[Result]) -> str:
    lines = [
        "| backend | case | events/run | median events/s | slowest - fastest run "
        "| µs per batch (batch size) | vs plain loop |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    baseline = {r.backend: r.median for r in results if r.case is PLAIN}
    for r in results:
        base = baseline.get(r.backend)
        ratio = f"{r.median / base:.2f}x" if base else "n/a"
        spread = f"{_millions(min(r.rates))} - {_millions(max(r.rates))}"
        if r.batches:
            size = r.events / r.batches
            per_batch = f"{size / r.median * 1e6:.2f} ({size:,.0f})"
        else:
            per_batch = "-"
        lines.append(
            f"| {r.backend} | {r.case.label} | {r.events:,} | {_millions(r.median)} "
            f"| {spread} | {per_batch} | {ratio} |"
        )
    return "\n".join(lines)


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def environment() -> str:
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}; flowstage {flowstage.__version__}, "
        f"anyio {_version('anyio')}, trio {_version('trio')}, uvloop {_version('uvloop')}"
    )


# ---------------------------------------------------------------------------- profile


async def _profile_once(case: Case, n: int) -> tuple[cProfile.Profile, int, float]:
    await case.run(min(n, WARMUP_EVENTS))
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    count, elapsed, batches = await case.run(n)
    profiler.disable()
    return profiler, batches, count / elapsed


Func = tuple[str, int, str]

#: Where a profiled function belongs, by a fragment of its file path (first match).
LAYERS: tuple[tuple[str, str], ...] = (
    ("/flowstage/", "flowstage engine (stage loop, mailbox, demand, dispatcher)"),
    ("/anyio/", "anyio + sniffio (Event wrappers, backend lookup)"),
    ("/sniffio/", "anyio + sniffio (Event wrappers, backend lookup)"),
    ("/asyncio/", "event loop (asyncio/trio scheduler, epoll, futures)"),
    ("/trio/", "event loop (asyncio/trio scheduler, epoll, futures)"),
    ("/uvloop/", "event loop (asyncio/trio scheduler, epoll, futures)"),
    ("/outcome/", "event loop (asyncio/trio scheduler, epoll, futures)"),
    ("selectors.py", "event loop (asyncio/trio scheduler, epoll, futures)"),
    ("/contextvars", "event loop (asyncio/trio scheduler, epoll, futures)"),
    ("engine.py", "benchmark callbacks (list(range(...)), sum)"),
)


def _layer(func: Func, callers: dict[Func, Any], raw: dict[Func, Any], depth: int = 0) -> str:
    path = func[0]
    for fragment, layer in LAYERS:
        if fragment in path:
            return layer
    if callers and depth < 8:
        # Builtins, generated code (attrs) and stdlib helpers belong to the layer
        # that calls them the most.
        caller = max(callers, key=lambda c: callers[c][2])
        return _layer(caller, raw.get(caller, (0, 0, 0, 0, {}))[4], raw, depth + 1)
    return "other"


def profile(backend: str, n: int, top: int = 20) -> str:
    """Profile producer → consumer at ``max_demand=1000``; report costs per batch."""
    case = PROFILED
    profiler, batches, rate = run_on(backend, _profile_once, case, n)
    raw: dict[Func, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows: list[tuple[float, float, int, str]] = []
    layers: dict[str, float] = {}
    for func, (_cc, ncalls, tottime, cumtime, callers) in raw.items():
        path, line, name = func
        where = f"{path.rsplit('/', 1)[-1]}:{line}({name})" if line else name
        rows.append((tottime, cumtime, ncalls, where))
        layer = _layer(func, callers, raw)
        layers[layer] = layers.get(layer, 0.0) + tottime
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    per_batch = 1e6 / batches
    out = [
        f"cProfile of `{case.label}` on {backend}: {case.events(n):,} events, "
        f"{batches:,} consumer batches of {case.events(n) // batches} events, "
        f"{_millions(rate)} events/s under the profiler; "
        f"profiled total {total * per_batch:.1f} µs per batch.",
        "",
        "| layer (own time; builtins and helpers count for their caller) | µs/batch | share |",
        "|---|---:|---:|",
    ]
    for layer, seconds in sorted(layers.items(), key=lambda kv: -kv[1]):
        out.append(f"| {layer} | {seconds * per_batch:.2f} | {100 * seconds / total:.0f}% |")
    out += [
        "",
        "| function | calls/batch | own µs/batch | cumulative µs/batch | own % |",
        "|---|---:|---:|---:|---:|",
    ]
    for tottime, cumtime, ncalls, where in rows[:top]:
        out.append(
            f"| `{where}` | {ncalls / batches:.2f} | {tottime * per_batch:.2f} "
            f"| {cumtime * per_batch:.2f} | {100 * tottime / total:.1f} |"
        )
    return "\n".join(out)


# ---------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/engine.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help=f"events per run (default {DEFAULT_EVENTS:,}; max_demand=100 moves a fifth)",
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help=f"runs per case (default {DEFAULT_REPEAT})"
    )
    parser.add_argument(
        "--backend",
        action="append",
        choices=BACKENDS,
        help="event loop to run on (repeatable; default: all, or asyncio with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_EVENTS:,} events, 1 run, no warm-up, asyncio only",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of the table, cProfile one producer → consumer run (max_demand=1000)",
    )
    args = parser.parse_args(argv)
    n = args.events if args.events is not None else QUICK_EVENTS if args.quick else DEFAULT_EVENTS
    repeat = args.repeat if args.repeat is not None else 1 if args.quick else DEFAULT_REPEAT
    if n < 1 or repeat < 1:
        parser.error("--events and --repeat must be >= 1")
    backends = args.backend or (["asyncio"] if args.quick or args.profile else list(BACKENDS))

    if args.profile:
        print(f"## Stage engine profile: {n:,} events\n")
        print(environment() + "\n")
        print(profile(backends[0], n))
        return 0
    print(f"## Stage engine: {n:,} events per run, median of {repeat} runs\n")
    print(environment() + "\n")
    results: list[Result] = []
    notes: list[str] = []
    for backend in backends:
        reason = backend_available(backend)
        if reason is not None:
            notes.append(f"* {backend} skipped: {reason}.")
            continue
        results.extend(measure(backend, n, repeat, warmup=not args.quick))
    print(format_table(results))
    if notes:
        print("\n" + "\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
