"""Fan-out: a running flow's output handed to any number of subscribers.

``flow.start(publish=True)`` drains the flow's output into a :class:`Hub` instead
of discarding it; ``running.subscribe()`` returns a :class:`FlowSubscription`, an
async iterator over what the flow outputs from then on.

Guarantees:

* the hub never waits for a subscriber: publishing a batch appends it (shared, not
  copied) to each subscriber's bounded queue and wakes it, without ``await``, so a
  slow subscriber never slows the flow or the other subscribers;
* each subscriber holds at most ``buffer`` events; when it falls behind, its
  ``slow`` policy applies: ``"drop_oldest"`` drops its oldest events (counted in
  ``dropped``), ``"disconnect"`` cuts it off (``disconnected`` is set, and its
  iteration ends after the events it already held);
* a subscriber sees the events published after it subscribed, in order;
* every subscription ends by itself when the flow ends (it finished, was stopped or
  failed): its iteration ends once it has handed out what it held, so nothing
  (a web server's shutdown, say) waits for a subscriber that is still connected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from ._fanout_queue import SLOW_POLICIES, SlowPolicy, SubscriberQueue
from ._options import check_choice, check_positive_int

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from types import TracebackType

__all__ = ["FlowSubscription", "Hub"]

T = TypeVar("T")

_CALL = "RunningFlow.subscribe"


class FlowSubscription(Generic[T]):
    """One subscriber of a running flow's output (``running.subscribe()``)::

        async with running.subscribe(buffer=100) as events:
            async for event in events:
                ...

    Iterating yields the events one by one (:meth:`batches` yields lists); the
    iteration ends when the flow ends, when the subscriber is disconnected for being
    too slow, or after :meth:`close`. Leaving the ``async with`` block closes it.
    Events already held are handed out without yielding to the event loop.
    """

    __slots__ = ("_ended", "_hub", "_queue", "_wake", "closed", "disconnected")

    def __init__(self, hub: Hub[T], buffer: int, slow: SlowPolicy) -> None:
        self._hub = hub
        self._queue: SubscriberQueue[T] = SubscriberQueue(buffer, slow)
        self._wake: anyio.Event | None = None
        self._ended = False
        #: True once the subscriber was cut off for being too slow
        #: (``slow="disconnect"``).
        self.disconnected: bool = False
        #: True once :meth:`close` was called.
        self.closed: bool = False

    def __repr__(self) -> str:
        state = "ended" if self._ended else "live"
        return (
            f"<FlowSubscription {state} buffered={len(self._queue)} dropped={self._queue.dropped}>"
        )

    @property
    def dropped(self) -> int:
        """Events this subscriber missed because it was too slow."""
        return self._queue.dropped

    @property
    def buffered(self) -> int:
        """Events held, not yet handed out."""
        return len(self._queue)

    @property
    def buffer(self) -> int:
        """The most events this subscriber holds."""
        return self._queue.capacity

    @property
    def ended(self) -> bool:
        """True once no more events will arrive (the flow ended, the subscriber was
        disconnected or closed); what is held is still handed out."""
        return self._ended

    def __aiter__(self) -> FlowSubscription[T]:
        return self

    async def __anext__(self) -> T:
        queue = self._queue
        while not queue.count:
            if self._ended:
                raise StopAsyncIteration
            self._wake = wake = anyio.Event()
            await wake.wait()
        return queue.pop()

    async def batches(self) -> AsyncIterator[list[T]]:
        """Yield the events a batch at a time (each a new list), as published."""
        queue = self._queue
        while True:
            while not queue.count:
                if self._ended:
                    return
                self._wake = wake = anyio.Event()
                await wake.wait()
            yield queue.pop_batch()

    def close(self) -> None:
        """Leave: stop receiving, forget what is held, end the iteration.
        Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._hub._remove(self)
        self._end()

    async def __aenter__(self) -> FlowSubscription[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the hub's side ------------------------------------------------------------------

    def _deliver(self, batch: list[T]) -> tuple[bool, int]:
        """Queue ``batch``; returns (still subscribed, events dropped now)."""
        queue = self._queue
        before = queue.dropped
        kept = queue.offer(batch)
        if not kept:
            self.disconnected = True
            self._ended = True
        self._wakeup()
        return kept, queue.dropped - before

    def _end(self) -> None:
        self._ended = True
        self._wakeup()

    def _wakeup(self) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()


class Hub(Generic[T]):
    """Hands each published batch to every subscriber (see the module docstring)."""

    __slots__ = ("_subs", "closed", "dropped")

    def __init__(self) -> None:
        self._subs: dict[FlowSubscription[T], None] = {}
        #: Events subscribers missed for being too slow, over every subscriber.
        self.dropped: int = 0
        #: True once the flow ended: no more events.
        self.closed: bool = False

    @property
    def subscribers(self) -> int:
        """Subscribers currently connected."""
        return len(self._subs)

    def subscribe(
        self, buffer: int = 1000, slow: SlowPolicy = "drop_oldest"
    ) -> FlowSubscription[T]:
        """A new subscriber; it sees what is published from now on (nothing, and
        ends at once, if the hub is closed).

        Raises:
            TypeError, ValueError: ``buffer`` is not an integer >= 1, or ``slow`` is
                not ``"drop_oldest"`` or ``"disconnect"``.
        """
        buffer = check_positive_int("buffer", buffer, _CALL)
        slow = check_choice("slow", slow, SLOW_POLICIES, _CALL)
        sub = FlowSubscription(self, buffer, slow)
        if self.closed:
            sub._end()
        else:
            self._subs[sub] = None
        return sub

    def publish(self, batch: list[T]) -> None:
        """Hand ``batch`` to every subscriber (never waits; ``batch`` is shared and
        must not be changed afterwards)."""
        if not batch or not self._subs:
            return
        gone: list[FlowSubscription[T]] = []
        dropped = 0
        for sub in self._subs:
            kept, lost = sub._deliver(batch)
            dropped += lost
            if not kept:
                gone.append(sub)
        self.dropped += dropped
        for sub in gone:
            del self._subs[sub]

    def close(self) -> None:
        """The flow ended: every subscription ends once it handed out what it holds."""
        self.closed = True
        subs = list(self._subs)
        self._subs.clear()
        for sub in subs:
            sub._end()

    def _remove(self, sub: FlowSubscription[Any]) -> None:
        self._subs.pop(sub, None)
