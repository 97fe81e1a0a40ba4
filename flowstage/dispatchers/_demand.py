"""The default dispatcher: each batch goes to the subscription with the largest demand."""

from __future__ import annotations

import logging
import random
from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import TYPE_CHECKING, TypeVar

from ._base import Dispatcher

if TYPE_CHECKING:
    from collections.abc import Hashable, Mapping

__all__ = ["DemandDispatcher"]

T = TypeVar("T")

_logger = logging.getLogger("flowstage")
_key = itemgetter(0)


class DemandDispatcher(Dispatcher[T]):
    """Send each batch to the subscription that asked for the most (GenStage's default).

    Subscriptions are kept sorted by outstanding demand, largest first; among equal
    demands the one that reached that demand first is served first (FIFO). A dispatch
    repeatedly hands the head subscription as many events as it asked for, until the
    events or the demand run out, so one batch may be split across subscriptions.

    Guarantees:

    * A subscription never receives more events than it asked for and not yet got.
    * Events are delivered in order: each delivery is a contiguous slice of the batch,
      and the leftovers (returned to the producer's buffer) are its tail.
    * The demand returned by :meth:`ask` is what the producer must supply. When a
      subscription is cancelled with demand outstanding, those events were already
      requested upstream on its behalf: they are counted as *pending* and subtracted
      from later asks (and leftovers of a dispatch reduce the pending count), so the
      producer is never asked twice for the same events.
    * :meth:`info` releases the message at once (this dispatcher holds no events).

    Args:
        shuffle_demands_on_first_dispatch: shuffle the subscriptions once, before the
            first dispatch, so the first subscriber does not get everything (used for
            load balancing, for example by Broadway).
        max_demand: the largest ask expected from one subscription; defaults to the
            first ask seen. A larger ask logs a warning, because different maximum
            demands make greedy consumers starve the others.

    Give all consumers the same ``max_demand``.
    """

    __slots__ = ("_demands", "_index", "_max_demand", "_pending", "_shuffle")

    def __init__(
        self, shuffle_demands_on_first_dispatch: bool = False, max_demand: int | None = None
    ) -> None:
        super().__init__()
        if not isinstance(shuffle_demands_on_first_dispatch, bool):
            raise TypeError(
                "shuffle_demands_on_first_dispatch must be True or False, "
                f"got: {shuffle_demands_on_first_dispatch!r}"
            )
        if max_demand is not None:
            if isinstance(max_demand, bool) or not isinstance(max_demand, int):
                raise TypeError(f"max_demand must be None or an integer >= 1, got: {max_demand!r}")
            if max_demand < 1:
                raise ValueError(f"max_demand must be None or an integer >= 1, got: {max_demand!r}")
        # (-demand, sub), sorted ascending, i.e. by descending demand; FIFO among equals.
        self._demands: list[tuple[int, Hashable]] = []
        self._index: dict[Hashable, int] = {}  # sub -> outstanding demand
        self._pending = 0
        self._max_demand = max_demand
        self._shuffle = shuffle_demands_on_first_dispatch

    def __repr__(self) -> str:
        return f"<DemandDispatcher demands={self.demands!r} pending={self._pending}>"

    @property
    def demands(self) -> list[tuple[int, Hashable]]:
        """``(demand, sub)`` pairs in serving order (a copy, for inspection)."""
        return [(-neg, sub) for neg, sub in self._demands]

    @property
    def pending(self) -> int:
        """Events requested upstream for subscriptions that have since been cancelled."""
        return self._pending

    @property
    def max_demand(self) -> int | None:
        """The expected maximum ask (``None`` until the first ask when not given)."""
        return self._max_demand

    @property
    def shuffle_demands_on_first_dispatch(self) -> bool:
        """Whether the next dispatch shuffles the subscriptions first."""
        return self._shuffle

    def subscribe(self, sub: Hashable, owner: Hashable, opts: Mapping[str, object]) -> int:
        """Add ``sub`` with demand 0, after every existing subscription. Returns 0."""
        if sub in self._index:
            raise ValueError(f"subscription {sub!r} is already registered")
        self._index[sub] = 0
        self._demands.append((0, sub))
        return 0

    def cancel(self, sub: Hashable) -> int:
        """Remove ``sub``; its outstanding demand becomes pending. Returns 0.

        Cancelling an unknown subscription does nothing.
        """
        current = self._index.pop(sub, None)
        if current is None:
            return 0
        self._remove(current, sub)
        self._pending += current
        return 0

    def ask(self, n: int, sub: Hashable) -> int:
        """Add ``n`` to ``sub``'s demand; return ``n`` minus what is already pending.

        Raises:
            KeyError: ``sub`` is not subscribed.
        """
        current = self._index[sub]
        max_demand = self._max_demand
        if max_demand is None:
            self._max_demand = n
        elif n > max_demand:
            _logger.warning(
                "flowstage producer DemandDispatcher expects a maximum demand of %d. "
                "Using different maximum demands will overload greedy consumers. "
                "Got demand for %d events from %r",
                max_demand,
                n,
                sub,
            )
        new = current + n
        self._index[sub] = new
        demands = self._demands
        if len(demands) == 1:
            demands[0] = (-new, sub)
        else:
            self._remove(current, sub)
            demands.insert(bisect_right(demands, -new, key=_key), (-new, sub))
        pending = self._pending
        if pending:
            already = n if n < pending else pending
            self._pending = pending - already
            return n - already
        return n

    def _remove(self, current: int, sub: Hashable) -> None:
        demands = self._demands
        i = bisect_left(demands, -current, key=_key)
        while demands[i][1] != sub:
            i += 1
        del demands[i]

    def dispatch(self, events: list[T]) -> list[T]:
        """Hand ``events`` to the largest demands first; return the undelivered tail."""
        if self._shuffle:
            self._shuffle = False
            if len(self._demands) > 1:
                return self._dispatch_shuffled(events)
        demands = self._demands
        n = len(events)
        if not demands or n == 0 or demands[0][0] == 0:
            if n and self._pending:
                self._pending = max(self._pending - n, 0)
            return events
        neg, sub = demands[0]
        if n <= -neg:
            # Fast path: the whole batch fits the head's demand.
            self.deliveries.append((sub, events))
            left = -neg - n
            self._index[sub] = left
            if len(demands) == 1:
                demands[0] = (-left, sub)
            else:
                del demands[0]
                demands.insert(bisect_right(demands, -left, key=_key), (-left, sub))
            return []
        deliveries = self.deliveries
        index = self._index
        pos = 0
        while pos < n:
            neg, sub = demands[0]
            if neg == 0:
                break
            take = n - pos
            if take > -neg:
                take = -neg
            deliveries.append((sub, events[pos : pos + take]))
            pos += take
            left = -neg - take
            index[sub] = left
            del demands[0]
            demands.insert(bisect_right(demands, -left, key=_key), (-left, sub))
        leftover = events[pos:] if pos else events
        if leftover and self._pending:
            self._pending = max(self._pending - len(leftover), 0)
        return leftover

    def _dispatch_shuffled(self, events: list[T]) -> list[T]:
        # Serve the subscriptions once in a random order, then restore the sorted order
        # (a stable sort keeps the random order among equal demands).
        order = self._demands
        random.shuffle(order)
        index = self._index
        n = len(events)
        pos = 0
        served: list[tuple[int, Hashable]] = []
        for neg, sub in order:
            if pos < n and neg:
                take = min(n - pos, -neg)
                self.deliveries.append((sub, events[pos : pos + take]))
                pos += take
                neg += take
                index[sub] = -neg
            served.append((neg, sub))
        served.sort(key=_key)
        self._demands = served
        leftover = events[pos:] if pos else events
        if leftover and self._pending:
            self._pending = max(self._pending - len(leftover), 0)
        return leftover

    def info(self, msg: object) -> None:
        """Release ``msg`` at once: this dispatcher never holds events."""
        self.ready_infos.append(msg)
