"""A dispatcher that sends every event to every subscription."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar, TypeVar

from ._base import Dispatcher, SubscriptionRejected

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Mapping

__all__ = ["BroadcastDispatcher"]

T = TypeVar("T")

_logger = logging.getLogger("flowstage")


def _selector_of(opts: Mapping[str, object]) -> Callable[[object], bool] | None:
    selector = opts.get("selector")
    if selector is None:
        return None
    if not callable(selector):
        raise TypeError(f":selector option must be passed a unary function, got: {selector!r}")
    return selector


class _Sub:
    __slots__ = ("demand", "owner", "selector")

    def __init__(
        self, demand: int, owner: Hashable, selector: Callable[[object], bool] | None
    ) -> None:
        self.demand = demand
        self.owner = owner
        self.selector = selector


class BroadcastDispatcher(Dispatcher[T]):
    """Send every event to every subscription (GenStage's ``BroadcastDispatcher``).

    The dispatcher moves at the pace of the slowest subscription: the demand sent
    upstream is the *minimum* outstanding demand across subscriptions. It keeps
    ``waiting`` (events every subscription can take) and ``requested`` (events asked
    upstream and not yet dispatched), and only asks upstream for
    ``waiting - requested``, so the producer is never asked twice for the same events.

    Guarantees:

    * Every dispatched event goes to every subscription present at that moment, in
      order; a subscription never receives more than it asked for.
    * A new subscription starts with demand 0 and therefore **blocks everyone until
      it asks**; it never sees events dispatched before it subscribed. Start the
      producer in accumulate mode until every consumer has subscribed.
    * Cancelling the slowest subscription may release demand (:meth:`cancel` can
      return more than 0).
    * With no subscriptions, :meth:`dispatch` returns every event as leftover.
    * Subscription option ``selector``: a callable ``event -> bool``. Events it
      rejects are not sent to that subscription but count as delivered; the
      dispatcher then appends a re-ask of that many events to :attr:`reasks`, which the
      producer replays on the subscription's behalf, so demand never leaks.
    * The same ``owner`` may hold only one subscription; a second is rejected with
      reason ``"already_subscribed"``.
    * :meth:`info` releases the message at once (this dispatcher holds no events).

    Batches are fresh lists per subscription, except that the first subscription
    may receive the list given to :meth:`dispatch` itself.
    """

    subscription_options: ClassVar[frozenset[str]] = frozenset({"selector"})

    __slots__ = ("_owners", "_requested", "_subs", "_waiting")

    def __init__(self) -> None:
        super().__init__()
        self._subs: dict[Hashable, _Sub] = {}
        self._owners: set[Hashable] = set()
        self._waiting = 0
        self._requested = 0

    def __repr__(self) -> str:
        return (
            f"<BroadcastDispatcher demands={self.demands!r} waiting={self._waiting} "
            f"requested={self._requested}>"
        )

    @property
    def demands(self) -> list[tuple[int, Hashable]]:
        """``(demand beyond waiting, sub)`` pairs in subscription order (a copy)."""
        return [(s.demand, sub) for sub, s in self._subs.items()]

    @property
    def waiting(self) -> int:
        """Events that may be sent to every subscription right now."""
        return self._waiting

    @property
    def requested(self) -> int:
        """Events asked upstream and not yet dispatched."""
        return self._requested

    def validate_subscribe(self, opts: Mapping[str, object]) -> None:
        """Check the ``selector`` option.

        Raises:
            TypeError: ``selector`` is given and is not callable.
        """
        _selector_of(opts)

    def subscribe(self, sub: Hashable, owner: Hashable, opts: Mapping[str, object]) -> int:
        """Add ``sub`` with demand 0 (which blocks dispatching until it asks). Returns 0.

        Raises:
            SubscriptionRejected: ``owner`` already holds a subscription
                (reason ``"already_subscribed"``); an error is logged.
            TypeError: a bad ``selector`` option.
        """
        selector = _selector_of(opts)
        if owner in self._owners or sub in self._subs:
            message = (
                f"{owner!r} is already registered with this BroadcastDispatcher. "
                "This subscription has been discarded."
            )
            _logger.error("%s", message)
            raise SubscriptionRejected("already_subscribed", message)
        waiting = self._waiting
        if waiting:
            # Existing waiting demand goes back to the individual counters: the new
            # subscription has demand 0, so nothing may be sent to everyone any more.
            for s in self._subs.values():
                s.demand += waiting
            self._waiting = 0
        self._owners.add(owner)
        self._subs[sub] = _Sub(0, owner, selector)
        return 0

    def cancel(self, sub: Hashable) -> int:
        """Remove ``sub``; return the demand this releases (it may have been the slowest).

        Cancelling an unknown subscription does nothing.
        """
        s = self._subs.pop(sub, None)
        if s is None:
            return 0
        self._owners.discard(s.owner)
        if not self._subs:
            self._waiting = 0
            return 0
        return self._sync()

    def ask(self, n: int, sub: Hashable) -> int:
        """Add ``n`` to ``sub``'s demand; return what must now be asked upstream.

        Raises:
            KeyError: ``sub`` is not subscribed.
        """
        self._subs[sub].demand += n
        return self._sync()

    def _sync(self) -> int:
        subs = self._subs.values()
        low = min(s.demand for s in subs)
        if low > 0:
            for s in subs:
                s.demand -= low
            self._waiting += low
        request = self._waiting - self._requested
        if request <= 0:
            return 0
        self._requested += request
        return request

    def dispatch(self, events: list[T]) -> list[T]:
        """Send up to ``waiting`` events to every subscription; return the rest."""
        waiting = self._waiting
        n = len(events)
        if waiting == 0 or n == 0:
            return events
        if n <= waiting:
            now, later = events, []
        else:
            now, later = events[:waiting], events[waiting:]
        count = len(now)
        self._waiting = waiting - count
        self._requested -= count
        deliveries = self.deliveries
        first = True
        for sub, s in self._subs.items():
            selector = s.selector
            if selector is None:
                batch = now if first else list(now)
                first = False
            else:
                batch = [e for e in now if selector(e)]
                rejected = count - len(batch)
                if rejected:
                    self.reasks.append((sub, rejected))
            if batch:
                deliveries.append((sub, batch))
        return later

    def info(self, msg: object) -> None:
        """Release ``msg`` at once: this dispatcher never holds events."""
        self.ready_infos.append(msg)
