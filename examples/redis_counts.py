"""A service over Redis Streams: count events in fixed windows, write the counts back.

Usage: python examples/redis_counts.py [--seconds S] [--window-ms W] [--url URL]

The service reads events (``{"kind": ...}``) from a stream through a consumer group,
counts each kind in fixed windows of processing time (``Window.periodic``), and
appends one entry per window and kind to another stream (``{"window": <index>,
"kind": ..., "count": ...}``) with ``RedisStreamSink``. Every event is acknowledged
only once the counts of its window were written: stop the service at any point (or
kill it) and a restart counts the unacknowledged events again (at-least-once, so a
count may include an event twice after a crash, never miss one).

Run as a script, it is a demo against ``redis://127.0.0.1:6379/0`` (or ``--url``):
a producer writes random events for ``--seconds``, the service counts them in
windows of ``--window-ms``, the windows' counts are printed as they arrive, and the
demo's streams are deleted at the end. Needs ``pip install 'flowstage[redis]'`` and
asyncio (redis-py's asyncio client).
"""

from __future__ import annotations

import argparse
import random
import uuid
from collections.abc import Sequence
from typing import Any

import anyio

from flowstage import Flow
from flowstage.connectors.redis import RedisStreamSink, RedisStreamSource
from flowstage.flow import Window
from flowstage.messages import Message

KINDS = ("click", "view", "purchase", "signup")


def kind(message: Message[dict[str, str]]) -> str:
    return message.data["kind"]


def count(acc: dict[str, int], event_kind: str) -> dict[str, int]:
    acc[event_kind] = acc.get(event_kind, 0) + 1
    return acc


def window_rows(
    acc: dict[str, int], _partition: Any, trigger: tuple[str, int, str]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One entry per kind when a window closes (periodic windows: ``("periodic",
    index, "done")``)."""
    _type, index, _name = trigger
    rows = [{"window": index, "kind": k, "count": n} for k, n in sorted(acc.items())]
    return rows, acc


def counting_flow(
    source: RedisStreamSource[Any], sink: RedisStreamSink, window_ms: int
) -> Flow[Any]:
    """Events of ``source`` counted per kind in windows of ``window_ms``, written to
    ``sink``. The kinds are partitioned over two stages, each with its windows."""
    return (
        Flow.from_messages(source, stages=1, max_unacked=10_000)
        .map(kind)
        .partition(stages=2, window=Window.periodic(window_ms, "millisecond"))
        .reduce(dict, count)
        .on_trigger(window_rows)
        .write_to(sink)
    )


async def serve(source: RedisStreamSource[Any], counts: str, window_ms: int) -> None:
    """Run the service until cancelled."""
    sink = RedisStreamSink(counts, url=source.url)
    await counting_flow(source, sink, window_ms).run()


async def produce(url: str, stream: str, seconds: float, rate: float, seed: int = 1) -> int:
    """Write random events to ``stream`` for ``seconds``; how many."""
    import redis.asyncio

    rng = random.Random(seed)
    client = redis.asyncio.Redis.from_url(url)
    written = 0
    try:
        end = anyio.current_time() + seconds
        while anyio.current_time() < end:
            batch = max(1, int(rate / 20))
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(batch):
                    pipe.xadd(stream, {"kind": rng.choice(KINDS)})
                await pipe.execute()
            written += batch
            await anyio.sleep(1 / 20)
    finally:
        await client.aclose()
    return written


async def follow(url: str, stream: str) -> None:
    """Print the counts as they are appended (until cancelled)."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    last = "0"
    try:
        while True:
            reply = await client.xread({stream: last}, block=1000)
            for _, entries in reply:
                for entry_id, fields in entries:
                    last = entry_id
                    print(
                        f"  window {fields['window']:>3}  {fields['kind']:<9} {fields['count']:>5}"
                    )
    finally:
        await client.aclose()


async def demo(url: str, seconds: float, window_ms: int, rate: float) -> None:
    import redis.asyncio

    prefix = f"flowstage-example:{uuid.uuid4().hex[:8]}"
    events, counts = f"{prefix}:events", f"{prefix}:counts"
    print(f"counting {events} in windows of {window_ms} ms into {counts}")
    source = RedisStreamSource(events, "counters", url=url)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, source, counts, window_ms)
            tg.start_soon(follow, url, counts)
            written = await produce(url, events, seconds, rate)
            # Every event is acknowledged once its window's counts were written.
            for _ in range(100 + 10_000 // window_ms):
                if source.statistics().acked >= written:
                    break
                await anyio.sleep(window_ms / 1000)
            tg.cancel_scope.cancel()
        client = redis.asyncio.Redis.from_url(url, decode_responses=True)
        try:
            total = sum(int(f["count"]) for _, f in await client.xrange(counts))
            pending = (await client.xpending(events, "counters"))["pending"]
        finally:
            await client.aclose()
        print(f"{written} events written, {total} counted, {pending} unacknowledged")
    finally:
        client = redis.asyncio.Redis.from_url(url)
        try:
            await client.delete(events, counts, f"{events}:dead-letter")
        finally:
            await client.aclose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--window-ms", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2000.0, help="events per second")
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    anyio.run(demo, args.url, args.seconds, args.window_ms, args.rate, backend="asyncio")


if __name__ == "__main__":
    main()
