"""``async for e in flow`` (issue 13): a flow with processing-time timers warns when
iterated that way (it runs only while the loop asks for events), and
``contextlib.aclosing`` closes a source left by ``break``."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator

import pytest

from flowstage import Flow, Window

pytestmark = pytest.mark.anyio


def add(acc: int, x: int) -> int:
    return acc + x


def zero() -> int:
    return 0


TIMED = {
    "periodic": lambda: Flow.from_iterable(range(5), window=Window.periodic(1, "second")),
    "trigger_periodically": lambda: Flow.from_iterable(
        range(5), window=Window.global_().trigger_periodically(1, "second")
    ),
    "allowed_lateness": lambda: Flow.from_iterable(
        range(5), window=Window.fixed(1, "second", abs).allowed_lateness(1, "second")
    ),
}


@pytest.mark.parametrize("what", sorted(TIMED))
async def test_timers_under_async_for_warn(what: str) -> None:
    flow = TIMED[what]().reduce(zero, add).emit("state")
    with pytest.warns(RuntimeWarning, match=r"processing-time timers .*flow\.stream\(\)") as info:
        total = sum([e async for e in flow])
    assert total == sum(range(5))
    assert info[0].filename == __file__  # points at the loop, not at flowstage
    with pytest.warns(RuntimeWarning, match="processing-time timers") as info:
        async with contextlib.aclosing(flow.iterate()) as events:
            assert sum([e async for e in events]) == sum(range(5))
    assert info[0].filename == __file__


async def test_no_warning_without_timers_or_with_stream() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [e async for e in Flow.from_iterable(range(3)).map(abs)] == [0, 1, 2]
        flow = TIMED["periodic"]().reduce(zero, add).emit("state")
        async with flow.stream() as events:
            assert sum([e async for e in events]) == sum(range(5))


async def test_aclosing_closes_a_source_left_by_break() -> None:
    closed: list[bool] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for i in range(1000):
                yield i
        finally:
            closed.append(True)

    flow = Flow.from_async_iterable(numbers(), stages=1).map(abs)
    async with contextlib.aclosing(flow.iterate()) as events:
        async for _ in events:
            break
    assert closed == [True]
