"""The three stage kinds users subclass: Producer, ProducerConsumer, Consumer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from ._options import DEFAULT_BUFFER_SIZE, DEFAULT_MAILBOX_LIMIT
from ._stage import MaybeAwaitable, Stage

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._subscription import Subscription
    from .dispatchers import Dispatcher

T = TypeVar("T")
In = TypeVar("In")
Out = TypeVar("Out")

__all__ = ["Consumer", "Producer", "ProducerConsumer"]


class Producer(Stage, Generic[T]):
    """A stage that emits events when consumers ask for them.

    Implement ``handle_demand(demand) -> list[T] | None`` (plain or ``async def``).
    Returning fewer events than ``demand`` is fine (remember the rest and emit later
    with :meth:`emit`); returning more buffers the excess.

    Options: ``buffer_size`` (default 10,000; events that cannot be dispatched wait
    there, and on overflow ``buffer_keep="last"`` drops the oldest, ``"first"`` the
    newest; discards are counted and logged), ``dispatcher`` (default
    :class:`~flowstage.dispatchers.DemandDispatcher`), ``demand`` (``"forward"`` or
    ``"accumulate"``), ``name``.
    """

    kind: ClassVar[Literal["producer"]] = "producer"
    _produces: ClassVar[bool] = True
    _consumes: ClassVar[bool] = False

    def __init__(
        self,
        *,
        name: str | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        buffer_keep: Literal["first", "last"] = "last",
        dispatcher: Dispatcher[T] | None = None,
        demand: Literal["forward", "accumulate"] = "forward",
        mailbox_limit: int = DEFAULT_MAILBOX_LIMIT,
    ) -> None:
        super().__init__(
            name=name,
            buffer_size=buffer_size,
            buffer_keep=buffer_keep,
            dispatcher=dispatcher,
            demand=demand,
            mailbox_limit=mailbox_limit,
        )
        if not callable(getattr(self, "handle_demand", None)):
            raise TypeError(f"{type(self).__name__} must implement handle_demand(demand)")

    def handle_events(self, events: list[Any], from_: Subscription[Any]) -> None:
        raise TypeError("producers do not receive events")


class ProducerConsumer(Stage, Generic[In, Out]):
    """A stage that receives events from producers and emits events to consumers.

    Implement ``handle_events(events, from_) -> list[Out] | None``. It runs only
    while downstream consumers have outstanding demand; upstream demand is sent after
    each call, so a slow consumer slows the whole chain.

    Output larger than downstream demand waits in the buffer, which is bounded like a
    producer's (``buffer_size``, default 10,000, with ``buffer_keep``); since
    inbound events are handled only while downstream demand is positive, the buffer
    only fills when one inbound chunk expands into more events than were asked for.
    A producer-consumer may also implement ``handle_demand(demand)`` to emit events
    from its own state when demand arrives and its buffer is empty.
    """

    kind: ClassVar[Literal["producer_consumer"]] = "producer_consumer"
    _produces: ClassVar[bool] = True
    _consumes: ClassVar[bool] = True

    def __init__(
        self,
        *,
        name: str | None = None,
        subscribe_to: Iterable[Any] = (),
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        buffer_keep: Literal["first", "last"] = "last",
        dispatcher: Dispatcher[Out] | None = None,
        mailbox_limit: int = DEFAULT_MAILBOX_LIMIT,
    ) -> None:
        super().__init__(
            name=name,
            subscribe_to=subscribe_to,
            buffer_size=buffer_size,
            buffer_keep=buffer_keep,
            dispatcher=dispatcher,
            mailbox_limit=mailbox_limit,
        )

    def handle_events(
        self, events: list[In], from_: Subscription[In]
    ) -> MaybeAwaitable[Iterable[Out] | None]:
        raise NotImplementedError(f"{type(self).__name__} must implement handle_events")

    def downstream_demand(self) -> int:
        """Events downstream consumers asked for and have not been sent yet.

        Inbound events are handled only while this is positive. Inside
        ``handle_events`` or ``handle_demand`` it tells how much output would go out
        at once rather than wait in the buffer: a stage that holds work back can
        emit about this many events and keep the rest for its next
        ``handle_demand``.
        """
        return self._pc_counter


class Consumer(Stage, Generic[T]):
    """A stage that receives events from producers.

    Implement ``handle_events(events, from_) -> None``. With automatic demand the
    consumer asks for ``max_demand`` events when it subscribes and asks again after
    each chunk of at most ``max_demand - min_demand`` events is handled.
    """

    kind: ClassVar[Literal["consumer"]] = "consumer"
    _produces: ClassVar[bool] = False
    _consumes: ClassVar[bool] = True

    def __init__(
        self,
        *,
        name: str | None = None,
        subscribe_to: Iterable[Any] = (),
        mailbox_limit: int = DEFAULT_MAILBOX_LIMIT,
    ) -> None:
        super().__init__(name=name, subscribe_to=subscribe_to, mailbox_limit=mailbox_limit)

    def handle_events(self, events: list[T], from_: Subscription[T]) -> MaybeAwaitable[None]:
        raise NotImplementedError(f"{type(self).__name__} must implement handle_events")
