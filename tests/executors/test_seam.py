"""Every way of running a flow goes through the executor it is given."""

from __future__ import annotations

from typing import Any

import pytest

import flowstage
from flowstage import Flow
from flowstage.executors import Executor, LocalExecutor, RunningFlow, resolve
from flowstage.plan import Bindings, Plan
from flowstage.testing import Collector

pytestmark = pytest.mark.anyio


class Recording(LocalExecutor):
    """The local executor, recording which entry point ran which sink."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def open_stream(self, plan: Plan, bindings: Bindings) -> Any:
        self.calls.append(("open_stream", plan.sink))
        return super().open_stream(plan, bindings)

    def start(self, plan: Plan, bindings: Bindings) -> Any:
        self.calls.append(("start", plan.sink))
        return super().start(plan, bindings)

    def iterate(self, plan: Plan, bindings: Bindings) -> Any:
        self.calls.append(("iterate", plan.sink))
        return super().iterate(plan, bindings)


def double(x: int) -> int:
    return x * 2


def flow() -> Flow[int]:
    return Flow.from_iterable(range(10), stages=2).map(double)


async def test_every_run_mode_uses_the_executor_it_is_given() -> None:
    ex = Recording()
    assert isinstance(ex, Executor)
    assert sorted(await flow().to_list(executor=ex)) == [x * 2 for x in range(10)]
    await flow().run(executor=ex)
    async with flow().stream(executor=ex) as events:
        assert sorted([e async for e in events]) == [x * 2 for x in range(10)]
    assert sorted([e async for e in flow().iterate(executor=ex)]) == [x * 2 for x in range(10)]
    async with flow().start(executor=ex) as running:
        assert isinstance(running, RunningFlow)
        await running.wait()
    collector = Collector()
    async with flowstage.StageGroup() as group:
        group.start(collector)
        async with flow().into_stages([collector], executor=ex) as running:
            await running.wait()
        group.cancel()
    assert ex.calls == [
        ("open_stream", "stream"),
        ("open_stream", "run"),
        ("open_stream", "stream"),
        ("iterate", "stream"),
        ("start", "run"),
        ("start", "into_stages"),
    ]


async def test_the_default_is_the_local_executor() -> None:
    assert isinstance(resolve(None), LocalExecutor)
    assert isinstance(resolve("local"), LocalExecutor)
    assert sorted(await flow().to_list(executor="local")) == [x * 2 for x in range(10)]
    ex = LocalExecutor()
    assert resolve(ex) is ex


def test_unknown_executors_are_refused_with_the_known_names() -> None:
    with pytest.raises(LookupError, match=r"executor must be one of 'local'.*got: 'nope'"):
        resolve("nope")
    with pytest.raises(TypeError, match="executor must be an executor"):
        resolve(42)  # type: ignore[arg-type]
    with pytest.raises(LookupError):
        flow().stream(executor="nope")
