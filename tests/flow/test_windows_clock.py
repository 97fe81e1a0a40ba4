"""Windows and triggers on the local executor, at exact virtual times.

``MockClock(autojump_threshold=0)`` jumps to the next deadline as soon as every
task is blocked, so periodic windows and triggers fire at exact virtual times and
the tests take no real time. A callback reading the clock sees the exact time a
trigger fired (on the local executor the clock is the caller's). The same windows
on every executor: the conformance kit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from trio.testing import MockClock

from flowstage.flow import Flow, Window

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


async def ticking(times: list[float]) -> AsyncIterator[float]:
    """Yield each of ``times`` (virtual seconds since the start) at that time."""
    start = anyio.current_time()
    for t in times:
        await anyio.sleep(start + t - anyio.current_time())
        yield t


def appended(acc: list[Any], x: Any) -> list[Any]:
    return [*acc, x]


def stamped(acc: list[Any], _partition: Any, trigger: Any) -> tuple[list[Any], list[Any]]:
    """Emit ``(trigger, virtual time, acc)`` and keep the accumulator."""
    return [(trigger, round(anyio.current_time(), 6), acc)], acc


async def test_periodic_windows_emit_at_exact_times() -> None:
    start = anyio.current_time()
    flow = (
        Flow.from_async_iterable(
            ticking([1, 2, 3, 4, 5, 6, 7, 8, 9]),
            stages=1,
            max_demand=1,
            window=Window.periodic(2200, "millisecond"),
        )
        .reduce(list, appended)
        .on_trigger(stamped)
    )
    out = await flow.to_list()
    rel = [(trig, round(t - start, 6), acc) for trig, t, acc in out]
    assert rel == [
        (("periodic", 0, "done"), 2.2, [1, 2]),
        (("periodic", 1, "done"), 4.4, [3, 4]),
        (("periodic", 2, "done"), 6.6, [5, 6]),
        (("periodic", 3, "done"), 8.8, [7, 8]),
        (("periodic", 4, "done"), 9.0, [9]),
    ]


async def test_trigger_periodically_on_a_global_window() -> None:
    start = anyio.current_time()
    flow = (
        Flow.from_async_iterable(
            ticking([0.5, 1.5, 2.5, 3.5]),
            stages=1,
            max_demand=1,
            window=Window.global_().trigger_periodically(1, "second"),
        )
        .reduce(list, appended)
        .on_trigger(stamped)
    )
    out = [(trig, round(t - start, 6), acc) for trig, t, acc in await flow.to_list()]
    name = ("periodically", 1, "second")
    assert out == [
        (("global", "global", name), 1.0, [0.5]),
        (("global", "global", name), 2.0, [0.5, 1.5]),
        (("global", "global", name), 3.0, [0.5, 1.5, 2.5]),
        (("global", "global", "done"), 3.5, [0.5, 1.5, 2.5, 3.5]),
    ]
