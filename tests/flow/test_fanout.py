"""Fan-out of a running flow's output: ``flow.start(publish=True)`` and
``running.subscribe()``.

Deterministic without sleeping: subscribers are made before anything is pushed
into the flow (a push source), and the tests wait for what they expect with
``wait_until`` or by reading the subscriptions to their end.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from flowstage import Flow, FlowSubscription
from flowstage._fanout import Hub
from flowstage.testing import wait_until

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


def fail_on_negative(x: int) -> int:
    if x < 0:
        raise Boom(f"negative: {x}")
    return x


async def read_all(sub: FlowSubscription[Any], into: list[Any]) -> None:
    async for event in sub:
        into.append(event)


async def test_every_subscriber_gets_every_event_in_order() -> None:
    flow, push = Flow.from_push[int](stages=1)
    results: list[list[int]] = [[] for _ in range(20)]
    async with flow.map(lambda x: x * 2).start(publish=True) as running:
        subs = [running.subscribe(buffer=1000) for _ in range(20)]
        async with anyio.create_task_group() as tg:
            for sub, into in zip(subs, results, strict=True):
                tg.start_soon(read_all, sub, into)
            await push.push_many(range(500))
            push.close()
            await running.wait()
    # Every subscription ended by itself when the flow finished.
    assert all(r == [2 * i for i in range(500)] for r in results)
    assert all(s.ended and not s.disconnected and s.dropped == 0 for s in subs)


async def test_a_slow_subscriber_drops_its_oldest_and_slows_nobody() -> None:
    flow, push = Flow.from_push[int](stages=1, capacity=10)
    fast: list[int] = []
    async with flow.start(publish=True) as running:
        slow = running.subscribe(buffer=50)  # never read until the end
        sub = running.subscribe(buffer=1000)
        assert running.statistics().subscribers == 2
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_all, sub, fast)
            # A "block" source with a capacity of 10: the pusher could not finish if
            # the slow subscriber held the flow back.
            await push.push_many(range(1000))
            push.close()
            await running.wait()
        assert fast == list(range(1000))
        assert slow.dropped == 1000 - 50
        stats = running.statistics()
        assert stats.subscriber_dropped == 1000 - 50
        assert stats.subscribers == 0  # the flow ended: subscriptions with it
        assert [e async for e in slow] == list(range(950, 1000))
        assert not slow.disconnected


async def test_a_slow_subscriber_with_disconnect_is_cut_off() -> None:
    flow, push = Flow.from_push[int](stages=1)
    async with flow.start(publish=True) as running:
        slow = running.subscribe(buffer=5, slow="disconnect")
        other = running.subscribe(buffer=100)
        await push.push_many(range(3))
        await wait_until(lambda: slow.buffered == 3)
        await push.push_many(range(3, 10))
        await wait_until(lambda: slow.disconnected)
        assert slow.ended
        # What it held before the overflow is still handed out, then it ends.
        assert [e async for e in slow] == [0, 1, 2]
        assert slow.dropped == 7  # the batch that did not fit
        push.close()
        await running.wait()
        assert [e async for e in other] == list(range(10))


async def test_a_late_subscriber_sees_only_what_comes_after() -> None:
    flow, push = Flow.from_push[int](stages=1)
    async with flow.start(publish=True) as running:
        early = running.subscribe()
        await push.push_many(range(5))
        first = [await early.__anext__() for _ in range(5)]
        late = running.subscribe()
        await push.push_many(range(5, 10))
        push.close()
        await running.wait()
        assert first == list(range(5))
        assert [e async for e in early] == list(range(5, 10))
        assert [e async for e in late] == list(range(5, 10))


async def test_subscriptions_end_when_the_flow_is_stopped() -> None:
    flow, push = Flow.from_push[int](stages=1)
    got: list[int] = []
    async with flow.start(publish=True) as running:
        sub = running.subscribe()
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_all, sub, got)
            await push.push_many([1, 2])
            await wait_until(lambda: len(got) == 2)
            running.stop()  # the reader's loop ends: the task group can exit
    assert got == [1, 2]
    assert sub.ended


async def test_subscriptions_end_when_the_flow_fails() -> None:
    flow, push = Flow.from_push[int](stages=1)
    got: list[int] = []
    async with anyio.create_task_group() as tg:
        with pytest.raises(Boom):
            async with flow.map(fail_on_negative).start(publish=True) as running:
                sub = running.subscribe()
                tg.start_soon(read_all, sub, got)
                await push.push_many([1, 2, -1])
                await running.wait()
    # The reader ended by itself (the outer task group waited for it).
    assert sub.ended
    assert set(got) <= {1, 2}


async def test_subscriptions_end_when_the_block_is_left() -> None:
    flow, _push = Flow.from_push[int]()
    async with flow.start(publish=True) as running:
        sub = running.subscribe()
    assert [e async for e in sub] == []
    late = running.subscribe()  # after the end: ends at once
    assert late.ended
    assert [e async for e in late] == []


async def test_batches_and_close() -> None:
    flow, push = Flow.from_push[int](stages=1)
    async with flow.start(publish=True) as running:
        sub = running.subscribe()
        async with running.subscribe() as leaving:
            pass
        assert leaving.closed
        assert leaving.ended
        await push.push_many(range(10))
        push.close()
        await running.wait()
        out = [e for batch in [b async for b in sub.batches()] for e in batch]
        assert out == list(range(10))
        assert leaving.buffered == 0


async def test_subscribe_needs_publish_and_checks_its_options() -> None:
    flow, push = Flow.from_push[int]()
    async with flow.start() as running:
        with pytest.raises(RuntimeError, match=r"publish=True"):
            running.subscribe()
        running.stop()
    flow, push = Flow.from_push[int]()
    async with flow.start(publish=True) as running:
        with pytest.raises(ValueError, match=r"RunningFlow.subscribe: buffer must be an integer"):
            running.subscribe(buffer=0)
        with pytest.raises(
            ValueError, match=r"slow must be one of 'drop_oldest', 'disconnect', got: 'block'"
        ):
            running.subscribe(slow="block")  # type: ignore[arg-type]
        push.close()


def test_the_hub_counts_subscribers_and_drops() -> None:
    hub: Hub[int] = Hub()
    a = hub.subscribe(buffer=2)
    b = hub.subscribe(buffer=2, slow="disconnect")
    c = hub.subscribe(buffer=10)
    assert hub.subscribers == 3
    hub.publish([1, 2, 3])
    assert hub.subscribers == 2  # b was cut off
    assert b.disconnected
    assert (a.dropped, b.dropped, c.dropped) == (1, 3, 0)
    assert hub.dropped == 4
    c.close()
    assert hub.subscribers == 1
    hub.close()
    assert hub.subscribers == 0
    assert a.ended


async def test_publish_on_the_process_executor() -> None:
    flow, push = Flow.from_push[int](stages=2)
    async with flow.map(abs).start(publish=True, executor="process") as running:
        sub = running.subscribe()
        await push.push_many(range(-50, 0))
        push.close()
        await running.wait()
        assert sorted([e async for e in sub]) == list(range(1, 51))
