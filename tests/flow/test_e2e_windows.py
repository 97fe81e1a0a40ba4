"""Windows and triggers end to end, under trio's virtual clock.

``MockClock(autojump_threshold=0)`` jumps to the next deadline as soon as every
task is blocked, so periodic windows and triggers fire at exact virtual times and
the tests take no real time.
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


async def test_trigger_periodically_with_two_stages_fires_on_each() -> None:
    flow = (
        Flow.from_async_iterable(
            ticking([0.5, 1.5, 2.5]),
            stages=2,
            max_demand=1,
            window=Window.global_().trigger_periodically(1, "second"),
        )
        .reduce(lambda: 0, lambda acc, _: acc + 1)
        .on_trigger(lambda acc, p, t: ([(p, t[2], acc)], acc))
    )
    out = await flow.to_list()
    done = [acc for (_, name, acc) in out if name == "done"]
    assert sum(done) == 3
    ticks = [(p, acc) for (p, name, acc) in out if name != "done"]
    # Every stage ticks at 1s and 2s (the flow ends at 2.5s).
    assert sorted(p for p, _ in ticks) == [(0, 2), (0, 2), (1, 2), (1, 2)]


async def test_periodic_window_with_partition_downstream() -> None:
    flow = (
        Flow.from_async_iterable(ticking([0.5, 1.5, 2.5, 3.5]), stages=1, max_demand=1)
        .map(lambda t: int(t))
        .partition(stages=2, max_demand=1, window=Window.periodic(2, "second"))
        .reduce(list, appended)
        .on_trigger(lambda acc, p, t: ([(t[1], sorted(acc))], acc))
    )
    out = await flow.to_list()
    windows: dict[int, list[int]] = {}
    for wid, acc in out:
        windows.setdefault(wid, []).extend(acc)
    assert {k: sorted(v) for k, v in windows.items()} == {0: [0, 1], 1: [2, 3]}


async def test_external_trigger_and_stop_with_virtual_time() -> None:
    seen: list[Any] = []

    async def forever() -> AsyncIterator[int]:
        i = 0
        while True:
            await anyio.sleep(1)
            yield i
            i += 1

    def record(acc: list[int], _p: Any, trigger: Any) -> tuple[list[Any], list[int]]:
        seen.append((trigger[2], list(acc)))
        return [], acc

    flow = (
        Flow.from_async_iterable(forever(), stages=1, max_demand=1)
        .reduce(list, appended)
        .on_trigger(record)
    )
    async with flow.start() as running:
        await anyio.sleep(3.5)
        running.trigger("flush")
        await anyio.sleep(2)
        running.stop()
        await running.wait()
        assert running.done
    assert seen == [("flush", [0, 1, 2])]


async def test_fixed_window_allowed_lateness() -> None:
    events = [(0, "a"), (5, "b"), (12, "c"), (3, "late"), (25, "d")]
    flow = (
        Flow.from_iterable(
            events,
            stages=1,
            max_demand=1,
            window=Window.fixed(10, "millisecond", lambda e: e[0]).allowed_lateness(1, "second"),
        )
        .reduce(list, lambda acc, e: [*acc, e[1]])
        .on_trigger(lambda acc, _p, t: ([(t[1], t[2], acc)], acc))
    )
    out = await flow.to_list()
    # Window 0 closes (watermark) when 12 arrives; 3 is late but still open.
    assert (0, "watermark", ["a", "b"]) in out
    assert (0, "done", ["a", "b", "late"]) in out
    assert out[-1][1] == "done"
