"""The stage behind a push source: hands what was pushed to the flow, in batches."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._kinds import Producer
from ._options import DEFAULT_MAILBOX_LIMIT, invalid
from ._push import PushHandle
from ._subscription import INTERNAL_INFO

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._stats import StageStatistics
    from .dispatchers import Dispatcher

__all__ = ["PushProducer"]

T = TypeVar("T")


class _Pushed:
    """The message a push handle sends its producer when events arrived."""

    __slots__ = ()


_PUSHED = _Pushed()


class PushProducer(Producer[T]):
    """A producer over a :class:`PushHandle`: emits what was pushed, never more
    than demanded, a whole batch at a time; finishes once the handle is closed and
    everything accepted was emitted. However the stage ends, the handle refuses
    pushes from then on.

    ``failure()``, when given, returns the failure of the flow the producer is part
    of (for :class:`PushClosed`'s cause)."""

    def __init__(
        self,
        handle: PushHandle[T],
        *,
        failure: Callable[[], BaseException | None] | None = None,
        name: str | None = None,
        dispatcher: Dispatcher[T] | None = None,
        demand: Literal["forward", "accumulate"] = "forward",
        mailbox_limit: int = DEFAULT_MAILBOX_LIMIT,
    ) -> None:
        if not isinstance(handle, PushHandle):
            raise TypeError(invalid("handle", "a PushHandle (Flow.from_push)", handle))
        super().__init__(
            name=name or handle.name,
            dispatcher=dispatcher,
            demand=demand,
            mailbox_limit=mailbox_limit,
        )
        handle._attach(self, failure)
        self._push_handle = handle
        self._want = 0
        self._notified = False
        self._finishing = False
        self._demanded = False

    async def _run(self, until: Callable[[], bool] | None = None) -> None:
        self._push_handle._bind_loop()
        try:
            await super()._run(until)
        finally:
            if self._terminated:
                self.close_handle()

    def close_handle(self) -> None:
        """Make the handle refuse pushes from now on (the run is over), waking the
        pushers that wait for room with :class:`PushClosed`."""
        self._push_handle._end()

    def _pushed(self, closing: bool) -> None:
        if self._notified or self._terminated:
            return
        if self._want > 0 or closing:
            self._notified = True
            self._mailbox.put((INTERNAL_INFO, _PUSHED))

    def _take(self) -> list[T]:
        want = self._want
        items = self._push_handle._take(want) if want > 0 else []
        self._want = want - len(items)
        # Not before the first demand: until every consumer has subscribed (the
        # flow releases its sources then) a finished source would turn them away.
        if not self._finishing and self._demanded and self._push_handle._drained():
            self._finishing = True
            super().finish()
        return items

    def finish(self, reason: object = "normal") -> None:
        """End the input gracefully: the handle stops accepting events (as
        ``push.close()`` does), what it accepted still goes out, then the stage
        stops. Another ``reason`` than ``"normal"`` stops the stage once what it
        already emitted was dispatched, as for any stage."""
        if reason != "normal":
            super().finish(reason)
        elif not self._finishing:
            self._push_handle.close()

    def handle_demand(self, demand: int) -> list[T]:
        self._demanded = True
        self._want += demand
        return self._take()

    def handle_info(self, message: Any) -> list[T] | None:
        if message is not _PUSHED:
            return super().handle_info(message)  # type: ignore[return-value]
        self._notified = False
        return self._take()

    def statistics(self) -> StageStatistics:
        """The stage's counters, with the push buffer's fill and capacity as
        ``buffered``/``buffer_size`` and the overflow policy's drops in
        ``discarded``."""
        base = super().statistics()
        b = self._push_handle._buffer
        return dataclasses.replace(
            base,
            buffered=base.buffered + len(b),
            buffer_size=b.capacity,
            discarded=base.discarded + b.dropped,
        )
