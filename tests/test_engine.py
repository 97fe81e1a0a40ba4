"""The engine beyond GenStage's own cases: errors, cancellation, streams, sources,
the concurrent consumer and statistics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import flowstage
from flowstage import ConcurrentConsumer, Consumer, Producer, ProducerConsumer, StageGroup
from flowstage.testing import wait_quiescent, wait_until

from .stages import Counter, Forwarder, ManualForwarder

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


class Handlers:
    """A ConcurrentConsumer handler whose calls wait until released; it records
    which events started, which finished, and the most that ran at once."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.done: list[int] = []
        self.running = 0
        self.peak = 0
        self._gates: dict[int, anyio.Event] = {}
        self._all_released = False

    def _gate(self, event: int) -> anyio.Event:
        gate = self._gates.get(event)
        if gate is None:
            gate = self._gates[event] = anyio.Event()
            if self._all_released:
                gate.set()
        return gate

    def release(self, event: int) -> None:
        self._gate(event).set()

    def release_all(self) -> None:
        self._all_released = True
        for gate in self._gates.values():
            gate.set()

    async def __call__(self, event: int) -> None:
        self.started.append(event)
        self.running += 1
        self.peak = max(self.peak, self.running)
        await self._gate(event).wait()
        self.running -= 1
        self.done.append(event)


class FailingConsumer(Consumer[int]):
    def handle_events(self, events: list[int], from_: Any) -> None:
        if any(e >= 5 for e in events):
            raise Boom("bad event")


async def test_callback_error_surfaces_original_exception_with_stage_note() -> None:
    with pytest.raises(Boom) as info:
        async with StageGroup() as g:
            p = g.start(Counter())
            g.start(FailingConsumer(name="picky", subscribe_to=[(p, {"max_demand": 2})]))
            await g.wait()
    assert any("picky" in note for note in info.value.__notes__)


async def test_async_callback_error_in_producer_consumer() -> None:
    class Exploding(ProducerConsumer[int, int]):
        async def handle_events(self, events: list[int], from_: Any) -> list[int]:
            await anyio.lowlevel.checkpoint()
            raise Boom("async")

    with pytest.raises(Boom):
        async with StageGroup() as g:
            p = g.start(Counter())
            x = g.start(Exploding(name="exploding", subscribe_to=[p]))
            g.start(Forwarder(subscribe_to=[x]))
            await g.wait()


async def test_error_while_streaming_reaches_the_iterating_task() -> None:
    class Failing(Producer[int]):
        def handle_demand(self, demand: int) -> list[int]:
            raise Boom("producer")

    got: list[int] = []
    with pytest.raises(Boom) as info:
        async with flowstage.stream([Failing(name="failing")]) as events:
            async for e in events:
                got.append(e)
    assert got == []
    assert any("failing" in note for note in info.value.__notes__)


async def test_finite_pipeline_runs_to_completion_and_stops() -> None:
    async with StageGroup() as g:
        p = g.start(flowstage.from_iterable(range(10_000)))
        c = g.start(Forwarder(subscribe_to=[(p, {"max_demand": 100})]))
        await g.wait()
    assert c.events == list(range(10_000))
    assert not p.running
    assert not c.running


async def test_finite_chain_through_producer_consumer() -> None:
    class Square(ProducerConsumer[int, int]):
        def handle_events(self, events: list[int], from_: Any) -> list[int]:
            return [e * e for e in events]

    async with flowstage.stream([Square(subscribe_to=[flowstage.from_iterable(range(1000))])]):
        pass  # subscribe_to does not start the producer: only running stages count

    async with StageGroup() as g:
        p = g.start(flowstage.from_iterable(range(1000)))
        sq = g.start(Square(subscribe_to=[(p, {"max_demand": 50})]))
        async with flowstage.stream([sq]) as events:
            assert [e async for e in events] == [e * e for e in range(1000)]


async def test_a_producer_consumer_reads_the_demand_it_may_meet() -> None:
    """``downstream_demand()`` is what consumers asked for and were not sent yet,
    read inside ``handle_events`` before its output goes out."""

    class Reader(ProducerConsumer[int, int]):
        def __init__(self, **opts: Any) -> None:
            super().__init__(**opts)
            self.read: list[int] = []

        def handle_events(self, events: list[int], from_: Any) -> list[int]:
            self.read.append(self.downstream_demand())
            return events

    async with StageGroup() as g:
        p = g.start(Counter())
        reader = g.start(Reader(subscribe_to=[(p, {"max_demand": 4, "min_demand": 0})]))
        sink = g.start(ManualForwarder(subscribe_to=[reader]))
        await wait_until(lambda: sink.subscriptions)
        stages = [p, reader, sink]
        await wait_quiescent(stages)
        assert reader.read == []
        assert reader.downstream_demand() == 0
        sink.subscriptions[0].ask(3)
        await wait_quiescent(stages)
        # Four events came in against a demand of 3: one waits in the buffer.
        assert reader.read == [3]
        assert reader.downstream_demand() == 0
        sink.subscriptions[0].ask(6)
        await wait_quiescent(stages)
        # The buffered event met 1 of the 6; four more came in against 5, and the
        # next four against the 1 left (three of them wait in the buffer).
        assert reader.read == [3, 5, 1]
        assert reader.downstream_demand() == 0
        assert sink.events == list(range(9))
        g.cancel()


async def test_breaking_out_of_stream_stops_owned_stages() -> None:
    import itertools

    p = flowstage.from_iterable(itertools.count())
    async with flowstage.stream([p]) as events:
        async for e in events:
            if e == 3:
                break
    assert not p.running


async def test_cancelling_the_host_task_stops_everything() -> None:
    import itertools

    p = flowstage.from_iterable(itertools.count())
    seen: list[int] = []
    with anyio.CancelScope() as scope:
        async with flowstage.stream([p]) as events:
            async for e in events:
                seen.append(e)
                if e == 100:
                    scope.cancel()
    assert seen[:101] == list(range(101))
    assert not p.running


async def test_stream_batches_and_stream_of_async_iterable() -> None:
    async def numbers() -> AsyncIterator[int]:
        for i in range(25):
            await anyio.lowlevel.checkpoint()
            yield i

    p = flowstage.from_async_iterable(numbers())
    async with flowstage.stream([(p, {"max_demand": 10, "min_demand": 5})]) as events:
        batches = [b async for b in events.batches()]
    assert [e for b in batches for e in b] == list(range(25))
    assert all(len(b) <= 5 for b in batches)


async def test_a_failing_async_source_fails_its_consumers_in_other_scopes() -> None:
    async def numbers() -> AsyncIterator[int]:
        yield 1
        raise Boom("source")

    p = flowstage.from_async_iterable(numbers(), name="numbers")
    seen: list[int] = []

    async def consume() -> None:
        async with flowstage.stream([(p, {"cancel": "transient"})]) as events:
            async for e in events:
                seen.append(e)

    consumer_error: list[BaseException] = []

    async def consume_and_record() -> None:
        try:
            await consume()
        except Boom as exc:
            consumer_error.append(exc)

    with pytest.raises(BaseExceptionGroup) as info:
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume_and_record)
            async with StageGroup() as g:
                g.start(p)
                await g.wait()
    assert info.group_contains(Boom)  # the producer's own scope
    # The consumer's own scope raised the source's error: a shutdown would have
    # ended its stream normally, with the data cut short.
    assert seen == [1]
    assert len(consumer_error) == 1


async def test_async_source_demand_outstanding_falls_as_items_are_emitted() -> None:
    more = anyio.Event()

    async def numbers() -> AsyncIterator[int]:
        for i in range(5):
            yield i
        await more.wait()

    async with StageGroup() as g:
        p = g.start(flowstage.from_async_iterable(numbers()))
        c = g.start(Forwarder(subscribe_to=[(p, {"max_demand": 10})]))
        await wait_until(lambda: len(c.events) == 5)
        await wait_quiescent(g)
        # Ten asked, five emitted from handle_info (not handle_demand), five asked
        # again: the producer's unmet demand is what the consumer still waits for.
        assert p.statistics().demand_outstanding == c.statistics().demand_outstanding == 10
        more.set()
        await g.wait()


async def test_stream_over_several_producers() -> None:
    a = flowstage.from_iterable(range(100))
    b = flowstage.from_iterable(range(100, 250))
    async with flowstage.stream([(a, {"cancel": "transient"}), (b, {"cancel": "transient"})]) as s:
        got = [e async for e in s]
    assert sorted(got) == list(range(250))


async def test_permanent_subscription_ending_normally_ends_the_stream() -> None:
    import itertools

    short = flowstage.from_iterable(range(3))
    endless = flowstage.from_iterable(itertools.count(), name="endless")
    async with flowstage.stream([short, (endless, {"max_demand": 5})]) as events:
        got = [e async for e in events]
    assert {0, 1, 2} <= set(got)
    assert not endless.running


async def test_concurrent_consumer_bounds_concurrency_by_demand() -> None:
    h = Handlers()
    async with StageGroup() as g:
        p = g.start(flowstage.from_iterable(range(100)))
        cc = g.start(ConcurrentConsumer(h, subscribe_to=[(p, {"max_demand": 8})]))
        await wait_until(lambda: cc.active == 8)
        await wait_quiescent(g)
        assert h.running == 8
        h.release_all()
        await g.wait()
    assert sorted(h.done) == list(range(100))
    assert h.peak == 8


async def test_concurrent_consumer_min_demand_waits_for_freed_slots() -> None:
    h = Handlers()
    async with StageGroup() as g:
        p = g.start(flowstage.from_iterable(range(10)))
        g.start(ConcurrentConsumer(h, subscribe_to=[(p, {"max_demand": 3, "min_demand": 2})]))
        await wait_until(lambda: len(h.started) == 3)
        h.release(h.started[0])
        await wait_quiescent(g)
        assert sorted(h.started) == [0, 1, 2]  # one freed slot < min_demand: no ask yet
        h.release(h.started[1])
        await wait_until(lambda: len(h.started) == 5)
        h.release_all()
        await g.wait()
    assert sorted(h.started) == list(range(10))


async def test_concurrent_consumer_concurrency_caps_handlers_and_keeps_events_ready() -> None:
    h = Handlers()
    async with StageGroup() as g:
        p = g.start(flowstage.from_iterable(range(20)))
        opts = {"max_demand": 8, "min_demand": 4}
        cc = g.start(ConcurrentConsumer(h, concurrency=3, subscribe_to=[(p, opts)]))
        await wait_until(lambda: len(h.started) == 3)
        await wait_quiescent(g)
        # Eight events received (the demand), three running, five waiting.
        assert cc.statistics().events_in == 8
        assert cc.active == 3
        h.release(h.started[0])
        await wait_quiescent(g)
        # The next waiting event started without a new ask (one freed < min_demand).
        assert len(h.started) == 4
        assert cc.statistics().events_in == 8
        h.release_all()
        await g.wait()
    assert sorted(h.started) == list(range(20))
    assert h.peak == 3


async def test_concurrent_consumer_concurrency_is_shared_by_all_subscriptions() -> None:
    h = Handlers()
    async with StageGroup() as g:
        a = g.start(flowstage.from_iterable(range(30)))
        b = g.start(flowstage.from_iterable(range(100, 130)))
        # transient: the first producer to finish does not end the consumer
        opts = {"max_demand": 10, "min_demand": 2, "cancel": "transient"}
        cc = g.start(ConcurrentConsumer(h, concurrency=4, subscribe_to=[(a, opts), (b, opts)]))
        await wait_until(lambda: cc.active == 4)
        await wait_quiescent(g)
        assert h.running == 4
        assert cc.statistics().events_in == 20  # both subscriptions' demand, waiting
        h.release_all()
        await wait_until(lambda: len(h.done) == 60)
        # Leaving the block stops the consumer, which has no producer left.
    assert sorted(h.done) == [*range(30), *range(100, 130)]
    assert h.peak == 4


async def test_concurrent_consumer_stopping_still_handles_waiting_events() -> None:
    h = Handlers()
    async with StageGroup() as g:
        p = g.start(flowstage.from_iterable(range(100)))
        opts = {"max_demand": 6, "min_demand": 3}
        cc = g.start(ConcurrentConsumer(h, concurrency=2, subscribe_to=[(p, opts)]))
        await wait_until(lambda: cc.active == 2)
        await wait_quiescent(g)
        cc.stop()
        await wait_quiescent(g)
        assert h.done == []
        h.release_all()
        await wait_until(lambda: len(h.done) == 6)
        p.stop()  # a producer outlives its consumers
        await g.wait()
    # The six events received (two running, four waiting) were all handled.
    assert sorted(h.done) == list(range(6))


async def test_concurrent_consumer_handler_error_with_events_waiting() -> None:
    async def handler(event: int) -> None:
        await anyio.lowlevel.checkpoint()
        if event == 3:
            raise Boom(event)

    with pytest.raises(Boom):
        async with StageGroup() as g:
            p = g.start(flowstage.from_iterable(range(100)))
            opts = {"max_demand": 20, "min_demand": 5}
            g.start(ConcurrentConsumer(handler, concurrency=2, subscribe_to=[(p, opts)]))
            await g.wait()


@pytest.mark.parametrize(
    ("bad", "error"),
    [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError), ("2", TypeError)],
)
async def test_concurrent_consumer_rejects_bad_concurrency(
    bad: object, error: type[Exception]
) -> None:
    async def handler(event: int) -> None:
        pass

    with pytest.raises(error, match="concurrency must be an integer >= 1"):
        ConcurrentConsumer(handler, concurrency=bad)  # type: ignore[arg-type]


async def test_concurrent_consumer_handler_error() -> None:
    async def handler(event: int) -> None:
        if event == 7:
            raise Boom(event)

    with pytest.raises(Boom) as info:
        async with StageGroup() as g:
            p = g.start(flowstage.from_iterable(range(20)))
            g.start(ConcurrentConsumer(handler, name="workers", subscribe_to=[p]))
            await g.wait()
    assert any("workers" in note for note in info.value.__notes__)


async def test_concurrent_consumer_rejects_sync_handler() -> None:
    with pytest.raises(TypeError, match="async def"):
        ConcurrentConsumer(print)  # type: ignore[arg-type]


async def test_call_to_stopped_stage_raises() -> None:
    p = Counter()
    async with StageGroup() as g:
        g.start(p)
        p.stop()
        await g.wait()
    with pytest.raises(flowstage.StageExited, match="noproc"):
        await p.call(("queue", [1]))


async def test_statistics_of_a_running_chain() -> None:
    async with StageGroup() as g:
        p = g.start(flowstage.from_iterable(range(1000), name="source"))
        c = g.start(Forwarder(name="sink", subscribe_to=[(p, {"max_demand": 100})]))
        await g.wait()
    ps, cs = p.statistics(), c.statistics()
    assert ps.events_out == 1000
    assert cs.events_in == 1000
    assert cs.batches_in == ps.batches_out
    assert not ps.running
    assert ps.busy_seconds >= 0.0


async def test_mailbox_limit_for_external_messages() -> None:
    p = Counter(mailbox_limit=2)
    p.send(("queue", [1]))
    p.send(("queue", [2]))
    with pytest.raises(anyio.WouldBlock):
        p.send(("queue", [3]))
    async with StageGroup() as g:
        g.start(p)
        await p.sync_info("waits for room")
        g.cancel()


async def test_bad_options() -> None:
    with pytest.raises(ValueError, match="on_cancel must be one of 'continue', 'stop', got: "):
        flowstage.from_iterable([1], on_cancel="never")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expects an iterable"):
        flowstage.from_iterable(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must implement handle_demand"):

        class NoDemand(Producer[int]):
            pass

        NoDemand()
    with pytest.raises(TypeError, match="cannot subscribe"):
        Counter().subscribe(Counter())
    with pytest.raises(ValueError, match="partition"):
        Forwarder().subscribe(Counter(dispatcher=flowstage.PartitionDispatcher(2)))
    with pytest.raises(TypeError, match="mailbox_limit"):
        Counter(mailbox_limit="big")  # type: ignore[arg-type]


async def test_a_failure_reaches_consumers_in_another_scope() -> None:
    class Failing(Producer[int]):
        def handle_demand(self, demand: int) -> list[int]:
            raise Boom("upstream")

    producer = Failing(demand="accumulate")
    consumer = Forwarder()
    with pytest.raises(Boom):
        async with StageGroup() as outer:
            outer.start(consumer)
            consumer.subscribe(producer, cancel="transient")
            try:
                async with StageGroup() as inner:
                    inner.start(producer)
                    await wait_quiescent(outer, inner)
                    producer.set_demand("forward")
                    await inner.wait()
            except Boom:
                pass  # the producer's own scope fails...
            await outer.wait()  # ...and the consumer in the other scope stops with it
    assert consumer.cancels
    assert isinstance(consumer.cancels[0][1], Boom)


async def test_send_wait_waits_for_room() -> None:
    got: list[Any] = []
    p = Counter(mailbox_limit=1)
    p.handle_info = got.append  # type: ignore[method-assign]
    p.send("first")
    async with StageGroup() as g:
        g.start(p)
        await p.send_wait("second")  # the mailbox is full until "first" is taken
        await wait_quiescent(g)
        assert got == ["first", "second"]
        g.cancel()


async def test_async_source_emits_items_as_they_arrive() -> None:
    """A live source is not held back until a whole demand's worth has arrived."""
    release = anyio.Event()

    async def live() -> AsyncIterator[int]:
        yield 0
        yield 1
        await release.wait()
        yield 2

    async with StageGroup() as g:
        p = g.start(flowstage.from_async_iterable(live()))
        c = g.start(Forwarder(subscribe_to=[(p, {"max_demand": 10})]))
        await wait_until(lambda: c.events == [0, 1])
        assert p.running
        release.set()
        await g.wait()
    assert c.events == [0, 1, 2]


async def test_async_source_failure_surfaces_with_a_note() -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise Boom("source")

    with pytest.raises(Boom) as info:
        async with flowstage.stream([flowstage.from_async_iterable(broken(), name="src")]) as s:
            async for _ in s:
                pass
    assert any("src" in note for note in info.value.__notes__)


async def test_async_source_stopped_while_waiting_closes_the_iterable() -> None:
    closed: list[bool] = []

    async def endless() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
                await anyio.lowlevel.checkpoint()
        finally:
            closed.append(True)

    async with StageGroup() as g:
        p = g.start(flowstage.from_async_iterable(endless(), on_cancel="stop"))
        async with flowstage.stream([(p, {"max_demand": 4, "cancel": "transient"})]) as s:
            async for e in s:
                if e == 20:
                    break
        await g.wait()  # the cancel stopped the producer normally...
    assert closed == [True]  # ...and its async generator was closed


async def test_finish_does_not_count_against_the_mailbox_limit() -> None:
    async with StageGroup() as g:
        p = g.start(Counter(mailbox_limit=1))
        await p.call(("queue", [1, 2, 3]))  # no consumer: the events wait in the buffer
        p.finish()  # so the producer keeps running until they are dispatched
        await wait_quiescent(g)
        assert p.running
        p.send(("queue", [4]))
        with pytest.raises(anyio.WouldBlock):
            p.send(("queue", [5]))
        g.cancel()
