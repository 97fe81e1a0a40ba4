"""One task per flow that wakes stages at their deadlines."""

from __future__ import annotations

import heapq
import itertools
from typing import Protocol

import anyio

__all__ = ["Timed", "Timer"]


class Timed(Protocol):
    """A stage the timer can wake."""

    def fire(self, deadline: float) -> bool:
        """Wake the stage for ``deadline``; False if its mailbox is full (retry)."""

    def rearm(self, deadline: float) -> None:
        """The timer will call :meth:`fire` again at ``deadline`` instead."""


class Timer:
    """Wakes stages at their deadlines.

    Deadlines are kept in a heap; stale entries (a stage re-armed since) are
    skipped by the stage's ``fire``. Time comes from ``anyio.current_time()``, so a
    virtual clock drives it in tests.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timed]] = []
        self._seq = itertools.count()
        self._wake: anyio.Event | None = None

    def schedule(self, deadline: float, stage: Timed) -> None:
        heap = self._heap
        if not heap or deadline < heap[0][0]:
            wake = self._wake
            if wake is not None:
                wake.set()
        heapq.heappush(heap, (deadline, next(self._seq), stage))

    async def run(self) -> None:
        heap = self._heap
        while True:
            now = anyio.current_time()
            while heap and heap[0][0] <= now:
                deadline, _, stage = heapq.heappop(heap)
                if not stage.fire(deadline):
                    # The stage's mailbox is full: try again a little later.
                    heapq.heappush(heap, (now + 0.001, next(self._seq), stage))
                    stage.rearm(now + 0.001)
                    break
            self._wake = wake = anyio.Event()
            with anyio.CancelScope(deadline=heap[0][0] if heap else float("inf")):
                await wake.wait()
            self._wake = None
