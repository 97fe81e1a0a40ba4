"""Batched, windowed calls to one actor method, and putting them back in order.

Every message between two parties of a Ray run (the parent and an actor, or two
actors) goes through a :class:`BatchSender`: messages queue without blocking; a
sending task takes everything queued as one batch, numbers it and calls the remote
method with it, keeping at most ``window`` calls in flight (it waits for the oldest
before sending more). The queue itself is bounded by the protocol: events move only
against demand, so at most a layer's relay window of events is in flight on an edge
(see :mod:`flowstage.executors._hosting._relay`), however slow the receiver.

Ray runs the calls of an async actor concurrently, so batches may start out of order;
:class:`Reorder` (pure) hands them on in the order they were numbered, holding at most
``window - 1`` early ones.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["BatchSender", "Reorder"]


class BatchSender:
    """Queue messages; :meth:`run` sends them as numbered batches with
    ``call(seq, batch)`` (returns a ref), at most ``window`` calls in flight, awaiting
    each with ``wait(ref)``. :meth:`run` may be cancelled and run again: nothing queued
    or in flight is lost."""

    __slots__ = ("_wake", "call", "inflight", "queue", "seq", "wait", "window")

    def __init__(
        self,
        call: Callable[[int, list[Any]], Any],
        window: int,
        wait: Callable[[Any], Awaitable[Any]],
    ) -> None:
        self.call = call
        self.window = window
        self.wait = wait
        self.queue: list[Any] = []
        self.seq = 0
        self.inflight: deque[Any] = deque()
        self._wake: anyio.Event | None = None

    def send(self, message: Any) -> None:
        """Queue ``message`` (never blocks)."""
        self.queue.append(message)
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    async def run(self) -> None:
        """Send what is queued, forever; raises what a call raised."""
        inflight = self.inflight
        while True:
            if len(inflight) >= self.window:
                await self.wait(inflight[0])
                inflight.popleft()
                continue
            if not self.queue:
                self._wake = wake = anyio.Event()
                await wake.wait()
                continue
            batch, self.queue = self.queue, []
            self.seq += 1
            inflight.append(self.call(self.seq, batch))


class Reorder:
    """Batches numbered ``1, 2, 3, ...`` by one sender, handed on in that order."""

    __slots__ = ("early", "next")

    def __init__(self) -> None:
        self.next = 1
        self.early: dict[int, list[Any]] = {}

    def accept(self, seq: int, batch: list[Any]) -> list[list[Any]]:
        """The batches that can be handled now that batch ``seq`` arrived, in order
        (none when an earlier one is still missing)."""
        if seq != self.next:
            self.early[seq] = batch
            return []
        ready = [batch]
        n = seq + 1
        early = self.early
        while n in early:
            ready.append(early.pop(n))
            n += 1
        self.next = n
        return ready
