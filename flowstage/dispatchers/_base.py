"""The dispatcher contract: a pure state machine owned by one producer.

A dispatcher decides which subscriber receives which events. It never awaits and
never performs I/O: every method updates the dispatcher's own state and records what
the producer must do next in three outboxes, which the producer drains after each
call (in this order):

* :attr:`Dispatcher.deliveries` -- ``(subscription, batch)`` pairs to send, in order.
  Each batch is a non-empty list and never exceeds what that subscription asked for.
* :attr:`Dispatcher.ready_infos` -- info messages (see ``Producer.async_info``) that
  are now due, because every event queued before them has been delivered.
* :attr:`Dispatcher.reasks` -- ``(subscription, n)`` asks the producer must replay on
  a subscriber's behalf (the broadcast dispatcher does this for events a selector
  rejected, so demand never leaks).

Subscriptions are opaque hashable handles to a dispatcher. ``owner`` identifies the
consuming stage (a stage may hold several subscriptions to one producer).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Hashable, Mapping

T = TypeVar("T")

__all__ = ["Dispatcher", "SubscriptionRejected"]


class SubscriptionRejected(Exception):
    """Raised by :meth:`Dispatcher.subscribe` when the dispatcher's current state
    refuses a subscription (for example a partition that already has a consumer).

    The producer cancels that subscription with :attr:`reason`.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Dispatcher(ABC, Generic[T]):
    """Base class of the demand, broadcast and partition dispatchers."""

    __slots__ = ("deliveries", "ready_infos", "reasks")

    #: The subscription options this dispatcher reads (``partition``,
    #: ``selector``); a subscription with any other option (beside
    #: ``max_demand``, ``min_demand``, ``cancel`` and those the stages declare)
    #: is refused with ``TypeError``. A custom dispatcher lists its own here.
    subscription_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self.deliveries: list[tuple[Hashable, list[T]]] = []
        self.ready_infos: list[object] = []
        self.reasks: list[tuple[Hashable, int]] = []

    def validate_subscribe(self, opts: Mapping[str, object]) -> None:
        """Check subscription options that do not depend on state.

        Called when a consumer subscribes, so a bad option raises ``ValueError`` or
        ``TypeError`` at the call site. The default accepts everything.
        """

    @abstractmethod
    def subscribe(self, sub: Hashable, owner: Hashable, opts: Mapping[str, object]) -> int:
        """Register ``sub``; return the demand the producer must now serve (usually 0).

        Raises :class:`SubscriptionRejected` when the current state refuses it.
        """

    @abstractmethod
    def cancel(self, sub: Hashable) -> int:
        """Forget ``sub``; return the demand the producer must now serve."""

    @abstractmethod
    def ask(self, n: int, sub: Hashable) -> int:
        """Record that ``sub`` asked for ``n`` more events (``n >= 1``).

        Returns the number of events the producer must now supply (from its buffer
        first, then from ``handle_demand``).
        """

    @abstractmethod
    def dispatch(self, events: list[T]) -> list[T]:
        """Hand out ``events``; return the leftovers, which the producer buffers.

        Deliveries are appended to :attr:`deliveries`.
        """

    @abstractmethod
    def info(self, msg: object) -> None:
        """Append ``msg`` to :attr:`ready_infos` once every event the dispatcher
        holds has been delivered (immediately when it holds none)."""

    def queued(self) -> int:
        """How many events the dispatcher itself holds (0 unless it queues)."""
        return 0
