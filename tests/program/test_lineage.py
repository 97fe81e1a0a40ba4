"""Lineage (pure): the ledger settles every message exactly once, however its events
were split, dropped, reduced and emitted; the wrapped operations keep lineage and
turn failures into failed markers; plans that cannot be followed are refused."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowstage import Flow
from flowstage.flow import Window
from flowstage.messages import MemorySource
from flowstage.plan import Emit, OnTrigger
from flowstage.program import MARK, Ledger, Tracked, check_trackable, track_plan
from flowstage.program._lineage import (
    Bundle,
    Failed,
    Part,
    TFilter,
    TFlatMap,
    THash,
    TMap,
    TMapBatch,
    TReduce,
    TState,
    TTrigger,
    split,
)

# -- the ledger --------------------------------------------------------------------------------


def test_a_whole_message_is_acknowledged_when_it_arrives() -> None:
    assert Ledger().settle(["a", "b"]) == (["a", "b"], [])


def test_a_split_message_is_acknowledged_when_its_last_part_arrives() -> None:
    ledger = Ledger()
    parts = split("m", 3)
    assert ledger.settle([parts[1]]) == ([], [])
    assert ledger.settle([parts[2]]) == ([], [])
    assert ledger.open_groups == 1
    assert ledger.settle([parts[0]]) == (["m"], [])
    assert ledger.open_groups == 0


def test_nested_splits_and_bundles() -> None:
    ledger = Ledger()
    a, b = split("a", 2)
    a1, a2 = split(a, 2)
    whole = Bundle((a1, "c"))
    assert ledger.settle([whole]) == (["c"], [])
    assert ledger.settle([a2, b]) == (["a"], [])


def test_a_failure_anywhere_in_a_group_nacks_the_message_once() -> None:
    ledger = Ledger()
    error = ValueError("bad")
    p0, p1 = split("m", 2)
    assert ledger.settle([Failed(p1, error)]) == ([], [])
    assert ledger.settle([p0]) == ([], [("m", error)])


def test_a_failed_bundle_nacks_each_message() -> None:
    error = KeyError("k")
    assert Ledger().settle([Failed(Bundle(("a", "b")), error)]) == (
        [],
        [("a", error), ("b", error)],
    )


def _random_journey(rng: random.Random, ids: list[str]) -> list[Any]:
    """Lineages as a flow could produce them: random splits, bundles, failures,
    delivered in random order."""
    pending: list[Any] = list(ids)
    out: list[Any] = []
    while pending:
        lin = pending.pop(rng.randrange(len(pending)))
        move = rng.random()
        if move < 0.3:
            pending.extend(split(lin, rng.randint(1, 4)))
        elif move < 0.45 and pending:
            other = pending.pop(rng.randrange(len(pending)))
            pending.append(Bundle((lin, other)))
        elif move < 0.5:
            pending.append(Failed(lin, RuntimeError(str(move))))
        else:
            out.append(lin)
    rng.shuffle(out)
    return out


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=20))
def test_every_message_is_settled_exactly_once(seed: int, n: int) -> None:
    rng = random.Random(seed)
    ids = [f"m{i}" for i in range(n)]
    lins = _random_journey(rng, ids)
    ledger = Ledger()
    acked: list[str] = []
    failed: list[str] = []
    cut = rng.randrange(len(lins) + 1)
    for chunk in (lins[:cut], lins[cut:]):
        a, f = ledger.settle(chunk)
        acked += a
        failed += [i for i, _ in f]
    assert sorted(acked + failed) == sorted(ids)
    assert ledger.open_groups == 0


@given(st.integers(min_value=0, max_value=10_000))
def test_nothing_is_settled_before_every_part_arrived(seed: int) -> None:
    rng = random.Random(seed)
    lins = _random_journey(rng, ["only"])
    ledger = Ledger()
    for i, lin in enumerate(lins):
        acked, failed = ledger.settle([lin])
        done = acked + [x for x, _ in failed]
        assert done == ([] if i < len(lins) - 1 else ["only"])


def test_lineages_pickle() -> None:
    lin = Bundle((Part("g", 2, "a"), Failed("b", ValueError("x"))))
    back = pickle.loads(pickle.dumps(lin))
    assert back.lins[0] == Part("g", 2, "a")
    failed = back.lins[1]
    assert isinstance(failed, Failed)
    assert failed.lin == "b"
    assert type(failed.error) is ValueError
    assert str(failed.error) == "x"


def test_an_exception_that_does_not_pickle_travels_by_name() -> None:
    class Local(Exception):
        pass

    back = pickle.loads(pickle.dumps(Failed("a", Local("no"))))
    assert isinstance(back.error, RuntimeError)
    assert "Local: no" in str(back.error)


# -- wrapped operations -------------------------------------------------------------------------


def boom(x: Any) -> Any:
    raise ValueError(f"boom {x}")


def test_map_keeps_lineage_and_passes_markers() -> None:
    f = TMap(lambda x: x + 1, True)
    ev = f(Tracked(1, "a"))
    assert (ev.value, ev.lin) == (2, "a")
    mark = Tracked(MARK, "b")
    assert f(mark) is mark


def test_a_failing_callback_becomes_a_failed_marker_or_raises() -> None:
    ev = TMap(boom, True)(Tracked(1, "a"))
    assert ev.value is MARK
    assert isinstance(ev.lin, Failed)
    assert str(ev.lin.error) == "boom 1"
    with pytest.raises(ValueError, match="boom 1"):
        TMap(boom, False)(Tracked(1, "a"))


def test_filter_turns_dropped_events_into_markers() -> None:
    keep = TFilter(lambda x: x > 1, True, True)
    assert keep(Tracked(2, "a")).value == 2
    dropped = keep(Tracked(1, "b"))
    assert (dropped.value, dropped.lin) == (MARK, "b")
    reject = TFilter(lambda x: x > 1, True, False)
    assert reject(Tracked(2, "a")).value is MARK


def test_flat_map_splits_lineage_and_an_empty_result_is_a_marker() -> None:
    out = TFlatMap(lambda s: s.split(), True)(Tracked("x y z", "m"))
    assert [e.value for e in out] == ["x", "y", "z"]
    assert Ledger().settle([e.lin for e in out]) == (["m"], [])
    (empty,) = TFlatMap(lambda s: s.split(), True)(Tracked("", "n"))
    assert (empty.value, empty.lin) == (MARK, "n")


def test_map_batch_shares_the_batch_lineage() -> None:
    out = TMapBatch(lambda xs: [sum(xs)], True)(
        [Tracked(1, "a"), Tracked(MARK, "b"), Tracked(2, "c")]
    )
    values = [e.value for e in out]
    assert values.count(3) == 1
    assert sorted(Ledger().settle([e.lin for e in out])[0]) == ["a", "b", "c"]


def test_reduce_and_trigger_hand_the_lineage_to_what_is_emitted() -> None:
    red = TReduce(lambda acc, x: acc + x, True, False)
    state = TState(0)
    for ev in [Tracked(1, "a"), Tracked(MARK, "b"), Tracked(2, "c"), Tracked("x", "d")]:
        state = red(state, ev)
    # "x" failed in the reducer: its message is nacked, the others acknowledged
    assert state.acc == 3
    trig = TTrigger(OnTrigger(lambda acc: ([acc, acc * 10], 0), 1), True)
    events, new = trig(state, (0, 1), ("global", None, "done"))
    assert [e.value for e in events] == [3, 30]
    assert (new.acc, new.lins) == (0, [])
    acked, failed = Ledger().settle([e.lin for e in events])
    assert acked == ["a", "b", "c"]
    assert [i for i, _ in failed] == ["d"]


def test_a_trigger_that_emits_nothing_still_settles_the_state() -> None:
    state = TState({"k": 1})
    state.lins.append("a")
    events, _ = TTrigger(Emit("nothing"), True)(state, (0, 1), ("global", None, "done"))
    assert [(e.value, e.lin) for e in events] == [(MARK, "a")]
    events, _ = TTrigger(None, True)(state, (0, 1), ("global", None, "done"))
    assert [e.value for e in events] == [("k", 1)]


def test_emit_and_reduce_shares_between_the_events_and_the_state() -> None:
    red = TReduce(lambda acc, x: ([x, x], acc + x), True, True)
    events, state = red(TState(0), Tracked(5, "a"))
    ledger = Ledger()
    assert ledger.settle([e.lin for e in events]) == ([], [])
    assert ledger.settle(state.lins) == (["a"], [])


def test_hash_routes_values_and_sends_markers_round() -> None:
    h = THash(lambda x: (x, x % 3), 3)
    ev, p = h(Tracked(4, "a"))
    assert (ev.value, ev.lin, p) == (4, "a", 1)
    seen = {h(Tracked(MARK, str(i)))[1] for i in range(6)}
    assert seen == {0, 1, 2}
    dropping = THash(lambda x: None, 2)
    ev, _ = dropping(Tracked(4, "a"))
    assert (ev.value, ev.lin) == (MARK, "a")


# -- the plan rewrite ------------------------------------------------------------------------


def double_data(m: Any) -> int:
    return int(m.data) * 2


def add(acc: int, x: int) -> int:
    return acc + x


def test_a_tracked_plan_pickles_with_module_level_callbacks() -> None:
    flow = (
        Flow.from_messages(MemorySource([1])).map(double_data).partition(stages=2).reduce(int, add)
    )
    plan = flow.plan()
    assert plan.end is not None
    assert plan.end.acknowledge
    back = pickle.loads(pickle.dumps(plan))
    assert back.layers[0].ops.mappers[0] == plan.layers[0].ops.mappers[0]


@pytest.mark.parametrize(
    ("build", "named"),
    [
        (lambda f: f.uniq(), "uniq and uniq_by"),
        (lambda f: f.partition(window=Window.count(3), stages=2).reduce(int, add), "Window.count"),
        (
            lambda f: Flow.merge([f, Flow.from_iterable([1])]),
            "sources other than Flow.from_messages",
        ),
        (
            lambda f: f.partition(stages=2).reduce(list, add).departition(list, add, list),
            "departition",
        ),
        (lambda f: f.reduce(list, add).take_sort(3), "departition and take_sort"),
    ],
)
def test_operations_lineage_cannot_follow_are_named(build: Any, named: str) -> None:
    flow = build(Flow.from_messages(MemorySource([1, 2])))
    with pytest.raises(ValueError, match="acknowledged messages") as info:
        flow.plan()
    assert named in str(info.value)


def test_check_trackable_accepts_periodic_windows() -> None:
    flow = Flow.from_messages(MemorySource([1]), window=Window.periodic(1, "second")).reduce(
        int, add
    )
    check_trackable(flow.compile().plan)
    assert track_plan(flow.compile().plan) is not None
