"""Dispatcher unit cases DD-01..DD-09, BD-01..BD-10 and PD-01..PD-09 of the reference.

Subscriptions are strings ("r1"), owners are strings ("p1"). GenStage's ``send`` to a
consumer becomes an entry in ``deliveries``; ``send(self(), msg)`` for infos becomes
``ready_infos``; the broadcast dispatcher's self-ask becomes ``reasks``.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

import pytest

from flowstage.dispatchers import (
    BroadcastDispatcher,
    DemandDispatcher,
    Dispatcher,
    PartitionDispatcher,
    SubscriptionRejected,
)


def drain(d: Dispatcher[Any]) -> list[tuple[Hashable, list[Any]]]:
    out = list(d.deliveries)
    d.deliveries.clear()
    return out


def drain_infos(d: Dispatcher[Any]) -> list[object]:
    out = list(d.ready_infos)
    d.ready_infos.clear()
    return out


def drain_reasks(d: Dispatcher[Any]) -> list[tuple[Hashable, int]]:
    out = list(d.reasks)
    d.reasks.clear()
    return out


def test_exports() -> None:
    import flowstage.dispatchers as mod

    assert sorted(mod.__all__) == [
        "BroadcastDispatcher",
        "DemandDispatcher",
        "Dispatcher",
        "PartitionDispatcher",
        "SubscriptionRejected",
    ]


# ---------------------------------------------------------------- DemandDispatcher


def test_dd01_subscribe_cancel() -> None:
    d: DemandDispatcher[str] = DemandDispatcher()
    assert d.subscribe("r", "p", {}) == 0
    assert (d.demands, d.pending, d.max_demand, d.shuffle_demands_on_first_dispatch) == (
        [(0, "r")],
        0,
        None,
        False,
    )
    assert d.cancel("r") == 0
    assert (d.demands, d.pending) == ([], 0)


def test_dd02_pending_demand_after_cancel() -> None:
    d: DemandDispatcher[Any] = DemandDispatcher()
    d.subscribe("r", "p", {})
    assert d.ask(10, "r") == 10
    assert (d.demands, d.pending, d.max_demand) == ([(10, "r")], 0, 10)
    assert d.cancel("r") == 0
    assert (d.demands, d.pending, d.max_demand) == ([], 10, 10)

    d.subscribe("r", "p", {})
    assert d.ask(5, "r") == 0
    assert (d.demands, d.pending) == ([(5, "r")], 5)
    assert d.cancel("r") == 0
    assert (d.demands, d.pending) == ([], 10)

    assert d.dispatch(["a", "b", "c"]) == ["a", "b", "c"]
    assert (d.demands, d.pending) == ([], 7)
    assert d.dispatch(list(range(1, 11))) == list(range(1, 11))
    assert (d.demands, d.pending) == ([], 0)
    assert drain(d) == []


def test_dd03_cancel_with_two_subscriptions() -> None:
    d: DemandDispatcher[str] = DemandDispatcher()
    d.subscribe("r1", "p", {})
    d.subscribe("r2", "p", {})
    assert d.ask(3, "r1") == 3
    assert d.ask(3, "r2") == 3
    assert (d.demands, d.pending, d.max_demand) == ([(3, "r1"), (3, "r2")], 0, 3)
    assert d.cancel("r1") == 0
    assert (d.demands, d.pending) == ([(3, "r2")], 3)
    assert d.dispatch(["a", "b", "c", "d", "e"]) == ["d", "e"]
    assert drain(d) == [("r2", ["a", "b", "c"])]
    assert (d.demands, d.pending) == ([(0, "r2")], 1)


def test_dd04_dispatch_and_leftovers() -> None:
    d: DemandDispatcher[str] = DemandDispatcher()
    d.subscribe("r", "p", {})
    assert d.ask(3, "r") == 3
    assert d.dispatch(["a"]) == []
    assert drain(d) == [("r", ["a"])]
    assert d.demands == [(2, "r")]
    assert d.ask(3, "r") == 3
    assert d.demands == [(5, "r")]
    assert d.dispatch(list("bcdefgh")) == ["g", "h"]
    assert drain(d) == [("r", list("bcdef"))]
    assert d.demands == [(0, "r")]
    assert d.dispatch(["i", "j"]) == ["i", "j"]
    assert drain(d) == []


def test_dd04_single_consumer_fast_path_passes_the_list_through() -> None:
    d: DemandDispatcher[int] = DemandDispatcher()
    d.subscribe("r", "p", {})
    d.ask(10, "r")
    events = [1, 2, 3]
    assert d.dispatch(events) == []
    [(sub, batch)] = drain(d)
    assert sub == "r"
    assert batch is events


def test_dd05_sorted_by_demand_fifo_among_equals() -> None:
    d: DemandDispatcher[str] = DemandDispatcher()
    for r in ("r1", "r2", "r3"):
        d.subscribe(r, "p", {})
    d.ask(4, "r1")
    d.ask(2, "r2")
    d.ask(3, "r3")
    assert d.demands == [(4, "r1"), (3, "r3"), (2, "r2")]
    d.ask(2, "r3")
    assert d.demands == [(5, "r3"), (4, "r1"), (2, "r2")]
    d.ask(4, "r2")
    assert d.demands == [(6, "r2"), (5, "r3"), (4, "r1")]


def test_dd05_equal_demands_served_fifo() -> None:
    d: DemandDispatcher[str] = DemandDispatcher()
    for r in ("r1", "r2", "r3"):
        d.subscribe(r, "p", {})
    d.ask(2, "r2")
    d.ask(2, "r1")
    d.ask(2, "r3")
    assert d.demands == [(2, "r2"), (2, "r1"), (2, "r3")]


def test_dd06_dispatch_to_the_highest_demand() -> None:
    d: DemandDispatcher[str] = DemandDispatcher()
    d.subscribe("r1", "p1", {})
    d.subscribe("r2", "p2", {})
    d.ask(3, "r1")
    d.ask(2, "r2")
    assert d.dispatch(list("abcde")) == []
    assert drain(d) == [("r1", ["a", "b", "c"]), ("r2", ["d", "e"])]
    assert d.dispatch(["a", "b", "c"]) == ["a", "b", "c"]
    assert drain(d) == []

    d.ask(3, "r1")
    d.ask(3, "r2")
    assert d.dispatch(["a", "b"]) == []
    assert drain(d) == [("r1", ["a", "b"])]
    assert d.demands == [(3, "r2"), (1, "r1")]
    assert d.dispatch(["c", "d"]) == []
    assert drain(d) == [("r2", ["c", "d"])]
    assert d.demands == [(1, "r1"), (1, "r2")]
    assert d.dispatch(["e", "f", "g"]) == ["g"]
    assert drain(d) == [("r1", ["e"]), ("r2", ["f"])]
    assert d.demands == [(0, "r1"), (0, "r2")]


def test_dd07_shuffle_demands_on_first_dispatch() -> None:
    assert DemandDispatcher(
        shuffle_demands_on_first_dispatch=True
    ).shuffle_demands_on_first_dispatch
    outcomes = set()
    for _ in range(200):
        d: DemandDispatcher[str] = DemandDispatcher(shuffle_demands_on_first_dispatch=True)
        d.subscribe("r1", "p1", {})
        d.subscribe("r2", "p2", {})
        d.ask(3, "r1")
        d.ask(2, "r2")
        assert d.dispatch(list("abcde")) == []
        got = tuple((sub, tuple(batch)) for sub, batch in drain(d))
        assert got in {
            (("r1", ("a", "b", "c")), ("r2", ("d", "e"))),
            (("r2", ("a", "b")), ("r1", ("c", "d", "e"))),
        }
        outcomes.add(got)
        assert not d.shuffle_demands_on_first_dispatch
        assert sorted(d.demands) == [(0, "r1"), (0, "r2")]
    assert len(outcomes) == 2


def test_dd07_shuffle_restores_sorted_order() -> None:
    d: DemandDispatcher[int] = DemandDispatcher(shuffle_demands_on_first_dispatch=True)
    for r in ("r1", "r2", "r3"):
        d.subscribe(r, "p", {})
    d.ask(5, "r1")
    d.ask(1, "r3")
    assert d.dispatch([1]) == []
    demands = [n for n, _ in d.demands]
    assert demands == sorted(demands, reverse=True)
    assert sum(demands) == 5


def test_dd08_info_is_immediate() -> None:
    d: DemandDispatcher[str] = DemandDispatcher()
    d.subscribe("r", "p", {})
    d.info("hello")
    assert drain_infos(d) == ["hello"]
    assert d.demands == [(0, "r")]


def test_dd09_max_demand_warning(caplog: pytest.LogCaptureFixture) -> None:
    d: DemandDispatcher[str] = DemandDispatcher(max_demand=3)
    d.subscribe("r", "p", {})
    with caplog.at_level(logging.WARNING, logger="flowstage"):
        assert d.ask(4, "r") == 4
    assert "DemandDispatcher expects a maximum demand of 3" in caplog.text


def test_dd09_max_demand_defaults_to_first_ask(caplog: pytest.LogCaptureFixture) -> None:
    d: DemandDispatcher[str] = DemandDispatcher()
    d.subscribe("r", "p", {})
    with caplog.at_level(logging.WARNING, logger="flowstage"):
        d.ask(5, "r")
        d.ask(5, "r")
        assert caplog.text == ""
        d.ask(6, "r")
    assert "expects a maximum demand of 5" in caplog.text


def test_dd_constructor_validation() -> None:
    with pytest.raises(TypeError, match="shuffle_demands_on_first_dispatch"):
        DemandDispatcher(shuffle_demands_on_first_dispatch=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_demand must be None or an integer >= 1, got: 0"):
        DemandDispatcher(max_demand=0)
    with pytest.raises(TypeError, match="max_demand"):
        DemandDispatcher(max_demand=2.5)  # type: ignore[arg-type]


def test_dd_unknown_subscriptions() -> None:
    d: DemandDispatcher[str] = DemandDispatcher()
    assert d.cancel("nope") == 0
    with pytest.raises(KeyError):
        d.ask(1, "nope")
    d.subscribe("r", "p", {})
    with pytest.raises(ValueError, match="already registered"):
        d.subscribe("r", "p", {})


# ------------------------------------------------------------- BroadcastDispatcher


def state(d: BroadcastDispatcher[Any]) -> tuple[dict[Hashable, int], int, int]:
    return {sub: n for n, sub in d.demands}, d.waiting, d.requested


def test_bd01_subscribe_cancel() -> None:
    d: BroadcastDispatcher[Any] = BroadcastDispatcher()
    assert d.subscribe("r", "p", {}) == 0
    assert state(d) == ({"r": 0}, 0, 0)
    assert d.cancel("r") == 0
    assert state(d) == ({}, 0, 0)


def test_bd02_ask_cancel_dispatch() -> None:
    d: BroadcastDispatcher[int] = BroadcastDispatcher()
    d.subscribe("r", "p", {})
    assert d.ask(10, "r") == 10
    assert state(d) == ({"r": 0}, 10, 10)
    assert d.cancel("r") == 0
    assert state(d) == ({}, 0, 10)
    assert d.dispatch([1, 2, 3]) == [1, 2, 3]
    assert state(d) == ({}, 0, 10)
    assert drain(d) == []


def test_bd03_new_subscriber_takes_over_requested() -> None:
    d: BroadcastDispatcher[int] = BroadcastDispatcher()
    d.subscribe("r1", "p1", {})
    assert d.ask(10, "r1") == 10
    d.subscribe("r2", "p2", {})
    assert state(d) == ({"r1": 10, "r2": 0}, 0, 10)
    assert d.cancel("r1") == 0
    assert state(d) == ({"r2": 0}, 0, 10)
    assert d.ask(10, "r2") == 0
    assert state(d) == ({"r2": 0}, 10, 10)


def test_bd04_cancel_releases_demand() -> None:
    d: BroadcastDispatcher[int] = BroadcastDispatcher()
    d.subscribe("r1", "p1", {})
    d.subscribe("r2", "p2", {})
    assert d.ask(10, "r1") == 0
    assert state(d) == ({"r1": 10, "r2": 0}, 0, 0)
    assert d.cancel("r2") == 10
    assert state(d) == ({"r1": 0}, 10, 10)
    assert d.ask(10, "r1") == 10
    assert state(d) == ({"r1": 0}, 20, 20)


def test_bd05_minimum_demand() -> None:
    d: BroadcastDispatcher[str] = BroadcastDispatcher()
    d.subscribe("r1", "p1", {})
    d.subscribe("r2", "p2", {})
    assert d.ask(3, "r1") == 0
    assert d.ask(2, "r2") == 2
    assert d.dispatch(["a", "b"]) == []
    assert drain(d) == [("r1", ["a", "b"]), ("r2", ["a", "b"])]
    assert d.ask(2, "r2") == 1
    assert d.dispatch(["c", "d"]) == ["d"]
    assert drain(d) == [("r1", ["c"]), ("r2", ["c"])]
    assert d.dispatch(["d"]) == ["d"]
    assert d.ask(1, "r1") == 1
    assert d.subscribe("r3", "p3", {}) == 0
    assert d.dispatch(["d", "e"]) == ["d", "e"]
    assert state(d) == ({"r3": 0, "r1": 1, "r2": 1}, 0, 1)
    assert drain(d) == []
    assert d.ask(2, "r1") == 0
    assert d.ask(2, "r2") == 0
    assert d.ask(3, "r3") == 2
    assert d.dispatch(["d", "e", "f"]) == []
    assert drain(d) == [(r, ["d", "e", "f"]) for r in ("r1", "r2", "r3")]
    assert state(d) == ({"r1": 0, "r2": 0, "r3": 0}, 0, 0)


def test_bd05_batches_are_distinct_lists() -> None:
    d: BroadcastDispatcher[int] = BroadcastDispatcher()
    d.subscribe("r1", "p1", {})
    d.subscribe("r2", "p2", {})
    d.ask(5, "r1")
    d.ask(5, "r2")
    d.dispatch([1, 2])
    (_, b1), (_, b2) = drain(d)
    assert b1 == b2
    assert b1 is not b2


def test_bd06_subscribe_after_dispatch() -> None:
    d: BroadcastDispatcher[str] = BroadcastDispatcher()
    d.subscribe("r1", "p1", {})
    assert d.ask(10, "r1") == 10
    assert d.dispatch(["a", "b", "c"]) == []
    assert drain(d) == [("r1", ["a", "b", "c"])]
    assert state(d) == ({"r1": 0}, 7, 7)
    d.subscribe("r2", "p2", {})
    assert state(d) == ({"r1": 7, "r2": 0}, 0, 7)
    assert d.ask(20, "r2") == 0
    assert state(d) == ({"r1": 0, "r2": 13}, 7, 7)
    events = list("defghij")
    assert d.dispatch(events) == []
    assert drain(d) == [("r1", events), ("r2", events)]
    assert state(d) == ({"r1": 0, "r2": 13}, 0, 0)


def test_bd07_cancel_then_new_subscriber() -> None:
    d: BroadcastDispatcher[str] = BroadcastDispatcher()
    d.subscribe("r1", "p1", {})
    d.ask(10, "r1")
    d.cancel("r1")
    assert state(d) == ({}, 0, 10)
    d.subscribe("r2", "p2", {})
    assert d.ask(5, "r2") == 0
    assert state(d) == ({"r2": 0}, 5, 10)
    assert d.dispatch(["a", "b", "c"]) == []
    assert drain(d) == [("r2", ["a", "b", "c"])]
    assert state(d) == ({"r2": 0}, 2, 7)


def test_bd08_cancel_of_slowest_returns_demand() -> None:
    d: BroadcastDispatcher[str] = BroadcastDispatcher()
    d.subscribe("r1", "p1", {})
    d.ask(10, "r1")
    d.subscribe("r2", "p2", {})
    assert d.ask(5, "r1") == 0
    assert state(d) == ({"r1": 15, "r2": 0}, 0, 10)
    assert d.cancel("r2") == 5
    assert state(d) == ({"r1": 0}, 15, 15)


def test_bd09_selector() -> None:
    d: BroadcastDispatcher[str] = BroadcastDispatcher()
    d.subscribe("r1", "p1", {"selector": lambda e: e.startswith("pre")})
    d.subscribe("r2", "p2", {"selector": lambda e: e.startswith("pref")})
    assert d.ask(4, "r2") == 0
    assert d.ask(4, "r1") == 4
    events = ["pref-1234", "pref-5678", "pre0000", "foo0000"]
    assert d.dispatch(events) == []
    assert drain(d) == [
        ("r1", ["pref-1234", "pref-5678", "pre0000"]),
        ("r2", ["pref-1234", "pref-5678"]),
    ]
    assert drain_reasks(d) == [("r1", 1), ("r2", 2)]


def test_bd09_selector_rejecting_everything_delivers_nothing() -> None:
    d: BroadcastDispatcher[int] = BroadcastDispatcher()
    d.subscribe("r1", "p1", {"selector": lambda e: False})
    assert d.ask(2, "r1") == 2
    assert d.dispatch([1, 2]) == []
    assert drain(d) == []
    assert drain_reasks(d) == [("r1", 2)]
    # Replaying the re-ask gives the demand back.
    assert d.ask(2, "r1") == 2


def test_bd09_selector_validation() -> None:
    d: BroadcastDispatcher[int] = BroadcastDispatcher()
    with pytest.raises(TypeError, match=":selector option must be passed a unary function"):
        d.validate_subscribe({"selector": 5})
    with pytest.raises(TypeError, match=":selector option must be passed a unary function"):
        d.subscribe("r", "p", {"selector": "nope"})
    d.validate_subscribe({})
    d.validate_subscribe({"selector": None})
    d.validate_subscribe({"selector": bool})
    assert state(d) == ({}, 0, 0)


def test_bd10_already_subscribed(caplog: pytest.LogCaptureFixture) -> None:
    d: BroadcastDispatcher[int] = BroadcastDispatcher()
    d.subscribe("r1", "p", {})
    d.ask(3, "r1")
    before = state(d)
    with (
        caplog.at_level(logging.ERROR, logger="flowstage"),
        pytest.raises(SubscriptionRejected, match="is already registered") as info,
    ):
        d.subscribe("r2", "p", {})
    assert info.value.reason == "already_subscribed"
    assert "already registered" in caplog.text
    assert state(d) == before
    # The producer may cancel the rejected subscription: that must not affect r1.
    assert d.cancel("r2") == 0
    assert state(d) == before
    with pytest.raises(SubscriptionRejected):
        d.subscribe("r3", "p", {})


def test_bd_info_is_immediate() -> None:
    d: BroadcastDispatcher[int] = BroadcastDispatcher()
    d.info("hello")
    assert drain_infos(d) == ["hello"]


# ------------------------------------------------------------- PartitionDispatcher


def wp(d: PartitionDispatcher[Any]) -> tuple[int, int]:
    return d.waiting, d.pending


def like_phash2(event: int) -> tuple[int, int]:
    """Where ``:erlang.phash2(event, 2)`` sends the events used in the upstream tests."""
    return event, 0 if event in {1, 2, 5, 6, 7} else 1


def test_pd01_subscribe_ask_cancel() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2, hash=like_phash2)
    assert d.subscribe("r", "p", {"partition": 0}) == 0
    assert d.ask(10, "r") == 10
    assert wp(d) == (10, 0)
    assert d.cancel("r") == 0
    assert wp(d) == (10, 10)

    assert d.subscribe("r", "p", {"partition": 1}) == 0
    assert d.ask(5, "r") == 0
    assert wp(d) == (10, 5)
    assert d.cancel("r") == 0
    assert wp(d) == (10, 10)

    # No consumers: the events are queued in their (consumer-less) partitions.
    assert d.dispatch([0, 1, 2, 3]) == []
    assert wp(d) == (6, 10)
    assert d.queued() == 4
    assert drain(d) == []


def test_pd01_default_hash() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2)
    d.subscribe("r", "p", {"partition": 0})
    d.ask(10, "r")
    d.cancel("r")
    assert d.dispatch([0, 1, 2, 3]) == []
    assert wp(d) == (6, 10)
    assert d.queued() == 4


def test_pd02_ask_and_dispatch() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(1)
    d.subscribe("r", "p", {"partition": 0})
    assert d.ask(3, "r") == 3
    assert d.dispatch([1]) == []
    assert wp(d) == (2, 0)
    assert drain(d) == [("r", [1])]
    assert d.ask(3, "r") == 3
    assert wp(d) == (5, 0)
    assert d.dispatch([2, 5, 6, 7, 8, 9, 11]) == [9, 11]
    assert wp(d) == (0, 0)
    assert drain(d) == [("r", [2, 5, 6, 7, 8])]


def test_pd03_custom_partitions() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(
        ["odd", "even"], hash=lambda e: (e, "even" if e % 2 == 0 else "odd")
    )
    d.subscribe("r", "p", {"partition": "odd"})
    assert d.ask(3, "r") == 3
    assert d.dispatch([1]) == []
    assert wp(d) == (2, 0)
    assert drain(d) == [("r", [1])]
    assert d.ask(3, "r") == 3
    assert wp(d) == (5, 0)
    assert d.dispatch([5, 7, 9, 11, 13, 15, 17]) == [15, 17]
    assert wp(d) == (0, 0)
    assert drain(d) == [("r", [5, 7, 9, 11, 13])]


def test_pd04_hash_may_discard() -> None:
    def hash_fn(e: int) -> tuple[int, str] | None:
        if e % 3 == 0:
            return None
        return e, "even" if e % 2 == 0 else "odd"

    d: PartitionDispatcher[int] = PartitionDispatcher(["odd", "even"], hash=hash_fn)
    d.subscribe("even", "p", {"partition": "even"})
    d.subscribe("odd", "p", {"partition": "odd"})
    assert d.ask(4, "even") == 4
    assert d.ask(4, "odd") == 4
    assert d.dispatch(list(range(1, 13))) == [12]
    assert sorted(drain(d)) == [("even", [2, 4, 8, 10]), ("odd", [1, 5, 7, 11])]
    assert wp(d) == (0, 0)


def test_pd04_hash_may_rewrite_events() -> None:
    d: PartitionDispatcher[Any] = PartitionDispatcher(2, hash=lambda e: (e * 10, e % 2))
    d.subscribe("r", "p", {"partition": 1})
    d.ask(2, "r")
    assert d.dispatch([1, 3]) == []
    assert drain(d) == [("r", [10, 30])]


def test_pd05_buffers_events_before_subscription() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2, hash=like_phash2)
    d.subscribe("r1", "p1", {"partition": 1})
    assert d.ask(5, "r1") == 5
    assert d.dispatch([1, 2, 5, 6, 7]) == []
    assert wp(d) == (0, 0)
    assert drain(d) == []
    assert d.dispatch([8, 9]) == [8, 9]
    assert wp(d) == (0, 0)

    d.subscribe("r0", "p0", {"partition": 0})
    assert d.ask(5, "r0") == 5
    assert wp(d) == (5, 0)
    assert drain(d) == [("r0", [1, 2, 5, 6, 7])]
    assert d.dispatch([1, 2]) == []
    assert wp(d) == (3, 0)
    # Partition 0 has no demand left: the events are queued.
    assert drain(d) == []
    assert d.queued_in(0) == 2


def test_pd06_buffers_events_after_subscription() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2, hash=like_phash2)
    d.subscribe("r0", "p0", {"partition": 0})
    assert d.ask(5, "r0") == 5
    assert wp(d) == (5, 0)
    d.subscribe("r1", "p1", {"partition": 1})
    assert d.ask(5, "r1") == 5
    assert wp(d) == (10, 0)

    assert d.dispatch([1, 2]) == []
    assert d.dispatch([5, 6, 7, 1, 2, 5, 6, 7]) == []
    assert wp(d) == (0, 0)
    assert drain(d) == [("r0", [1, 2]), ("r0", [5, 6, 7])]

    assert d.ask(5, "r0") == 5
    assert wp(d) == (5, 0)
    assert drain(d) == [("r0", [1, 2, 5, 6, 7])]
    assert d.queued() == 0


def test_pd07_cancel_with_queue_drops_and_reasks() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2, hash=like_phash2)
    d.subscribe("r1", "p1", {"partition": 1})
    assert d.ask(5, "r1") == 5
    assert wp(d) == (5, 0)
    d.subscribe("r0", "p0", {"partition": 0})
    assert d.dispatch([1, 2, 5, 6, 7]) == []
    assert wp(d) == (0, 0)
    assert drain(d) == []

    # The info does not count as an event.
    d.info("hello")
    assert drain_infos(d) == []
    assert d.cancel("r0") == 5
    assert wp(d) == (5, 0)
    assert d.queued() == 0
    assert drain_infos(d) == ["hello"]


def test_pd08_info_waits_for_backed_up_partitions() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2, hash=like_phash2)
    d.subscribe("r0", "p", {"partition": 0})
    d.subscribe("r1", "p", {"partition": 1})
    assert d.ask(3, "r1") == 3
    assert d.dispatch([1, 2, 5]) == []
    d.info("hello")
    assert drain_infos(d) == []
    assert d.ask(5, "r0") == 5
    assert drain(d) == [("r0", [1, 2, 5])]
    assert drain_infos(d) == ["hello"]
    assert d.demand_of(0) == 2


def test_pd08_info_immediate_without_queues() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2)
    d.info("a")
    assert drain_infos(d) == ["a"]
    d.subscribe("r0", "p", {"partition": 0})
    d.subscribe("r1", "p", {"partition": 1})
    d.ask(3, "r1")
    d.info("b")
    assert drain_infos(d) == ["b"]


def test_pd08_info_after_partial_flush_and_fifo() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2, hash=like_phash2)
    d.subscribe("r0", "p", {"partition": 0})
    d.subscribe("r1", "p", {"partition": 1})
    d.ask(6, "r1")
    assert d.dispatch([1, 2, 8, 9]) == []  # 1, 2 queue in p0; 8, 9 go to r1
    d.info("first")
    assert d.dispatch([5, 6]) == []  # behind "first" in p0's queue
    d.info("second")
    assert drain(d) == [("r1", [8, 9])]
    assert d.ask(1, "r0") == 1
    assert drain(d) == [("r0", [1])]
    assert drain_infos(d) == []
    assert d.ask(2, "r0") == 2
    assert drain(d) == [("r0", [2, 5])]
    assert drain_infos(d) == ["first"]
    assert d.ask(5, "r0") == 5
    assert drain(d) == [("r0", [6])]
    assert drain_infos(d) == ["second"]
    assert d.demand_of(0) == 4


def test_pd08_info_waits_for_every_backed_up_partition() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2, hash=like_phash2)
    # Demand left by a cancelled subscription lets both partitions back up at once.
    d.subscribe("old", "p", {"partition": 0})
    assert d.ask(5, "old") == 5
    d.cancel("old")
    d.subscribe("r0", "p", {"partition": 0})
    d.subscribe("r1", "p", {"partition": 1})
    assert d.dispatch([1, 2, 8, 9]) == []
    assert drain(d) == []
    assert (d.queued_in(0), d.queued_in(1)) == (2, 2)
    d.info("x")
    assert d.ask(2, "r1") == 0  # covered by the pending demand
    assert drain(d) == [("r1", [8, 9])]
    assert drain_infos(d) == []  # partition 0 still holds 1, 2
    d.ask(1, "r0")
    assert drain(d) == [("r0", [1])]
    assert drain_infos(d) == []
    d.ask(1, "r0")
    assert drain(d) == [("r0", [2])]
    assert drain_infos(d) == ["x"]


def test_pd09_unknown_partition_from_hash() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(["foo", "bar"], hash=lambda e: (e, "oops"))
    d.subscribe("r", "p", {"partition": "foo"})
    d.ask(3, "r")
    with pytest.raises(RuntimeError, match="unknown partition 'oops' computed for event 1"):
        d.dispatch([1, 2, 5])
    # The state is unchanged.
    assert wp(d) == (3, 0)


def test_pd09_unhashable_partition_from_hash() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2, hash=lambda e: (e, [0]))  # type: ignore[arg-type,return-value]
    d.subscribe("r", "p", {"partition": 0})
    d.ask(3, "r")
    with pytest.raises(RuntimeError, match=r"unknown partition \[0\]"):
        d.dispatch([1])


@pytest.mark.parametrize("bad", ["not_a_tuple", (1,), (1, 2, 3), [1, 0]])
def test_pd09_bad_hash_return(bad: object) -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(["foo", "bar"], hash=lambda e: bad)  # type: ignore[arg-type,return-value]
    d.subscribe("r", "p", {"partition": "foo"})
    d.ask(3, "r")
    with pytest.raises(
        RuntimeError, match=r"the hash function should return \(event, partition\) or None"
    ):
        d.dispatch([1, 2, 5])
    assert wp(d) == (3, 0)
    assert drain(d) == []


def test_pd09_constructor_errors() -> None:
    with pytest.raises(TypeError, match="partitions is required"):
        PartitionDispatcher(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="when partitions contains partitions that are not int"):
        PartitionDispatcher(["even", "odd"])
    with pytest.raises(ValueError, match=r"partitions must be an integer >= 1, got: 0"):
        PartitionDispatcher(0)
    with pytest.raises(TypeError, match="partitions must be an integer >= 1 or an iterable"):
        PartitionDispatcher(True)
    with pytest.raises(TypeError, match="partitions must be an integer >= 1 or an iterable"):
        PartitionDispatcher("ab")
    with pytest.raises(ValueError, match="at least one partition"):
        PartitionDispatcher([])
    with pytest.raises(ValueError, match="distinct"):
        PartitionDispatcher([0, 0])
    with pytest.raises(ValueError, match=r"partitions must be 0 \.\. 1"):
        PartitionDispatcher([5, 7])
    with pytest.raises(TypeError, match="hash must be a callable"):
        PartitionDispatcher(2, hash=5)  # type: ignore[arg-type]
    assert PartitionDispatcher([1, 0]).partitions == [1, 0]
    assert PartitionDispatcher(3).partitions == [0, 1, 2]


def test_pd09_subscribe_errors() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2)
    with pytest.raises(
        ValueError, match="the partition option is required when subscribing to a producer"
    ):
        d.validate_subscribe({})
    with pytest.raises(ValueError, match="the partition option is required when subscribing"):
        d.subscribe("r", "p", {})
    for bad in (-1, 2, "oops", True, [0]):
        with pytest.raises(ValueError, match=r"partition must be one of \[0, 1\], got: "):
            d.validate_subscribe({"partition": bad})
    with pytest.raises(ValueError, match=r"partition must be one of \[0, 1\], got: 2$"):
        d.subscribe("r", "p", {"partition": 2})

    d.subscribe("r", "p", {"partition": 0})
    with pytest.raises(SubscriptionRejected, match="the partition 0 is already taken by") as info:
        d.subscribe("r2", "p2", {"partition": 0})
    assert info.value.reason == "partition_taken"
    # Freed by a cancel.
    d.cancel("r")
    d.subscribe("r2", "p2", {"partition": 0})


def test_pd_queued_events_survive_until_subscribe() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2, hash=like_phash2)
    d.subscribe("r1", "p1", {"partition": 1})
    d.ask(6, "r1")
    assert d.dispatch([1, 8, 2, 9, 5, 6]) == []
    assert drain(d) == [("r1", [8, 9])]
    assert d.queued_in(0) == 4
    d.subscribe("r0", "p0", {"partition": 0})
    assert d.ask(3, "r0") == 3
    assert drain(d) == [("r0", [1, 2, 5])]
    assert d.ask(3, "r0") == 3
    assert drain(d) == [("r0", [6])]
    assert d.demand_of(0) == 2
    assert d.queued() == 0


def test_pd_unknown_subscriptions() -> None:
    d: PartitionDispatcher[int] = PartitionDispatcher(2)
    assert d.cancel("nope") == 0
    with pytest.raises(KeyError):
        d.ask(1, "nope")
