"""Back-pressure: a fast producer of 1 KiB items into a slower consumer, peak RSS.

Every item is a new ``bytes(1024)`` created when the producer is asked for it. The
consumer checksums each item with ``zlib.crc32`` and yields to the event loop every
100 items, so it is slower than the producer. Each case runs in its own subprocess;
the table shows its peak RSS (``VmHWM`` on Linux) minus that of an idle subprocess that
only imports flowstage and runs an empty event loop. With back-pressure the memory
does not depend on the item count; the naive unbounded queue holds everything the
producer got ahead by.

Cases:

* stages: ``flowstage.from_iterable(gen) → Consumer`` (async ``handle_events``).
* Flow: ``Flow.from_iterable(gen, stages=1).map_batch(checksum).run()``.
* naive unbounded queue: a producer task ``put_nowait``-ing into an unbounded anyio
  memory stream (``asyncio.Queue()`` on plain asyncio), yielding every 1,000 items;
  a consumer task reading it. The anti-example.

    python benchmarks/flow_backpressure.py [--items N ...] [--repeat K]
                                           [--backend NAME] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from _common import available_backends, peak_rss_kib, run_child, run_on

import flowstage
from flowstage import Flow

ROWS: tuple[str, ...] = (
    "stages: from_iterable → Consumer",
    "Flow: from_iterable → map_batch → run",
    "naive unbounded queue (anti-example)",
)
CASES: dict[str, str] = {"stages": ROWS[0], "flow": ROWS[1], "naive": ROWS[2]}

ITEM_SIZE = 1024
YIELD_EVERY = 100


def items(n: int) -> Iterator[bytes]:
    for _ in range(n):
        yield bytes(ITEM_SIZE)


class Checksum(flowstage.Consumer[bytes]):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.count = 0
        self.crc = 0

    async def handle_events(self, events: list[bytes], from_: Any) -> None:
        for i, item in enumerate(events):
            self.crc = zlib.crc32(item, self.crc)
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await anyio.lowlevel.checkpoint()
        self.count += len(events)


async def run_stages(n: int) -> int:
    async with flowstage.StageGroup() as group:
        producer = group.start(flowstage.from_iterable(items(n)))
        consumer = Checksum(subscribe_to=[producer])
        group.start(consumer)
        await group.wait()
    return consumer.count


async def run_flow(n: int) -> int:
    seen = [0]

    async def checksum(batch: list[bytes]) -> list[int]:
        crc = 0
        for i, item in enumerate(batch):
            crc = zlib.crc32(item, crc)
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await anyio.lowlevel.checkpoint()
        seen[0] += len(batch)
        return []

    await Flow.from_iterable(items(n), stages=1).map_batch(checksum).run()  # type: ignore[arg-type]
    return seen[0]


async def run_naive(n: int) -> int:
    send, receive = anyio.create_memory_object_stream[bytes | None](math.inf)
    count = 0

    async def produce() -> None:
        for i, item in enumerate(items(n)):
            send.send_nowait(item)
            if i % 1000 == 999:
                await anyio.lowlevel.checkpoint()
        send.send_nowait(None)

    async def consume() -> None:
        nonlocal count
        crc = 0
        async for item in receive:
            if item is None:
                return
            crc = zlib.crc32(item, crc)
            count += 1
            if count % YIELD_EVERY == 0:
                await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        tg.start_soon(consume)
    return count


async def run_naive_asyncio_queue(n: int) -> int:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    count = 0

    async def produce() -> None:
        for i, item in enumerate(items(n)):
            queue.put_nowait(item)
            if i % 1000 == 999:
                await asyncio.sleep(0)
        queue.put_nowait(None)

    async def consume() -> None:
        nonlocal count
        crc = 0
        while (item := await queue.get()) is not None:
            crc = zlib.crc32(item, crc)
            count += 1
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    await asyncio.gather(produce(), consume())
    return count


async def _idle(n: int) -> int:
    return 0


def child(case: str, n: int, backend: str) -> dict[str, float]:
    """Run one case in this process and return its measurements."""
    funcs = {"stages": run_stages, "flow": run_flow, "naive": run_naive, "idle": _idle}
    func = funcs[case]
    if case == "naive" and backend != "trio":
        func = run_naive_asyncio_queue
    start = time.perf_counter()
    count = run_on(backend, func, n)
    elapsed = time.perf_counter() - start
    expected = 0 if case == "idle" else n
    if count != expected:
        raise AssertionError(f"{case}: consumed {count} of {expected} items")
    rss_kib = peak_rss_kib()
    return {"seconds": elapsed, "rss_kib": rss_kib}


def spawn(case: str, n: int, backend: str) -> dict[str, float]:
    return run_child(str(Path(__file__).resolve()), case, str(n), backend)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--quick", action="store_true", help="few items, asyncio only")
    parser.add_argument(
        "--child", nargs=3, metavar=("CASE", "N", "BACKEND"), help=argparse.SUPPRESS
    )
    args, _ = parser.parse_known_args(argv)
    if args.child:
        case, n, backend = args.child
        print(json.dumps(child(case, int(n), backend)))
        return 0
    backends: list[str] = args.backend or available_backends()
    sizes: list[int] = args.items
    repeat = args.repeat
    if args.quick:
        sizes, repeat, backends = [2_000, 20_000], 1, ["asyncio"]
    print(
        f"## Back-pressure: {ITEM_SIZE} B items, fast producer → slower consumer, "
        f"peak RSS minus idle interpreter, median of {repeat} subprocesses\n"
    )
    header = " | ".join(f"RSS - idle MiB @ {n:,}" for n in sizes)
    header += " | " + " | ".join(f"s @ {n:,}" for n in sizes)
    print(f"| backend | case | {header} |")
    print("|---|---|" + "---:|" * (2 * len(sizes)))
    for backend in backends:
        idle = statistics.median(spawn("idle", 0, backend)["rss_kib"] for _ in range(repeat))
        for key, name in CASES.items():
            rss: list[str] = []
            secs: list[str] = []
            for n in sizes:
                runs = [spawn(key, n, backend) for _ in range(repeat)]
                rss.append(f"{(statistics.median(r['rss_kib'] for r in runs) - idle) / 1024:.1f}")
                secs.append(f"{statistics.median(r['seconds'] for r in runs):.2f}")
            print(f"| {backend} | {name} | {' | '.join(rss)} | {' | '.join(secs)} |")
        print(f"\n_{backend}: idle interpreter peak RSS {idle / 1024:.1f} MiB_\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
