"""One subscriber's bounded queue in a fan-out: pure bookkeeping, no ``await``.

Batches are shared, never copied: the queue holds ``(batch, start)`` chunks that
refer to the published lists, so publishing a batch to a hundred subscribers costs
a hundred appends, not a hundred copies. The publisher must not mutate a batch
after publishing it.

Guarantees:

* at most ``capacity`` events are held;
* events come out in the order they were published;
* ``"drop_oldest"``: a batch that does not fit makes room by dropping the oldest
  held events (and, if the batch alone is larger than ``capacity``, its own oldest
  ones), each counted in :attr:`SubscriberQueue.dropped`;
  ``"disconnect"``: a batch that does not fit is not taken (its events counted as
  dropped) and :meth:`SubscriberQueue.offer` says so: the subscriber is cut off.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Generic, Literal, TypeAlias, TypeVar

__all__ = ["SLOW_POLICIES", "SlowPolicy", "SubscriberQueue"]

T = TypeVar("T")

#: What a fan-out does with a subscriber that does not keep up.
SlowPolicy: TypeAlias = Literal["drop_oldest", "disconnect"]
SLOW_POLICIES: Final[tuple[str, ...]] = ("drop_oldest", "disconnect")


class _Chunk(Generic[T]):
    """``batch[start:]``: the events of a shared batch still held."""

    __slots__ = ("batch", "start")

    def __init__(self, batch: list[T], start: int) -> None:
        self.batch = batch
        self.start = start


class SubscriberQueue(Generic[T]):
    """A bounded FIFO of events made of shared batches (see the module docstring)."""

    __slots__ = ("_chunks", "capacity", "count", "dropped", "policy")

    def __init__(self, capacity: int, policy: SlowPolicy) -> None:
        self.capacity = capacity
        self.policy: SlowPolicy = policy
        self._chunks: deque[_Chunk[T]] = deque()
        #: Events held.
        self.count = 0
        #: Events never delivered because the subscriber was too slow.
        self.dropped = 0

    def __len__(self) -> int:
        return self.count

    def offer(self, batch: list[T]) -> bool:
        """Queue ``batch`` (not copied). Returns False when the subscriber must be
        disconnected (``"disconnect"`` and the batch does not fit; nothing of it
        was queued)."""
        n = len(batch)
        if not n:
            return True
        if self.count + n > self.capacity:
            if self.policy == "disconnect":
                self.dropped += n
                return False
            if n >= self.capacity:
                self.dropped += self.count + n - self.capacity
                self._chunks.clear()
                self._chunks.append(_Chunk(batch, n - self.capacity))
                self.count = self.capacity
                return True
            self._drop(self.count + n - self.capacity)
        self._chunks.append(_Chunk(batch, 0))
        self.count += n
        return True

    def _drop(self, k: int) -> None:
        self.dropped += k
        self.count -= k
        chunks = self._chunks
        while k:
            chunk = chunks[0]
            held = len(chunk.batch) - chunk.start
            if held <= k:
                chunks.popleft()
                k -= held
            else:
                chunk.start += k
                k = 0

    def pop(self) -> T:
        """The oldest event (the queue must not be empty)."""
        chunk = self._chunks[0]
        start = chunk.start
        batch = chunk.batch
        if start + 1 == len(batch):
            self._chunks.popleft()
        else:
            chunk.start = start + 1
        self.count -= 1
        return batch[start]

    def pop_batch(self) -> list[T]:
        """The oldest held chunk as a new list (empty if nothing is held)."""
        if not self._chunks:
            return []
        chunk = self._chunks.popleft()
        out = chunk.batch[chunk.start :]
        self.count -= len(out)
        return out

    def clear(self) -> None:
        """Forget what is held (the subscriber left)."""
        self._chunks.clear()
        self.count = 0
