"""Reading a Redis stream through a consumer group: RedisStreamSource beside plain
redis-py, in the same run.

Every case consumes the same stream of N entries (``{"n": <i>, "word": <text>}``,
written beforehand, not timed) through a new consumer group, reading ``COUNT``
entries at a time and acknowledging each batch with one ``XACK``, until all N are
acknowledged:

* plain redis-py: the ``XREADGROUP`` / ``XACK`` loop one would write by hand (no
  decoding, no messages: the floor), on a client speaking RESP2 as the source's does;
* RedisStreamSource, ``decode`` returning the fields as they are (``bytes``);
* RedisStreamSource, default ``decode`` (fields as ``str``);
* through a trivial flow: ``Flow.from_messages(source, stages=1, max_demand=COUNT)
  .map(...).run()`` with the default ``decode``, until every entry is acknowledged
  (the flow acknowledges what reached its end, in batches, as it goes).

Each case runs once per round on a fresh group, the order rotating between rounds;
the table shows the median wall-clock time, and the median CPU time this process
spent per message (the client's own cost, which another tenant's load on the
machine disturbs less than the wall-clock figures). The header says which reply parser redis-py uses
(``hiredis`` when it is installed, else its pure-Python one). The server is
``redis://127.0.0.1:6379/0`` unless ``FLOWSTAGE_REDIS_URL`` says otherwise.

    python benchmarks/flow_redis.py [--messages N] [--count C] [--repeat K] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from flowstage import Flow
from flowstage.connectors.redis import RedisStreamSource
from flowstage.messages import Message

ROWS: tuple[str, ...] = (
    "plain redis-py XREADGROUP/XACK loop",
    "RedisStreamSource receive/ack loop, decode=identity",
    "RedisStreamSource receive/ack loop, default decode (str fields)",
    "through a trivial flow (from_messages -> map -> run), default decode",
)


def url() -> str:
    return os.environ.get("FLOWSTAGE_REDIS_URL", "redis://127.0.0.1:6379/0")


def identity(fields: Any) -> Any:
    return fields


async def fill(stream: str, n: int) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url())
    try:
        for start in range(0, n, 10_000):
            async with client.pipeline(transaction=False) as pipe:
                for i in range(start, min(n, start + 10_000)):
                    pipe.xadd(stream, {"n": i, "word": f"word-{i % 1000}"})
                await pipe.execute()
    finally:
        await client.aclose()


async def plain(stream: str, group: str, n: int, count: int) -> int:
    import redis.asyncio

    # The reply format the source asks for (RESP2), so that both read the same bytes.
    client = redis.asyncio.Redis.from_url(url(), protocol=2)
    try:
        await client.xgroup_create(stream, group, id="0")
        done = 0
        while done < n:
            reply = await client.xreadgroup(group, "c", {stream: ">"}, count=count, block=1000)
            ids = [mid for mid, _ in reply[0][1]]
            await client.xack(stream, group, *ids)
            done += len(ids)
        return done
    finally:
        await client.aclose()


async def source_loop(stream: str, group: str, n: int, count: int, decode: Any) -> int:
    source: RedisStreamSource[Any] = RedisStreamSource(stream, group, "c", url=url(), decode=decode)
    await source.open()
    try:
        done = 0
        while done < n:
            messages = await source.receive(count)
            await source.ack([m.id for m in messages])
            done += len(messages)
        return done
    finally:
        await source.aclose()


#: A case: consumes the stream through the given (new) group; how many it acknowledged.
Case = Callable[[str], Awaitable[int]]


async def timed(run: Case, group: str) -> tuple[float, float, int]:
    """Wall-clock and CPU seconds of this process, and the messages acknowledged."""
    t, cpu = time.perf_counter(), time.process_time()
    got = await run(group)
    return time.perf_counter() - t, time.process_time() - cpu, got


def payload(message: Message[Any]) -> Any:
    return message.data


class CountedSource(RedisStreamSource[Any]):
    """Sets ``done`` once ``n`` messages were acknowledged (a stream never ends)."""

    def __init__(self, stream: str, group: str, n: int) -> None:
        super().__init__(stream, group, "c", url=url())
        self.n = n
        self.done = anyio.Event()

    async def ack(self, ids: Sequence[str]) -> None:
        await super().ack(ids)
        if self.statistics().acked >= self.n:
            self.done.set()


async def through_flow(stream: str, group: str, n: int, count: int) -> int:
    source = CountedSource(stream, group, n)
    flow = Flow.from_messages(source, stages=1, max_demand=count).map(payload)
    async with anyio.create_task_group() as tg:
        tg.start_soon(flow.run)
        await source.done.wait()
        tg.cancel_scope.cancel()
    return source.statistics().acked


def cases_for(stream: str, n: int, count: int) -> list[tuple[str, Case]]:
    return [
        (ROWS[0], lambda group: plain(stream, group, n, count)),
        (ROWS[1], lambda group: source_loop(stream, group, n, count, identity)),
        (ROWS[2], lambda group: source_loop(stream, group, n, count, None)),
        (ROWS[3], lambda group: through_flow(stream, group, n, count)),
    ]


def run_case(name: str, case: Case, n: int) -> tuple[float, float]:
    seconds, cpu, got = anyio.run(timed, case, f"g-{uuid.uuid4().hex}")
    if got != n:
        raise AssertionError(f"{name}: {got} messages, expected {n}")
    return seconds, cpu


def measure(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    stream = f"flowstage-bench:{uuid.uuid4().hex}"
    # The warm-up reads a stream of its own, exactly as long as it asks for: a flow
    # stopped after n acknowledgements may have taken more from a longer stream.
    warm_stream = f"{stream}:warm-up"
    n, count = args.messages, args.count
    warm = min(n, 1000)
    cases = cases_for(stream, n, count)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in cases}
    anyio.run(fill, stream, n)
    anyio.run(fill, warm_stream, warm)
    try:
        for name, case in cases_for(warm_stream, warm, count):  # imports, first connections
            run_case(name, case, warm)
        for rep in range(args.repeat):
            order = cases[rep % len(cases) :] + cases[: rep % len(cases)]
            for name, case in order:
                times[name].append(run_case(name, case, n))
    finally:
        anyio.run(delete, stream)
        anyio.run(delete, warm_stream)
    return [
        (
            name,
            statistics.median(t for t, _ in times[name]),
            statistics.median(c for _, c in times[name]),
        )
        for name, _ in cases
    ]


async def delete(stream: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url())
    try:
        await client.delete(stream)
    finally:
        await client.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--count", type=int, default=500, help="COUNT of each read")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny inputs, one round")
    args, _ = parser.parse_known_args(argv)
    if args.quick:
        args.messages, args.repeat = 2_000, 1
    from redis.utils import HIREDIS_AVAILABLE

    parser = "hiredis" if HIREDIS_AVAILABLE else "pure-Python"
    print(
        f"## Redis Streams: {args.messages:,} entries through a consumer group, "
        f"COUNT {args.count}, one XACK per batch, {parser} reply parser, "
        f"median of {args.repeat}\n"
    )
    print("| backend | case | median s | messages/s | vs plain redis-py | client CPU µs/message |")
    print("|---|---|---:|---:|---:|---:|")
    rows = measure(args)
    base = rows[0][1]
    for name, seconds, cpu in rows:
        rate = args.messages / seconds
        per = cpu / args.messages * 1e6
        print(
            f"| asyncio | {name} | {seconds:.3f} | {rate / 1e3:.1f} k | {base / seconds:.2f}x "
            f"| {per:.2f} |"
        )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
