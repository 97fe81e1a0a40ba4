"""A stage's mailbox: the one channel through which a stage receives messages.

Bounded by construction:

* **events** are sent only against demand, so a subscription never has more events
  in flight than its ``max_demand``;
* **asks** are coalesced: a subscription has at most one ask message queued, and
  later asks add to it;
* subscribe/cancel messages are at most one of each per subscription;
* **external** messages (``send``, ``async_info``/``sync_info``, ``call``,
  demand-mode changes) count against ``external_limit``: non-waiting senders get
  :class:`anyio.WouldBlock` when it is reached and awaiting senders wait for room;
* ``stop``/``finish`` requests are at most one or two per stage and do not count.

Putting a message never blocks the sender, so two stages can never deadlock by
waiting on each other's mailbox.

Waking the owner is the engine's hottest path (once per batch), so on asyncio and
trio the mailbox parks its owner with the event loop's own primitive (a future, or
trio's ``wait_task_rescheduled``) instead of creating an ``anyio.Event`` per
wait; on any other anyio backend it falls back to ``anyio.Event``. Cancellation
works the same way in every case.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import Any

import anyio
import anyio.lowlevel

from ._options import DEFAULT_MAILBOX_LIMIT


def _current_backend() -> str:
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        return "trio"
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "other"
    return "asyncio"


__all__ = ["Mailbox"]


class Mailbox:
    """FIFO of messages with a wake-up for the single task that drains it."""

    __slots__ = ("_backend", "_room", "_waiter", "closed", "external", "external_limit", "queue")

    def __init__(self, external_limit: int = DEFAULT_MAILBOX_LIMIT) -> None:
        self.queue: deque[tuple[Any, ...]] = deque()
        self._waiter: Any = None
        self._backend: str | None = None
        self._room: anyio.Event | None = None
        self.closed: bool = False
        self.external: int = 0
        self.external_limit: int = external_limit

    def put(self, msg: tuple[Any, ...]) -> None:
        """Append ``msg`` and wake the owner. Messages to a closed mailbox are dropped."""
        if self.closed:
            return
        self.queue.append(msg)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            backend = self._backend
            if backend == "asyncio":
                if not waiter.done():
                    waiter.set_result(None)
            elif backend == "trio":
                sys.modules["trio"].lowlevel.reschedule(waiter)
            else:
                waiter.set()

    def put_external_nowait(self, msg: tuple[Any, ...]) -> None:
        """Append an external message; raise :class:`anyio.WouldBlock` when full."""
        if self.external >= self.external_limit:
            raise anyio.WouldBlock
        self.external += 1
        self.put(msg)

    async def put_external(self, msg: tuple[Any, ...]) -> None:
        """Append an external message, waiting while the mailbox is full."""
        while self.external >= self.external_limit and not self.closed:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()
        self.external += 1
        self.put(msg)

    def external_done(self) -> None:
        """Record that one external message was taken out of the queue."""
        self.external -= 1
        room = self._room
        if room is not None:
            self._room = None
            room.set()

    async def wait(self) -> None:
        """Return when the queue is not empty (always a checkpoint)."""
        if self.queue:
            await anyio.lowlevel.checkpoint()
            return
        backend = self._backend
        if backend is None:
            backend = self._backend = _current_backend()
        if backend == "asyncio":
            future = asyncio.get_running_loop().create_future()
            self._waiter = future
            await future
        elif backend == "trio":
            lowlevel = sys.modules["trio"].lowlevel

            def abort(_: object) -> Any:
                self._waiter = None
                return lowlevel.Abort.SUCCEEDED

            self._waiter = lowlevel.current_task()
            await lowlevel.wait_task_rescheduled(abort)
        else:
            event = anyio.Event()
            self._waiter = event
            await event.wait()

    def close(self) -> list[tuple[Any, ...]]:
        """Close the mailbox and return what was still queued."""
        self.closed = True
        left = list(self.queue)
        self.queue.clear()
        room = self._room
        if room is not None:
            self._room = None
            room.set()
        return left
