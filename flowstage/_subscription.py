"""Subscriptions: the link between one consumer and one producer."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ._options import check_choice, validate_demand

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._demand import DemandAccount
    from ._mailbox import Mailbox

T = TypeVar("T")

__all__ = [
    "CANCEL_MODES",
    "SUBSCRIPTION_OPTIONS",
    "Subscription",
    "SubscriptionOptions",
    "validate_subscription",
]

CancelMode = Literal["permanent", "transient", "temporary"]
CANCEL_MODES: tuple[str, ...] = ("permanent", "transient", "temporary")
#: The options every subscription takes; dispatchers and stages may read more.
SUBSCRIPTION_OPTIONS: tuple[str, ...] = ("max_demand", "min_demand", "cancel")

# Message codes (the first element of every mailbox message).
EVENTS = 0  # (EVENTS, sub, batch)             producer -> consumer
ASK = 1  # (ASK, sub)                           consumer -> producer (coalesced)
SUBSCRIBE = 2  # (SUBSCRIBE, sub)               consumer -> producer
CANCEL_UP = 3  # (CANCEL_UP, sub, reason)       consumer -> producer
CANCEL_DOWN = 4  # (CANCEL_DOWN, sub, kind, reason) producer -> consumer
CONNECT = 5  # (CONNECT, sub)                   to the consumer itself
INFO = 6  # (INFO, msg)                          async_info: ordered after buffered events
MESSAGE = 7  # (MESSAGE, msg)                    plain message: handle_info now
CALL = 8  # (CALL, request, reply)
DEMAND_MODE = 9  # (DEMAND_MODE, mode)
STOP = 10  # (STOP,)
REASK = 11  # (REASK, sub, n)                    a dispatcher's ask on a subscriber's behalf
INTERNAL_INFO = 12  # (INTERNAL_INFO, msg)       an info the dispatcher released

_ids = itertools.count(1)


class SubscriptionOptions:
    """Validated subscription options."""

    __slots__ = ("cancel", "extra", "max_demand", "min_demand")

    def __init__(
        self, max_demand: int, min_demand: int, cancel: CancelMode, extra: Mapping[str, Any]
    ) -> None:
        self.max_demand: int = max_demand
        self.min_demand: int = min_demand
        self.cancel: CancelMode = cancel
        self.extra: dict[str, Any] = dict(extra)


def validate_subscription(
    max_demand: int | None,
    min_demand: int | None,
    cancel: str,
    extra: Mapping[str, Any],
) -> SubscriptionOptions:
    """Apply defaults and check options, raising ``ValueError``/``TypeError``."""
    mx, mn = validate_demand(max_demand, min_demand)
    check_choice("cancel", cancel, CANCEL_MODES)
    return SubscriptionOptions(mx, mn, cancel, extra)  # type: ignore[arg-type]


class Subscription(Generic[T]):
    """One consumer's subscription to one producer.

    Returned by ``Consumer.subscribe``. With ``manual`` demand (``handle_subscribe``
    returned ``"manual"``) the consumer calls :meth:`ask` itself; ``max_demand`` and
    ``min_demand`` are then not enforced, as in GenStage. :meth:`cancel` ends the
    subscription; the consumer's ``handle_cancel`` then runs with
    ``("cancel", reason)`` and its ``cancel`` mode decides whether it stops.
    """

    __slots__ = (
        "_pending_ask",
        "account",
        "asked",
        "connected",
        "consumer_mailbox",
        "consumer_name",
        "id",
        "manual",
        "options",
        "owner",
        "producer",
        "producer_mailbox",
    )

    def __init__(
        self,
        producer: Any,
        owner: Any,
        consumer_mailbox: Mailbox,
        consumer_name: str,
        options: SubscriptionOptions,
    ) -> None:
        self.id: int = next(_ids)
        self.producer: Any = producer
        self.producer_mailbox: Mailbox = producer._mailbox
        self.owner: Any = owner
        self.consumer_mailbox: Mailbox = consumer_mailbox
        self.consumer_name: str = consumer_name
        self.options: SubscriptionOptions = options
        self.manual: bool = False
        self.account: DemandAccount | None = None
        self._pending_ask = 0
        #: True once the producer has been told of the subscription; asks made
        #: before that are held and sent right after the subscribe message.
        self.connected: bool = False
        #: Events asked for on this subscription so far (a consumer never receives more).
        self.asked: int = 0

    @property
    def max_demand(self) -> int:
        return self.options.max_demand

    @property
    def min_demand(self) -> int:
        return self.options.min_demand

    @property
    def cancel_mode(self) -> CancelMode:
        return self.options.cancel

    def ask(self, n: int) -> None:
        """Ask the producer for ``n`` more events (``n == 0`` does nothing).

        Never blocks: asks are added up until the producer reads them.
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"ask expects an integer >= 0, got: {n!r}")
        if n < 0:
            raise ValueError(f"ask expects an integer >= 0, got: {n}")
        if n == 0:
            return
        self._ask(n)

    def _ask(self, n: int) -> None:
        """``ask`` without argument checks, for the engine's own asks (``n >= 1``)."""
        self.asked += n
        pending = self._pending_ask
        self._pending_ask = pending + n
        if pending == 0 and self.connected:
            self.producer_mailbox.put((ASK, self))

    def cancel(self, reason: object = "normal") -> None:
        """Ask the producer to end this subscription with ``reason``."""
        mailbox = self.producer_mailbox
        if mailbox.closed:
            self.consumer_mailbox.put((CANCEL_DOWN, self, "down", "noproc"))
        else:
            mailbox.put((CANCEL_UP, self, reason))

    def connect(self) -> None:
        """Send the subscribe message, then any ask made before it."""
        self.connected = True
        self.producer_mailbox.put((SUBSCRIBE, self))
        if self._pending_ask:
            self.producer_mailbox.put((ASK, self))

    def take_pending_ask(self) -> int:
        n = self._pending_ask
        self._pending_ask = 0
        return n

    def __repr__(self) -> str:
        return f"<Subscription #{self.id} {self.consumer_name} -> {self.producer!r}>"
