"""End-to-end flows run by the local executor (asyncio and trio)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from flowstage.flow import Flow
from flowstage.testing import wait_until

pytestmark = pytest.mark.anyio


def add(acc: int, x: int) -> int:
    return acc + x


def count_words(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


# -- sources, mappers, running -------------------------------------------------------


async def test_async_for_with_aclosing_and_break() -> None:
    flow = Flow.from_iterable(itertools.count(), stages=2).map(lambda x: x)
    seen = 0
    async with contextlib.aclosing(aiter(flow)) as events:  # type: ignore[type-var]
        async for _ in events:
            seen += 1
            if seen == 10:
                break
    assert seen == 10


async def test_async_for_over_an_async_source_gets_events_before_the_source_ends() -> None:
    # A slice that has an event pauses the puller after the item in flight; it
    # used to pull on until the whole demand (here the whole source) was met.
    produced = 0

    async def numbers() -> AsyncIterator[int]:
        nonlocal produced
        for i in range(50):
            await anyio.lowlevel.checkpoint()
            produced += 1
            yield i

    first_seen_after = None
    async for e in Flow.from_async_iterable(numbers(), stages=1).map(lambda x: x):
        if first_seen_after is None:
            first_seen_after = produced
        if e == 49:
            break
    assert first_seen_after is not None
    assert first_seen_after < 10


async def test_breaking_out_of_async_for_leaves_nothing_running() -> None:
    """No aclosing: the loop is simply left, and no stage or task is left behind
    (the leak check of tests/conftest.py fails the test otherwise)."""
    seen: list[int] = []
    async for e in Flow.from_iterable(itertools.count(), stages=2).map(lambda x: x * 2):
        seen.append(e)
        if len(seen) == 2500:
            break
    assert len(seen) == 2500
    assert all(e % 2 == 0 for e in seen)

    async def body() -> None:
        async for e in Flow.from_iterable(itertools.count()).partition(stages=2).map(str):
            if e == "1000":
                raise KeyError(e)

    with pytest.raises(KeyError):
        await body()


async def test_run_is_for_side_effects() -> None:
    seen: list[int] = []
    result = await Flow.from_iterable(range(100), stages=2).map(seen.append).run()  # type: ignore[func-returns-value]
    assert result is None
    assert sorted(seen) == list(range(100))


# -- reducing, partitioning, layers -------------------------------------------------------


# -- joins ---------------------------------------------------------------------------


# -- windows without a clock ------------------------------------------------------------


# -- stages from outside ---------------------------------------------------------------


# -- start / trigger / stop / wait ----------------------------------------------------------


async def test_start_trigger_stop() -> None:
    flushed: list[Any] = []

    def on_trigger(acc: int, partition: Any, trigger: Any) -> tuple[list[Any], int]:
        flushed.append((trigger[2], partition[0], acc))
        return [], acc

    flow = (
        Flow.from_iterable(itertools.count(), stages=1, max_demand=10)
        .partition(stages=2, max_demand=10)
        .reduce(lambda: 0, lambda acc, _: acc + 1)
        .on_trigger(on_trigger)
    )
    async with flow.start() as running:
        assert len(running.stages) == 1 + 2  # the source feeds the partitions directly
        await wait_until(lambda: all(s.statistics().events_in > 50 for s in running.stages[1:]))
        running.trigger("flush")
        await wait_until(lambda: len(flushed) == 2)
        running.stop()
        await running.wait()
    assert sorted(p for name, p, _ in flushed if name == "flush") == [0, 1]
    assert all(acc > 0 for _, _, acc in flushed)


async def test_trigger_targets_the_last_reducing_layer() -> None:
    hits: list[int] = []
    flow = (
        Flow.from_iterable(itertools.count(), stages=1, max_demand=5)
        .reduce(lambda: 0, lambda acc, _: acc + 1)
        .on_trigger(lambda acc, p: (hits.append(p[0]) or [acc], acc))  # type: ignore[func-returns-value]
        .shuffle(stages=2)
        .map(lambda x: x)
    )
    async with flow.start() as running:
        await wait_until(lambda: running.stages[1].statistics().events_in > 10)
        running.trigger("now")
        await wait_until(lambda: hits == [0])
        running.stop()


async def test_leaving_the_start_block_stops_an_infinite_flow() -> None:
    async with Flow.from_iterable(itertools.count(), stages=2).map(lambda x: x).start() as running:
        await wait_until(lambda: running.stages[0].statistics().events_out > 1000)
    assert not any(s.running for s in running.stages)
    await running.wait()  # the block was left early: returns at once
