"""The local executor's source producers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..._acked import AckSourceProducer
from ..._push_producer import PushProducer
from ..._sources import AsyncIterableProducer, IterableProducer
from .._failure import add_flow_note, source_note

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Callable, Iterable, Mapping

    from ..._acked import Acker
    from ..._push import PushHandle
    from ...dispatchers import Dispatcher
    from ...messages import Message

__all__ = [
    "FlowAsyncIterableProducer",
    "FlowIterableProducer",
    "FlowMessageProducer",
    "FlowPushProducer",
    "FlowRangeProducer",
    "SubscriptionCounter",
]


class SubscriptionCounter(Protocol):
    """Told of every subscription to a flow-owned producer."""

    def subscribed(self) -> None: ...


class _ReportsSubscriptions:
    """Tells the flow's runtime of every consumer that subscribes (sources start
    accumulating and are released once every subscription is made)."""

    _counter: SubscriptionCounter

    def handle_subscribe(
        self, kind: Literal["producer", "consumer"], options: Mapping[str, Any], from_: Any
    ) -> Literal["automatic"]:
        if kind == "consumer":
            self._counter.subscribed()
        return "automatic"


class FlowIterableProducer(_ReportsSubscriptions, IterableProducer[Any]):
    """A flow source: starts in accumulate mode, reports its subscriptions."""

    def __init__(
        self,
        iterable: Iterable[Any],
        counter: SubscriptionCounter,
        dispatcher: Dispatcher[Any],
        name: str,
    ) -> None:
        super().__init__(
            iterable, on_cancel="stop", name=name, dispatcher=dispatcher, demand="accumulate"
        )
        self._counter = counter

    def handle_demand(self, demand: int) -> list[Any] | None:
        try:
            return super().handle_demand(demand)
        except Exception as exc:
            add_flow_note(exc, source_note(self.name, asynchronous=False))
            raise


class FlowRangeProducer(FlowIterableProducer):
    """A flow source over a ``range`` whose batches stay ranges.

    For executors whose consumers send each batch to another process (the process
    and Ray executors' input proxies): a slice of a ``range`` is itself a range, so
    a batch of any size travels as three integers and becomes a list only where it
    is handled, instead of the parent creating, pickling and sending every integer.
    The items, their order and the demand rules are those of
    :class:`FlowIterableProducer` over the same range.
    """

    _range_batches = True

    def __init__(
        self, items: range, counter: SubscriptionCounter, dispatcher: Dispatcher[Any], name: str
    ) -> None:
        super().__init__(items, counter, dispatcher, name)
        self._range = items
        self._pos = 0

    def handle_demand(self, demand: int) -> Any:
        if self._exhausted:
            return None
        start = self._pos
        batch = self._range[start : start + demand]
        self._pos = start + len(batch)
        if len(batch) < demand:
            self._exhausted = True
            self.finish()
        return batch


class FlowAsyncIterableProducer(_ReportsSubscriptions, AsyncIterableProducer[Any]):
    """As :class:`FlowIterableProducer`, over an async iterable."""

    def __init__(
        self,
        iterable: AsyncIterable[Any],
        counter: SubscriptionCounter,
        dispatcher: Dispatcher[Any],
        name: str,
    ) -> None:
        super().__init__(
            iterable, on_cancel="stop", name=name, dispatcher=dispatcher, demand="accumulate"
        )
        self._counter = counter

    def source_failure_note(self) -> str:
        return source_note(self.name, asynchronous=True)


class FlowMessageProducer(_ReportsSubscriptions, AckSourceProducer):
    """A flow source over an acknowledged source: emits ``wrap(message)`` for each
    message, against demand and within ``max_unacked``."""

    def __init__(
        self,
        acker: Acker,
        wrap: Callable[[Message[object]], object],
        counter: SubscriptionCounter,
        dispatcher: Dispatcher[Any],
        name: str,
    ) -> None:
        super().__init__(
            acker, wrap, on_cancel="stop", name=name, dispatcher=dispatcher, demand="accumulate"
        )
        self._counter = counter


class FlowPushProducer(_ReportsSubscriptions, PushProducer[Any]):
    """A flow source over a push handle (``Flow.from_push``)."""

    def __init__(
        self,
        handle: PushHandle[Any],
        failure: Callable[[], BaseException | None],
        counter: SubscriptionCounter,
        dispatcher: Dispatcher[Any],
        name: str,
    ) -> None:
        super().__init__(
            handle, failure=failure, name=name, dispatcher=dispatcher, demand="accumulate"
        )
        self._counter = counter
