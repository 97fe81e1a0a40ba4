"""A ``range`` source feeding worker processes travels as range slices.

The parent never creates the integers: each batch is a slice of the range (three
integers on the wire) and becomes a list in the worker that handles it (the
partition's program makes the list itself when it iterates each batch anyway). The items,
their order per batch and the demand rules stay those of any iterable source.
"""

from __future__ import annotations

from typing import Any

import pytest

from flowstage import Consumer, Producer, StageGroup
from flowstage.dispatchers import DemandDispatcher
from flowstage.executors.local._sources import FlowRangeProducer
from flowstage.executors.process import ProcessExecutor
from flowstage.flow import Flow
from flowstage.statistics import FlowStatistics
from flowstage.testing import wait_until

pytestmark = pytest.mark.anyio


class _Counter:
    def subscribed(self) -> None:
        pass


def double(x: int) -> int:
    return x * 2


def odd(x: int) -> bool:
    return x % 2 == 1


def add(acc: int, x: int) -> int:
    return acc + x


def test_batches_are_slices_of_the_range_in_order() -> None:
    items = range(5, 100, 7)
    producer = FlowRangeProducer(items, _Counter(), DemandDispatcher(), "flow-source0")
    batches = []
    while (batch := producer.handle_demand(4)) is not None:
        batches.append(batch)
        if len(batch) < 4:
            break
    assert all(type(b) is range for b in batches)
    assert [len(b) for b in batches] == [4, 4, 4, 2]
    assert [x for b in batches for x in b] == list(items)
    assert producer.handle_demand(4) is None  # exhausted


def test_a_range_too_long_for_len_is_sliced_all_the_same() -> None:
    huge = range(10**30)
    producer = FlowRangeProducer(huge, _Counter(), DemandDispatcher(), "flow-source0")
    assert producer.handle_demand(3) == range(3)
    assert producer.handle_demand(2) == range(3, 5)


class RangeProducer(Producer[int]):
    """Returns each batch as a range."""

    def __init__(self, ranges: bool, **opts: Any) -> None:
        super().__init__(**opts)
        self._range_batches = ranges  # type: ignore[misc]
        self.next = 0

    def handle_demand(self, demand: int) -> range:
        start = self.next
        self.next += demand
        return range(start, start + demand)


class Recorder(Consumer[int]):
    """Records each batch as it arrives (its type included)."""

    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self.batches: list[Any] = []

    def handle_events(self, events: list[int], from_: Any) -> None:
        self.batches.append(events)

    @property
    def events(self) -> list[int]:
        return [e for b in self.batches for e in b]


@pytest.mark.parametrize("ranges", [False, True])
async def test_consumers_get_ranges_only_from_a_producer_that_allows_them(ranges: bool) -> None:
    async with StageGroup() as g:
        p = g.start(RangeProducer(ranges))
        c = g.start(Recorder(subscribe_to=[(p, {"max_demand": 10, "min_demand": 5})]))
        await wait_until(lambda: len(c.events) >= 50)
        g.cancel()
    kinds = {type(b) for b in c.batches}
    assert kinds == ({range} if ranges else {list})
    assert c.events[:50] == list(range(50))


@pytest.mark.parametrize(
    "items",
    [range(0), range(1), range(10_000), range(10_000, 0, -3), range(-50, 50, 7)],
    ids=["empty", "one", "ten-thousand", "descending", "negative"],
)
async def test_results_match_the_local_executor(items: range) -> None:
    flow = Flow.from_iterable(items, stages=2).map(double).filter(odd)
    local = await Flow.from_iterable(items, stages=2).map(double).to_list()
    workers = (
        await Flow.from_iterable(items, stages=2).map(double).to_list(executor=ProcessExecutor(2))
    )
    assert sorted(workers) == sorted(local) == sorted(x * 2 for x in items)
    assert await flow.to_list(executor=ProcessExecutor(2)) == []


async def test_a_partitioned_reduce_over_a_range() -> None:
    items = range(100_000)
    flow = (
        Flow.from_iterable(items, stages=2)
        .map(double)
        .partition(stages=3)
        .reduce(int, add)
        .emit("state")
    )
    assert sum(await flow.to_list(executor=ProcessExecutor(2))) == sum(x * 2 for x in items)


async def test_breaking_out_of_an_endless_range_stops_the_workers() -> None:
    got = []
    flow = Flow.from_iterable(range(10**30), stages=2).map(double)
    async with flow.stream(executor=ProcessExecutor(2)) as events:
        async for e in events:
            got.append(e)
            if len(got) == 5000:
                break
    assert len(got) == 5000
    assert all(e % 2 == 0 for e in got)


async def test_statistics_count_the_source_events() -> None:
    seen: list[FlowStatistics] = []
    flow = Flow.from_iterable(range(20_000), stages=2).map(double)
    out = await flow.to_list(executor=ProcessExecutor(2), on_statistics=seen.append)
    assert len(out) == 20_000
    source = seen[-1].layers[0]
    assert sum(s.events_out for s in source.stages) == 20_000


async def test_a_layer_fed_range_slices_gives_its_consumers_lists() -> None:
    # The workers' programs take the slices as they are; what comes out are lists.
    items = range(3_000)
    async with StageGroup() as group:
        recorder = group.start(Recorder())
        flow = Flow.from_iterable(items, stages=2).filter(odd)
        async with flow.into_stages([recorder], executor=ProcessExecutor(2)) as running:
            await running.wait()
        assert {type(b) for b in recorder.batches} == {list}
        assert sorted(recorder.events) == [x for x in items if x % 2]
        group.cancel()


def only_lists(batch: list[int]) -> list[int]:
    if type(batch) is not list:
        raise TypeError(f"map_batch got a {type(batch).__name__}")
    return batch


async def test_map_batch_gets_each_slice_as_a_list() -> None:
    # A batch callback sees the batch itself: it always gets a list.
    items = range(3_000)
    flow = Flow.from_iterable(items, stages=2).map_batch(only_lists).map(double)
    out = await flow.to_list(executor=ProcessExecutor(2))
    assert sorted(out) == [x * 2 for x in items]
