"""End-to-end flows run by the local executor (asyncio and trio)."""

from __future__ import annotations

import contextlib
import enum
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import flowstage
from flowstage import Consumer, ProducerConsumer, StageGroup
from flowstage.flow import Flow, Window
from flowstage.testing import wait_until

pytestmark = pytest.mark.anyio


def add(acc: int, x: int) -> int:
    return acc + x


def count_words(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


# -- sources, mappers, running -------------------------------------------------------


async def test_map_filter_to_list() -> None:
    flow = Flow.from_iterable(range(1000), stages=3).map(lambda x: x * 2).filter(lambda x: x % 3)
    assert sorted(await flow.to_list()) == [x * 2 for x in range(1000) if (x * 2) % 3]


async def test_stream_context_and_batches() -> None:
    flow = Flow.from_iterable(range(100), stages=2, max_demand=10).map(lambda x: x + 1)
    got: list[int] = []
    async with flow.stream() as events:
        async for batch in events.batches():  # type: ignore[attr-defined]
            assert isinstance(batch, list)
            got.extend(batch)
    assert sorted(got) == list(range(1, 101))


async def test_async_for_over_a_flow_to_completion() -> None:
    flow = Flow.from_iterable(range(50), stages=2).map(lambda x: -x)
    assert sorted([e async for e in flow]) == sorted(-x for x in range(50))


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


async def test_aclosing_an_async_for_closes_its_async_source() -> None:
    closed: list[bool] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for i in itertools.count():
                await anyio.lowlevel.checkpoint()
                yield i
        finally:
            closed.append(True)

    flow = Flow.from_async_iterable(numbers(), stages=1).map(lambda x: x)
    async with contextlib.aclosing(aiter(flow)) as events:  # type: ignore[type-var]
        async for e in events:
            if e == 3:
                break
        assert closed == []
    assert closed == [True]  # when the block is left, not when garbage is collected


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


async def test_async_for_surfaces_a_failing_callback() -> None:
    def bad(x: int) -> int:
        if x == 300:
            raise ZeroDivisionError("boom")
        return x

    got: list[int] = []
    with pytest.raises(ZeroDivisionError) as info:
        async for e in Flow.from_iterable(range(1000), stages=2).map(bad):
            got.append(e)
    assert any("map" in note for note in info.value.__notes__)


async def test_async_for_with_a_reduce_and_timeouts_between_events() -> None:
    def add(acc: dict[str, int], w: str) -> dict[str, int]:
        acc[w] = acc.get(w, 0) + 1
        return acc

    flow = Flow.from_iterable(["a b", "b c"] * 50).flat_map(str.split).partition().reduce(dict, add)
    out = []
    async for pair in flow:
        with anyio.move_on_after(1):  # scopes inside the loop body are fine
            await anyio.lowlevel.checkpoint()
        out.append(pair)
    assert sorted(out) == [("a", 50), ("b", 100), ("c", 50)]


async def test_no_operations_streams_the_sources() -> None:
    assert sorted(await Flow.from_iterables([range(3), range(10, 13)]).to_list()) == [
        0,
        1,
        2,
        10,
        11,
        12,
    ]


async def test_empty_source() -> None:
    assert await Flow.from_iterable([], stages=2).map(lambda x: x).to_list() == []
    out = await Flow.from_iterable([], stages=2).reduce(lambda: 0, add).emit("state").to_list()
    assert out == [0, 0]


async def test_small_input_on_one_stage_keeps_batch_order() -> None:
    out = await Flow.from_iterable(range(20), stages=1).map(lambda x: x * 10).to_list()
    assert out == [x * 10 for x in range(20)]


async def test_async_callbacks_and_async_source() -> None:
    async def slow_double(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return x * 2

    async def numbers() -> AsyncIterator[int]:
        for i in range(30):
            yield i

    flow = (
        Flow.from_async_iterable(numbers(), stages=2, max_demand=5)
        .map(slow_double)
        .partition(stages=2)
        .reduce(lambda: 0, add)
        .emit("state")
    )
    assert sum(await flow.to_list()) == sum(x * 2 for x in range(30))


async def test_flat_map_larger_than_the_buffer_loses_nothing() -> None:
    flow = Flow.from_iterable([0, 1], stages=1).flat_map(lambda x: range(30_000))
    out = await flow.to_list()
    assert len(out) == 60_000


async def test_huge_final_emission_is_drained_by_demand() -> None:
    def put(acc: dict[int, int], x: int) -> dict[int, int]:
        acc[x] = x
        return acc

    flow = Flow.from_iterable(range(45_000), stages=2).reduce(dict, put)
    out = await flow.to_list()
    assert sorted(k for k, _ in out) == list(range(45_000))


async def test_huge_emission_with_a_partitioned_downstream() -> None:
    flow = (
        Flow.from_iterable(range(3), stages=1)
        .flat_map(lambda x: range(x * 20_000, (x + 1) * 20_000))
        .partition(stages=3, max_demand=700)
        .reduce(lambda: 0, lambda acc, _: acc + 1)
        .emit("state")
    )
    assert sum(await flow.to_list()) == 60_000


async def test_run_is_for_side_effects() -> None:
    seen: list[int] = []
    result = await Flow.from_iterable(range(100), stages=2).map(seen.append).run()  # type: ignore[func-returns-value]
    assert result is None
    assert sorted(seen) == list(range(100))


async def test_run_of_a_flow_without_layers() -> None:
    await Flow.from_iterable(range(10)).run()


# -- reducing, partitioning, layers -------------------------------------------------------


async def test_word_count_with_partition() -> None:
    lines = ["the quick brown fox", "jumps over the lazy dog", "the end"] * 20
    flow = Flow.from_iterable(lines, stages=2).flat_map(str.split).partition(stages=3)
    out = await flow.reduce(dict, count_words).to_list()
    # Partitioning by the word: every word is counted by exactly one stage.
    assert len(out) == len({w for w, _ in out})
    assert dict(out) == Counter(w for line in lines for w in line.split())


async def test_partition_by_key_elem_and_custom_hash() -> None:
    pairs = [(i % 5, i) for i in range(100)]
    flow = (
        Flow.from_iterable(pairs, stages=2)
        .partition(stages=3, key=("elem", 0))
        .group_by_key()
        .on_trigger(lambda acc, p: ([(p[0], k) for k in acc], acc))
    )
    owners = await flow.to_list()
    assert sorted(k for _, k in owners) == [0, 1, 2, 3, 4]

    def by_parity(e: int) -> tuple[int, int] | None:
        return None if e < 0 else (e, e % 2)

    flow2 = (
        Flow.from_iterable([-1, *range(10)], stages=1)
        .partition(stages=2, hash=by_parity)
        .reduce(list, lambda acc, e: [*acc, e])
        .on_trigger(lambda acc, p: ([(p[0], sorted(acc))], acc))
    )
    assert sorted(await flow2.to_list()) == [(0, [0, 2, 4, 6, 8]), (1, [1, 3, 5, 7, 9])]


async def test_shuffle_and_merge() -> None:
    a = Flow.from_iterable(range(10), stages=2).map(lambda x: x)
    b = Flow.from_iterable(range(100, 110), stages=1)
    merged = Flow.merge([a, b], stages=3).map(lambda x: x + 1)
    assert sorted(await merged.to_list()) == sorted([*range(1, 11), *range(101, 111)])
    shuffled = Flow.from_iterable(range(40), stages=2).map(lambda x: x).shuffle(stages=3)
    assert sorted(await shuffled.map(lambda x: -x).to_list()) == sorted(-x for x in range(40))


async def test_uniq_per_partition_and_emit_and_reduce() -> None:
    flow = Flow.from_iterable([1, 2, 2, 3, 1, 4] * 3, stages=1).partition(stages=2).uniq()
    assert sorted(await flow.to_list()) == [1, 2, 3, 4]

    def running_total(acc: int, x: int) -> tuple[list[int], int]:
        return [acc + x], acc + x

    flow2 = Flow.from_iterable(range(1, 6), stages=1).emit_and_reduce(lambda: 0, running_total)
    assert await flow2.emit("nothing").to_list() == [1, 3, 6, 10, 15]


async def test_group_by_and_on_trigger_arity() -> None:
    flow = (
        Flow.from_iterable(["the", "quick", "brown", "fox"], stages=1)
        .group_by(len)
        .on_trigger(lambda acc: (sorted((k, sorted(v)) for k, v in acc.items()), acc))
    )
    assert await flow.to_list() == [(3, ["fox", "the"]), (5, ["brown", "quick"])]


async def test_departition() -> None:
    flow = (
        Flow.from_iterable(range(100), stages=2)
        .partition(stages=4)
        .reduce(lambda: 0, add)
        .departition(lambda: 0, add, lambda total: ("total", total))
    )
    assert await flow.to_list() == [("total", 4950)]


async def test_departition_accepts_builtins_whose_signature_is_unreadable() -> None:
    # inspect.signature(frozenset) fails: a builtin done is called with acc only.
    flow = (
        Flow.from_iterable(["a b", "b c", "c"], stages=2)
        .flat_map(str.split)
        .partition(stages=2)
        .reduce(dict, count_words)
        .departition(dict, lambda acc, counts: {**acc, **counts}, frozenset)
    )
    assert await flow.to_list() == [frozenset({"a", "b", "c"})]


def _stops_at_3(x: int) -> Any:
    if x == 3:
        raise StopIteration
    return x


@pytest.mark.parametrize(
    "build",
    [
        lambda f: f.map(_stops_at_3),
        lambda f: f.filter(_stops_at_3),
        lambda f: f.reject(_stops_at_3),
        lambda f: f.flat_map(lambda x: [_stops_at_3(x)]),
        lambda f: f.map(_stops_at_3).reduce(list, lambda acc, x: [*acc, x]),
        lambda f: f.reduce(list, lambda acc, x: [*acc, _stops_at_3(x)]),
        lambda f: f.partition(stages=2, key=_stops_at_3),
    ],
    ids=["map", "filter", "reject", "flat_map", "map+reduce", "reduce", "key"],
)
async def test_a_callback_raising_stop_iteration_fails_the_flow(build: Any) -> None:
    # map()/filter() or a generator driver would take StopIteration for the end of
    # the batch and silently drop the rest of it.
    flow = build(Flow.from_iterable(range(6), stages=1))
    with pytest.raises((StopIteration, RuntimeError)):
        await flow.to_list()


async def test_a_callback_raising_stop_iteration_in_a_window_fails_the_flow() -> None:
    flow = (
        Flow.from_iterable(range(6), stages=1, window=Window.count(2))
        .map(_stops_at_3)
        .reduce(list, lambda acc, x: [*acc, x])
    )
    with pytest.raises((StopIteration, RuntimeError)):
        await flow.to_list()


class Shade(str, enum.Enum):  # noqa: UP042 (not StrEnum: str() differs from the value)
    DARK = "dark"


async def test_partitioned_flow_routes_equal_keys_to_one_partition_in_any_batch() -> None:
    # Batches of only strings take the fused loop, mixed batches the general path:
    # an equal key must land in the same partition either way.
    events: list[object] = [Shade.DARK] * 50 + [Shade.DARK, 1, "dark"] * 50
    flow = (
        Flow.from_iterable(events, stages=1, max_demand=10)
        .partition(stages=4)
        .reduce(dict, lambda acc, e: {**acc, e: acc.get(e, 0) + 1})
    )
    result = await flow.to_list()
    assert sorted((str(type(k).__name__), v) for k, v in result) == [("Shade", 150), ("int", 50)]


async def test_departition_per_window_with_window_id() -> None:
    flow = (
        Flow.from_iterable(range(20), stages=1, window=Window.count(5))
        .reduce(lambda: 0, add)
        .departition(list, lambda acc, v: [*acc, v], lambda acc, wid: (wid, sum(acc)))
    )
    assert sorted(await flow.to_list()) == [(0, 10), (1, 35), (2, 60), (3, 85), (4, 0)]


async def test_take_sort() -> None:
    words = ["a", "b", "c", "a", "b", "a", "d", "d", "d", "d", "e"]
    flow = (
        Flow.from_iterable(words, stages=2)
        .partition(stages=3)
        .reduce(dict, count_words)
        .take_sort(2, key=lambda kv: (-kv[1], kv[0]))
    )
    assert await flow.to_list() == [[("d", 4), ("a", 3)]]


async def test_mappers_after_departition() -> None:
    flow = (
        Flow.from_iterable(range(10), stages=2)
        .partition(stages=2)
        .reduce(lambda: 0, add)
        .departition(lambda: 0, add, lambda x: x)
        .map(lambda total: total * 10)
    )
    assert await flow.to_list() == [450]


# -- joins ---------------------------------------------------------------------------


LEFT = [(1, "l1"), (2, "l2"), (2, "l2b"), (4, "l4")]
RIGHT = [(2, "r2"), (3, "r3"), (4, "r4"), (4, "r4b")]


def reference_join(mode: str) -> list[Any]:
    out: list[Any] = [(lv, rv) for lk, lv in LEFT for rk, rv in RIGHT if lk == rk]
    rkeys = {k for k, _ in RIGHT}
    lkeys = {k for k, _ in LEFT}
    if mode in ("left_outer", "full_outer"):
        out += [(lv, None) for lk, lv in LEFT if lk not in rkeys]
    if mode in ("right_outer", "full_outer"):
        out += [(None, rv) for rk, rv in RIGHT if rk not in lkeys]
    return sorted(out, key=repr)


@pytest.mark.parametrize("mode", ["inner", "left_outer", "right_outer", "full_outer"])
@pytest.mark.parametrize("stages", [1, 3])
async def test_bounded_join(mode: str, stages: int) -> None:
    flow = Flow.bounded_join(
        mode,
        Flow.from_iterable(LEFT, stages=2).map(lambda e: e),
        Flow.from_iterable(RIGHT, stages=1),
        lambda e: e[0],
        lambda e: e[0],
        lambda left, right: (left and left[1], right and right[1]),
        stages=stages,
    )
    assert sorted(await flow.to_list(), key=repr) == reference_join(mode)


async def test_window_join_with_fixed_windows() -> None:
    left = [(1, "a", 1), (1, "b", 15)]  # (key, value, timestamp ms)
    right = [(1, "x", 2), (1, "y", 16)]
    flow = Flow.window_join(
        "inner",
        Flow.from_iterable(left, stages=1),
        Flow.from_iterable(right, stages=1),
        Window.fixed(10, "millisecond", lambda e: e[2]),
        lambda e: e[0],
        lambda e: e[0],
        lambda lft, rgt: lft[1] + rgt[1],
        stages=1,
    )
    assert sorted(await flow.to_list()) == ["ax", "by"]


# -- windows without a clock ------------------------------------------------------------


async def test_count_windows() -> None:
    flow = (
        Flow.from_iterable(range(10), stages=1, window=Window.count(3))
        .reduce(list, lambda acc, x: [*acc, x])
        .on_trigger(lambda acc, _p, t: ([(t, acc)], acc))
    )
    assert await flow.to_list() == [
        (("count", 0, "done"), [0, 1, 2]),
        (("count", 1, "done"), [3, 4, 5]),
        (("count", 2, "done"), [6, 7, 8]),
        (("count", 3, "done"), [9]),
    ]


async def test_fixed_windows_by_timestamp_with_gaps() -> None:
    flow = (
        Flow.from_iterable(
            [1, 5, 12, 15, 31],
            stages=1,
            max_demand=1,
            window=Window.fixed(10, "millisecond", lambda ts: ts),
        )
        .reduce(lambda: 0, add)
        .on_trigger(lambda acc, _p, t: ([(t[1], acc)], acc))
    )
    assert await flow.to_list() == [(0, 6), (10, 27), (20, 0), (30, 31)]


async def test_trigger_every_on_a_partitioned_layer() -> None:
    flow = (
        Flow.from_iterable(range(12), stages=1)
        .partition(stages=2, window=Window.global_().trigger_every(3), hash=lambda e: (e, e % 2))
        .reduce(lambda: 0, lambda acc, _: acc + 1)
        .on_trigger(lambda acc, p, t: ([(p[0], t[2], acc)], 0))
    )
    out = sorted(await flow.to_list(), key=repr)
    every = [(p, acc) for p, name, acc in out if name == ("every", 3)]
    assert sorted(every) == [(0, 3), (0, 3), (1, 3), (1, 3)]


# -- stages from outside ---------------------------------------------------------------


class Doubler(ProducerConsumer[int, int]):
    """A producer-consumer that stops itself once its producers are gone."""

    def __init__(self) -> None:
        super().__init__()
        self.upstream = 0

    def handle_subscribe(self, kind: str, options: Any, from_: Any) -> str:
        if kind == "producer":
            self.upstream += 1
        return "automatic"

    def handle_events(self, events: list[int], from_: Any) -> list[int]:
        return [e * 2 for e in events]

    def handle_cancel(self, reason: tuple[str, object], from_: Any) -> None:
        if from_.producer is not self:
            self.upstream -= 1
            if self.upstream == 0:
                self.finish()


class Collector(Consumer[Any]):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []

    def handle_events(self, events: list[Any], from_: Any) -> None:
        self.events.extend(events)


async def test_from_stages_with_running_and_unstarted_producers() -> None:
    async with StageGroup() as group:
        running = group.start(flowstage.from_iterable(range(10), demand="accumulate"))
        later = flowstage.from_iterable(range(100, 105))
        flow = Flow.from_stages([running, later], stages=2).map(lambda x: x + 1)
        assert sorted(await flow.to_list()) == [*range(1, 11), *range(101, 106)]


async def test_from_stages_partitioned() -> None:
    flow = (
        Flow.from_stages([flowstage.from_iterable(range(20))], stages=1)
        .partition(stages=2)
        .reduce(lambda: 0, add)
        .emit("state")
    )
    assert sum(await flow.to_list()) == sum(range(20))


async def test_through_stages() -> None:
    doublers = [Doubler(), Doubler()]
    flow = (
        Flow.from_iterable(range(10), stages=2)
        .map(lambda x: x + 1)
        .through_stages(doublers, stages=2)
        .map(lambda x: -x)
    )
    assert sorted(await flow.to_list()) == sorted(-(x + 1) * 2 for x in range(10))


async def test_into_stages() -> None:
    collector = Collector()
    async with StageGroup() as group:
        group.start(collector)
        flow = Flow.from_iterable(range(30), stages=2).map(lambda x: x * 3)
        async with flow.into_stages([collector]) as running:
            await running.wait()
            assert running.done
        await wait_until(lambda: len(collector.events) == 30)
        assert sorted(collector.events) == [x * 3 for x in range(30)]
        group.cancel()


async def test_into_stages_of_a_source_without_layers() -> None:
    collector = Collector()
    async with StageGroup() as group:
        group.start(collector)
        async with Flow.from_iterable(range(5)).into_stages([collector]) as running:
            await running.wait()
        await wait_until(lambda: len(collector.events) == 5)
        group.cancel()


# -- start / trigger / stop / wait ----------------------------------------------------------


async def test_start_wait_runs_to_completion() -> None:
    seen: list[int] = []
    async with Flow.from_iterable(range(50), stages=2).map(seen.append).start() as running:
        await running.wait()
        assert running.done
    assert sorted(seen) == list(range(50))
    await running.wait()  # after the block: returns at once


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
