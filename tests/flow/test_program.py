from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from flowstage.flow import Flow
from flowstage.plan import PartitionOutput
from flowstage.program import make_program

from ._helpers import program, run_all, src


def test_mapper_only_emits_immediately_and_trigger_emits_nothing() -> None:
    prog = program(src().map(lambda x: x * 2).filter(lambda x: x % 3).flat_map(lambda x: [x, -x]))
    assert prog.handle_events([1, 2, 3], "p") == [2, -2, 4, -4]
    assert prog.handle_trigger("x") == []
    assert prog.handle_done() == []


def test_reject_and_map_values() -> None:
    prog = program(src().reject(lambda kv: kv[1] > 2).map_values(lambda v: v * 10))
    assert run_all(prog, [("a", 1), ("b", 3), ("c", 2)]) == [("a", 10), ("c", 20)]


def test_map_batch_runs_first() -> None:
    prog = program(src().map_batch(lambda b: [sum(b)]).map(lambda x: x + 1))
    assert prog.handle_events([1, 2, 3], "p") == [7]


def test_reduce_default_emission_dict_items() -> None:
    def count(acc: dict[str, int], w: str) -> dict[str, int]:
        acc[w] = acc.get(w, 0) + 1
        return acc

    prog = program(src().reduce(dict, count))
    assert prog.handle_events(["a", "b", "a"], "p") == []
    assert prog.handle_done() == [("a", 2), ("b", 1)]


def test_reduce_non_iterable_acc_points_to_on_trigger() -> None:
    prog = program(src().reduce(lambda: 0, lambda a, x: a + x))
    prog.handle_events([1, 2], "p")
    with pytest.raises(TypeError, match="on_trigger"):
        prog.handle_done()


def test_emit_state_and_nothing() -> None:
    prog = program(src().reduce(lambda: 0, lambda a, x: a + x).emit("state"))
    assert run_all(prog, [1, 2, 3]) == [6]
    prog = program(src().reduce(lambda: 0, lambda a, x: a + x).emit("nothing"))
    assert run_all(prog, [1, 2, 3]) == []


def test_on_trigger_arities() -> None:
    seen = []

    def trig(
        acc: int, partition: tuple[int, int], trigger: tuple[str, str, str]
    ) -> tuple[list[int], int]:
        seen.append((partition, trigger))
        return [acc], acc

    prog = program(src().reduce(lambda: 0, lambda a, x: a + x).on_trigger(trig), index=2, total=4)
    assert run_all(prog, [1, 2]) == [3]
    assert seen == [((2, 4), ("global", "global", "done"))]
    prog = program(src().reduce(lambda: 0, lambda a, x: a + x).on_trigger(lambda a: ([a, a], a)))
    assert run_all(prog, [5]) == [5, 5]


def test_on_trigger_bad_return() -> None:
    prog = program(src().reduce(lambda: 0, lambda a, x: a + x).on_trigger(lambda a: a))
    with pytest.raises(TypeError, match="expected on_trigger callback to return a tuple"):
        prog.handle_done()


def test_emit_and_reduce_sliding_window() -> None:
    def slide(acc: list[int], e: int) -> tuple[list[list[int]], list[int]]:
        acc = [*acc, e][-3:]
        return [list(acc)], acc

    prog = program(src().emit_and_reduce(list, slide))
    out = run_all(prog, [1, 2, 3, 4, 5], batch=2)
    assert out == [[1], [1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], 3, 4, 5]


def test_group_by_and_group_by_key() -> None:
    prog = program(src().group_by(len))
    assert run_all(prog, ["the", "quick", "brown", "fox"]) == [
        (3, ["the", "fox"]),
        (5, ["quick", "brown"]),
    ]
    prog = program(src().group_by_key())
    out = run_all(prog, [("foo", 1), ("foo", 2), ("bar", 3), ("foo", 4), ("bar", 5)])
    assert out == [("foo", [1, 2, 4]), ("bar", [3, 5])]
    prog = program(src().group_by(len, str.upper))
    assert run_all(prog, ["ab", "cd", "e"]) == [(2, ["AB", "CD"]), (1, ["E"])]


def test_uniq_passes_first_occurrences_through() -> None:
    prog = program(src().uniq())
    assert prog.handle_events([1, 2, 2, 3, 1, 4], "p") == [1, 2, 3, 4]
    assert prog.handle_events([4, 5], "p") == [5]
    prog = program(src().uniq_by(lambda x: x % 3).map(lambda x: x * 10))
    assert run_all(prog, [1, 2, 3, 4, 5, 6]) == [10, 20, 30]


def test_uniq_then_reduce() -> None:
    prog = program(src().uniq().reduce(list, lambda a, x: [*a, x]).emit("state"))
    assert run_all(prog, [1, 1, 2, 1, 3]) == [[1, 2, 3]]


def test_discard_output_for_run() -> None:
    calls: list[int] = []
    flow = src().map(lambda x: calls.append(x) or x)
    plan = flow.plan(sink="run")
    prog = make_program(plan.layers[0], 0, 1)
    prog.start(0.0)
    assert prog.handle_events([1, 2], "p") == []
    assert calls == [1, 2]


def test_async_callbacks() -> None:
    async def double(x: int) -> int:
        await anyio.lowlevel.checkpoint()
        return x * 2

    async def add(acc: int, x: int) -> int:
        return acc + x

    flow = src().map(double).filter(lambda x: x > 2).reduce(lambda: 0, add).emit("state")
    prog = make_program(flow.plan().layers[0], 0, 1)
    assert prog.is_async
    with pytest.raises(RuntimeError, match="ahandle"):
        prog.handle_done()

    async def main() -> list[int]:
        await prog.astart(0.0)
        out = await prog.ahandle_events([1, 2, 3], "p")
        return out + await prog.ahandle_done()

    assert anyio.run(main) == [10]


def test_async_mapper_only_and_flat_map() -> None:
    async def fm(x: int) -> list[int]:
        return [x, x]

    async def keep(x: int) -> bool:
        return x != 2

    prog = make_program(src().flat_map(fm).reject(keep).uniq().plan().layers[0], 0, 1)

    async def main() -> list[int]:
        return await prog.ahandle_events([1, 2, 3, 2], "p")

    assert anyio.run(main) == [2]


def test_departition_program() -> None:
    up = Flow.from_iterable([], stages=2).reduce(lambda: 0, lambda a, x: a + x)
    flow = up.departition(lambda: 0, lambda acc, v: acc + v, lambda acc: acc * 100)
    plan = flow.plan()
    assert len(plan.layers) == 2
    ups = [make_program(plan.layers[0], i, 2) for i in range(2)]
    p0 = ups[0].handle_events([1, 2], "a") + ups[0].handle_done()
    p1 = ups[1].handle_events([10], "a") + ups[1].handle_done()
    assert p0 == [PartitionOutput(0, ("global", "global", "done"), [3])]
    dep = make_program(plan.layers[1], 0, 1)
    assert dep.handle_events(p0, 0) == []
    assert dep.handle_events(p1, 1) == [1300]
    assert dep.handle_done() == []


def test_departition_leftover_windows_at_done_and_window_id() -> None:
    up = (
        Flow.from_iterable([], stages=2)
        .reduce(list, lambda a, x: [*a, x])
        .on_trigger(lambda acc: (acc, []))
    )
    flow = up.departition(list, lambda acc, v: [*acc, v], lambda acc, wid: (wid, sorted(acc)))
    plan = flow.plan()
    up0 = make_program(plan.layers[0], 0, 2)
    out = up0.handle_events([3, 1], "a") + up0.handle_done()
    dep = make_program(plan.layers[1], 0, 1)
    assert dep.handle_events(out, 0) == []
    assert dep.handle_done() == [("global", [1, 3])]


def test_take_sort_program() -> None:
    up = Flow.from_iterable([], stages=2).reduce(list, lambda a, x: [*a, x])
    plan = up.take_sort(3, reverse=True).plan()
    outs = []
    for i, batch in enumerate([[5, 1, 9, 7], [8, 2, 6]]):
        p = make_program(plan.layers[0], i, 2)
        outs += p.handle_events(batch, "a") + p.handle_done()
    assert outs[0].values == [[9, 7, 5]]
    dep = make_program(plan.layers[1], 0, 1)
    assert dep.handle_events(outs, 0) == [[9, 8, 7]]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("inner", [("a1", "A1"), ("a2", "A1")]),
        ("left_outer", [("a1", "A1"), ("a2", "A1"), ("b", None)]),
        ("right_outer", [("a1", "A1"), ("a2", "A1"), (None, "C")]),
        ("full_outer", [("a1", "A1"), ("a2", "A1"), ("b", None), (None, "C")]),
    ],
)
def test_join_program(mode: str, expected: list[object]) -> None:
    left = Flow.from_iterable(["a1", "b", "a2"], stages=1)
    right = Flow.from_iterable(["A1", "C"], stages=1)
    flow = Flow.bounded_join(
        mode, left, right, lambda s: s[0], lambda s: s[0].lower(), lambda a, b: (a, b), stages=1
    )
    plan = flow.plan()
    (layer,) = plan.layers
    lh = layer.inputs[0].dispatch.hash
    rh = layer.inputs[1].dispatch.hash
    assert lh is not None
    assert rh is not None
    tagged_l = [lh(e)[0] for e in ["a1", "b"]]  # type: ignore[index]
    tagged_r = [rh(e)[0] for e in ["A1", "C"]]  # type: ignore[index]
    prog = make_program(layer, 0, 1)
    out = prog.handle_events(tagged_l, "L")
    out += prog.handle_events(tagged_r, "R")
    out += prog.handle_events([lh("a2")[0]], "L")  # type: ignore[index]
    out += prog.handle_done()
    assert out == expected


def test_partition_output_tuple_shape() -> None:
    item = PartitionOutput(1, ("count", 0, "done"), [1])
    partition, trigger, values = item
    assert (partition, trigger, values) == (1, ("count", 0, "done"), [1])
