"""How the Ray pool learns that an actor it killed is gone, without Ray:
``until_fails`` with plain async calls (pure)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from flowstage.executors.ray._wait import until_fails

pytestmark = pytest.mark.anyio


class Gone(Exception):
    pass


async def _no_pause() -> None:
    await anyio.lowlevel.checkpoint()


def _failing_after(successes: int, calls: list[str]) -> Callable[[], Awaitable[int]]:
    async def ping() -> int:
        calls.append("ok" if len(calls) < successes else "gone")
        if calls[-1] == "gone":
            raise Gone
        return 1

    return ping


async def test_a_call_that_succeeds_is_made_again_until_one_fails() -> None:
    # ray.kill only asks Ray to end the actor: calls that reach it first succeed.
    calls: list[str] = []
    assert await until_fails(_failing_after(2, calls), Gone, 10.0)
    assert calls == ["ok", "ok", "gone"]


async def test_an_error_it_does_not_wait_for_propagates() -> None:
    async def ping() -> int:
        raise ValueError("not a sign that the actor is gone")

    with pytest.raises(ValueError, match="not a sign"):
        await until_fails(ping, (Gone, KeyError), 10.0)


async def test_a_call_that_keeps_succeeding_ends_at_the_deadline() -> None:
    now = [0.0]
    calls = 0

    async def ping() -> int:
        nonlocal calls
        calls += 1
        now[0] += 1.0  # each call takes one second of this clock
        return 1

    gone = await until_fails(ping, Gone, 4.5, pause=_no_pause, clock=lambda: now[0])
    assert not gone
    assert calls == 5  # at 1, 2, 3, 4 s it calls again; at 5 s the deadline has passed


async def test_the_caller_can_still_cancel_it() -> None:
    calls = 0

    with anyio.CancelScope() as scope:

        async def ping() -> int:
            nonlocal calls
            calls += 1
            if calls == 5:
                scope.cancel()
            return 1

        await until_fails(ping, Gone, 1e9, pause=_no_pause)
    assert scope.cancelled_caught
    assert calls == 5


class TestUnderAFrozenVirtualClock:
    """The Ray pool keeps a virtual clock from jumping while it stops actors (it
    checkpoints in a loop until the stop is done). The default pause and deadline are
    real time, so the wait still ends; a pause on the event loop's clock never would."""

    @pytest.fixture
    def anyio_backend(self) -> tuple[str, dict[str, object]]:
        from trio.testing import MockClock

        return ("trio", {"clock": MockClock(autojump_threshold=0)})

    async def test_it_ends_while_another_task_keeps_the_clock_still(self) -> None:
        calls: list[str] = []
        done = anyio.Event()
        result: list[bool] = []

        async def stop() -> None:
            try:
                result.append(await until_fails(_failing_after(3, calls), Gone, 10.0))
            finally:
                done.set()

        started = anyio.current_time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop)
            while not done.is_set():  # what the pool's _hold does
                await anyio.lowlevel.checkpoint()
        assert result == [True]
        assert calls == ["ok", "ok", "ok", "gone"]
        assert anyio.current_time() == started  # the virtual clock did not move
