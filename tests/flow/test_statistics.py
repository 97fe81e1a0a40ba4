"""Flow statistics, labels, state and ``watch_statistics`` on the local executor
(the conformance kit checks the same on every executor)."""

from __future__ import annotations

import json
import pickle
from typing import Any

import anyio
import pytest

from flowstage import (
    Flow,
    FlowState,
    FlowStatistics,
    LayerStatistics,
    StageStatistics,
    Window,
    watch_statistics,
)
from flowstage.plan import layer_label
from flowstage.testing import wait_until

pytestmark = pytest.mark.anyio


def stage(name: str, **counts: Any) -> StageStatistics:
    fields: dict[str, Any] = {
        "name": name,
        "kind": "producer_consumer",
        "running": True,
        "events_in": 0,
        "events_out": 0,
        "batches_in": 0,
        "batches_out": 0,
        "demand_outstanding": 0,
        "buffered": 0,
        "buffer_size": 0,
        "discarded": 0,
        "mailbox": 0,
        "producers": 0,
        "consumers": 0,
        "busy_seconds": 0.0,
    }
    fields.update(counts)
    return StageStatistics(**fields)


def count(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


def key_of(x: int) -> int:
    return x % 3


def total(acc: int, x: int) -> int:
    return acc + x


def zero() -> int:
    return 0


def as_list(acc: Any) -> tuple[list[Any], Any]:
    return [acc], acc


# -- the model ----------------------------------------------------------------------------


def test_a_layer_sums_its_stages() -> None:
    layer = LayerStatistics(
        1,
        "partition(2) → reduce",
        (
            stage("a", events_in=3, events_out=1, busy_seconds=0.5, discarded=2, buffered=4),
            stage("b", events_in=5, events_out=2, busy_seconds=0.25, buffer_size=10),
        ),
    )
    assert (layer.events_in, layer.events_out, layer.discarded) == (8, 3, 2)
    assert (layer.busy_seconds, layer.buffered, layer.buffer_size) == (0.75, 4, 10)
    data = layer.to_dict()
    assert data["events_in"] == 8
    assert [s["name"] for s in data["stages"]] == ["a", "b"]


def test_flow_statistics_rates_lookup_and_json() -> None:
    layer = LayerStatistics(0, "sources", (stage("s", events_out=50),))
    stats = FlowStatistics(FlowState.RUNNING, 2.0, (layer,), 50, 10, 0)
    assert stats.rate_in == 25.0
    assert stats.rate_out == 5.0
    assert stats.layer("sources") is layer
    with pytest.raises(KeyError):
        stats.layer("nope")
    data = json.loads(json.dumps(stats.to_dict()))
    assert data["state"] == "running"
    assert data["rate_in"] == 25.0
    assert pickle.loads(pickle.dumps(stats)) == stats
    idle = FlowStatistics(FlowState.STARTING, 0.0, (), 0, 0, 0)
    assert idle.rate_in == idle.rate_out == 0.0


def test_to_json_is_one_line_of_strict_json() -> None:
    layer = LayerStatistics(0, "<b>sources</b>", (stage("s", busy_seconds=float("inf")),))
    stats = FlowStatistics(FlowState.DONE, float("nan"), (layer,), 3, 3, 0)
    text = stats.to_json()
    assert "\n" not in text

    def refuse(constant: str) -> object:
        raise ValueError(constant)

    data = json.loads(text, parse_constant=refuse)
    assert data["elapsed"] is None
    assert data["layers"][0]["stages"][0]["busy_seconds"] is None
    assert data["layers"][0]["label"] == "<b>sources</b>"
    finite = FlowStatistics(FlowState.DONE, 1.0, (), 3, 3, 0)
    assert json.loads(finite.to_json()) == finite.to_dict()


def test_flow_state_is_a_string_and_knows_its_ends() -> None:
    assert FlowState.RUNNING == "running"
    assert str(FlowState.FAILED) == "failed"
    assert [s.value for s in FlowState if s.ended] == ["done", "stopped", "failed"]


def test_layer_labels_say_what_each_layer_does() -> None:
    flow = (
        Flow.from_iterable(["a b"], stages=1)
        .flat_map(str.split)
        .filter(str.isalpha)
        .partition(stages=4)
        .reduce(dict, count)
        .on_trigger(as_list)
    )
    labels = [layer_label(layer) for layer in flow.plan().layers]
    assert labels == ["from_iterable → flat_map → filter", "partition(4) → reduce → on_trigger"]
    grouped = Flow.from_iterable(range(9), stages=2).group_by(key_of).emit("state")
    assert [layer_label(layer) for layer in grouped.plan().layers] == [
        "from_iterable(2) → group_by → emit(state)"
    ]
    joined = Flow.bounded_join(
        "inner", Flow.from_iterable([1]), Flow.from_iterable([1]), key_of, key_of, total
    )
    assert layer_label(joined.plan().layers[-1]).startswith("inner join(")


async def test_watch_statistics_rejects_a_bad_interval() -> None:
    flow = Flow.from_iterable(range(3))
    async with flow.stream() as events:
        with pytest.raises(ValueError, match="interval"):
            async for _ in watch_statistics(events, interval=0):
                pass
        assert sorted([e async for e in events]) == [0, 1, 2]


# -- running flows ----------------------------------------------------------------------------


async def test_watch_statistics_follows_a_flow_to_its_end() -> None:
    send, receive = anyio.create_memory_object_stream[int](100)
    flow = Flow.from_async_iterable(receive, stages=1).reduce(zero, total).on_trigger(as_list)
    seen: list[FlowStatistics] = []
    async with flow.start() as running:

        async def watch() -> None:
            async for snapshot in watch_statistics(running, interval=0.01):
                seen.append(snapshot)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await wait_until(lambda: bool(seen))
            async with send:
                for i in range(10):
                    await send.send(i)
            await running.wait()
    assert seen[0].state == FlowState.RUNNING
    assert seen[-1].state == FlowState.DONE
    assert seen[-1].events_in == 10
    assert [s.events_in for s in seen] == sorted(s.events_in for s in seen)


async def test_on_statistics_sees_a_failed_run() -> None:
    def boom(x: int) -> int:
        if x == 5:
            raise ValueError("five")
        return x

    seen: list[FlowStatistics] = []
    with pytest.raises(ValueError, match="five"):
        await Flow.from_iterable(range(10), stages=1).map(boom).run(on_statistics=seen.append)
    assert [s.state for s in seen] == [FlowState.FAILED]


class Broken(Exception):
    pass


def broken_report(stats: FlowStatistics) -> None:
    raise Broken(f"report of a {stats.state.name} flow")


def fails_at_five(x: int) -> int:
    if x == 5:
        raise ValueError("five")
    return x


@pytest.mark.parametrize("how", ["run", "to_list"])
async def test_a_failing_flow_keeps_its_error_when_on_statistics_raises_too(how: str) -> None:
    flow = Flow.from_iterable(range(10), stages=1).map(fails_at_five)
    with pytest.raises(ValueError, match="five") as info:
        await getattr(flow, how)(on_statistics=broken_report)
    notes = getattr(info.value, "__notes__", [])
    assert any("on_statistics raised too: Broken: report of a FAILED flow" in n for n in notes)


@pytest.mark.parametrize("how", ["run", "to_list"])
async def test_on_statistics_raising_after_a_clean_run_is_raised(how: str) -> None:
    flow = Flow.from_iterable(range(10), stages=1).map(abs)
    with pytest.raises(Broken, match="DONE"):
        await getattr(flow, how)(on_statistics=broken_report)


async def test_run_reports_its_last_layer_and_window_flush() -> None:
    seen: list[FlowStatistics] = []
    flow = (
        Flow.from_iterable(range(100), stages=2)
        .partition(stages=2, window=Window.count(10))
        .reduce(zero, total)
        .on_trigger(as_list)
    )
    await flow.run(on_statistics=seen.append)
    (stats,) = seen
    assert stats.state == FlowState.DONE
    assert stats.events_in == 100
    assert stats.layers[-1].events_in == 100
