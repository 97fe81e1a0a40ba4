"""Failures and early exits: the original exception with a note, nothing left running."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from flowstage import Producer, StageExited, _stage
from flowstage.flow import Flow, Window

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


def explode_at(n: int) -> Callable[[Any], Any]:
    def f(x: Any) -> Any:
        if x == n:
            raise Boom(f"at {x}")
        return x

    return f


def flow_note(exc: BaseException) -> str:
    notes = [n for n in getattr(exc, "__notes__", []) if n.startswith("in flow")]
    assert len(notes) == 1, getattr(exc, "__notes__", None)
    return notes[0]


def running_stages() -> list[Any]:
    return [s for s in list(_stage.LIVE_STAGES) if s.running]


async def reduce_raising(acc: int, x: int) -> int:
    if x == 3:
        raise Boom("async reduce")
    return acc + x


CASES: list[tuple[str, Callable[[], Flow[Any]], type[BaseException], str]] = [
    (
        "map",
        lambda: Flow.from_iterable(range(20), stages=2).map(explode_at(7)),
        Boom,
        r"in flow layer 0 \(map\), partition [01] of 2",
    ),
    (
        "filter after map",
        lambda: Flow.from_iterable(range(20), stages=1).map(lambda x: x).filter(explode_at(3)),
        Boom,
        r"in flow layer 0 \(filter\), partition 0 of 1",
    ),
    (
        "reduce",
        lambda: (
            Flow.from_iterable(range(20), stages=2)
            .partition(stages=3)
            .reduce(lambda: 0, lambda acc, x: acc + explode_at(11)(x))
            .emit("state")
        ),
        Boom,
        r"in flow layer 0 \(reduce\), partition [012] of 3",
    ),
    (
        "async reduce",
        lambda: Flow.from_iterable(range(20), stages=1).reduce(lambda: 0, reduce_raising),
        Boom,
        r"in flow layer 0 \(reduce\), partition 0 of 1",
    ),
    (
        "on_trigger at done",
        lambda: (
            Flow.from_iterable(range(20), stages=1)
            .map(lambda x: x)
            .partition(stages=2)
            .reduce(lambda: 0, lambda acc, x: acc + x)
            .on_trigger(lambda acc: (acc / 0, acc))
        ),
        ZeroDivisionError,
        r"in flow layer 1 \(on_trigger\), partition [01] of 2",
    ),
    (
        "on_trigger bad result",
        lambda: (
            Flow.from_iterable(range(5), stages=1)
            .reduce(lambda: 0, lambda acc, x: acc + x)
            .on_trigger(lambda acc: acc)
        ),
        TypeError,
        r"in flow layer 0 \(on_trigger\), partition 0 of 1",
    ),
    (
        "state not iterable",
        lambda: Flow.from_iterable(range(5), stages=1).reduce(lambda: 0, lambda acc, x: acc + x),
        TypeError,
        r"in flow layer 0 \(reduce state to events\)",
    ),
    (
        "partition key",
        lambda: (
            Flow.from_iterable(range(10), stages=1)
            .map(lambda x: x)
            .partition(stages=2, key=lambda x: 1 // (x - 4))
            .map(lambda x: x)
        ),
        ZeroDivisionError,
        r"in flow layer 1 \(partition key/hash\)",
    ),
    (
        "fixed window by",
        lambda: (
            Flow.from_iterable(["x"], stages=1, window=Window.fixed(1, "second", str))
            .reduce(list, lambda acc, x: acc)
            .emit("state")
        ),
        TypeError,
        r"in flow layer 0 \(window by\)",
    ),
    (
        "join function",
        lambda: Flow.bounded_join(
            "inner",
            Flow.from_iterable([1, 2]),
            Flow.from_iterable([2, 3]),
            lambda x: x,
            lambda x: x,
            lambda a, b: a / 0,
            stages=2,
        ),
        ZeroDivisionError,
        r"in flow layer 0 \(join\), partition [01] of 2",
    ),
    (
        "departition merge",
        lambda: (
            Flow.from_iterable(range(9), stages=1)
            .partition(stages=3)
            .reduce(lambda: 0, lambda a, x: a + x)
            .departition(lambda: 0, lambda a, v: a / 0, lambda a: a)
        ),
        ZeroDivisionError,
        r"in flow layer 1 \(departition merge\), partition 0 of 1",
    ),
    (
        "source iterable",
        lambda: Flow.from_iterable((1 // (3 - i) for i in range(6)), stages=2).map(lambda x: x),
        ZeroDivisionError,
        r"in flow-source0 \(iterating the source iterable\)",
    ),
]


@pytest.mark.parametrize(("name", "make", "exc_type", "note"), CASES, ids=[c[0] for c in CASES])
async def test_callback_errors_surface_unwrapped_with_a_note(
    name: str, make: Callable[[], Flow[Any]], exc_type: type[BaseException], note: str
) -> None:
    with pytest.raises(exc_type) as info:
        await make().to_list()
    assert type(info.value) is exc_type  # not an ExceptionGroup
    assert re.fullmatch(note + ".*", flow_note(info.value)), flow_note(info.value)
    assert not running_stages()


async def test_every_partition_failing_gives_the_first_failure() -> None:
    flow = (
        Flow.from_iterable(range(10), stages=3)
        .reduce(lambda: 0, lambda acc, x: acc + x)
        .on_trigger(lambda acc, p: (_ for _ in ()).throw(Boom(str(p))))
    )
    with pytest.raises(Boom) as info:
        await flow.to_list()
    notes = info.value.__notes__
    assert any(n.startswith("other stages failed too") for n in notes)


async def test_error_inside_the_stream_block() -> None:
    flow = Flow.from_iterable(range(100), stages=2).map(explode_at(50))
    seen = []
    with pytest.raises(Boom):
        async with flow.stream() as events:
            async for e in events:
                seen.append(e)
    assert not running_stages()


async def test_error_raised_by_the_consumer_body_is_not_wrapped() -> None:
    with pytest.raises(KeyError):
        async with Flow.from_iterable(itertools.count(), stages=2).map(lambda x: x).stream() as ev:
            async for e in ev:
                if e > 10:
                    raise KeyError(e)
    assert not running_stages()


async def test_error_in_async_for_over_the_flow() -> None:
    with pytest.raises(Boom):
        async for _ in Flow.from_iterable(range(100), stages=2).map(explode_at(5)):
            pass


async def test_error_in_a_started_flow_is_raised_from_the_block() -> None:
    flow = Flow.from_iterable(range(100), stages=2).map(explode_at(42))
    with pytest.raises(Boom):
        async with flow.start() as running:
            await running.wait()
    with pytest.raises(Boom):
        await running.wait()


async def test_break_stops_an_infinite_flow() -> None:
    flow = Flow.from_iterable(itertools.count(), stages=2).map(lambda x: x).partition(stages=2)
    async with flow.map(lambda x: x).stream() as events:
        async for e in events:
            if e > 5000:
                break
        assert running_stages()
    assert not running_stages()


async def test_cancelling_the_consumer_stops_everything() -> None:
    flow = Flow.from_iterable(itertools.count(), stages=3).map(lambda x: x).shuffle(stages=2)
    with anyio.CancelScope() as scope:
        async with flow.stream() as events:
            async for e in events:
                if e > 1000:
                    scope.cancel()
    assert scope.cancelled_caught
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


class Oops(Producer[int]):
    def handle_demand(self, demand: int) -> list[int]:
        self.stop("oops")
        return [1]


async def test_producer_stopping_abnormally_fails_the_flow() -> None:
    with pytest.raises(StageExited) as info:
        await Flow.from_stages([Oops()], stages=2).map(lambda x: x).to_list()
    assert info.value.reason == "oops"
    assert not running_stages()


async def test_bad_from_stages_argument() -> None:
    with pytest.raises(TypeError, match="from_stages expects"):
        await Flow.from_stages([object()]).map(lambda x: x).to_list()
