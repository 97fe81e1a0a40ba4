"""The parent's stand-in for a hosted partition's output: it asks the partition
ahead of its consumers (a relay in the parent), never hands a consumer more than
it asked for, keeps at most a window of events asked and not taken (fewer where
the transport tells their size), and finishes only after everything went out."""

from __future__ import annotations

from typing import Any

import pytest

from flowstage import StageGroup
from flowstage.executors._hosting._proxies import OutputProxy
from flowstage.testing import wait_quiescent, wait_until

from ..stages import ManualForwarder

pytestmark = pytest.mark.anyio

EDGE = 7


class Subscriptions:
    def __init__(self) -> None:
        self.count = 0

    def subscribed(self) -> None:
        self.count += 1


def asks(sent: list[Any]) -> list[int]:
    assert all(m[0] == "ask" and m[1] == EDGE for m in sent)
    return [m[2] for m in sent]


async def test_asks_a_window_ahead_and_hands_out_only_what_was_asked() -> None:
    sent: list[Any] = []
    counter = Subscriptions()
    async with StageGroup() as g:
        proxy = g.start(OutputProxy(EDGE, sent.append, counter, "out", window=10))
        sink = g.start(ManualForwarder(subscribe_to=[proxy]))
        await wait_until(lambda: sink.subscriptions)
        stages = [proxy, sink]
        await wait_quiescent(stages)
        assert counter.count == 1
        assert sent == []  # nothing is asked before a consumer asks

        sink.subscriptions[0].ask(3)
        await wait_quiescent(stages)
        assert asks(sent) == [10]  # the whole window, not just the 3
        assert sink.events == []

        proxy.receive(list(range(10)))  # the partition answers the ask
        await wait_quiescent(stages)
        assert sink.events == [0, 1, 2]
        assert proxy.held == 7
        assert asks(sent) == [10]  # room for 3 only: less than half a window

        sink.subscriptions[0].ask(4)
        await wait_quiescent(stages)
        assert sink.events == list(range(7))
        assert asks(sent) == [10, 7]  # 3 held: tops the window up again

        proxy.receive(list(range(10, 17)))
        proxy.receive_done()
        await wait_quiescent(stages)
        assert sink.events == list(range(7))
        assert proxy.held == 10
        assert proxy.running  # what it holds has not gone out yet

        sink.subscriptions[0].ask(100)
        await wait_quiescent(stages)
        assert sink.events == list(range(17))
        await wait_until(lambda: not proxy.running)  # finished after the last event
        assert asks(sent) == [10, 7]  # nothing asked after the partition finished
        g.cancel()


async def test_the_window_keeps_to_the_byte_bound_the_transport_reports() -> None:
    sent: list[Any] = []
    async with StageGroup() as g:
        proxy = g.start(
            OutputProxy(EDGE, sent.append, Subscriptions(), "out", window=100, max_bytes=1000)
        )
        sink = g.start(ManualForwarder(subscribe_to=[proxy]))
        await wait_until(lambda: sink.subscriptions)
        stages = [proxy, sink]
        sink.subscriptions[0].ask(10)
        await wait_quiescent(stages)
        assert asks(sent) == [100]
        # 100 bytes an event: the window shrinks to 10 events from now on.
        proxy.receive(list(range(100)), 100.0 * 100)
        await wait_quiescent(stages)
        assert sink.events == list(range(10))
        assert proxy.held == 90
        for _ in range(9):
            sink.subscriptions[0].ask(10)
            await wait_quiescent(stages)
        assert sink.events == list(range(100))
        # Asked again only once below the new window, and never beyond it.
        assert sum(asks(sent)[1:]) <= 10
        assert all(n <= 10 for n in asks(sent)[1:])
        sink.subscriptions[0].ask(10)
        await wait_quiescent(stages)
        assert proxy.held == 0
        g.cancel()


async def test_done_with_nothing_held_finishes_at_once() -> None:
    sent: list[Any] = []
    async with StageGroup() as g:
        proxy = g.start(OutputProxy(EDGE, sent.append, Subscriptions(), "out", window=4))
        sink = g.start(ManualForwarder(subscribe_to=[proxy]))
        await wait_until(lambda: sink.subscriptions)
        sink.subscriptions[0].ask(4)
        await wait_quiescent([proxy, sink])
        proxy.receive([1, 2])
        proxy.receive_done()
        await wait_until(lambda: not proxy.running)
        await wait_quiescent([sink])
        assert sink.events == [1, 2]
        g.cancel()
