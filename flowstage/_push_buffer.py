"""The bounded buffer behind a push source: capacity, overflow policy, waiting pushers.

Pure bookkeeping (no ``await``, no I/O, no clock of its own), so every policy is
tested directly; :class:`~flowstage.PushHandle` wraps it with the waiting and the
waking.

Guarantees:

* at most ``capacity`` events are held, whatever the policy;
* events leave in the order they were accepted;
* ``"block"``: an event that does not fit waits in a FIFO of pushers, and waiting
  events are admitted strictly in order as room frees (a new event never overtakes
  a waiting one), so ``pushed`` events are either accepted, still waiting, or were
  withdrawn by their pusher;
* ``"drop_oldest"``: the new event is accepted and the oldest held one is dropped;
  ``"drop_newest"``: the new event is dropped; ``"reject"``: the new event is
  refused (the caller raises). Every drop and refusal is counted.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Generic, Literal, TypeAlias, TypeVar

__all__ = [
    "OVERFLOWS",
    "DropLog",
    "Overflow",
    "PushBuffer",
    "PushResult",
    "Waiter",
]

T = TypeVar("T")

#: What a push source does with an event that does not fit.
Overflow: TypeAlias = Literal["block", "drop_oldest", "drop_newest", "reject"]
OVERFLOWS: Final[tuple[str, ...]] = ("block", "drop_oldest", "drop_newest", "reject")

#: What happened to one pushed event.
PushResult: TypeAlias = Literal["accepted", "dropped_oldest", "dropped_newest", "rejected"]


class Waiter(Generic[T]):
    """Events of one pusher waiting for room (``"block"``), admitted in order.

    ``token`` is whatever the handle wakes once every event is admitted (an
    ``anyio.Event``, a thread's future)."""

    __slots__ = ("admitted", "events", "queued", "token")

    def __init__(self, events: list[T], token: object) -> None:
        self.events = events
        #: How many of ``events`` are in the buffer already.
        self.admitted = 0
        self.token = token
        #: Still in the waiting line.
        self.queued = True

    @property
    def done(self) -> bool:
        """Every event was admitted."""
        return self.admitted == len(self.events)


class PushBuffer(Generic[T]):
    """A bounded FIFO with an overflow policy (see the module docstring)."""

    __slots__ = (
        "_items",
        "_waiters",
        "accepted",
        "capacity",
        "dropped",
        "overflow",
        "pushed",
        "rejected",
        "waiting",
    )

    def __init__(self, capacity: int, overflow: Overflow) -> None:
        self.capacity = capacity
        self.overflow: Overflow = overflow
        self._items: deque[T] = deque()
        self._waiters: deque[Waiter[T]] = deque()
        #: Events handed in: accepted, dropped by ``"drop_newest"``, rejected or
        #: waiting (events whose pusher gave up waiting are not counted).
        self.pushed = 0
        #: Events that entered the buffer.
        self.accepted = 0
        #: Events dropped: old ones evicted (``"drop_oldest"``) or new ones not taken
        #: (``"drop_newest"``).
        self.dropped = 0
        #: Events refused (``"reject"``, or no room for a caller that cannot wait).
        self.rejected = 0
        #: Events waiting for room (``"block"``).
        self.waiting = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def room(self) -> int:
        """Free places, 0 while pushers wait (they come first)."""
        return 0 if self._waiters else self.capacity - len(self._items)

    def offer(self, event: T, *, can_wait: bool) -> PushResult | None:
        """Put one event in by the policy. ``None``: ``"block"`` and no room, and
        the caller can wait (call :meth:`wait`); a caller that cannot wait gets
        ``"rejected"`` instead."""
        self.pushed += 1
        items = self._items
        if not self._waiters and len(items) < self.capacity:
            items.append(event)
            self.accepted += 1
            return "accepted"
        policy = self.overflow
        if policy == "drop_oldest":
            items.popleft()
            items.append(event)
            self.accepted += 1
            self.dropped += 1
            return "dropped_oldest"
        if policy == "drop_newest":
            self.dropped += 1
            return "dropped_newest"
        if policy == "block" and can_wait:
            self.pushed -= 1  # counted by wait()
            return None
        self.rejected += 1
        return "rejected"

    def offer_many(self, events: list[T], *, can_wait: bool) -> list[T]:
        """Put ``events`` in by the policy and return those left to wait for room
        (``"block"`` with ``can_wait``; the caller passes them to :meth:`wait`).

        ``"reject"`` takes all of them or none (raise if :attr:`rejected` grew);
        ``"drop_oldest"`` keeps the newest ``capacity``; ``"drop_newest"`` takes
        what fits."""
        n = len(events)
        if not n:
            return []
        room = self.room
        items = self._items
        policy = self.overflow
        if n <= room:
            self.pushed += n
            items.extend(events)
            self.accepted += n
            return []
        if policy == "block" and can_wait:
            self.pushed += room
            items.extend(events[:room])
            self.accepted += room
            return events[room:]
        self.pushed += n
        if policy == "drop_oldest":
            # Every event is accepted; the oldest (of the buffer, then of the batch
            # itself when it is longer than the capacity) are dropped.
            keep = events[-self.capacity :] if n > self.capacity else events
            evict = max(len(items) + len(keep) - self.capacity, 0)
            for _ in range(evict):
                items.popleft()
            items.extend(keep)
            self.accepted += n
            self.dropped += evict + (n - len(keep))
        elif policy == "drop_newest":
            items.extend(events[:room])
            self.accepted += room
            self.dropped += n - room
        else:
            self.rejected += n
        return []

    def wait(self, events: list[T], token: object) -> Waiter[T]:
        """Queue ``events`` to be admitted as room frees (``"block"``)."""
        waiter = Waiter(events, token)
        self._waiters.append(waiter)
        self.pushed += len(events)
        self.waiting += len(events)
        self._admit()
        return waiter

    def withdraw(self, waiter: Waiter[T]) -> int:
        """Take ``waiter`` out of the line (its pusher gave up); returns how many of
        its events were admitted before (those stay accepted)."""
        if waiter.queued:
            waiter.queued = False
            self._waiters.remove(waiter)
            left = len(waiter.events) - waiter.admitted
            self.waiting -= left
            self.pushed -= left
        return waiter.admitted

    def take(self, n: int) -> tuple[list[T], list[Waiter[T]]]:
        """Remove up to ``n`` events, oldest first, admitting waiting events as room
        frees; returns them and the waiters now fully admitted (to wake)."""
        items = self._items
        out: list[T] = []
        woken: list[Waiter[T]] = []
        while len(out) < n and items:
            k = min(n - len(out), len(items))
            if k == len(items):
                out.extend(items)
                items.clear()
            else:
                out.extend(items.popleft() for _ in range(k))
            if self._waiters:
                woken += self._admit()
        return out, woken

    def _admit(self) -> list[Waiter[T]]:
        items = self._items
        woken: list[Waiter[T]] = []
        waiters = self._waiters
        while waiters and len(items) < self.capacity:
            waiter = waiters[0]
            k = min(self.capacity - len(items), len(waiter.events) - waiter.admitted)
            items.extend(waiter.events[waiter.admitted : waiter.admitted + k])
            waiter.admitted += k
            self.accepted += k
            self.waiting -= k
            if waiter.done:
                waiters.popleft()
                waiter.queued = False
                woken.append(waiter)
        return woken

    def clear_waiters(self) -> list[Waiter[T]]:
        """Take every waiter out of the line (the source closed): their events not
        yet admitted never will be."""
        waiters = list(self._waiters)
        self._waiters.clear()
        for waiter in waiters:
            waiter.queued = False
            left = len(waiter.events) - waiter.admitted
            self.waiting -= left
            self.pushed -= left
        return waiters

    def clear(self) -> int:
        """Drop what is held (the flow ended); returns how many events that was."""
        n = len(self._items)
        self._items.clear()
        return n


class DropLog:
    """When to log drops: the first one at once, then at most one summary every
    ``interval`` seconds (pure: the caller passes the clock)."""

    __slots__ = ("_last", "_pending", "interval")

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self._last: float | None = None
        self._pending = 0

    def note(self, count: int, now: float) -> int:
        """Record ``count`` drops at ``now``; return how many to log now (0: not yet)."""
        self._pending += count
        if self._last is not None and now - self._last < self.interval:
            return 0
        self._last = now
        pending, self._pending = self._pending, 0
        return pending
