"""Waiting for a Ray call from any anyio backend (asyncio, uvloop, trio).

Ray completes an ``ObjectRef`` on one of its own threads. :func:`wait_ref` registers a
callback on the ref's future that wakes the waiting task through its event loop
(``call_soon_threadsafe`` on asyncio, the trio token's ``run_sync_soon`` on trio): no
thread of anyio's pool is held per call, and cancelling the wait leaves the call
running and its result unread, with nothing logged. :func:`until_fails` calls until a
call fails (how the pool learns that an actor it killed is gone); it pauses and keeps
its deadline in real time, so that it ends under a virtual clock too (the pool keeps
such a clock from moving while it stops actors).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.to_thread
import sniffio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

#: How long :func:`until_fails` waits (real time) before it calls again after a call
#: succeeded.
GONE_POLL: Final = 0.01

__all__ = ["GONE_POLL", "until_fails", "wait_ref"]


def _waker(event: anyio.Event) -> Callable[[Any], None]:
    """A done-callback, safe to call from any thread, that sets ``event`` in the
    current event loop (doing nothing once the loop is gone)."""
    if sniffio.current_async_library() == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()

        def wake_trio(_: Any) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(event.set)

        return wake_trio
    import asyncio

    loop = asyncio.get_running_loop()

    def wake_asyncio(_: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(event.set)

    return wake_asyncio


async def wait_ref(ref: Any) -> Any:
    """The result of the Ray call ``ref`` (raising what the call raised)."""
    future = ref.future()
    if not future.done():
        event = anyio.Event()
        future.add_done_callback(_waker(event))
        await event.wait()
    return future.result()


async def _pause_real_time() -> None:
    """Wait :data:`GONE_POLL` seconds of real time: in a worker thread, because the
    event loop's clock may be virtual, and frozen by the caller."""
    await anyio.to_thread.run_sync(time.sleep, GONE_POLL)


async def until_fails(
    call: Callable[[], Awaitable[Any]],
    errors: type[BaseException] | tuple[type[BaseException], ...],
    within: float,
    *,
    pause: Callable[[], Awaitable[None]] = _pause_real_time,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Call ``call()`` until it raises one of ``errors`` (then return ``True``),
    pausing with ``pause`` after each call that succeeded; return ``False`` once
    ``within`` seconds of ``clock`` have passed without such a failure. Another error
    propagates.

    For a killed actor: ``ray.kill`` only asks Ray to end it, and a call that reaches
    the actor before the kill is served as usual, so only a failed call says Ray knows
    it is gone. The pause and the deadline are real time by default, not the event
    loop's clock: a virtual clock that does not move would otherwise make both
    endless. A single call that never answers is bounded only by the caller's
    cancel scope."""
    end = clock() + within
    while True:
        try:
            await call()
        except errors:
            return True
        if clock() >= end:
            return False
        await pause()
