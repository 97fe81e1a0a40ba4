"""One failure rule for every way of running stages (issue 13, bug 1).

When several stages fail on the same bad input, every run mode of a flow
(``async for``, ``to_list()``, ``stream()``, ``start()``) and a ``StageGroup`` raise
the same exception type: one of the original exceptions, never an
``ExceptionGroup`` (which used to hold the same exception object several times
under ``async for``), so ``except TypeError:`` works whatever ran the stages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from flowstage import BroadcastDispatcher, Consumer, Flow, StageGroup
from flowstage import from_iterable as producer_over
from flowstage.testing import wait_quiescent

pytestmark = pytest.mark.anyio


def returns_an_int(x: int) -> Any:
    return x  # flat_map expects an iterable: every stage fails with TypeError


def unhashable_key(x: int) -> Any:
    return [x]  # a list cannot be a dict key: every stage's group_by fails


def wrong_type_flow() -> Flow[Any]:
    return Flow.from_iterable(range(200), stages=2, max_demand=10).flat_map(returns_an_int)


def unhashable_key_flow() -> Flow[Any]:
    return Flow.from_iterable(range(200), stages=2, max_demand=10).group_by(unhashable_key)


FLOWS = {"wrong_return_type": wrong_type_flow, "unhashable_key": unhashable_key_flow}


async def run_async_for(flow: Flow[Any]) -> None:
    async for _ in flow:
        pass


async def run_to_list(flow: Flow[Any]) -> None:
    await flow.to_list()


async def run_stream(flow: Flow[Any]) -> None:
    async with flow.stream() as events:
        async for _ in events:
            pass


async def run_start(flow: Flow[Any]) -> None:
    async with flow.start() as running:
        await running.wait()


MODES: dict[str, Callable[[Flow[Any]], Any]] = {
    "async_for": run_async_for,
    "to_list": run_to_list,
    "stream": run_stream,
    "start": run_start,
}


def assert_one_original(exc: BaseException) -> None:
    assert type(exc) is TypeError, repr(exc)
    assert not isinstance(exc, BaseExceptionGroup)


@pytest.mark.parametrize("make", sorted(FLOWS))
@pytest.mark.parametrize("mode", sorted(MODES))
async def test_every_run_mode_raises_the_original_exception(make: str, mode: str) -> None:
    flow = FLOWS[make]()
    with pytest.raises(BaseException) as info:  # noqa: PT011 (the type is the point)
        await MODES[mode](flow)
    assert_one_original(info.value)


class Fails(Consumer[Any]):
    """Fails on its first batch, once every ``Fails`` of the test holds one: the
    wait is shielded, so the first failure cannot cancel the others first."""

    def __init__(self, barrier: list[Any], **opts: Any) -> None:
        super().__init__(**opts)
        self.barrier = barrier

    async def handle_events(self, events: list[Any], from_: Any) -> None:
        count, arrived = self.barrier
        self.barrier[0] = count = count - 1
        with anyio.CancelScope(shield=True):
            if count == 0:
                arrived.set()
            await arrived.wait()
        raise TypeError(f"{self.name} cannot handle {events[:1]}")


async def test_stage_group_raises_the_first_failure_with_a_note() -> None:
    with pytest.raises(BaseException) as info:  # noqa: PT011
        async with StageGroup() as group:
            # Accumulate until both consumers subscribed: both get the first batch.
            p = group.start(
                producer_over(range(100), dispatcher=BroadcastDispatcher(), demand="accumulate")
            )
            barrier = [2, anyio.Event()]
            for name in ("first", "second"):
                group.start(Fails(barrier, name=name, subscribe_to=[(p, {"max_demand": 10})]))
            await wait_quiescent(group)
            p.set_demand("forward")
            await group.wait()
    assert_one_original(info.value)
    # Both consumers failed: the other failure is named in a note, not raised
    # alongside.
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "other stages failed too" in notes
