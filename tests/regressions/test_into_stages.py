"""``into_stages`` loses nothing (issue 13, item 3): consumers the flow starts are
drained (every event sent to them handled) and then stopped before the flow is
done; consumers already running are left running in their own scope."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from flowstage import Consumer, Flow, StageGroup
from flowstage.testing import wait_until

from ..stages import Doubler, Forwarder

pytestmark = pytest.mark.anyio


class Slow(Consumer[Any]):
    """Lets other tasks run before taking each batch, so it lags behind the flow."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []
        self.cancels: list[Any] = []

    async def handle_events(self, events: list[Any], from_: Any) -> None:
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        self.events.extend(events)

    def handle_cancel(self, reason: Any, from_: Any) -> None:
        self.cancels.append(reason)


async def test_a_consumer_the_flow_starts_gets_every_event() -> None:
    consumer = Slow()
    flow = Flow.from_iterable(range(5000), stages=3).map(lambda x: x + 1)
    async with flow.into_stages([consumer]) as running:
        await running.wait()
        assert running.done
        assert not consumer.running
    assert sorted(consumer.events) == list(range(1, 5001))
    # It heard each of the three output stages end, then stopped.
    assert consumer.cancels == [("down", "normal")] * 3


async def test_a_consumer_the_flow_starts_is_drained_before_the_block_is_left() -> None:
    consumer = Slow()
    async with Flow.from_iterable(range(2000), stages=2).into_stages([consumer]) as running:
        await running.wait()
    assert sorted(consumer.events) == list(range(2000))


async def test_a_producer_consumer_the_flow_starts_delivers_everything_downstream() -> None:
    doubler = Doubler()
    async with StageGroup() as group:
        sink = group.start(Forwarder(subscribe_to=[doubler]))
        async with Flow.from_iterable(range(1000), stages=2).into_stages([doubler]) as running:
            await running.wait()
            assert not doubler.running
        # The doubler finished normally, so its permanent consumer stops too.
        await group.wait()
    assert sorted(sink.events) == sorted(x for x in range(1000) for _ in (0, 1))


async def test_a_running_consumer_is_left_running() -> None:
    consumer = Slow()
    async with StageGroup() as group:
        group.start(consumer)
        async with Flow.from_iterable(range(3000), stages=3).into_stages([consumer]) as running:
            await running.wait()
        await wait_until(lambda: len(consumer.events) == 3000)
        assert consumer.running
        group.cancel()
    assert sorted(consumer.events) == list(range(3000))


async def test_stop_stops_the_consumers_the_flow_started() -> None:
    consumer = Slow()
    flow = Flow.from_iterable(iter(int, 1), stages=2)  # never ends
    async with flow.into_stages([consumer]) as running:
        await wait_until(lambda: len(consumer.events) > 100)
        running.stop()
        await running.wait()
        assert running.done
        assert not consumer.running
