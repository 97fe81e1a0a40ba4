"""Waiting for a Ray call from any anyio backend (asyncio, uvloop, trio).

Ray completes an ``ObjectRef`` on one of its own threads. :func:`wait_ref` registers a
callback on the ref's future that wakes the waiting task through its event loop
(``call_soon_threadsafe`` on asyncio, the trio token's ``run_sync_soon`` on trio): no
thread of anyio's pool is held per call, and cancelling the wait leaves the call
running and its result unread, with nothing logged.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import anyio
import sniffio

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["wait_ref"]


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
