"""Push sources and fan-out: how fast events go in, and out to many subscribers.

Each case pushes ``--events`` integers into ``Flow.from_push(capacity=1000)`` (the
default ``"block"`` policy, so the pusher feels back-pressure), maps them in one
stage, and publishes the output (``start(publish=True)``) to subscribers that read
it in their own tasks. The time runs from the first push until every subscriber
has received every event. Rates are events pushed per second (for fan-out, also
deliveries: events times subscribers).

Cases:

* ``await push(e)`` one event at a time (a checkpoint per event), 1 subscriber;
* ``push_many`` in batches of 100, 1 subscriber;
* ``push_threadsafe`` from one worker thread, 1 subscriber (a hop to the event loop
  and back per event);
* ``push_many`` with 100 subscribers;
* the same plus one subscriber that never reads (``buffer=100``,
  ``slow="drop_oldest"``): it must not change the rate.

    python benchmarks/flow_push.py [--events N] [--repeat K] [--backend NAME] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import anyio.to_thread
from _common import available_backends, run_on

from flowstage import Flow, FlowSubscription, PushHandle

ROWS: tuple[str, ...] = (
    "await push(e), 1 subscriber",
    "push_many(100), 1 subscriber",
    "push_threadsafe from a thread, 1 subscriber",
    "push_many(100), 100 subscribers",
    "push_many(100), 100 subscribers + 1 that never reads",
)


def _same(x: int) -> int:
    return x


async def _drain(sub: FlowSubscription[int], expected: int, done: list[int]) -> None:
    got = 0
    async for batch in sub.batches():
        got += len(batch)
        if got >= expected:
            break
    done.append(got)


async def _one_by_one(push: PushHandle[int], n: int) -> None:
    for i in range(n):
        await push(i)


async def _batches(push: PushHandle[int], n: int) -> None:
    for start in range(0, n, 100):
        await push.push_many(range(start, min(start + 100, n)))


async def _from_thread(push: PushHandle[int], n: int) -> None:
    def worker() -> None:
        for i in range(n):
            push.push_threadsafe(i)

    await anyio.to_thread.run_sync(worker)


async def run_case(
    n: int,
    pusher: Callable[[PushHandle[int], int], Awaitable[None]],
    subscribers: int,
    idle: bool,
) -> float:
    """Seconds from the first push until every subscriber has every event."""
    flow, push = Flow.from_push[int](capacity=1000, stages=1)
    done: list[int] = []
    async with flow.map(_same).start(publish=True) as running:
        subs = [running.subscribe(buffer=10_000) for _ in range(subscribers)]
        stuck: Any = running.subscribe(buffer=100) if idle else None
        async with anyio.create_task_group() as tg:
            for sub in subs:
                tg.start_soon(_drain, sub, n, done)
            start = time.perf_counter()
            await pusher(push, n)
        elapsed = time.perf_counter() - start
        push.close()
        await running.wait()
    if done != [n] * subscribers:
        raise AssertionError(f"subscribers got {done}, expected {n} each")
    if stuck is not None and stuck.dropped != n - 100:
        raise AssertionError(f"the idle subscriber dropped {stuck.dropped}")
    return elapsed


def measure(n: int, repeat: int, backend: str) -> list[tuple[str, int, float, float]]:
    """``(case, subscribers, seconds, events/s)`` per case: medians over repeats."""
    cases: list[tuple[str, Callable[..., Awaitable[None]], int, bool, int]] = [
        (ROWS[0], _one_by_one, 1, False, n),
        (ROWS[1], _batches, 1, False, n),
        (ROWS[2], _from_thread, 1, False, max(n // 10, 100)),
        (ROWS[3], _batches, 100, False, n),
        (ROWS[4], _batches, 100, True, n),
    ]
    out = []
    for name, pusher, subscribers, idle, events in cases:
        times = [
            run_on(backend, run_case, events, pusher, subscribers, idle) for _ in range(repeat)
        ]
        seconds = statistics.median(times)
        out.append((name, events, subscribers, seconds))
    return [(name, subs, secs, events / secs) for name, events, subs, secs in out]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--quick", action="store_true", help="2,000 events, asyncio only")
    args, _ = parser.parse_known_args(argv)
    backends: list[str] = args.backend or available_backends()
    n, repeat = args.events, args.repeat
    if args.quick:
        n, repeat, backends = 2_000, 1, ["asyncio"]
    print(
        f"## Push sources and fan-out: {n:,} events (a tenth from a thread), "
        f"capacity 1000, median of {repeat}\n"
    )
    print("| backend | case | seconds | events/s | deliveries/s |")
    print("|---|---|---:|---:|---:|")
    for backend in backends:
        for name, subscribers, seconds, rate in measure(n, repeat, backend):
            print(
                f"| {backend} | {name} | {seconds:.3f} | {rate:,.0f} | {rate * subscribers:,.0f} |"
            )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
