"""At-least-once, end to end: a flow over a Redis stream is killed part-way (its run
cancelled, or a worker process crashing with ``os._exit``), a new flow with a new
consumer name takes over what the first left pending, and in the end every message
was processed at least once and the group's pending list is empty.

A message counts as processed when its result is in the output stream (the flow's
``RedisStreamSink``); messages are acknowledged only after that write, so a kill
between the write and the acknowledgement processes a message twice. Those
duplicates are counted and reported, not asserted away: at-least-once allows them.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import Any

import anyio
import pytest

from flowstage import Flow
from flowstage.connectors.redis import RedisStreamSink, RedisStreamSource
from flowstage.executors import Executor, LocalExecutor
from flowstage.executors.process import ProcessExecutor, WorkerCrashed
from flowstage.messages import Message

from .conftest import Names

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

#: Messages the producer writes per run.
N = 300


def result(message: Message[dict[str, str]]) -> dict[str, str]:
    """The flow's work: what it writes to the output stream for a message."""
    return {"n": message.data["n"], "attempt": str(message.attempt)}


class CrashAt:
    """A map callback that kills its worker process (``os._exit``) at the ``k``-th
    event that worker handles; never in the test's own process."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.parent = os.getpid()
        self.seen = 0

    def __call__(self, message: Message[dict[str, str]]) -> dict[str, str]:
        self.seen += 1
        if self.seen == self.k and os.getpid() != self.parent:
            os._exit(70)
        return result(message)


class KillAfter(RedisStreamSink):
    """The output sink; sets ``reached`` once ``k`` events were written."""

    def __init__(self, stream: str, url: str, k: int) -> None:
        super().__init__(stream, url=url)
        self.k = k
        self.reached = anyio.Event()

    async def write(self, events: Sequence[Any]) -> None:
        await super().write(events)
        if self.written >= self.k:
            self.reached.set()


class UntilAcked(RedisStreamSource[Any]):
    """A source that sets ``done`` once it acknowledged ``n`` messages."""

    def __init__(self, *args: Any, n: int, **options: Any) -> None:
        super().__init__(*args, **options)
        self.n = n
        self.done = anyio.Event()
        if n == 0:
            self.done.set()

    async def ack(self, ids: Sequence[str]) -> None:
        await super().ack(ids)
        if self.statistics().acked >= self.n:
            self.done.set()


def produce(r: Any, names: Names) -> list[str]:
    pipe = r.pipeline(transaction=False)
    for i in range(N):
        pipe.xadd(names.stream, {"n": i})
    return [mid.decode() for mid in pipe.execute()]


def left_over(r: Any, names: Names, ids: list[str]) -> set[str]:
    """What the group has not acknowledged: pending, or never delivered."""
    pending = {
        p["message_id"].decode()
        for p in r.xpending_range(names.stream, names.group, "-", "+", 10 * N)
    }
    [group] = [g for g in r.xinfo_groups(names.stream) if g["name"].decode() == names.group]
    last = group["last-delivered-id"].decode()

    def key(mid: str) -> tuple[int, int]:
        ms, seq = mid.split("-")
        return int(ms), int(seq)

    return pending | {mid for mid in ids if key(mid) > key(last)}


async def first_flow(
    names: Names, url: str, kill: str, executor: Executor, rng: random.Random
) -> str:
    """Runs the first flow until it is killed; says how."""
    source = RedisStreamSource(names.stream, names.group, "first", url=url)
    if kill == "crash":
        k = rng.randint(1, N // 8)
        flow = Flow.from_messages(source, max_unacked=50, max_demand=10, stages=2).map(CrashAt(k))
        with pytest.raises(WorkerCrashed):
            await flow.write_to(RedisStreamSink(names.key("out"), url=url)).run(executor=executor)
        return f"a worker exited at its event {k}"
    k = rng.randint(1, N - 1)
    sink = KillAfter(names.key("out"), url, k)
    flow = Flow.from_messages(source, max_unacked=50, max_demand=10, stages=2).map(result)
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(flow.write_to(sink).run, executor=executor))
        await sink.reached.wait()
        tg.cancel_scope.cancel()
    return f"cancelled after {sink.written} results were written"


SCENARIOS = [
    pytest.param("cancel", "local", 1, id="cancel-local-seed1"),
    pytest.param("cancel", "local", 2, id="cancel-local-seed2"),
    pytest.param("cancel", "process", 3, id="cancel-process-seed3"),
    pytest.param("crash", "process", 4, id="crash-process-seed4"),
    pytest.param("crash", "process", 5, id="crash-process-seed5"),
]


@pytest.mark.parametrize(("kill", "where", "seed"), SCENARIOS)
async def test_every_message_is_processed_at_least_once_after_a_kill(
    names: Names, r: Any, redis_url: str, kill: str, where: str, seed: int
) -> None:
    rng = random.Random(seed)
    ids = produce(r, names)
    executor: Executor = LocalExecutor() if where == "local" else ProcessExecutor(2)
    with anyio.fail_after(50):
        how = await first_flow(names, redis_url, kill, executor, rng)
        first = Counter(int(f[b"n"]) for _, f in r.xrange(names.key("out")))
        remaining = left_over(r, names, ids)
        # A new flow, a new consumer, taking over at once what the first left pending.
        taker = UntilAcked(
            names.stream, names.group, "second", url=redis_url, claim_idle_ms=0, n=len(remaining)
        )
        flow = Flow.from_messages(taker, max_unacked=50, max_demand=10, stages=2).map(result)
        async with anyio.create_task_group() as tg:
            tg.start_soon(flow.write_to(RedisStreamSink(names.key("out"), url=redis_url)).run)
            await taker.done.wait()
            tg.cancel_scope.cancel()

    processed = Counter(int(f[b"n"]) for _, f in r.xrange(names.key("out")))
    duplicates = sum(c - 1 for c in processed.values())
    stats = taker.statistics()
    report = (
        f"{kill} on the {where} executor ({how}): the first flow wrote {sum(first.values())} "
        f"results, left {len(remaining)} messages unacknowledged; the second claimed "
        f"{stats.claimed} and read {stats.delivered - stats.claimed} new; "
        f"{duplicates} duplicates"
    )
    print(report)
    assert set(processed) == set(range(N)), report
    assert r.xpending(names.stream, names.group)["pending"] == 0, report
    assert stats.claimed <= len(remaining), report
    assert stats.delivered == len(remaining), report  # each left-over message, once
