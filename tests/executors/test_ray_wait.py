"""How the Ray pool learns that an actor it killed is gone, without Ray:
``until_fails`` with plain async calls (pure)."""

from __future__ import annotations

import anyio
import pytest

from flowstage.executors.ray._wait import until_fails

pytestmark = pytest.mark.anyio


class Gone(Exception):
    pass


async def test_a_call_that_succeeds_is_made_again_until_one_fails() -> None:
    # ray.kill only asks Ray to end the actor: calls that reach it first succeed.
    answers: list[str] = []

    async def ping() -> int:
        answers.append("ok" if len(answers) < 2 else "gone")
        if answers[-1] == "gone":
            raise Gone
        return 1

    await until_fails(ping, Gone)
    assert answers == ["ok", "ok", "gone"]


async def test_an_error_it_does_not_wait_for_propagates() -> None:
    async def ping() -> int:
        raise ValueError("not a sign that the actor is gone")

    with pytest.raises(ValueError, match="not a sign"):
        await until_fails(ping, (Gone, KeyError))


async def test_a_call_that_keeps_succeeding_is_bounded_by_the_caller() -> None:
    calls = 0

    with anyio.CancelScope() as scope:

        async def ping() -> int:
            nonlocal calls
            calls += 1
            if calls == 5:
                scope.cancel()  # the caller's deadline, without a clock
            return 1

        await until_fails(ping, Gone)
    assert scope.cancelled_caught
    assert calls == 5
