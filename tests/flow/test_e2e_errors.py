"""Failures and early exits: the original exception with a note, nothing left running."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from flowstage import _stage
from flowstage.flow import Flow

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


def explode_at(n: int) -> Callable[[Any], Any]:
    def f(x: Any) -> Any:
        if x == n:
            raise Boom(f"at {x}")
        return x

    return f


def running_stages() -> list[Any]:
    return [s for s in list(_stage.LIVE_STAGES) if s.running]


async def test_break_stops_an_infinite_flow() -> None:
    flow = Flow.from_iterable(itertools.count(), stages=2).map(lambda x: x).partition(stages=2)
    async with flow.map(lambda x: x).stream() as events:
        async for e in events:
            if e > 5000:
                break
        assert running_stages()
    assert not running_stages()


async def test_timeout_around_a_slow_flow() -> None:
    async def slow() -> AsyncIterator[int]:
        for i in range(1000):
            await anyio.sleep(0.01)
            yield i

    with anyio.move_on_after(0.05) as scope:
        await Flow.from_async_iterable(slow(), stages=1, max_demand=1).map(lambda x: x).to_list()
    assert scope.cancelled_caught
    assert not running_stages()


async def test_bad_from_stages_argument() -> None:
    with pytest.raises(TypeError, match="from_stages: producers must be a list of producer"):
        await Flow.from_stages([object()]).map(lambda x: x).to_list()


async def test_every_partition_failing_notes_the_other_failures() -> None:
    # On the local executor every partition fails at its final trigger before the
    # flow stops: the first failure is raised, the others are listed in a note.
    def fail(acc: int, p: Any) -> tuple[list[Any], int]:
        raise Boom(str(p))

    flow = Flow.from_iterable(range(10), stages=3).reduce(lambda: 0, lambda a, x: a + x)
    for run in ("to_list", "iterate"):
        with pytest.raises(Boom) as info:
            if run == "to_list":
                await flow.on_trigger(fail).to_list()
            else:
                async for _ in flow.on_trigger(fail):
                    pass
        notes = info.value.__notes__
        assert any(n.startswith("other stages failed too") for n in notes), (run, notes)
