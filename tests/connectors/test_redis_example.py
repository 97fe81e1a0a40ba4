"""examples/redis_counts.py against a real Redis server: the windowed counts it writes
back add up to the events it read, and every event is acknowledged."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from flowstage.connectors.redis import RedisStreamSink, RedisStreamSource

from ..test_examples import load
from .conftest import Names

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

example = load("redis_counts")


class UntilAcked(RedisStreamSource[Any]):
    """Sets ``done`` once ``n`` messages were acknowledged."""

    def __init__(self, *args: Any, n: int, **options: Any) -> None:
        super().__init__(*args, **options)
        self.n = n
        self.done = anyio.Event()

    async def ack(self, ids: Sequence[str]) -> None:
        await super().ack(ids)
        if self.statistics().acked >= self.n:
            self.done.set()


async def test_the_windowed_counts_add_up_and_every_event_is_acknowledged(
    names: Names, r: Any, redis_url: str
) -> None:
    rng = random.Random(3)
    kinds = [rng.choice(example.KINDS) for _ in range(500)]
    pipe = r.pipeline(transaction=False)
    for k in kinds:
        pipe.xadd(names.stream, {"kind": k})
    pipe.execute()
    source = UntilAcked(names.stream, names.group, url=redis_url, n=len(kinds))
    sink = RedisStreamSink(names.key("counts"), url=redis_url)
    flow = example.counting_flow(source, sink, window_ms=20)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(flow.run)
            await source.done.wait()
            tg.cancel_scope.cancel()
    rows = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in r.xrange(names.key("counts"))
    ]
    totals: Counter[str] = Counter()
    for row in rows:
        assert set(row) == {"window", "kind", "count"}
        totals[row["kind"]] += int(row["count"])
    assert totals == Counter(kinds)
    assert r.xpending(names.stream, names.group)["pending"] == 0


def test_the_demo_runs_and_cleans_up(
    redis_url: str, r: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    example.main(["--seconds", "0.3", "--window-ms", "50", "--rate", "400", "--url", redis_url])
    out = capsys.readouterr().out
    summary = out.strip().splitlines()[-1]
    written, counted, unacked = (int(summary.split()[i]) for i in (0, 3, 5))
    assert (counted, unacked) == (written, 0), out
    prefix = out.split()[1].rpartition(":")[0]
    assert not list(r.scan_iter(match=f"{prefix}:*"))
