"""PartitionNode: a stage as a pure machine, driven by hand (no tasks, no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flowstage import Flow, Window
from flowstage.plan import Dispatch, LayerPlan
from flowstage.program import PartitionNode, drive


def double(x: int) -> int:
    return x * 2


def repeat(n: int) -> list[int]:
    return list(range(n))


def add(acc: int, x: int) -> int:
    return acc + x


def layer(flow: Flow[Any], index: int = 0) -> LayerPlan:
    return flow.plan().layers[index]


def node_of(flow: Flow[Any], output: Dispatch | None = None) -> PartitionNode:
    node = PartitionNode(layer(flow), 0, output or Dispatch())
    node.connect_input(1, "p")
    node.connect_output(2)
    drive(node.start(0.0))
    return node


def take(node: PartitionNode) -> list[tuple[str, int, Any]]:
    out, node.outbox = node.outbox, []
    return out


def test_asks_max_demand_when_connected_then_after_each_handled_chunk() -> None:
    node = node_of(Flow.from_iterable([], stages=1, max_demand=100, min_demand=80).map(double))
    assert take(node) == [("ask", 1, 100)]
    drive(node.on_ask(2, 1000))  # downstream wants plenty
    drive(node.on_events(1, list(range(40))))
    # chunks of max - min = 20, each handled, then its ask (GenStage's split_batches)
    assert take(node) == [
        ("events", 2, [x * 2 for x in range(20)]),
        ("ask", 1, 20),
        ("events", 2, [x * 2 for x in range(20, 40)]),
        ("ask", 1, 20),
    ]


def test_handles_nothing_while_downstream_demand_is_zero() -> None:
    node = node_of(Flow.from_iterable([], stages=1, max_demand=10, min_demand=0).map(double))
    take(node)
    drive(node.on_events(1, list(range(10))))
    assert take(node) == []  # no downstream demand: nothing handled, nothing asked
    assert node.buffered == 10
    drive(node.on_ask(2, 4))
    out = take(node)
    assert out[0] == ("events", 2, [0, 2, 4, 6])  # up to the demand
    assert ("ask", 1, 10) in out  # the chunk was handled: ask again
    assert node.buffered == 6  # output that waits for demand
    drive(node.on_ask(2, 100))
    assert take(node) == [("events", 2, [8, 10, 12, 14, 16, 18])]


def test_done_after_all_output_was_delivered() -> None:
    flow = Flow.from_iterable([], stages=1).reduce(lambda: 0, add).emit("state")
    node = node_of(flow)
    take(node)
    drive(node.on_ask(2, 1))
    drive(node.on_events(1, [1, 2, 3]))
    drive(node.on_done(1))
    # 3 of the 1000 asked for arrived: no new ask (remaining 997 > min_demand 500)
    assert take(node) == [("events", 2, [6]), ("done", 2, None)]
    assert node.finished


def test_done_waits_for_demand_to_deliver_the_final_output() -> None:
    def pairs(acc: dict[int, int], x: int) -> dict[int, int]:
        acc[x] = x
        return acc

    node = node_of(Flow.from_iterable([], stages=1).reduce(dict, pairs))
    take(node)
    drive(node.on_ask(2, 1))
    drive(node.on_events(1, [1, 2, 3]))
    drive(node.on_done(1))
    assert [m[0] for m in take(node)] == ["events"]  # one pair out, no done yet
    assert not node.finished
    drive(node.on_ask(2, 5))
    out = take(node)
    assert out == [("events", 2, [(2, 2), (3, 3)]), ("done", 2, None)]


def mapper_of(flow: Flow[Any]) -> tuple[PartitionNode, Callable[[Any], int]]:
    """Partition 0 of ``flow``'s first layer, started, its output partitioned two
    ways (edges 10 and 11), its input on edge 1; and the partition of an event."""
    plan = flow.plan()
    dispatch = plan.layers[1].inputs[0].dispatch
    hash_fn = dispatch.hash
    assert hash_fn is not None

    def partition(event: Any) -> int:
        result = hash_fn(event)
        assert result is not None
        return result[1]

    node = PartitionNode(plan.layers[0], 0, dispatch, plan.layers[1])
    node.connect_input(1, "p")
    node.connect_output(10, {"partition": 0})
    node.connect_output(11, {"partition": 1})
    drive(node.start(0.0))
    take(node)
    return node, partition


def test_partitioned_output_routes_by_the_next_layers_hash() -> None:
    flow = Flow.from_iterable([], stages=1).map(double).partition(stages=2).map(double)
    node, partition = mapper_of(flow)
    drive(node.on_ask(10, 100))
    drive(node.on_ask(11, 100))
    drive(node.on_events(1, list(range(20))))
    events = {edge: batch for kind, edge, batch in take(node) if kind == "events"}
    assert sorted(events[10] + events[11]) == sorted(x * 2 for x in range(20))
    assert all(partition(e) == 0 for e in events[10])
    assert all(partition(e) == 1 for e in events[11])


def test_a_large_output_goes_out_in_order_as_demand_arrives_piece_by_piece() -> None:
    flow = Flow.from_iterable([], stages=1).flat_map(repeat).partition(stages=2).map(double)
    node, partition = mapper_of(flow)
    drive(node.on_ask(10, 7))
    drive(node.on_events(1, [1000]))  # one event expands into 1,000
    got: dict[int, list[int]] = {10: [], 11: []}
    buffered = [node.buffered]
    for _ in range(400):
        for kind, edge, batch in take(node):
            if kind == "events":
                assert len(batch) <= 7
                got[edge].extend(batch)
        if node.buffered == 0:
            break
        drive(node.on_ask(10, 7))
        drive(node.on_ask(11, 7))
        buffered.append(node.buffered)
    expected = list(range(1000))
    part = {e: partition(e) for e in expected}
    assert got[10] == [e for e in expected if part[e] == 0]
    assert got[11] == [e for e in expected if part[e] == 1]
    assert buffered == sorted(buffered, reverse=True)  # only ever goes down
    assert 1000 - 7 <= buffered[0] < 1000  # 7 accepted, the first delivered
    assert node.buffered == 0


def odd(x: int) -> bool:
    return x % 2 == 1


async def async_double(x: int) -> int:
    return x * 2


def plain(**opts: Any) -> Flow[int]:
    return Flow.from_iterable([], stages=1, max_demand=10, min_demand=5, **opts)


ITERATING: dict[str, Flow[Any]] = {
    "map": plain().map(double),
    "filter": plain().filter(odd),
    "flat_map": plain().flat_map(repeat),
    "uniq": plain().uniq(),
    "reduce": plain().reduce(int, add).emit("state"),
    "map then reduce": plain().map(double).filter(odd).reduce(int, add).emit("state"),
}

PASSING_ON: dict[str, Flow[Any]] = {
    "no step": plain().partition(stages=1),
    "count window": plain().partition(stages=1, window=Window.count(3)).map(double),
    "async callback": plain().map(async_double),
    "map_batch": plain().map_batch(sorted).map(double),
}


@pytest.mark.parametrize("flow", ITERATING.values(), ids=ITERATING.keys())
def test_a_node_that_makes_a_new_list_of_each_batch_takes_ranges(flow: Flow[Any]) -> None:
    # The same output, chunk for chunk, from a range as from the list it holds.
    by_range, by_list = node_of(flow), node_of(flow)
    assert by_range.iterates_input
    outputs = []
    for node, batch in ((by_range, range(37)), (by_list, list(range(37)))):
        take(node)
        drive(node.on_ask(2, 1000))
        drive(node.on_events(1, batch))  # type: ignore[arg-type]
        drive(node.on_done(1))
        out = take(node)
        assert all(type(m[2]) is list for m in out if m[0] == "events")
        outputs.append(out)
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("flow", PASSING_ON.values(), ids=PASSING_ON.keys())
def test_a_node_that_may_pass_a_batch_on_takes_only_lists(flow: Flow[Any]) -> None:
    node = PartitionNode(layer(flow, len(flow.plan().layers) - 1), 0, Dispatch())
    assert not node.iterates_input
