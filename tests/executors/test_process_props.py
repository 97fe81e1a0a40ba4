"""Property: the process executor gives the same multiset of results as the local
executor, over random flows (sources, mappers, partitions, shuffles, reducers,
departition, demand, numbers of stages and of workers)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowstage import Flow
from flowstage.executors import LocalExecutor
from flowstage.executors.process import ProcessExecutor

from ..flow.test_e2e_props import apply, count_mod, flows

pytestmark = pytest.mark.anyio


def add(acc: int, x: int) -> int:
    return acc + x


def zero() -> int:
    return 0


def ident(x: int) -> int:
    return x


def build(spec: dict[str, Any]) -> Flow[Any]:
    data: list[int] = spec["data"]
    k = spec["sources"]
    flow: Flow[Any] = Flow.from_iterables(
        [data[i::k] for i in range(k)], stages=spec["stages"], max_demand=spec["max_demand"]
    )
    flow = apply(flow, spec["first"])
    if spec["partition"] is not None:
        flow = getattr(flow, spec["partition"])(
            stages=spec["stages2"], max_demand=spec["max_demand2"]
        )
    flow = apply(flow, spec["second"])
    reduce = spec["reduce"]
    if reduce == "sum":
        return flow.reduce(zero, add).emit("state")
    if reduce == "count_mod":
        return flow.reduce(dict, count_mod)
    if reduce == "departition":
        return flow.reduce(zero, add).departition(zero, add, ident)
    return flow


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=flows, workers=st.integers(1, 4))
async def test_same_results_as_the_local_executor(spec: dict[str, Any], workers: int) -> None:
    local = await build(spec).to_list(executor=LocalExecutor())
    remote = await build(spec).to_list(executor=ProcessExecutor(workers))
    if spec["reduce"] in ("sum", "departition"):
        # per-partition sums: the partitions a sum falls into may differ in number
        assert sum(remote) == sum(local)
    elif spec["reduce"] == "count_mod":
        total: Counter[int] = Counter()
        for key, n in local:
            total[key] += n
        for key, n in remote:
            total[key] -= n
        assert not +total
        assert not -total
    else:
        assert Counter(remote) == Counter(local)
