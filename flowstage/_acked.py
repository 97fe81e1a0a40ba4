"""Producing from an acknowledged source: the producer and its acknowledgements.

:class:`Acker` keeps the books of one :class:`~flowstage.messages.AckSource` for one
run: how many messages are in hand (delivered, not yet acknowledged or nacked, at
most ``max_unacked``), and the acknowledgements and nacks waiting to be sent, which
:meth:`Acker.flush` sends in one call each. :class:`AckSourceProducer` emits what
the source delivers against demand: each ``receive`` asks for the demand not yet met
(capped by the room ``max_unacked`` leaves), so demand maps onto the broker's batch
size, and the producer waits while the flow holds ``max_unacked`` messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from ._sources import AsyncIterableProducer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from .messages import AckSource, Message

__all__ = ["AckSourceProducer", "Acker"]

#: How long the last acknowledgements of a run may take to be sent when it ends.
FINAL_FLUSH_TIMEOUT = 30.0


class Acker:
    """The acknowledgements of one source during one run (see the module docstring).

    Guarantees: :meth:`settled` never blocks; every id given to it is sent to the
    source once, by :meth:`flush`, in the order settled; ``in_hand`` counts the
    messages delivered and not yet sent back, and the producer keeps it at most
    ``max_unacked``.
    """

    def __init__(self, source: AckSource[Any], max_unacked: int) -> None:
        self.source = source
        self.max_unacked = max_unacked
        self.in_hand = 0
        self.delivered_total = 0
        self.acked = 0
        self.nacked = 0
        self._acks: list[str] = []
        self._nacks: list[tuple[str, BaseException]] = []
        self._work: anyio.Event | None = None
        self._wakers: list[Callable[[], None]] = []
        self.opened = False

    def room(self) -> int:
        """How many more messages the flow may take now."""
        return self.max_unacked - self.in_hand

    def delivered(self, n: int) -> None:
        self.in_hand += n
        self.delivered_total += n

    def on_room(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` whenever acknowledgements free room."""
        self._wakers.append(wake)

    def settled(self, acked: Sequence[str], failed: Sequence[tuple[str, BaseException]]) -> None:
        """The flow is done with these messages; they are sent by :meth:`flush`."""
        if acked:
            self._acks.extend(acked)
        if failed:
            self._nacks.extend(failed)
        work = self._work
        if work is not None and (acked or failed):
            self._work = None
            work.set()

    @property
    def pending(self) -> int:
        """Settled ids not yet sent to the source."""
        return len(self._acks) + len(self._nacks)

    async def flush(self) -> None:
        """Send what was settled: one ``ack`` and one ``nack`` call at most."""
        while self._acks or self._nacks:
            acks, self._acks = self._acks, []
            nacks, self._nacks = self._nacks, []
            try:
                if acks:
                    await self.source.ack(acks)
                if nacks:
                    await self.source.nack(nacks)
            except BaseException:
                # Not sent: keep them for the next attempt (the final flush).
                self._acks[:0] = acks
                self._nacks[:0] = nacks
                raise
            self.acked += len(acks)
            self.nacked += len(nacks)
            self.in_hand -= len(acks) + len(nacks)
            for wake in self._wakers:
                wake()

    async def run(self) -> None:
        """Flush whenever something was settled, until cancelled."""
        while True:
            if not self._acks and not self._nacks:
                self._work = work = anyio.Event()
                await work.wait()
            await self.flush()

    async def close(self) -> None:
        """The run ended: send what is left (bounded by :data:`FINAL_FLUSH_TIMEOUT`),
        then close the source. Whatever was not sent stays unacknowledged with the
        broker, which delivers it again."""
        try:
            if self.opened:
                with anyio.move_on_after(FINAL_FLUSH_TIMEOUT):
                    await self.flush()
        finally:
            await self.source.aclose()


class _Nothing:
    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        raise StopAsyncIteration


class AckSourceProducer(AsyncIterableProducer[Any]):
    """Emits ``wrap(message)`` for each message the acker's source delivers, against
    demand and within the acker's room (see the module docstring). Ends when the
    source's ``receive`` returns no message."""

    def __init__(self, acker: Acker, wrap: Callable[[Message[Any]], Any], **options: Any) -> None:
        super().__init__(_Nothing(), **options)
        self._acker = acker
        self._wrap = wrap
        acker.on_room(self._wake_puller)

    def source_failure_note(self) -> str:
        return f"raised by the acknowledged source {self._acker.source.name!r} ({self.name})"

    async def _pull(self) -> None:
        acker = self._acker
        source = acker.source
        wrap = self._wrap
        while not self._pausing:
            want = min(self._want, acker.room())
            if want <= 0:
                self._more = more = anyio.Event()
                await more.wait()
                continue
            try:
                batch = await source.receive(want)
                if len(batch) > want:
                    raise RuntimeError(
                        f"acknowledged source {source.name!r} returned {len(batch)} messages "
                        f"from receive({want}), more than asked for"
                    )
            except Exception as exc:
                exc.add_note(self.source_failure_note())
                self._failure = exc
                self._notify()
                return
            if not batch:
                self._exhausted = True
                self._notify()
                return
            acker.delivered(len(batch))
            self._ready.extend(wrap(m) for m in batch)
            self._want -= len(batch)
            self._notify()

    async def _close_source(self) -> None:
        self._exhausted = True  # the run closes the source, after the last flush
