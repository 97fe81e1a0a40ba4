"""GenStage's acceptance cases (GS-*, from GenStage's test suite), with the same batches.

Demand is driven explicitly and the tests wait for quiescence; nothing sleeps.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

import flowstage
from flowstage import BroadcastDispatcher, StageExited, StageGroup
from flowstage.testing import wait_quiescent, wait_until

from .stages import (
    Counter,
    DemandProducer,
    Discarder,
    Doubler,
    Forwarder,
    ManualForwarder,
    NothingProducer,
    Postponer,
    Sleeper,
)

pytestmark = pytest.mark.anyio


def rng(a: int, b: int) -> list[int]:
    """Inclusive range, as Elixir's a..b."""
    return list(range(a, b + 1))


def doubled(a: int, b: int) -> list[int]:
    return [e for e in range(a, b + 1) for _ in (0, 1)]


async def test_gs01_default_demand() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        c = g.start(Forwarder(subscribe_to=[p]))
        await wait_until(lambda: len(c.batches) >= 2)
        assert c.batches[0] == rng(0, 499)
        assert c.batches[1] == rng(500, 999)


async def test_gs02_max_100_min_80_batches_of_20() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=100, min_demand=80)
        await wait_until(lambda: len(c.events) >= 1020)
        assert c.batches[:3] == [rng(0, 19), rng(20, 39), rng(40, 59)]
        g.cancel()
    assert all(len(b) == 20 for b in c.batches)
    assert rng(1000, 1019) in c.batches


async def test_gs03_max_100_min_20() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=100, min_demand=20)
        await wait_until(lambda: len(c.batches) >= 5)
        g.cancel()
        assert c.batches[:5] == [
            rng(0, 79),
            rng(80, 99),
            rng(100, 179),
            rng(180, 259),
            rng(260, 279),
        ]


async def test_gs04_max_1_min_0() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=1, min_demand=0)
        await wait_until(lambda: len(c.batches) >= 3)
        assert c.batches[:3] == [[0], [1], [2]]
        g.cancel()


async def test_gs05_broadcast_paced_by_smallest_demand() -> None:
    async with StageGroup() as g:
        p = g.start(Counter(dispatcher=BroadcastDispatcher()))
        c1 = g.start(Forwarder())
        c2 = g.start(Forwarder())
        c1.subscribe(p, max_demand=10, min_demand=0)
        c2.subscribe(p, max_demand=20, min_demand=0)
        await wait_until(lambda: len(c1.events) > 1010 and len(c2.events) > 1010)
        assert rng(1000, 1009) in c1.batches
        assert rng(1000, 1009) in c2.batches
        g.cancel()


async def test_gs06_broadcast_blocked_by_silent_subscriber_until_cancelled() -> None:
    async with StageGroup() as g:
        p = g.start(Counter(dispatcher=BroadcastDispatcher()))
        silent = g.start(ManualForwarder())
        silent.subscribe(p)
        await wait_quiescent(g)
        c1 = g.start(Forwarder())
        c2 = g.start(Forwarder())
        c1.subscribe(p, max_demand=10, min_demand=0)
        c2.subscribe(p, max_demand=20, min_demand=0)
        await wait_quiescent(g)
        assert c1.batches == []
        assert c2.batches == []
        silent.subscriptions[0].cancel("normal")
        await wait_until(lambda: len(c1.events) > 1010 and len(c2.events) > 1010)
        assert c1.batches[0] == rng(0, 9)
        assert rng(1000, 1009) in c1.batches
        assert rng(1000, 1009) in c2.batches
        g.cancel()


async def test_gs07_broadcast_demand_asked_once() -> None:
    async with StageGroup() as g:
        p = g.start(NothingProducer(dispatcher=BroadcastDispatcher()))
        s1 = g.start(Sleeper())
        s2 = g.start(Sleeper())
        s1.subscribe(p, max_demand=10, min_demand=0)
        await wait_quiescent(g)
        s2.subscribe(p, max_demand=20, min_demand=0)
        await wait_quiescent(g)
        assert p.demands == [10]


@pytest.mark.parametrize("order", ["producer_first", "consumer_first"])
async def test_gs08_doubler_chain(order: str) -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        d = Doubler()
        c = Forwarder()
        if order == "producer_first":
            g.start(d)
            d.subscribe(p, max_demand=100, min_demand=80)
            g.start(c)
            c.subscribe(d, max_demand=100, min_demand=50)
        else:
            g.start(c)
            c.subscribe(d, max_demand=100, min_demand=50)
            g.start(d)
            d.subscribe(p, max_demand=100, min_demand=80)
        await wait_until(lambda: len(d.handled) >= 12 and len(c.batches) >= 9)
        g.cancel()
        # As in GenStage, a producer-consumer that starts on an incoming message
        # handles every chunk of it, asking after each one; so the batches are
        # deterministic. GenStage's suite: the Doubler handles 0..19, the consumer
        # gets 0..19 and 20..39 doubled; later the Doubler handles 100..119 and the
        # consumer gets 120..124 doubled (10 events) then 125..139 (30 events).
        # A subscription here has at most one ask message in flight (later asks
        # add to it), so the Counter answers several 20-event asks with one larger
        # message, and the batch after 120..124 holds 125..149 (50 events) where
        # GenStage's one-message-per-ask gives 125..139 (README, "Differences
        # from GenStage").
        assert d.handled[:12] == [rng(i, i + 19) for i in range(0, 240, 20)]
        assert c.batches[:9] == [
            doubled(0, 19),
            doubled(20, 39),
            doubled(40, 49),
            doubled(50, 74),
            doubled(75, 89),
            doubled(90, 99),
            doubled(100, 119),
            doubled(120, 124),
            doubled(125, 149),
        ]
        n = len(c.events) // 2
        assert c.events == doubled(0, n - 1)
        assert all(len(b) <= 50 for b in c.batches)
        assert all(len(b) == 20 for b in d.handled)


async def test_gs09_doubler_min_20() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        d = g.start(Doubler())
        c = g.start(Forwarder())
        c.subscribe(d, max_demand=100, min_demand=50)
        d.subscribe(p, max_demand=100, min_demand=20)
        await wait_until(lambda: len(c.events) > 400)
        g.cancel()
        assert d.handled[0] == rng(0, 79)
        assert c.batches[:3] == [doubled(0, 24), doubled(25, 49), doubled(50, 74)]
        assert rng(100, 179) in d.handled


async def test_gs10_producer_consumer_stops_pulling_without_downstream_demand() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        pp = g.start(Postponer())
        s = g.start(Sleeper())
        s.subscribe(pp, max_demand=10, min_demand=5)
        pp.subscribe(p, max_demand=10, min_demand=8)
        await wait_quiescent(g)
        assert pp.postponed == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
        assert s.batches == [[0, 1]]
        assert [10, 11] not in pp.postponed


async def test_gs11_discarder_keeps_pulling() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        d = g.start(Discarder())
        c = g.start(Forwarder())
        c.subscribe(d)
        d.subscribe(p, max_demand=100, min_demand=80)
        await wait_until(lambda: len(d.handled) > 60)
        assert d.handled[:1] == [rng(0, 19)]
        assert rng(100, 119) in d.handled
        assert rng(1000, 1019) in d.handled
        assert c.batches == []
        g.cancel()


async def test_gs12_broadcast_producer_consumer() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        d = g.start(Doubler(dispatcher=BroadcastDispatcher()))
        d.subscribe(p, max_demand=10)
        c1 = g.start(Forwarder())
        c2 = g.start(Forwarder())
        c1.subscribe(d, max_demand=10, min_demand=0)
        c2.subscribe(d, max_demand=20, min_demand=0)
        await wait_until(lambda: len(c1.events) > 420 and len(c2.events) > 420)
        g.cancel()
        expected = doubled(200, 204)
        assert expected in c1.batches
        assert expected in c2.batches


async def test_gs13_cancel_waits_for_queued_events() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        d = g.start(Doubler())
        sub = d.subscribe(p, max_demand=100, min_demand=50, cancel="temporary")
        await wait_quiescent(g)
        sub.cancel("done")
        await wait_quiescent(g)
        assert d.cancels == []
        c = g.start(Forwarder())
        c.subscribe(d, max_demand=100, min_demand=50)
        await wait_quiescent(g)
        assert [e for b in d.handled for e in b] == rng(0, 99)
        assert c.batches[:2] == [doubled(0, 24), doubled(25, 49)]
        assert d.cancels == [("cancel", "done")]
        handled = len(d.handled)
        await wait_quiescent(g)
        assert len(d.handled) == handled


async def test_gs14_accumulate_then_forward() -> None:
    async with StageGroup() as g:
        p = g.start(Counter(demand="accumulate"))
        assert p.demand_mode == "accumulate"
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=4, min_demand=0)
        await wait_quiescent(g)
        assert c.batches == []
        p.set_demand("forward")
        # GenStage's demand/1 is a call, so it sees the change at once.
        assert p.demand_mode == "forward"
        await wait_until(lambda: len(c.batches) >= 1)
        assert p.demand_mode == "forward"
        assert c.batches[0] == [0, 1, 2, 3]
        p.set_demand("accumulate")
        assert p.demand_mode == "accumulate"
        g.cancel()


async def test_gs15_accumulate_holds_emitted_events_unbuffered() -> None:
    async with StageGroup() as g:
        p = g.start(Counter(dispatcher=BroadcastDispatcher()))
        p.set_demand("accumulate")
        for events in ([1], [2], [3], [4]):
            await p.call(("queue", events))
        assert p.estimate_buffered_count() == 0
        c1 = g.start(Forwarder())
        c2 = g.start(Forwarder())
        c1.subscribe(p, max_demand=1, min_demand=0)
        c2.subscribe(p, max_demand=1, min_demand=0)
        await wait_quiescent(g)
        assert c1.batches == []
        assert c2.batches == []
        p.set_demand("forward")
        await wait_until(lambda: len(c1.batches) >= 4 and len(c2.batches) >= 4)
        g.cancel()
        assert c1.batches[:4] == [[1], [2], [3], [4]]
        assert c2.batches[:4] == [[1], [2], [3], [4]]


async def test_gs16_forward_before_subscribing() -> None:
    async with StageGroup() as g:
        p = g.start(Counter(demand="accumulate"))
        p.set_demand("forward")
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=4, min_demand=0)
        await wait_until(lambda: len(c.batches) >= 1)
        assert c.batches[0] == [0, 1, 2, 3]
        g.cancel()


async def test_gs17_accumulated_demands_not_summed() -> None:
    async with StageGroup() as g:
        p = g.start(DemandProducer(demand="accumulate"))
        c1 = g.start(Forwarder())
        c2 = g.start(Forwarder())
        c1.subscribe(p, max_demand=2)
        c2.subscribe(p, max_demand=2)
        await wait_quiescent(g)
        order: list[int] = []
        c1.handle_events = lambda events, from_: order.extend(events)  # type: ignore[method-assign]
        c2.handle_events = lambda events, from_: order.extend(events)  # type: ignore[method-assign]
        p.set_demand("forward")
        await wait_until(lambda: len(order) >= 3)
        g.cancel()
        assert order[:3] == [2, 2, 1]


async def test_gs18_buffered_before_consumers() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        p.send(("queue", ["a", "b", "c"]))
        await p.call(("queue", ["d", "e"]))
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=4, min_demand=0)
        await wait_until(lambda: len(c.batches) >= 4)
        g.cancel()
        assert c.batches[:4] == [["a", "b", "c", "d"], ["e"], [0, 1, 2], [3, 4, 5, 6]]


@pytest.mark.parametrize(
    ("keep", "expected"),
    [("first", [["a", "b", "c", "d"], ["e"]]), ("last", [["d", "e", "f", "g"], ["h"]])],
)
async def test_gs19_gs20_buffer_overflow(
    keep: str, expected: list[list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flowstage")
    async with StageGroup() as g:
        p = g.start(Counter(buffer_size=5, buffer_keep=keep))  # type: ignore[arg-type]
        await p.call(("queue", ["a", "b", "c", "d", "e"]))
        await p.call(("queue", ["f", "g", "h"]))
        assert "has discarded 3 events from buffer" in caplog.text
        assert p.statistics().discarded == 3
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=4, min_demand=0)
        await wait_until(lambda: len(c.batches) >= 2)
        g.cancel()
        assert c.batches[:2] == expected


async def test_gs21_large_buffer() -> None:
    async with StageGroup() as g:
        p = g.start(Counter(buffer_size=1_000_000))
        await p.call(("queue", ["a", "b", "c", "d", "e"]))
        await p.call(("queue", ["f", "g", "h"]))
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=4, min_demand=0)
        await wait_until(lambda: len(c.batches) >= 2)
        g.cancel()
        assert c.batches[:2] == [["a", "b", "c", "d"], ["e", "f", "g", "h"]]


@pytest.mark.parametrize("log_default", [False, True])
async def test_gs22_format_discarded(log_default: bool, caplog: pytest.LogCaptureFixture) -> None:
    custom: list[int] = []

    class Quiet(Counter):
        def format_discarded(self, discarded: int) -> bool:
            custom.append(discarded)
            return log_default

    caplog.set_level(logging.WARNING, logger="flowstage")
    async with StageGroup() as g:
        p = g.start(Quiet(buffer_size=5, buffer_keep="first"))
        await p.call(("queue", list("abcdefgh")))
        assert custom == [3]
        assert ("has discarded 3 events" in caplog.text) is log_default
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=4, min_demand=0)
        await wait_until(lambda: len(c.batches) >= 2)
        g.cancel()
        assert c.batches[:2] == [list("abcd"), ["e"]]


async def test_gs23_estimate_buffered_count() -> None:
    async with StageGroup() as g:
        p = g.start(Counter(buffer_size=100))
        await p.call(("queue", list("abcde")))
        assert p.estimate_buffered_count() == 5
        await p.call(("queue", list("fgh")))
        assert p.estimate_buffered_count() == 8
        assert p.statistics().buffered == 8
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=4, min_demand=0)
        await wait_until(lambda: len(c.batches) >= 2)
        assert p.estimate_buffered_count() == 0
        g.cancel()
        assert c.batches[:2] == [list("abcd"), list("efgh")]


async def test_gs24_info_delivery() -> None:
    async with StageGroup() as g:
        c = g.start(Forwarder())
        c.async_info("sync")
        await wait_quiescent(g)
        assert c.infos == ["sync"]

        d = g.start(Doubler())
        d.async_info("now")
        await wait_quiescent(g)
        assert d.infos == ["now"]

        p = g.start(Counter())
        d2 = g.start(Doubler())
        d2.subscribe(p, max_demand=10)
        await wait_quiescent(g)
        d2.async_info("later")
        await wait_quiescent(g)
        assert d2.infos == []
        late = g.start(Forwarder())
        late.subscribe(d2, max_demand=20)
        await wait_until(lambda: d2.infos == ["later"])
        g.cancel()


async def test_gs24_info_after_buffered_events_of_a_producer() -> None:
    async with StageGroup() as g:
        p = g.start(Counter(buffer_size=3))
        await p.call(("queue", ["a", "b", "c"]))
        infos: list[Any] = []

        class Recorder(Counter):
            pass

        p.handle_info = lambda message: infos.append(message)  # type: ignore[method-assign]
        await p.sync_info("sync")
        await wait_quiescent(g)
        assert infos == []
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=3, min_demand=0, cancel="temporary")
        await wait_until(lambda: len(c.batches) >= 2)
        g.cancel()
        assert c.batches[0] == ["a", "b", "c"]
        assert infos == ["sync"]


async def test_gs25_info_ordering_with_manual_asks() -> None:
    infos: list[Any] = []
    async with StageGroup() as g:
        p = g.start(Counter(buffer_size=3))
        p.handle_info = lambda message: infos.append(message)  # type: ignore[method-assign]
        c = g.start(ManualForwarder())
        c.subscribe(p)
        await wait_quiescent(g)
        sub = c.subscriptions[0]
        await p.call(("queue", ["a", "b", "c"]))
        await p.sync_info("sync1")
        sub.ask(2)
        await wait_quiescent(g)
        assert c.batches == [["a", "b"]]
        assert infos == []
        await p.call(("queue", ["d", "e"]))
        await p.sync_info("sync2")
        sub.ask(1)
        await wait_quiescent(g)
        assert c.batches == [["a", "b"], ["c"]]
        assert infos == ["sync1"]
        sub.ask(2)
        await wait_quiescent(g)
        assert c.batches == [["a", "b"], ["c"], ["d", "e"]]
        assert infos == ["sync1", "sync2"]


async def test_gs26_info_released_when_events_before_it_are_discarded() -> None:
    infos: list[Any] = []
    async with StageGroup() as g:
        p = g.start(Counter(buffer_size=3))
        p.handle_info = lambda message: infos.append(message)  # type: ignore[method-assign]
        await p.call(("queue", ["a", "b"]))
        await p.sync_info("sync")
        c = g.start(ManualForwarder())
        c.subscribe(p)
        await p.call(("queue", ["c", "d", "e"]))
        await wait_quiescent(g)
        assert infos == ["sync"]


async def test_gs27_infos_in_order_with_manual_consumer() -> None:
    infos: list[Any] = []
    async with StageGroup() as g:
        p = g.start(Counter(buffer_size=10))
        p.handle_info = lambda message: infos.append(message)  # type: ignore[method-assign]
        c = g.start(ManualForwarder())
        c.subscribe(p)
        await wait_quiescent(g)
        await p.call(("queue", ["a", "b", "c"]))
        for m in ("d", "e", "f"):
            await p.sync_info(m)
        await p.call(("queue", ["g", "h"]))
        await p.sync_info("i")
        c.subscriptions[0].ask(5)
        await wait_quiescent(g)
        assert c.events == ["a", "b", "c", "g", "h"]
        assert infos == ["d", "e", "f", "i"]


async def test_gs28_bad_subscription_options() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        c = g.start(Forwarder())
        with pytest.raises(ValueError, match="max_demand must be an integer >= 1, got: 0"):
            c.subscribe(p, max_demand=0)
        with pytest.raises(ValueError, match=r"min_demand .*999.*got: 2000"):
            c.subscribe(p, min_demand=2000)
        with pytest.raises(ValueError, match="cancel must be one of"):
            c.subscribe(p, cancel="sometimes")
        with pytest.raises(TypeError, match="max_demand"):
            c.subscribe(p, max_demand=float("inf"))  # type: ignore[arg-type]
        g.cancel()


async def test_gs29_subscribe_to_stopped_producer() -> None:
    p = Counter()
    async with StageGroup() as g:
        g.start(p)
        p.stop()
        await g.wait()
    with pytest.raises(StageExited) as info:
        async with StageGroup() as g:
            c = g.start(Forwarder())
            c.subscribe(p)
            await g.wait()
    assert info.value.reason == "noproc"
    async with StageGroup() as g:
        c = g.start(Forwarder())
        c.subscribe(p, cancel="temporary")
        await wait_quiescent(g)
        assert c.running


async def test_gs30_broadcast_same_consumer_twice_keeps_one() -> None:
    async with StageGroup() as g:
        p = g.start(Counter(dispatcher=BroadcastDispatcher()))
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=5, min_demand=0)
        c.subscribe(p, max_demand=5, min_demand=0)
        await wait_until(lambda: bool(c.cancels) and len(c.batches) > 3)
        assert c.cancels == [("cancel", "already_subscribed")]
        assert len(p._consumers) == 1
        assert len(c._producers) == 1
        assert c.running
        g.cancel()


async def test_gs32_manual_asks() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        c = g.start(ManualForwarder())
        c.subscribe(p)
        await wait_quiescent(g)
        assert c.batches == []
        c.subscriptions[0].ask(50)
        await wait_quiescent(g)
        c.subscriptions[0].ask(50)
        await wait_quiescent(g)
        assert c.batches == [rng(0, 49), rng(50, 99)]


async def test_gs33_bad_stage_options() -> None:
    with pytest.raises(ValueError, match="buffer_size must be an integer >= 1, got: -1"):
        Counter(buffer_size=-1)
    with pytest.raises(ValueError, match="buffer_size must be an integer >= 1, got: 0"):
        Counter(buffer_size=0)
    with pytest.raises(TypeError, match="dispatcher must be"):
        Counter(dispatcher=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'unknown'"):
        Counter(unknown="value")
    with pytest.raises(ValueError, match="buffer_keep"):
        Counter(buffer_keep="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="demand must be one of 'forward', 'accumulate', got: "):
        Counter(demand="later")  # type: ignore[arg-type]
    p = Counter()
    async with StageGroup() as g:
        g.start(p)
        with pytest.raises(RuntimeError, match="already started"):
            g.start(p)
        g.cancel()


async def test_gs34_producer_handle_subscribe_manual_is_an_error() -> None:
    class Bad(Counter):
        def handle_subscribe(self, kind: Any, options: Any, from_: Any) -> Any:
            return "manual"

    with pytest.raises(TypeError, match="must return 'automatic' or None"):
        async with StageGroup() as g:
            p = g.start(Bad())
            g.start(Forwarder(subscribe_to=[p]))
            await g.wait()


async def test_gs35_producer_sees_cancel_reason() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        c = g.start(Forwarder())
        sub = c.subscribe(p, max_demand=10, cancel="temporary")
        await wait_until(lambda: len(c.batches) > 2)
        sub.cancel("oops")
        await wait_until(lambda: len(p.cancels) == 1)
        assert p.cancels[0][0] == ("cancel", "oops")
        assert p.cancels[0][1] is sub
        c2 = g.start(Forwarder())
        sub2 = c2.subscribe(p, max_demand=10)
        await wait_until(lambda: len(c2.batches) > 2)
        c2.stop("shutdown")
        await wait_until(lambda: len(p.cancels) == 2)
        g.cancel()
    assert p.cancels[1][0] == ("cancel", "shutdown")
    assert p.cancels[1][1] is sub2


async def test_gs36_call_reply_after_events_or_before_with_early_reply() -> None:
    class CallOnly(Counter):
        def handle_demand(self, demand: int) -> list[int]:
            return []

    async with StageGroup() as g:
        p = g.start(CallOnly())
        c = g.start(ManualForwarder())
        c.subscribe(p)
        await wait_quiescent(g)
        c.subscriptions[0].ask(6)
        await wait_quiescent(g)
        assert await p.call(("queue", [1, 2, 3])) == "ok"
        # {:reply, ...}: the events went out before the reply came back.
        assert p.statistics().events_out == 3
        assert await p.call(("early_reply", [4, 5, 6])) == "early"
        # An early reply is sent before the events the callback emits afterwards.
        await wait_quiescent(g)
        assert c.batches == [[1, 2, 3], [4, 5, 6]]
        g.cancel()


@pytest.mark.parametrize(
    ("mode", "reason", "survives"),
    [
        ("temporary", "oops", True),
        ("transient", "normal", True),
        ("transient", "oops", False),
        ("permanent", "oops", False),
        ("permanent", "normal", False),
    ],
)
async def test_gs37_cancel_modes(mode: str, reason: str, survives: bool) -> None:
    outcome: list[str] = []
    try:
        async with StageGroup() as g:
            p = g.start(Counter())
            c = g.start(Forwarder())
            sub = c.subscribe(p, max_demand=10, cancel=mode)
            await wait_until(lambda: len(c.batches) > 2)
            sub.cancel(reason)
            await wait_until(lambda: bool(c.cancels))
            await wait_quiescent(c)
            assert c.cancels == [("cancel", reason)]
            outcome.append("alive" if c.running else "stopped")
            g.cancel()
    except StageExited as exc:
        assert exc.reason == reason
        outcome.append("exited")
    if survives:
        assert outcome == ["alive"]
    elif reason == "normal":
        assert outcome == ["stopped"]
    else:
        assert outcome == ["exited"]


async def test_gs37_producer_stopped_seen_as_down() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        c = g.start(Forwarder())
        c.subscribe(p, max_demand=10, cancel="temporary")
        d = g.start(Doubler())
        d.subscribe(p, max_demand=10, cancel="transient")
        below = g.start(Forwarder(subscribe_to=[d]))
        await wait_until(lambda: len(c.batches) > 2 and len(below.batches) > 2)
        p.stop("shutdown")
        await wait_until(lambda: bool(c.cancels) and bool(d.cancels))
        assert c.cancels == [("down", "shutdown")]
        assert d.cancels == [("down", "shutdown")]
        assert c.running
        assert d.running
        assert below.running
        g.cancel()


async def test_gs38_consumer_cannot_emit(caplog: pytest.LogCaptureFixture) -> None:
    class Emitting(Forwarder):
        def handle_events(self, events: list[Any], from_: Any) -> Any:  # type: ignore[override]
            return events

    caplog.set_level(logging.ERROR, logger="flowstage")
    async with StageGroup() as g:
        p = g.start(Counter())
        g.start(Emitting(subscribe_to=[(p, {"max_demand": 2})]))
        await wait_until(lambda: "cannot dispatch events" in caplog.text)
        assert "cannot dispatch events" in caplog.text
        g.cancel()


async def test_gs40_stream_take() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        taken: list[int] = []
        async with flowstage.stream([p]) as events:
            async for e in events:
                taken.append(e)
                if len(taken) == 10:
                    break
        assert taken == rng(0, 9)
        await wait_quiescent(g)
        assert p.running
        assert len(p._consumers) == 0
        taken = []
        async with flowstage.stream([(p, {"max_demand": 100})]) as events:
            async for e in events:
                taken.append(e)
                if len(taken) == 300:
                    break
        assert len(taken) == 300
        g.cancel()


async def test_gs41_stream_failures() -> None:
    p = Counter()
    async with StageGroup() as g:
        g.start(p)
        p.stop()
        await g.wait()
    with pytest.raises(StageExited, match="noproc"):
        async with flowstage.stream([p]) as events:
            pass
    async with flowstage.stream([(p, {"cancel": "temporary"})]) as events:
        assert [e async for e in events] == []

    class NoThanks(Counter):
        def handle_demand(self, demand: int) -> list[int]:
            self.stop("no_thanks")
            return []

    with pytest.raises(StageExited) as info:
        async with flowstage.stream([NoThanks()]) as events:
            async for _ in events:
                pass
    assert info.value.reason == "no_thanks"


async def test_gs42_from_iterable_infinite_and_finite() -> None:
    import itertools

    async with StageGroup() as g:
        p = g.start(flowstage.from_iterable(itertools.count()))
        async with flowstage.stream([(p, {"cancel": "transient"})]) as events:
            got = []
            async for e in events:
                got.append(e)
                if len(got) == 10:
                    break
        assert got == rng(0, 9)
        await wait_quiescent(g)
        assert p.running
        g.cancel()
    finite = flowstage.from_iterable(range(10))
    async with flowstage.stream([finite]) as events:
        assert [e async for e in events] == rng(0, 9)
    assert not finite.running


def test_a_list_source_gives_the_batches_its_iterator_would() -> None:
    # A list is taken in slices; the batches are those of its iterator, and items
    # added while the source runs are seen up to the batch that comes up short.
    items = list(range(10))
    by_list = flowstage.from_iterable(items)
    by_iterator = flowstage.from_iterable(iter(items))
    got = []
    for n in (3, 0, 4):
        batch = by_list.handle_demand(n)
        assert batch == by_iterator.handle_demand(n)
        got.append(batch)
    assert got == [[0, 1, 2], [], [3, 4, 5, 6]]
    items.append(10)
    assert by_list.handle_demand(3) == by_iterator.handle_demand(3) == [7, 8, 9]
    assert by_list.handle_demand(5) == by_iterator.handle_demand(5) == [10]
    items.append(11)  # after the short batch: the source has finished
    assert by_list.handle_demand(5) is by_iterator.handle_demand(5) is None
    assert all(type(batch) is list for batch in got)


async def test_gs43_stream_validates_options_at_call() -> None:
    with pytest.raises(ValueError, match=r"invalid options for .* producer \(max_demand must"):
        flowstage.stream([(Counter(), {"max_demand": 0})])
    with pytest.raises(TypeError, match="stream expects a list of producers"):
        flowstage.stream(Counter())  # type: ignore[arg-type]


@pytest.mark.parametrize(("on_cancel", "alive"), [("continue", True), ("stop", False)])
async def test_gs44_from_iterable_on_cancel(on_cancel: str, alive: bool) -> None:
    import itertools

    async with StageGroup() as g:
        p = g.start(flowstage.from_iterable(itertools.cycle([1, 2, 3]), on_cancel=on_cancel))  # type: ignore[arg-type]
        got = []
        async with flowstage.stream([(p, {"cancel": "transient"})]) as events:
            async for e in events:
                got.append(e)
                if len(got) == 5:
                    break
        await wait_quiescent(g)
        assert got == [1, 2, 3, 1, 2]
        assert p.running is alive
        g.cancel()


async def test_gs45_statistics_snapshot() -> None:
    async with StageGroup() as g:
        p = g.start(Counter(name="counter"))
        c = g.start(Forwarder(name="forwarder"))
        c.subscribe(p, max_demand=10, min_demand=5)
        await wait_until(lambda: len(c.batches) > 2)
        ps, cs = p.statistics(), c.statistics()
        assert ps.name == "counter"
        assert ps.kind == "producer"
        assert ps.consumers == 1
        assert cs.kind == "consumer"
        assert cs.producers == 1
        assert 0 < cs.events_in <= ps.events_out  # a batch may be in flight
        assert cs.demand_outstanding <= 10
        with pytest.raises(AttributeError):
            ps.events_out = 0  # type: ignore[misc]
        g.cancel()


async def test_gs31_resubscribe() -> None:
    class Tracking(Forwarder):
        def __init__(self) -> None:
            super().__init__()
            self.subscribed: list[Any] = []

        def handle_subscribe(self, kind: Any, options: Any, from_: Any) -> None:
            self.subscribed.append(from_)

    async with StageGroup() as g:
        p1 = g.start(Counter())
        p2 = g.start(Counter(1000))
        c = g.start(Tracking())
        old = c.subscribe(p1, max_demand=5, cancel="temporary")
        await wait_until(lambda: len(c.batches) >= 1)
        new = c.resubscribe(old, "resubscribe", p2, max_demand=5)
        await wait_until(lambda: any(b[0] >= 1000 for b in c.batches))
        assert new is not old
        assert c.subscribed == [old, new]
        assert ("cancel", "resubscribe") in c.cancels
        assert p1.cancels[0][0] == ("cancel", "resubscribe")
        g.cancel()


async def test_gs39_protocol_errors_on_unknown_subscriptions() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        c = g.start(ManualForwarder())
        sub = c.subscribe(p, cancel="temporary")
        await wait_quiescent(g)
        sub.cancel("gone")
        await wait_quiescent(g)
        assert c.cancels == [("cancel", "gone")]
        # An ask on a subscription the producer no longer knows is answered with a cancel.
        sub.ask(3)
        await wait_quiescent(g)
        assert c.cancels == [("cancel", "gone")]  # the consumer forgot it too: ignored
        assert c.batches == []
        assert p.statistics().events_out == 0
        g.cancel()


async def test_asks_made_before_the_subscription_starts_are_kept() -> None:
    async with StageGroup() as g:
        p = g.start(Counter())
        c = g.start(ManualForwarder())
        sub = c.subscribe(p)
        sub.ask(4)  # before the consumer has even handled the subscription
        await wait_quiescent(g)
        assert c.batches == [[0, 1, 2, 3]]
        g.cancel()
