"""The web dashboard's cost: statistics snapshots and feed lines of a running flow,
and what open dashboards take from the flow's throughput.

The flow: ``Flow.from_iterable(range(N)).map(inc).partition(stages=4).map(inc)``
(a source stage, 2 + 4 stages in two layers: 7 stages).

Cases:

* ``statistics()``: snapshots taken in a tight loop of an idle running flow (its
  source waits on a memory stream); one is what every open page costs per update.
* ``statistics_feed``: the feed's JSON lines drawn as fast as they come
  (``interval=1e-9``): a snapshot, ``to_dict()``, ``json.dumps`` and a checkpoint.
* The flow over N integers alone, then with 10 feeds at 10 ms (1,000 lines/s: far
  more than 10 browsers at the default 1 s) reading it while it runs.

    python benchmarks/flow_dashboard.py [--events N] [--snapshots K] [--repeat R]
                                        [--backend NAME] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from contextlib import aclosing

import anyio
from _common import available_backends, run_on
from anyio.streams.memory import MemoryObjectSendStream

from flowstage import Flow, RunningFlow
from flowstage.dashboard.web import statistics_feed

ROWS: tuple[str, ...] = (
    "statistics() of a running flow (7 stages)",
    "statistics_feed line (snapshot + JSON)",
    "flow alone",
    "flow with 10 feeds at 10 ms",
)


def inc(n: int) -> int:
    return n + 1


def layers(source: Flow[int]) -> Flow[int]:
    return source.map(inc).partition(stages=4).map(inc)


def idle() -> tuple[MemoryObjectSendStream[int], Flow[int]]:
    """A flow whose source waits on a memory stream, and that stream's sender."""
    send, receive = anyio.create_memory_object_stream[int](1)
    return send, layers(Flow.from_async_iterable(receive))


async def snapshots(count: int) -> float:
    """Seconds per ``statistics()`` of an idle running flow."""
    send, flow = idle()
    async with flow.start() as running:
        start = time.perf_counter()
        for _ in range(count):
            running.statistics()
        elapsed = time.perf_counter() - start
        send.close()
    return elapsed / count


async def feed_lines(count: int) -> float:
    """Seconds per feed line of an idle running flow."""
    send, flow = idle()
    async with flow.start() as running:
        start = time.perf_counter()
        async with aclosing(statistics_feed(running, interval=1e-9)) as feed:
            taken = 0
            async for _ in feed:
                taken += 1
                if taken == count:
                    break
        elapsed = time.perf_counter() - start
        send.close()
    return elapsed / count


async def run_flow(events: int, feeds: int) -> float:
    """Seconds to run the flow over ``events`` integers with ``feeds`` feeds open."""
    lines = 0

    async def read(running: RunningFlow) -> None:
        nonlocal lines
        async for _ in statistics_feed(running, interval=0.01):
            lines += 1

    start = time.perf_counter()
    flow = layers(Flow.from_iterable(range(events)))
    async with flow.start() as running, anyio.create_task_group() as tg:
        for _ in range(feeds):
            tg.start_soon(read, running)
        await running.wait()
    elapsed = time.perf_counter() - start
    if feeds and lines < feeds:
        raise AssertionError(f"the feeds read {lines} lines")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--snapshots", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--quick", action="store_true", help="small counts, asyncio only")
    args, _ = parser.parse_known_args(argv)
    backends: list[str] = args.backend or available_backends()
    events, count, repeat = args.events, args.snapshots, args.repeat
    if args.quick:
        events, count, repeat, backends = 20_000, 200, 1, ["asyncio"]
    print(
        f"## Web dashboard: snapshots and feed lines of a running flow (7 stages), "
        f"and a flow over {events:,} integers with and without feeds, median of {repeat}\n"
    )
    print("| backend | case | per second | µs each |")
    print("|---|---|---:|---:|")
    for backend in backends:
        snap = statistics.median(run_on(backend, snapshots, count) for _ in range(repeat))
        line = statistics.median(run_on(backend, feed_lines, count) for _ in range(repeat))
        alone: list[float] = []
        fed: list[float] = []
        for _ in range(repeat):  # interleaved, so drift hits both alike
            alone.append(run_on(backend, run_flow, events, 0))
            fed.append(run_on(backend, run_flow, events, 10))
        print(f"| {backend} | {ROWS[0]} | {1 / snap:,.0f} snapshots | {snap * 1e6:.1f} |")
        print(f"| {backend} | {ROWS[1]} | {1 / line:,.0f} lines | {line * 1e6:.1f} |")
        for name, runs in ((ROWS[2], alone), (ROWS[3], fed)):
            seconds = statistics.median(runs)
            each = seconds / events * 1e6
            print(f"| {backend} | {name} | {events / seconds:,.0f} events | {each:.2f} |")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
