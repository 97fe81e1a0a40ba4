"""A producer that stops tells every consumer that subscribed to it (issue 13, item 7).

In GenStage a consumer monitors its producer from the moment it subscribes, so it
learns that the producer went down, with the reason, whichever order the two
messages arrive in. Here the subscription may still wait in the producer's mailbox
when the producer stops (it was busy in a slow ``handle_call``): the consumer must
hear of the stop all the same.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import flowstage
from flowstage import Producer, Reply, StageExited, StageGroup
from flowstage.testing import wait_quiescent, wait_until

from ..stages import Forwarder

pytestmark = pytest.mark.anyio

ORDERINGS = ["subscription_handled_first", "stopped_with_subscription_queued"]


class Busy(Producer[int]):
    """Emits nothing by itself; ``call("block")`` blocks it until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.in_call = anyio.Event()
        self.release = anyio.Event()

    def handle_demand(self, demand: int) -> None:
        return None

    async def handle_call(self, request: Any, from_: Reply) -> str:
        self.in_call.set()
        await self.release.wait()
        return "done"


async def block(producer: Busy, replies: list[object]) -> None:
    try:
        replies.append(await producer.call("block"))
    except StageExited as exc:
        replies.append(exc)


async def stop_while_busy(
    tg: Any, producer: Busy, subscribe: Any, ordering: str, reason: object
) -> Any:
    """Subscribe (``subscribe()`` returns the subscription) and stop ``producer`` so
    that the subscription is handled before the stop, or is still queued when the
    producer stops."""
    replies: list[object] = []
    if ordering == "subscription_handled_first":
        sub = subscribe()
        await wait_until(lambda: producer.statistics().consumers == 1)
    tg.start_soon(block, producer, replies)
    await producer.in_call.wait()
    if ordering == "stopped_with_subscription_queued":
        sub = subscribe()
        # Sent, and waiting in the mailbox of the busy producer.
        await wait_until(lambda: sub.connected)
        assert producer.statistics().consumers == 0
    producer.stop(reason)
    producer.release.set()
    return sub


@pytest.mark.parametrize("ordering", ORDERINGS)
async def test_a_permanent_consumer_stops_with_its_producer(ordering: str) -> None:
    async with StageGroup() as group:
        producer = group.start(Busy())
        consumer = group.start(Forwarder())
        async with anyio.create_task_group() as tg:
            await stop_while_busy(
                tg, producer, lambda: consumer.subscribe(producer), ordering, "normal"
            )
        with anyio.fail_after(10):  # a hang guard: the bug made this wait forever
            await group.wait()
    assert consumer.cancels == [("down", "normal")]


@pytest.mark.parametrize("ordering", ORDERINGS)
async def test_the_consumer_hears_the_reason(ordering: str) -> None:
    consumer = Forwarder()
    with pytest.raises(StageExited) as info:
        async with StageGroup() as group:
            producer = group.start(Busy())
            group.start(consumer)
            async with anyio.create_task_group() as tg:
                await stop_while_busy(
                    tg, producer, lambda: consumer.subscribe(producer), ordering, "oops"
                )
            with anyio.fail_after(10):
                await group.wait()
    assert info.value.reason == "oops"
    assert consumer.cancels == [("down", "oops")]


@pytest.mark.parametrize("ordering", ORDERINGS)
async def test_a_temporary_consumer_is_told_and_keeps_running(ordering: str) -> None:
    async with StageGroup() as group:
        producer = group.start(Busy())
        consumer = group.start(Forwarder())
        async with anyio.create_task_group() as tg:
            await stop_while_busy(
                tg,
                producer,
                lambda: consumer.subscribe(producer, cancel="temporary"),
                ordering,
                "normal",
            )
        with anyio.fail_after(10):
            await wait_until(lambda: consumer.cancels)
        await wait_quiescent(group)
        assert consumer.running
        assert consumer.cancels == [("down", "normal")]
        group.cancel()


@pytest.mark.parametrize("ordering", ORDERINGS)
async def test_a_stream_over_a_busy_producer_ends_when_it_stops(ordering: str) -> None:
    async with StageGroup() as group:
        producer = group.start(Busy())
        replies: list[object] = []
        async with anyio.create_task_group() as tg:
            if ordering == "stopped_with_subscription_queued":
                tg.start_soon(block, producer, replies)
                await producer.in_call.wait()
            async with flowstage.stream([producer]) as events:
                if ordering == "subscription_handled_first":
                    await wait_until(lambda: producer.statistics().consumers == 1)
                    tg.start_soon(block, producer, replies)
                    await producer.in_call.wait()
                else:
                    assert producer.statistics().consumers == 0
                producer.stop()
                producer.release.set()
                with anyio.fail_after(10):
                    got = [e async for e in events]
        assert got == []
        assert replies == ["done"]
