"""Messages that are acknowledged: the contract between a flow and a durable source.

A broker that redelivers what was not acknowledged (Redis Streams, a queue) gives
**at-least-once** processing when the flow acknowledges each message only once it
is done with it. :class:`AckSource` is what such a source implements;
``Flow.from_messages(source)`` runs a flow over it and acknowledges every message
when everything derived from it has passed the flow's last layer (and the flow's
sink, if it has one, has written it), or nacks it when a callback failed on it.

* :class:`Message` is the envelope a source delivers: the decoded ``data``, the
  broker's ``id``, how many times it was delivered, and metadata. It holds no live
  object, so it travels to worker processes and actors.
* :class:`AckSource` is the protocol of a source: ``receive`` up to a count (the
  flow's demand), ``ack`` and ``nack`` by id.
* :class:`Sink` is the protocol of a batched writer at the end of a flow
  (``Flow.write_to``): messages are acknowledged after the write of what came of
  them returned.
* :class:`MemorySource` is an in-memory :class:`AckSource` for tests and examples.

Sources that never acknowledge (iterables, async iterables) stay plain: their
events are the values themselves.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

import anyio
import anyio.lowlevel

from ._public import fixup_module_metadata as _fixup_module_metadata

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = ("AckSource", "MemorySource", "Message", "Sink")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Message(Generic[T]):
    """One message of an acknowledged source.

    Attributes:
        data: the payload, as the source decoded it.
        id: the broker's id of the message (unique within its source); what
            :meth:`AckSource.ack` and :meth:`AckSource.nack` take.
        source: the source's name (a stream name, a queue name).
        attempt: how many times the broker delivered it (1 the first time; more
            after a consumer failed or died before acknowledging it).
        metadata: anything else the source knows (fields, headers, timestamps).
    """

    data: T
    id: str
    source: str = ""
    attempt: int = 1
    metadata: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class AckSource(Protocol[T]):
    """A source that redelivers what was not acknowledged.

    Guarantees a source gives the flow:

    * :meth:`receive` returns at most ``max_count`` messages, waiting until there is
      at least one; it returns ``[]`` only when the source has ended for good (a
      broker that never ends never returns ``[]``). Cancelling it loses nothing: a
      message read but not returned is still unacknowledged, so it is redelivered.
    * A message that is neither acknowledged nor nacked is delivered again, to this
      consumer or another (after a crash, after a restart).
    * :meth:`ack` and :meth:`nack` take ids this source delivered; each id is
      acknowledged or nacked at most once by the flow.
    """

    @property
    def name(self) -> str:
        """The source's name, for labels and errors."""
        ...

    async def open(self) -> None:
        """Connect (create a consumer group, ...); called once before ``receive``."""
        ...

    async def receive(self, max_count: int) -> Sequence[Message[T]]:
        """Up to ``max_count`` messages, at least one; ``[]`` when the source ended."""
        ...

    async def ack(self, ids: Sequence[str]) -> None:
        """The flow is done with these messages: never deliver them again."""
        ...

    async def nack(self, failures: Sequence[tuple[str, BaseException]]) -> None:
        """A callback failed on these messages (each with its exception): retry them
        or move them aside (a dead-letter stream), as the source is configured."""
        ...

    async def aclose(self) -> None:
        """Disconnect; unacknowledged messages stay with the broker."""
        ...


@runtime_checkable
class Sink(Protocol):
    """A batched writer at the end of a flow (``Flow.write_to(sink)``).

    The flow calls :meth:`write` with each batch of its output, one call at a time,
    in order; a message whose results are in a batch is acknowledged only after
    :meth:`write` returned. An exception from :meth:`write` fails the flow.
    """

    async def write(self, events: list[Any]) -> None:
        """Write ``events`` (durably, if the flow acknowledges messages)."""
        ...

    async def aclose(self) -> None:
        """Flush and close (called once when the flow ends)."""
        ...


class MemorySource(Generic[T]):
    """An in-memory :class:`AckSource` over ``items`` (ids ``"0"``, ``"1"``, ...), for
    tests and examples.

    ``receive`` hands out the items in order, and with ``redeliver=True`` the ones
    nacked meanwhile again (each at most ``max_attempts`` times); it ends (returns
    ``[]``) once nothing is left to hand out, as a finite broker would. ``acked`` and
    ``nacked`` record what the flow said, in order; ``unacked`` holds what was
    delivered and is still with the flow (what a broker would deliver again to the
    next consumer); ``duplicates`` counts ids acknowledged more than once (0 for a
    flow that keeps the contract).
    """

    def __init__(
        self,
        items: Iterable[T],
        *,
        name: str = "memory",
        redeliver: bool = False,
        max_attempts: int = 3,
    ) -> None:
        self._name = name
        self.redeliver = redeliver
        self.max_attempts = max_attempts
        self._items: dict[str, T] = {str(i): item for i, item in enumerate(items)}
        self._queue: deque[str] = deque(self._items)
        self._attempts: dict[str, int] = {}
        self.unacked: set[str] = set()
        self.acked: list[str] = []
        self.nacked: list[tuple[str, BaseException]] = []
        self.duplicates: int = 0
        self.opened: bool = False
        self.closed: bool = False
        self.receives: list[int] = []  # the max_count of each receive call

    @property
    def name(self) -> str:
        return self._name

    def attempts(self, message_id: str) -> int:
        """How many times message ``message_id`` was delivered."""
        return self._attempts.get(message_id, 0)

    async def open(self) -> None:
        self.opened = True

    async def receive(self, max_count: int) -> list[Message[T]]:
        self.receives.append(max_count)
        await anyio.lowlevel.checkpoint()
        out: list[Message[T]] = []
        while self._queue and len(out) < max_count:
            mid = self._queue.popleft()
            attempt = self._attempts[mid] = self._attempts.get(mid, 0) + 1
            self.unacked.add(mid)
            out.append(Message(self._items[mid], mid, self._name, attempt))
        return out

    async def ack(self, ids: Sequence[str]) -> None:
        acked = set(self.acked)
        for mid in ids:
            if mid in acked:
                self.duplicates += 1
            self.unacked.discard(mid)
            self.acked.append(mid)
            acked.add(mid)

    async def nack(self, failures: Sequence[tuple[str, BaseException]]) -> None:
        for mid, exc in failures:
            self.unacked.discard(mid)
            self.nacked.append((mid, exc))
            if self.redeliver and self._attempts.get(mid, 0) < self.max_attempts:
                self._queue.append(mid)

    async def aclose(self) -> None:
        self.closed = True


_fixup_module_metadata(__name__, __all__)
