"""The producer buffer: a bounded FIFO of events with info messages pinned in between.

This is GenStage's ``GenStage.Buffer`` without ``:infinity``. A producer stores the
events it cannot dispatch (no demand, no consumer, or leftovers returned by the
dispatcher) and drains them first when new demand arrives.

Guarantees:

* Events come out in the order they were stored. At most ``size`` events are held;
  on overflow ``keep="last"`` (the default) drops the *oldest* events and
  ``keep="first"`` drops the *newest incoming* events. Every discard is counted.
* Info messages (``store_info``) are *permanent* entries: never discarded, and
  released in FIFO order once every event stored before them has left the buffer,
  whether it was taken or dropped by ``keep="last"`` overflow.
* ``len(buffer)`` counts events only, never infos.

Theory of operation: events are kept as a deque of *chunks* (the lists handed to
:meth:`Buffer.store`), plus an offset into the first chunk, so storing a batch is one
append and taking ``n`` events is one or a few list slices, never a per-event loop.
Every event has an absolute position (``_head`` is the position of the oldest held
event). An info stored while the buffer holds events up to position ``p`` is due
once ``_head >= p``; infos are kept in a deque of ``(p, msg)`` in FIFO order, so
the earliest due info is always at the front.

The buffer takes ownership of the lists given to :meth:`Buffer.store` (they are not
copied); do not mutate them afterwards. Lists returned by :meth:`Buffer.take` are
owned by the caller.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Generic, Literal, TypeVar

from ._options import check_choice, check_positive_int

__all__ = ["Buffer"]

T = TypeVar("T")

_KEEP_VALUES = ("first", "last")


class Buffer(Generic[T]):
    """A bounded FIFO of events with FIFO info messages pinned between them.

    Args:
        size: the maximum number of events held, an integer ``>= 1``.
        keep: which side survives an overflow: ``"last"`` (default) drops the oldest
            events, ``"first"`` drops the newest incoming events.
        max_infos: how many info messages may wait in the buffer at once; one more
            raises :class:`RuntimeError` (a producer emitting infos faster than its
            consumers drain events is a bug, not something to queue forever).

    Raises:
        TypeError: ``size`` or ``max_infos`` is not an ``int`` (``bool`` is rejected).
        ValueError: ``size`` or ``max_infos`` is below 1, or ``keep`` is not
            ``"first"``/``"last"``.
    """

    __slots__ = (
        "_chunks",
        "_count",
        "_head",
        "_infos",
        "_keep_last",
        "_max_infos",
        "_offset",
        "keep",
        "size",
    )

    def __init__(
        self, size: int, keep: Literal["first", "last"] = "last", max_infos: int = 1000
    ) -> None:
        self.size: int = check_positive_int("buffer_size", size)
        check_choice("buffer_keep", keep, _KEEP_VALUES)
        self.keep: Literal["first", "last"] = keep
        self._keep_last = keep == "last"
        self._max_infos = check_positive_int("max_infos", max_infos)
        self._chunks: deque[list[T]] = deque()
        self._offset = 0  # index of the oldest held event inside _chunks[0]
        self._count = 0  # events held
        self._head = 0  # absolute position of the oldest held event
        self._infos: deque[tuple[int, object]] = deque()  # (due position, msg), FIFO

    def __len__(self) -> int:
        """The number of events held (infos are not counted)."""
        return self._count

    def __repr__(self) -> str:
        return (
            f"<Buffer size={self.size} keep={self.keep!r} events={self._count} "
            f"infos={len(self._infos)}>"
        )

    @property
    def infos(self) -> int:
        """The number of info messages waiting in the buffer."""
        return len(self._infos)

    def store(self, events: list[T]) -> tuple[int, list[object]]:
        """Append ``events`` (taking ownership of the list).

        Returns:
            ``(discarded, released_infos)``: how many events overflow discarded, and
            the info messages that became due because ``keep="last"`` dropped every
            event stored before them (deliver those at once, in order).
        """
        n = len(events)
        if n == 0:
            return 0, []
        size = self.size
        count = self._count
        if count + n <= size:
            self._chunks.append(events)
            self._count = count + n
            return 0, []
        if not self._keep_last:
            room = size - count
            if room > 0:
                self._chunks.append(events[:room])
                self._count = size
            return n - room, []
        # keep="last": the newest `size` events survive.
        excess = count + n - size
        if n >= size:
            self._chunks.clear()
            self._offset = 0
            self._chunks.append(events[n - size :] if n > size else events)
        else:
            self._chunks.append(events)
            self._drop_front(excess)
        self._count = size
        self._head += excess
        return excess, self._release_infos()

    def _drop_front(self, k: int) -> None:
        """Remove the ``k`` oldest held events (``k`` < held + appended)."""
        chunks = self._chunks
        offset = self._offset
        while k:
            avail = len(chunks[0]) - offset
            if avail <= k:
                chunks.popleft()
                k -= avail
                offset = 0
            else:
                offset += k
                k = 0
        self._offset = offset

    def _release_infos(self) -> list[object]:
        infos = self._infos
        head = self._head
        if not infos or infos[0][0] > head:
            return []
        released = []
        while infos and infos[0][0] <= head:
            released.append(infos.popleft()[1])
        return released

    def store_info(self, msg: object) -> bool:
        """Pin ``msg`` after the events currently held.

        Returns:
            ``True`` when stored; ``False`` when the buffer holds no events, in which
            case nothing is stored and the caller delivers ``msg`` at once.

        Raises:
            RuntimeError: ``max_infos`` infos are already waiting.
        """
        if self._count == 0:
            return False
        if len(self._infos) >= self._max_infos:
            raise RuntimeError(
                f"the producer buffer already holds {self._max_infos} info messages "
                f"(max_infos) waiting behind {self._count} undelivered events; "
                "info messages are sent faster than consumers take events"
            )
        self._infos.append((self._head + self._count, msg))
        return True

    def take(self, n: int) -> tuple[list[T], list[object], int]:
        """Take up to ``n`` events, stopping right after the next pinned info.

        GenStage's ``take_count_or_until_permanent``: events are taken oldest first
        until ``n`` have been taken, the buffer is empty, or the last event taken
        has infos pinned after it.

        Returns:
            ``(events, infos, n_left)``: the events taken, the infos now due (deliver
            them after the events, in order) and ``n - len(events)``.
            ``([], [], n)`` when the buffer is empty or ``n <= 0``.
        """
        count = self._count
        if count == 0 or n <= 0:
            return [], [], n
        limit = n if n < count else count
        infos = self._infos
        if infos:
            gap = infos[0][0] - self._head
            if gap < limit:
                limit = gap
        chunks = self._chunks
        first = chunks[0]
        offset = self._offset
        avail = len(first) - offset
        if limit < avail:
            events = first[offset : offset + limit]
            self._offset = offset + limit
        elif limit == avail:
            events = first if offset == 0 else first[offset:]
            chunks.popleft()
            self._offset = 0
        else:
            events = first[offset:]
            chunks.popleft()
            self._offset = 0
            rest = limit - avail
            while rest:
                chunk = chunks[0]
                size = len(chunk)
                if size <= rest:
                    events.extend(chunk)
                    chunks.popleft()
                    rest -= size
                else:
                    events.extend(islice(chunk, rest))
                    self._offset = rest
                    rest = 0
        self._count = count - limit
        self._head += limit
        due = self._release_infos() if infos else []
        return events, due, n - limit
