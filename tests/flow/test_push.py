"""Push sources (``Flow.from_push``): policies, threads, closing, failures, runs.

Deterministic without sleeping: events pushed before a flow starts sit in the
buffer (nothing consumes them yet), and a running flow is held with a gate (a map
callback that waits on an event) or driven to quiescence with ``wait_until``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

import anyio
import pytest

import flowstage
from flowstage import Flow, PushClosed, PushHandle, PushRejected, Window
from flowstage.testing import wait_until

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


def fail_on(bad: object) -> Any:
    def check(x: object) -> object:
        if x == bad:
            raise Boom(f"bad event {x!r}")
        return x

    return check


def source_stage(running: Any, name: str) -> flowstage.Stage:
    stages: list[flowstage.Stage] = [s for s in running.stages if s.name == name]
    (stage,) = stages
    return stage


class Gate:
    """A map callback that holds every event until :meth:`open`, so that nothing
    reaches the output before a test subscribed to it."""

    def __init__(self) -> None:
        self.event = anyio.Event()

    async def __call__(self, x: Any) -> Any:
        await self.event.wait()
        return x

    def open(self) -> None:
        self.event.set()


async def collect(flow: Flow[Any]) -> list[Any]:
    async with flow.stream() as events:
        return [e async for e in events]


# -- the basics ----------------------------------------------------------------------------


async def test_pushed_events_go_through_and_close_finishes_the_flow() -> None:
    flow, push = Flow.from_push[int](capacity=8, stages=1)
    async with flow.map(lambda x: x * 10).stream() as events:
        for i in range(5):
            assert await push(i) == "accepted"
        assert await push.push_many(range(5, 20)) == 15
        push.close()
        got = [e async for e in events]
    assert got == [i * 10 for i in range(20)]
    stats = push.statistics()
    assert (stats.pushed, stats.accepted, stats.dropped, stats.rejected) == (20, 20, 0, 0)
    assert stats.buffered == 0
    assert stats.capacity == 8
    assert push.closed


async def test_events_pushed_before_the_flow_starts_are_buffered() -> None:
    flow, push = Flow.from_push[str](capacity=3)
    assert push.push_nowait("a") == "accepted"
    assert push.push_nowait("b") == "accepted"
    assert push.statistics().buffered == 2
    push.close()  # before the start: what was accepted still goes through
    assert await collect(flow) == ["a", "b"]


async def test_the_producer_hands_out_batches() -> None:
    """Everything buffered goes out in one batch when the demand allows it."""
    flow, push = Flow.from_push[int](capacity=500, name="ingest", stages=1)
    await push.push_many(range(500))
    push.close()
    gate = Gate()
    async with flow.map(gate).start(publish=True) as running:
        sub = running.subscribe(buffer=500)
        gate.open()
        await running.wait()
        stage = source_stage(running, "ingest")
        stats = stage.statistics()
        assert stats.events_out == 500
        assert stats.batches_out <= 2  # not one batch per event
        assert sorted([e async for e in sub]) == list(range(500))


# -- overflow policies -------------------------------------------------------------------


async def test_block_waits_for_room_and_keeps_the_order() -> None:
    flow, push = Flow.from_push[int](capacity=2)
    push.push_nowait(0)
    push.push_nowait(1)
    assert push.push_nowait(2) == "rejected"  # push_nowait cannot wait
    done: list[int] = []

    async def pusher(start: int) -> None:
        for i in range(start, start + 3):
            await push(i)
            done.append(i)

    async with anyio.create_task_group() as tg:
        tg.start_soon(pusher, 10)
        await wait_until(lambda: push.statistics().pushed == 2 + 1 + 1)
        assert push.statistics().waiting == 1
        assert done == []  # blocked: the flow does not run yet
        async with flow.stream() as events:
            got = []
            async for e in events:
                got.append(e)
                if len(got) == 5:
                    push.close()
    assert got == [0, 1, 10, 11, 12]
    assert done == [10, 11, 12]
    assert push.statistics().rejected == 1


async def test_block_is_back_pressure_on_a_running_flow() -> None:
    gate = anyio.Event()

    async def held(x: int) -> int:
        await gate.wait()
        return x

    flow, push = Flow.from_push[int](capacity=5, stages=1, max_demand=4, min_demand=2)
    pushed = 0

    async def pusher() -> None:
        nonlocal pushed
        for i in range(100):
            await push(i)
            pushed += 1
        push.close()

    async with flow.map(held).stream() as events, anyio.create_task_group() as tg:
        tg.start_soon(pusher)
        # The flow holds what it asked for, the buffer fills, the pusher waits.
        await wait_until(lambda: push.statistics().buffered == 5)
        await wait_until(lambda: push.statistics().pushed == pushed + 1)
        assert pushed < 100
        gate.set()
        got = [e async for e in events]
    assert got == list(range(100))


async def test_drop_oldest_counts_logs_and_reports_discards(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("flowstage._push.DROP_LOG_INTERVAL", 3600.0)
    flow, push = Flow.from_push[int](capacity=3, overflow="drop_oldest", name="feed", stages=1)
    with caplog.at_level(logging.WARNING, logger="flowstage"):
        results = [push.push_nowait(i) for i in range(5)]
        assert await push(5) == "dropped_oldest"
        assert await push.push_many([6, 7]) == 2
    assert results == ["accepted"] * 3 + ["dropped_oldest"] * 2
    drops = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 1  # rate-limited: the first drop only, within the interval
    assert "'feed'" in drops[0].getMessage()
    push.close()
    gate = Gate()
    async with flow.map(gate).start(publish=True) as running:
        sub = running.subscribe()
        gate.open()
        await running.wait()
        assert source_stage(running, "feed").statistics().discarded == 5
        stats = running.statistics()
        assert stats.discarded == 5
        assert [layer.label for layer in stats.layers] == ["sources", "from_push → map"]
        assert stats.layers[0].buffer_size == 3
        assert [e async for e in sub] == [5, 6, 7]
    stats = push.statistics()
    assert (stats.pushed, stats.accepted, stats.dropped) == (8, 8, 5)


async def test_drops_are_reported_to_instruments() -> None:
    from flowstage import hooks

    seen: list[hooks.EventsDiscarded] = []

    class Drops(hooks.Instrument):
        def on_events_discarded(self, event: hooks.EventsDiscarded) -> None:
            seen.append(event)

    flow, push = Flow.from_push[int](capacity=2, overflow="drop_newest", name="clicks")
    with hooks.instrumented(Drops()):
        await push.push_many([1, 2, 3, 4])
        push.push_nowait(5)
    assert [(e.stage, e.count, e.reason) for e in seen] == [
        ("clicks", 2, "drop_newest"),
        ("clicks", 1, "drop_newest"),
    ]
    push.close()
    assert await collect(flow) == [1, 2]


async def test_drop_newest_keeps_the_first_events() -> None:
    flow, push = Flow.from_push[int](capacity=3, overflow="drop_newest", stages=1)
    assert [push.push_nowait(i) for i in range(4)][-1] == "dropped_newest"
    assert await push(4) == "dropped_newest"
    assert await push.push_many([5, 6]) == 0
    push.close()
    assert await collect(flow.map(lambda x: x)) == [0, 1, 2]
    assert push.statistics().dropped == 4


async def test_reject_raises_and_push_many_is_all_or_nothing() -> None:
    flow, push = Flow.from_push[int](capacity=3, overflow="reject", stages=1)
    await push.push_many([0, 1])
    with pytest.raises(PushRejected, match=r"2 events do not fit .*1 free of 3") as info:
        await push.push_many([2, 3])
    assert info.value.count == 2
    await push(2)
    with pytest.raises(PushRejected, match="is full"):
        await push(3)
    assert push.push_nowait(3) == "rejected"
    push.close()
    assert await collect(flow.map(lambda x: x)) == [0, 1, 2]
    assert push.statistics().rejected == 4


# -- threads ---------------------------------------------------------------------------------


async def test_push_threadsafe_from_worker_threads_blocks_them_for_room() -> None:
    flow, push = Flow.from_push[int](capacity=4)
    results: list[str] = []

    def worker(start: int) -> None:
        for i in range(start, start + 50):
            results.append(push.push_threadsafe(i))

    async with flow.stream() as events:
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, worker, 0)
            tg.start_soon(anyio.to_thread.run_sync, worker, 1000)
            got: list[int] = []
            async for e in events:
                got.append(e)
                if len(got) == 100:
                    break
        push.close()
    assert sorted(got) == [*range(50), *range(1000, 1050)]
    assert results == ["accepted"] * 100


async def test_push_threadsafe_refuses_the_loop_thread_and_a_flow_not_started() -> None:
    flow, push = Flow.from_push[int]()

    def from_thread() -> None:
        push.push_threadsafe(1)

    with pytest.raises(RuntimeError, match="not running yet"):
        await anyio.to_thread.run_sync(from_thread)
    async with flow.start() as running:
        with pytest.raises(RuntimeError, match="event loop's own thread"):
            push.push_threadsafe(1)
        push.close()
        await running.wait()
    with pytest.raises(PushClosed):
        await anyio.to_thread.run_sync(from_thread)


async def test_a_thread_waiting_for_room_is_woken_by_close() -> None:
    flow, push = Flow.from_push[int](capacity=1, stages=1, max_demand=1, min_demand=0)
    push.push_nowait(0)
    started = threading.Event()
    outcome: list[PushClosed] = []

    def worker() -> None:
        started.set()
        try:
            push.push_threadsafe(1)
        except PushClosed as exc:
            outcome.append(exc)

    gate = Gate()
    async with flow.map(gate).start() as running:
        # The flow takes event 0 and holds it (it asks for one at a time): refill
        # the buffer, so that the worker's event has to wait for room.
        await wait_until(lambda: push.statistics().buffered == 0)
        push.push_nowait(2)
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, worker)
            await wait_until(lambda: started.is_set() and push.statistics().pushed == 3)
            push.close()
        gate.open()
        await running.wait()
    assert len(outcome) == 1
    assert outcome[0].reason == "closed"


# -- closing, ending, failing --------------------------------------------------------------


async def test_close_flushes_windows() -> None:
    flow, push = Flow.from_push[int](window=Window.count(3), stages=1)
    sums = flow.reduce(lambda: 0, lambda acc, x: acc + x).emit("state")
    async with sums.stream() as events:
        await push.push_many(range(7))
        push.close()
        got = [e async for e in events]
    assert got == [0 + 1 + 2, 3 + 4 + 5, 6]


async def test_close_wakes_waiting_pushers_with_push_closed() -> None:
    flow, push = Flow.from_push[int](capacity=1)
    push.push_nowait(0)
    caught: list[PushClosed] = []

    async def pusher() -> None:
        try:
            await push.push_many([1, 2])
        except PushClosed as exc:
            caught.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(pusher)
        await wait_until(lambda: push.statistics().pushed == 3)
        push.close()
    assert [c.reason for c in caught] == ["closed"]
    with pytest.raises(PushClosed, match="it was closed"):
        push.push_nowait(3)
    assert await collect(flow) == [0]


async def test_a_cancelled_pusher_withdraws_its_event() -> None:
    flow, push = Flow.from_push[int](capacity=1)
    push.push_nowait(0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(push.push, 1)
        await wait_until(lambda: push.statistics().pushed == 2)
        tg.cancel_scope.cancel()
    assert push.statistics().pushed == 1
    push.close()
    assert await collect(flow) == [0]


async def test_push_after_a_failure_raises_push_closed_with_the_cause() -> None:
    flow, push = Flow.from_push[str](capacity=10)
    with pytest.raises(Boom):
        async with flow.map(fail_on("bad")).start() as running:
            await push("ok")
            await push("bad")
            await running.wait()
    with pytest.raises(PushClosed, match=r"failed .*Boom: bad event 'bad'") as info:
        await push("late")
    assert info.value.reason == "failed"
    assert isinstance(info.value.__cause__, Boom)
    with pytest.raises(PushClosed):
        push.push_nowait("late")
    assert push.closed


async def test_a_pusher_waiting_when_the_flow_fails_gets_push_closed() -> None:
    flow, push = Flow.from_push[int](capacity=2)
    caught: list[PushClosed] = []

    async def pusher() -> None:
        try:
            for i in itertools.count():  # until the push source refuses
                await push(i)
        except PushClosed as exc:
            caught.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(pusher)
        with pytest.raises(Boom):
            async with flow.map(fail_on(5)).start() as running:
                await running.wait()
    assert len(caught) == 1
    assert caught[0].reason == "failed"
    assert isinstance(caught[0].__cause__, Boom)
    with pytest.raises(PushClosed) as info:
        await push(0)
    assert isinstance(info.value.__cause__, Boom)


async def test_push_after_stop_raises_push_closed() -> None:
    flow, push = Flow.from_push[int]()
    async with flow.start() as running:
        await push(1)
        running.stop()
        await running.wait()
    with pytest.raises(PushClosed, match="has ended") as info:
        await push(2)
    assert info.value.reason == "ended"
    assert info.value.__cause__ is None


async def test_push_after_the_block_was_left_raises_push_closed() -> None:
    flow, push = Flow.from_push[int]()
    async with flow.start():
        await push(1)
    with pytest.raises(PushClosed):
        push.push_nowait(2)


# -- one run per handle ------------------------------------------------------------------------


async def test_a_handle_feeds_one_run() -> None:
    flow, push = Flow.from_push[int]()
    push.close()
    assert await collect(flow) == []
    with pytest.raises(RuntimeError, match="already feeds a run"):
        await collect(flow)


async def test_a_push_flow_used_twice_in_one_flow_is_refused() -> None:
    flow, _push = Flow.from_push[int]()
    with pytest.raises(RuntimeError, match="already feeds a run"):
        await collect(Flow.merge([flow, flow]))


async def test_async_for_over_a_push_flow() -> None:
    flow, push = Flow.from_push[int](stages=1)
    await push.push_many([1, 2, 3])
    push.close()
    got = [e async for e in flow.map(lambda x: x + 1)]
    assert got == [2, 3, 4]


# -- build-time validation --------------------------------------------------------------------


def test_bad_options_are_named_at_build_time() -> None:
    with pytest.raises(ValueError, match=r"Flow.from_push: capacity must be an integer >= 1"):
        Flow.from_push(0)
    with pytest.raises(TypeError, match=r"Flow.from_push: capacity must be an integer >= 1"):
        Flow.from_push("10")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"overflow must be one of 'block', 'drop_oldest', 'drop_newest', 'reject'",
    ):
        Flow.from_push(overflow="drop")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"name must be a string or None"):
        Flow.from_push(name=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Flow.from_push: stages must be an integer >= 1"):
        Flow.from_push(stages=0)
    flow, _ = Flow.from_push()
    with pytest.raises(TypeError, match=r"Flow.start: publish must be True or False"):
        flow.start(publish="yes")  # type: ignore[arg-type]


def test_the_plan_stays_portable_and_names_the_handle_by_reference() -> None:
    import pickle

    from flowstage.plan import PushSource, check_portable

    flow, push = Flow.from_push[int]()
    compiled = flow.map(abs).compile()
    (inp,) = compiled.plan.layers[0].inputs
    assert isinstance(inp.source, PushSource)
    assert compiled.bindings.resolve(inp.source.handle) is push
    assert check_portable(compiled.plan) == []
    assert pickle.loads(pickle.dumps(compiled.plan)) == compiled.plan


def test_the_handle_is_typed_and_named() -> None:
    _flow, push = Flow.from_push[str](name="clicks")
    assert isinstance(push, PushHandle)
    assert push.name == "clicks"
    assert "clicks" in repr(push)
    assert repr(Flow.from_push) == "<Flow.from_push>"


# -- other executors ---------------------------------------------------------------------------


def check_positive(x: int) -> int:
    if x <= 0:
        raise Boom(f"not positive: {x}")
    return x


async def test_a_push_flow_on_the_process_executor() -> None:
    """The source runs in the parent, the layer in worker processes."""
    flow, push = Flow.from_push[int](stages=2, capacity=8)
    async with flow.map(abs).stream(executor="process") as events:
        await push.push_many(range(-100, 0))
        push.close()
        got = sorted([e async for e in events])
    assert got == list(range(1, 101))
    flow, push = Flow.from_push[int](stages=2)
    with pytest.raises(Boom):
        async with flow.map(check_positive).start(executor="process") as running:
            await push.push_many([1, 2, 0])
            await running.wait()
    with pytest.raises(PushClosed) as info:
        await push(3)
    assert isinstance(info.value.__cause__, Boom)


async def test_shutdown_closes_the_push_source_and_delivers_what_it_accepted() -> None:
    flow, push = Flow.from_push[int](capacity=100, stages=1)
    gate = Gate()
    async with flow.map(gate).start(publish=True) as running:
        sub = running.subscribe()
        await push.push_many(range(10))
        gate.open()
        result = await running.shutdown(timeout=30)
        assert result.outcome == "drained"
        assert [e async for e in sub] == list(range(10))
    with pytest.raises(PushClosed, match="it was closed"):
        push.push_nowait(10)


async def test_a_closed_push_source_waits_for_its_consumers_to_subscribe() -> None:
    """A source in accumulate mode (as in a flow, until every consumer subscribed)
    whose handle is closed with nothing buffered does not finish before it is asked
    for events: a consumer that subscribes late sees it end normally (not a
    producer that is gone)."""
    from flowstage import lowlevel, stream
    from flowstage._push_producer import PushProducer

    handle: PushHandle[int] = PushHandle()
    producer = PushProducer(handle, demand="accumulate")
    async with flowstage.StageGroup() as group:
        group.start(producer)
        handle.close()  # tells the producer, which handles it before anyone subscribed
        await wait_until(lambda: lowlevel.messages_handled(producer) >= 1)
        assert not lowlevel.is_terminated(producer)
        async with stream([producer], demand="forward") as events:
            assert [e async for e in events] == []
