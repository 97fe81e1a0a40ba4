"""Virtual time across hosts: holding a test's clock while any host has work.

Under trio's ``MockClock`` with autojump, virtual time jumps as soon as the parent's
tasks are all blocked, even while hosts (other processes) are still working, which
would fire windows and timers early. So under a virtual clock each host reports when
it goes idle, with how many messages it received from each sender and sent to each
peer (see :class:`~._host.PartitionHost`), and the parent counts what it sent each
host. :meth:`Quiescence.quiet` is true when every report accounts for every message
sent: nothing is in flight and no host is busy. :meth:`Quiescence.hold_clock` keeps
the parent runnable until then.

Outside a virtual clock none of this runs (``track`` is false): no reports, no counts.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import anyio.lowlevel

__all__ = ["Quiescence", "virtual_clock"]


def virtual_clock() -> bool:
    """True when the parent runs on trio with its ``MockClock`` (a test)."""
    trio = sys.modules.get("trio")
    if trio is None or not trio.lowlevel.in_trio_run():
        return False
    import trio.testing

    return isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)


class Quiescence:
    """What the parent knows of its ``size`` hosts' work (see the module docstring)."""

    __slots__ = ("_busy", "_reports", "_sent", "track")

    def __init__(self, size: int, track: bool) -> None:
        self.track = track
        self._sent = [0] * size
        self._reports: list[tuple[dict[Any, int], dict[int, int]] | None] = [None] * size
        self._busy: anyio.Event | None = None

    def sent(self, host: int) -> None:
        """The parent sent ``host`` one message."""
        self._sent[host] += 1
        self._check_busy()

    def idle(self, host: int, received: dict[Any, int], sent: dict[int, int]) -> None:
        """``host`` reported it is idle, with its counts."""
        self._reports[host] = (received, sent)
        self._check_busy()

    def quiet(self) -> bool:
        """True when every host has handled everything sent to it: its last report
        counts every message the parent and every peer sent it."""
        reports = self._reports
        for w, report in enumerate(reports):
            if report is None or report[0].get("parent", 0) != self._sent[w]:
                return False
        for u, ru in enumerate(reports):
            assert ru is not None
            for v, count in ru[1].items():
                rv = reports[v]
                if rv is None or rv[0].get(u, 0) != count:
                    return False
        return True

    def _check_busy(self) -> None:
        busy = self._busy
        if busy is not None and not self.quiet():
            self._busy = None
            busy.set()

    async def hold_clock(self) -> None:
        """Keep the parent runnable while any host has work, so that autojump does
        not move virtual time past work that is still being done elsewhere."""
        while True:
            if self.quiet():
                self._busy = busy = anyio.Event()
                await busy.wait()
            else:
                await anyio.lowlevel.checkpoint()
