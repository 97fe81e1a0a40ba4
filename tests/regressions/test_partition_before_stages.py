"""A ``partition()`` right before ``through_stages``/``into_stages`` keeps its layer
(issue 13, item 4): the running stages get one subscription per partition stage,
each carrying only that partition's events, as in Flow, instead of the source's
batches."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from flowstage import Consumer, Flow, ProducerConsumer, partition_of
from flowstage.flow import compile_flow

pytestmark = pytest.mark.anyio

SOURCES = [[1, 2, 3], [4, 5, 6], range(7, 11)]


def record(seen: dict[int, list[Any]], events: list[Any], from_: Any) -> None:
    seen.setdefault(from_.id, []).extend(events)


class Copier(ProducerConsumer[int, int]):
    """Passes events on, records them per subscription, and finishes once its
    producers are gone."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[int, list[int]] = {}
        self.upstream = 0

    def handle_subscribe(
        self, kind: str, options: Any, from_: Any
    ) -> Literal["automatic", "manual"]:
        if kind == "producer":
            self.upstream += 1
        return "automatic"

    def handle_events(self, events: list[int], from_: Any) -> list[int]:
        record(self.seen, events, from_)
        return events

    def handle_cancel(self, reason: Any, from_: Any) -> None:
        if from_.producer is not self:
            self.upstream -= 1
            if self.upstream == 0:
                self.finish()


class Recorder(Consumer[int]):
    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[int, list[int]] = {}

    def handle_events(self, events: list[int], from_: Any) -> None:
        record(self.seen, events, from_)


def assert_split_by_partition(seen: dict[int, list[int]]) -> None:
    assert sorted(e for events in seen.values() for e in events) == list(range(1, 11))
    # One subscription per partition stage, each with one partition's events.
    assert len(seen) == 4
    for events in seen.values():
        assert len({partition_of(e, 4) for e in events}) == 1, seen


def partitioned() -> Flow[int]:
    return Flow.from_iterables(SOURCES, stages=4).partition(stages=4)


async def test_through_stages_after_partition() -> None:
    copier = Copier()
    out = await partitioned().through_stages([copier]).map(lambda x: x).to_list()
    assert sorted(out) == list(range(1, 11))
    assert_split_by_partition(copier.seen)


async def test_into_stages_after_partition() -> None:
    recorder = Recorder()
    async with partitioned().into_stages([recorder]) as running:
        await running.wait()
    assert_split_by_partition(recorder.seen)


async def test_into_stages_after_a_merge_of_partitions() -> None:
    recorder = Recorder()
    left = Flow.from_iterables(SOURCES[:2], stages=2).partition(stages=2)
    right = Flow.from_iterables(SOURCES[2:], stages=2).partition(stages=2)
    async with Flow.merge([left, right]).into_stages([recorder]) as running:
        await running.wait()
    assert sorted(e for events in recorder.seen.values() for e in events) == list(range(1, 11))
    assert len(recorder.seen) == 4
    for events in recorder.seen.values():
        assert len({partition_of(e, 2) for e in events}) == 1


def test_a_partition_is_still_compiled_away_before_another_partitioning_step() -> None:
    flow = Flow.from_iterables(SOURCES, stages=4).partition(stages=4).partition(stages=2)
    plan = compile_flow(flow.map(abs)).plan
    assert len(plan.layers) == 1
    assert plan.layers[0].stages == 2
    join = Flow.bounded_join(
        "inner", partitioned(), partitioned(), abs, abs, lambda a, b: (a, b), stages=2
    )
    assert [layer.kind for layer in compile_flow(join).plan.layers] == ["join"]


def test_a_partition_keeps_its_layer_before_through_stages() -> None:
    plan = compile_flow(partitioned().through_stages([Copier()], stages=3).map(abs)).plan
    assert [(layer.origin, layer.stages) for layer in plan.layers] == [
        ("partition", 4),
        ("through_stages", 3),
    ]
