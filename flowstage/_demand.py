"""Consumer-side automatic demand: when to ask the producer for more, and how much.

This is GenStage's ``split_batches``, exactly. A subscription starts by asking for
``max_demand`` events and keeps ``demand``, the number it has asked for and not yet
received. Each incoming message is cut into consecutive chunks of at most
``max_demand - min_demand`` events. For a chunk of ``b`` events,
``remaining = demand - b``; if ``remaining <= min_demand`` the consumer asks for
``max_demand - remaining`` more (back up to ``max_demand`` outstanding) and
``demand`` becomes ``max_demand``, otherwise it asks nothing and ``demand`` becomes
``remaining``. The consumer handles the chunk and **only then** sends the chunk's ask,
so a slow consumer holds back its producer.

Worked examples (a producer that emits exactly what is asked):

* ``max_demand=1000, min_demand=500`` (the defaults): batches ``0..499`` and
  ``500..999``, each followed by an ask of 500.
* ``max_demand=100, min_demand=80``: chunks of 20 events, each followed by an ask of 20.
* ``max_demand=100, min_demand=20``: ``0..79`` then ask 80, ``80..99`` with no ask,
  ``100..179`` then ask 100, ...
* ``max_demand=1000, min_demand=750`` with a producer sending 100 events per
  message: the first two messages ask nothing; the third is handled whole (chunks
  are 250 wide) and the consumer then asks for **300**. GenStage's docs describe a
  split into 50 + 50 with an ask of 250; the code (and this port) do not split there.

If a producer sends more events than were asked for, an error is logged
("received N events in excess"), the events are still handed over, and the
outstanding demand is clamped at zero for the accounting.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from ._options import validate_demand

__all__ = ["DemandAccount"]

T = TypeVar("T")

_logger = logging.getLogger("flowstage")


class DemandAccount:
    """Demand bookkeeping for one automatically-managed subscription.

    Args:
        max_demand: the most events ever outstanding; also the initial ask.
        min_demand: ask again once outstanding demand falls to this value or below.
        name: how log messages identify the subscription.

    The pair is validated with :func:`validate_demand` (``None`` picks the default).
    After construction, send :attr:`max_demand` upstream as the initial ask.
    """

    __slots__ = ("_step", "demand", "max_demand", "min_demand", "name")

    def __init__(
        self, max_demand: int | None = None, min_demand: int | None = None, *, name: object = None
    ) -> None:
        self.max_demand: int
        self.min_demand: int
        self.max_demand, self.min_demand = validate_demand(max_demand, min_demand)
        #: Events asked for and not yet received. Starts at ``max_demand``.
        self.demand: int = self.max_demand
        self.name: object = name
        self._step = self.max_demand - self.min_demand

    def __repr__(self) -> str:
        return (
            f"<DemandAccount demand={self.demand} max_demand={self.max_demand} "
            f"min_demand={self.min_demand}>"
        )

    def split(self, events: list[T]) -> list[tuple[list[T], int]]:
        """Cut one incoming message into chunks, each paired with the ask to send
        after that chunk has been handled (``0`` means no ask).

        Chunks are consecutive, non-empty, at most ``max_demand - min_demand`` long,
        and cover ``events`` in order. When ``events`` fits in one chunk the list
        itself is returned, not a copy. An empty message gives ``[]``.
        """
        n = len(events)
        step = self._step
        demand = self.demand
        if 0 < n <= step and n <= demand:
            remaining = demand - n
            if remaining <= self.min_demand:
                self.demand = self.max_demand
                return [(events, self.max_demand - remaining)]
            self.demand = remaining
            return [(events, 0)]
        max_d = self.max_demand
        min_d = self.min_demand
        old = demand  # what the producer may still send us within this message
        out: list[tuple[list[T], int]] = []
        for start in range(0, n, step):
            chunk = events if (start == 0 and n <= step) else events[start : start + step]
            size = len(chunk)
            diff = old - size
            if diff < 0:
                _logger.error(
                    "flowstage consumer%s received %d events in excess (more than it asked for)",
                    "" if self.name is None else f" {self.name!r}",
                    -diff,
                )
                size = old
                old = 0
            else:
                old = diff
            remaining = demand - size
            if remaining <= min_d:
                out.append((chunk, max_d - remaining))
                demand = max_d
            else:
                out.append((chunk, 0))
                demand = remaining
        self.demand = demand
        return out
