"""A running flow says when it has ended and how (issue 13, item 9): ``done`` is
true after any ending, a failure included, and ``exception`` holds the failure."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from flowstage import Flow
from flowstage.testing import wait_until

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


def explode(x: int) -> int:
    if x == 7:
        raise Boom(x)
    return x


async def test_a_failed_flow_is_done_and_holds_its_exception() -> None:
    handle: list[Any] = []
    with pytest.raises(Boom):
        async with Flow.from_iterable(range(20), stages=2).map(explode).start() as running:
            handle.append(running)
            assert not running.done
            await running.wait()
    (running,) = handle
    assert running.done
    assert isinstance(running.exception, Boom)
    with pytest.raises(Boom):
        await running.wait()  # raises the failure again


async def test_a_failure_while_the_block_awaits_something_else() -> None:
    handle: list[Any] = []
    with pytest.raises(Boom):
        async with Flow.from_iterable(range(20), stages=2).map(explode).start() as running:
            handle.append(running)
            await anyio.sleep_forever()
    assert handle[0].done
    assert isinstance(handle[0].exception, Boom)


@pytest.mark.parametrize("ending", ["finished", "stopped", "left"])
async def test_other_endings_are_done_without_an_exception(ending: str) -> None:
    source: Any = range(20) if ending == "finished" else iter(int, 1)
    async with Flow.from_iterable(source, stages=2).map(abs).start() as running:
        if ending == "finished":
            await running.wait()
        elif ending == "stopped":
            await wait_until(lambda: any(s.statistics().events_in for s in running.stages))
            running.stop()
            await running.wait()
    assert running.done
    assert running.exception is None
