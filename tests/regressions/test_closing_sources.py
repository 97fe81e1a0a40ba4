"""Every way out of a flow closes its sources (issue 13, item 2).

An async generator source that did not end runs its ``finally`` (where it would
release a connection) before the flow's block is left, whatever ends the flow:
cancellation from outside, ``running.stop()``, leaving ``stream()`` early, a
callback raising, or its ``StageGroup`` being cancelled. A generator source left
early is ``close()``d too. Each source here waits at a ``yield`` (no demand) when
the flow ends, so only an explicit close can run its ``finally``; the checks run
right after the block, with no garbage collection in between.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest

import flowstage
from flowstage import AsyncIterableProducer, Flow, StageGroup
from flowstage.testing import wait_until

from ..stages import Forwarder, Sleeper

pytestmark = pytest.mark.anyio


class Source:
    """A counting source that records how far it got and whether it was closed."""

    def __init__(self) -> None:
        self.pulled = 0
        self.closed = False

    async def numbers(self) -> AsyncIterator[int]:
        try:
            while True:
                self.pulled += 1
                yield self.pulled
        finally:
            self.closed = True

    def sync_numbers(self) -> Iterator[int]:
        try:
            while True:
                self.pulled += 1
                yield self.pulled
        finally:
            self.closed = True


async def forever(x: int) -> int:
    await anyio.sleep_forever()
    return x


def async_flow(source: Source) -> Flow[int]:
    return Flow.from_async_iterable(source.numbers(), max_demand=4).partition(stages=2)


def sync_flow(source: Source) -> Flow[int]:
    return Flow.from_iterable(source.sync_numbers(), max_demand=4).partition(stages=2)


FLOWS = {"async_source": async_flow, "sync_source": sync_flow}


@pytest.mark.parametrize("kind", sorted(FLOWS))
@pytest.mark.parametrize("how", ["to_list", "start", "async_for"])
async def test_cancelled_from_outside(kind: str, how: str) -> None:
    source = Source()
    flow = FLOWS[kind](source).map(forever)
    with anyio.CancelScope() as scope:

        async def run() -> None:
            if how == "to_list":
                await flow.to_list()
            elif how == "start":
                async with flow.start() as running:
                    await running.wait()
            else:
                async for _ in flow:
                    pass

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await wait_until(lambda: source.pulled >= 4)
            scope.cancel()
    assert source.closed


@pytest.mark.parametrize("kind", sorted(FLOWS))
async def test_running_stop(kind: str) -> None:
    source = Source()
    async with FLOWS[kind](source).map(forever).start() as running:
        await wait_until(lambda: source.pulled >= 4)
        running.stop()
        await running.wait()
        assert source.closed


@pytest.mark.parametrize("kind", sorted(FLOWS))
async def test_leaving_stream_early(kind: str) -> None:
    source = Source()
    async with FLOWS[kind](source).map(abs).stream() as events:
        async for _ in events:
            break
    assert source.closed


class Boom(Exception):
    pass


def explode(x: int) -> int:
    if x == 2:
        raise Boom(x)
    return x


@pytest.mark.parametrize("kind", sorted(FLOWS))
async def test_a_callback_raising(kind: str) -> None:
    source = Source()
    with pytest.raises(Boom):
        await FLOWS[kind](source).map(explode).to_list()
    assert source.closed


async def test_a_cancelled_stage_group() -> None:
    source = Source()
    async with StageGroup() as group:
        producer = group.start(flowstage.from_async_iterable(source.numbers()))
        group.start(Sleeper(subscribe_to=[(producer, {"max_demand": 4})]))
        await wait_until(lambda: source.pulled >= 4)
        group.cancel()
    assert source.closed


async def test_a_stream_left_early() -> None:
    source = Source()
    producer = flowstage.from_async_iterable(source.numbers())
    async with flowstage.stream([(producer, {"max_demand": 4})]) as events:
        async for _ in events:
            break
    assert source.closed


class Stubborn:
    """An async iterator whose aclose() never returns."""

    def __init__(self) -> None:
        self.closing = False

    def __aiter__(self) -> Stubborn:
        return self

    async def __anext__(self) -> int:
        return 1

    async def aclose(self) -> None:
        self.closing = True
        await anyio.sleep_forever()


async def test_a_source_that_does_not_close_cannot_hang_shutdown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(AsyncIterableProducer, "close_timeout", 0.05)
    source = Stubborn()
    with caplog.at_level(logging.WARNING, "flowstage"):
        async with StageGroup() as group:
            producer = group.start(flowstage.from_async_iterable(source))
            group.start(Sleeper(subscribe_to=[(producer, {"max_demand": 4})]))
            await wait_until(lambda: producer.statistics().events_out >= 1)
            group.cancel()
    assert source.closing
    assert "did not close within 0.05 s" in caplog.text


async def test_a_cleanup_error_while_cancelled_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def failing_cleanup() -> AsyncIterator[int]:
        try:
            while True:
                yield 1
        finally:
            raise RuntimeError("cleanup failed")

    with caplog.at_level(logging.ERROR, "flowstage"):
        async with StageGroup() as group:
            producer = group.start(flowstage.from_async_iterable(failing_cleanup()))
            group.start(Sleeper(subscribe_to=[(producer, {"max_demand": 4})]))
            await wait_until(lambda: producer.statistics().events_out >= 1)
            group.cancel()
    assert "raised while it was being closed" in caplog.text
    assert "cleanup failed" in caplog.text


async def test_a_cleanup_error_after_a_normal_stop_fails_the_stage() -> None:
    async def failing_cleanup() -> AsyncIterator[int]:
        try:
            while True:
                yield 1
        finally:
            raise RuntimeError("cleanup failed")

    with pytest.raises(RuntimeError, match="cleanup failed"):
        async with StageGroup() as group:
            producer = group.start(flowstage.from_async_iterable(failing_cleanup()))
            group.start(Forwarder(subscribe_to=[(producer, {"max_demand": 4})]))
            await wait_until(lambda: producer.statistics().events_out >= 1)
            producer.stop()
            await group.wait()
