"""Property: a flow's output equals a sequential reference, whatever the stages,
demand, number of sources and partitioning (Hypothesis)."""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowstage.flow import Flow

pytestmark = pytest.mark.anyio


async def ainc(x: int) -> int:
    return x + 1


MAPPERS: dict[str, tuple[str, Any]] = {
    "ainc": ("map", ainc),
    "inc": ("map", lambda x: x + 1),
    "double": ("map", lambda x: x * 2),
    "neg": ("map", lambda x: -x),
    "even": ("filter", lambda x: x % 2 == 0),
    "not3": ("reject", lambda x: x % 3 == 0),
    "dup": ("flat_map", lambda x: [x, x]),
    "upto": ("flat_map", lambda x: range(abs(x) % 4)),
}


def reference(data: list[int], names: list[str]) -> list[int]:
    xs = list(data)
    for name in names:
        kind, f = MAPPERS[name]
        if name == "ainc":
            xs = [x + 1 for x in xs]
        elif kind == "map":
            xs = [f(x) for x in xs]
        elif kind == "filter":
            xs = [x for x in xs if f(x)]
        elif kind == "reject":
            xs = [x for x in xs if not f(x)]
        else:
            xs = [y for x in xs for y in f(x)]
    return xs


def apply(flow: Flow[Any], names: list[str]) -> Flow[Any]:
    for name in names:
        kind, f = MAPPERS[name]
        flow = getattr(flow, kind)(f)
    return flow


def count_mod(acc: dict[int, int], x: int) -> dict[int, int]:
    acc[x % 5] = acc.get(x % 5, 0) + 1
    return acc


flows = st.fixed_dictionaries(
    {
        "data": st.lists(st.integers(-40, 40), max_size=80),
        "sources": st.integers(1, 3),
        "first": st.lists(st.sampled_from(sorted(MAPPERS)), max_size=3),
        "partition": st.sampled_from([None, "partition", "shuffle"]),
        "second": st.lists(st.sampled_from(sorted(MAPPERS)), max_size=2),
        "reduce": st.sampled_from([None, "sum", "count_mod", "departition"]),
        "stages": st.integers(1, 4),
        "stages2": st.integers(1, 4),
        "max_demand": st.integers(1, 50),
        "max_demand2": st.integers(1, 50),
    }
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=flows)
async def test_flow_matches_sequential_reference(spec: dict[str, Any]) -> None:
    data: list[int] = spec["data"]
    k = spec["sources"]
    chunks = [data[i::k] for i in range(k)]
    flow: Flow[Any] = Flow.from_iterables(
        chunks, stages=spec["stages"], max_demand=spec["max_demand"]
    )
    flow = apply(flow, spec["first"])
    names = list(spec["first"])
    if spec["partition"] is not None:
        flow = getattr(flow, spec["partition"])(
            stages=spec["stages2"], max_demand=spec["max_demand2"]
        )
    flow = apply(flow, spec["second"])
    names += spec["second"]
    expected = reference(data, names)
    reduce = spec["reduce"]
    if reduce is None:
        assert sorted(await flow.to_list()) == sorted(expected)
    elif reduce == "sum":
        out = await flow.reduce(lambda: 0, lambda a, x: a + x).emit("state").to_list()
        assert sum(out) == functools.reduce(lambda a, x: a + x, expected, 0)
    elif reduce == "count_mod":
        pairs = await flow.reduce(dict, count_mod).to_list()
        merged: Counter[int] = Counter()
        for key, n in pairs:
            merged[key] += n
        assert merged == Counter(x % 5 for x in expected)
    else:
        out = await (
            flow.reduce(lambda: 0, lambda a, x: a + x)
            .departition(lambda: 0, lambda a, v: a + v, lambda a: a)
            .to_list()
        )
        assert out == [sum(expected)]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    left=st.lists(st.tuples(st.integers(0, 6), st.integers()), max_size=15),
    right=st.lists(st.tuples(st.integers(0, 6), st.integers()), max_size=15),
    mode=st.sampled_from(["inner", "left_outer", "right_outer", "full_outer"]),
    stages=st.integers(1, 4),
    max_demand=st.integers(1, 20),
)
async def test_join_matches_reference(
    left: list[tuple[int, int]],
    right: list[tuple[int, int]],
    mode: str,
    stages: int,
    max_demand: int,
) -> None:
    flow = Flow.bounded_join(
        mode,
        Flow.from_iterable(left, stages=1),
        Flow.from_iterable(right, stages=1),
        lambda e: e[0],
        lambda e: e[0],
        lambda lft, rgt: (lft, rgt),
        stages=stages,
        max_demand=max_demand,
    )
    expected = [(lft, rgt) for lft in left for rgt in right if lft[0] == rgt[0]]
    if mode in ("left_outer", "full_outer"):
        expected += [(lft, None) for lft in left if lft[0] not in {r[0] for r in right}]
    if mode in ("right_outer", "full_outer"):
        expected += [(None, rgt) for rgt in right if rgt[0] not in {x[0] for x in left}]
    assert sorted(await flow.to_list(), key=repr) == sorted(expected, key=repr)
