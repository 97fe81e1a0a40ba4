"""Property-based tests: each dispatcher driven by random subscribe/ask/cancel/dispatch/info.

The harness plays the producer: it buffers leftovers (and may dispatch them again),
replays the broadcast dispatcher's re-asks, and tracks every event by a unique id.

Invariants checked after every step:

* no subscription is ever delivered more than it asked for;
* every dispatched event is delivered, returned as leftover (then buffered), queued
  in the dispatcher, or (partition) dropped by the hash or by a cancel; nothing is
  lost or duplicated, and order is preserved;
* (partition) a key never reaches two partitions;
* infos come out in FIFO order, and only once the events queued before them are gone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from flowstage._hash import partition_of
from flowstage.dispatchers import (
    BroadcastDispatcher,
    DemandDispatcher,
    Dispatcher,
    PartitionDispatcher,
    SubscriptionRejected,
)

SETTINGS = settings(max_examples=100, deadline=None, stateful_step_count=40)


class _Harness(RuleBasedStateMachine):
    dispatcher: Dispatcher[Any]

    def __init__(self) -> None:
        super().__init__()
        self.next_sub = 0
        self.next_event = 0
        self.next_info = 0
        self.active: list[str] = []
        self.asked: dict[str, int] = {}
        self.delivered: dict[str, int] = {}
        self.buffer: list[Any] = []  # the producer's buffer (leftovers), in order
        self.dispatched: list[Any] = []
        self.released: list[int] = []
        self.infos_issued: list[int] = []
        self.upstream = 0

    # -- helpers -------------------------------------------------------------------

    def new_sub(self) -> str:
        sub = f"s{self.next_sub}"
        self.next_sub += 1
        return sub

    def fresh_events(self, k: int) -> list[Any]:
        events = list(range(self.next_event, self.next_event + k))
        self.next_event += k
        return events

    def pick(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.active))

    def record_delivery(self, sub: Hashable, batch: list[Any]) -> None:
        assert batch, "empty batch delivered"
        assert sub in self.active, f"delivery to unknown subscription {sub!r}"
        assert isinstance(sub, str)
        self.delivered[sub] += len(batch)
        assert self.delivered[sub] <= self.asked[sub], (
            f"{sub} got {self.delivered[sub]} events but asked for {self.asked[sub]}"
        )

    def collect_infos(self) -> None:
        d = self.dispatcher
        self.released.extend(d.ready_infos)  # type: ignore[arg-type]
        d.ready_infos.clear()
        assert self.released == self.infos_issued[: len(self.released)], "infos out of order"

    # -- shared rules ---------------------------------------------------------------

    @precondition(lambda self: self.active)
    @rule(data=st.data(), n=st.integers(1, 8))
    def ask(self, data: st.DataObject, n: int) -> None:
        sub = self.pick(data)
        self.asked[sub] += n
        self.on_ask(sub, n)
        self.upstream += self.dispatcher.ask(n, sub)
        self.after_ask(sub)

    def on_ask(self, sub: str, n: int) -> None:
        pass

    def after_ask(self, sub: str) -> None:
        d = self.dispatcher
        assert not d.deliveries, "only the partition dispatcher delivers on ask"
        self.collect_infos()

    @rule(k=st.integers(0, 12))
    def dispatch_new(self, k: int) -> None:
        self.do_dispatch(self.fresh_events(k), fresh=True)

    @precondition(lambda self: self.buffer)
    @rule()
    def dispatch_buffered(self) -> None:
        events, self.buffer = self.buffer, []
        self.do_dispatch(events, fresh=False)

    @rule()
    def info(self) -> None:
        msg = self.next_info
        self.next_info += 1
        self.infos_issued.append(msg)
        self.before_info(msg)
        self.dispatcher.info(msg)
        self.collect_infos()

    def before_info(self, msg: int) -> None:
        pass

    def do_dispatch(self, events: list[Any], *, fresh: bool) -> None:
        raise NotImplementedError

    @invariant()
    def infos_fifo(self) -> None:
        if hasattr(self, "dispatcher"):
            assert self.released == self.infos_issued[: len(self.released)]


# ------------------------------------------------------------------------- demand


class DemandMachine(_Harness):
    def __init__(self) -> None:
        super().__init__()
        self.dispatcher = DemandDispatcher[int]()
        self.got: list[int] = []
        # Events requested upstream for cancelled subscriptions (GenStage's rule).
        self.pending = 0

    @precondition(lambda self: self.active)
    @rule(data=st.data(), n=st.integers(1, 8))
    def ask(self, data: st.DataObject, n: int) -> None:
        sub = self.pick(data)
        self.asked[sub] += n
        already = min(self.pending, n)
        self.pending -= already
        assert self.dispatcher.ask(n, sub) == n - already
        self.after_ask(sub)

    @rule()
    def subscribe(self) -> None:
        sub = self.new_sub()
        assert self.dispatcher.subscribe(sub, f"owner-{sub}", {}) == 0
        self.active.append(sub)
        self.asked[sub] = self.delivered[sub] = 0

    @precondition(lambda self: self.active)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        sub = self.pick(data)
        self.active.remove(sub)
        self.pending += self.asked[sub] - self.delivered[sub]
        assert self.dispatcher.cancel(sub) == 0

    def do_dispatch(self, events: list[int], *, fresh: bool) -> None:
        d = self.dispatcher
        assert isinstance(d, DemandDispatcher)
        if fresh:
            self.dispatched.extend(events)
        leftover = d.dispatch(list(events))
        out: list[int] = []
        for sub, batch in d.deliveries:
            self.record_delivery(sub, batch)
            out.extend(batch)
        d.deliveries.clear()
        # Deliveries are consecutive slices; leftovers are the tail.
        assert out + leftover == events
        if leftover:
            assert all(n == 0 for n, _ in d.demands), "events left over despite demand"
        self.got.extend(out)
        self.buffer.extend(leftover)
        self.pending = max(self.pending - len(leftover), 0)
        assert d.pending == self.pending

    @invariant()
    def conservation(self) -> None:
        assert sorted(self.got + self.buffer) == self.dispatched
        assert len(set(self.got)) == len(self.got)

    @invariant()
    def sorted_demands(self) -> None:
        demands = [n for n, _ in self.dispatcher.demands]  # type: ignore[attr-defined]
        assert demands == sorted(demands, reverse=True)
        assert all(n >= 0 for n in demands)
        assert sorted(s for _, s in self.dispatcher.demands) == sorted(self.active)  # type: ignore[attr-defined]

    @invariant()
    def outstanding_matches_asks(self) -> None:
        d = self.dispatcher
        for n, sub in d.demands:  # type: ignore[attr-defined]
            assert n == self.asked[sub] - self.delivered[sub]


class ShuffledDemandMachine(DemandMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dispatcher = DemandDispatcher[int](shuffle_demands_on_first_dispatch=True)


# ---------------------------------------------------------------------- broadcast

SELECTORS: list[Callable[[int], bool] | None] = [
    None,
    None,
    lambda e: e % 3 != 0,
    lambda e: e % 2 == 0,
]


class BroadcastMachine(_Harness):
    def __init__(self) -> None:
        super().__init__()
        self.dispatcher = BroadcastDispatcher[int]()
        self.selector: dict[str, Callable[[int], bool] | None] = {}
        self.owner: dict[str, str] = {}
        self.seen: dict[str, set[int]] = {}
        # Demand as the dispatcher must see it: explicit asks plus replayed re-asks,
        # minus events sent (selected or rejected alike).
        self.outstanding: dict[str, int] = {}
        self.sent_total = 0

    @rule(which=st.integers(0, len(SELECTORS) - 1))
    def subscribe(self, which: int) -> None:
        sub = self.new_sub()
        selector = SELECTORS[which]
        opts = {} if selector is None else {"selector": selector}
        assert self.dispatcher.subscribe(sub, f"owner-{sub}", opts) == 0
        self.active.append(sub)
        self.asked[sub] = self.delivered[sub] = 0
        self.selector[sub] = selector
        self.owner[sub] = f"owner-{sub}"
        self.outstanding[sub] = 0
        self.seen[sub] = set()

    def on_ask(self, sub: str, n: int) -> None:
        self.outstanding[sub] += n

    @precondition(lambda self: self.active)
    @rule(data=st.data())
    def subscribe_same_owner(self, data: st.DataObject) -> None:
        existing = self.pick(data)
        before = self.dispatcher.demands  # type: ignore[attr-defined]
        with pytest.raises(SubscriptionRejected) as info:
            self.dispatcher.subscribe(self.new_sub(), self.owner[existing], {})
        assert info.value.reason == "already_subscribed"
        assert self.dispatcher.demands == before  # type: ignore[attr-defined]

    @precondition(lambda self: self.active)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        sub = self.pick(data)
        self.active.remove(sub)
        self.upstream += self.dispatcher.cancel(sub)

    def do_dispatch(self, events: list[int], *, fresh: bool) -> None:
        d = self.dispatcher
        assert isinstance(d, BroadcastDispatcher)
        if fresh:
            self.dispatched.extend(events)
        leftover = d.dispatch(list(events))
        assert leftover == events[len(events) - len(leftover) :]
        sent = events[: len(events) - len(leftover)]
        if leftover:
            assert d.waiting == 0
        if sent:
            assert self.active, "events sent with no subscription"
        batches: dict[Hashable, list[int]] = {}
        for sub, batch in d.deliveries:
            assert sub not in batches, "two batches for one subscription in one dispatch"
            batches[sub] = batch
            self.record_delivery(sub, batch)
        d.deliveries.clear()
        reasks = dict(d.reasks)
        d.reasks.clear()
        self.sent_total += len(sent)
        for sub in self.active:
            self.outstanding[sub] -= len(sent)
            selector = self.selector[sub]
            expected = sent if selector is None else [e for e in sent if selector(e)]
            assert batches.get(sub, []) == expected
            assert reasks.get(sub, 0) == len(sent) - len(expected)
            assert not self.seen[sub] & set(expected), "duplicate delivery"
            self.seen[sub] |= set(expected)
        # The producer replays the re-asks on the subscriptions' behalf.
        for sub, n in reasks.items():
            assert isinstance(sub, str)
            self.outstanding[sub] += n
            self.upstream += d.ask(n, sub)
        self.buffer.extend(leftover)

    @invariant()
    def counters(self) -> None:
        d = self.dispatcher
        assert isinstance(d, BroadcastDispatcher)
        assert 0 <= d.waiting <= d.requested
        demands = [n for n, _ in d.demands]
        assert all(n >= 0 for n in demands)
        if demands:
            assert min(demands) == 0
        assert sorted(s for _, s in d.demands) == sorted(self.active)  # type: ignore[type-var]
        assert sorted(self.buffer) == sorted(set(self.buffer))
        for n, sub in d.demands:
            assert isinstance(sub, str)
            assert n + d.waiting == self.outstanding[sub], "demand lost or invented"
        assert d.requested == self.upstream - self.sent_total


# ---------------------------------------------------------------------- partition

N_PARTITIONS = 3


def key_of(event: tuple[int, int]) -> int:
    return event[1]


def part_hash(event: tuple[int, int]) -> tuple[tuple[int, int], int] | None:
    key = event[1]
    if key % 7 == 6:
        return None
    return event, partition_of(key, N_PARTITIONS)


class PartitionMachine(_Harness):
    def __init__(self) -> None:
        super().__init__()
        self.dispatcher = PartitionDispatcher[tuple[int, int]](N_PARTITIONS, hash=part_hash)
        self.part_of_sub: dict[str, int] = {}
        self.sub_of_part: dict[int, str] = {}
        self.queues: dict[int, deque[tuple[int, int]]] = {p: deque() for p in range(N_PARTITIONS)}
        self.key_part: dict[int, int] = {}
        self.got: list[tuple[int, int]] = []
        self.hash_dropped: list[tuple[int, int]] = []
        self.cancel_dropped: list[tuple[int, int]] = []
        self.info_snapshot: dict[int, set[tuple[int, int]]] = {}

    def fresh_events(self, k: int) -> list[Any]:
        ids = super().fresh_events(k)
        # Few keys, so keys repeat across events.
        return [(i, (i * 7919) % 23) for i in ids]

    @rule(p=st.integers(0, N_PARTITIONS - 1))
    def subscribe(self, p: int) -> None:
        sub = self.new_sub()
        d = self.dispatcher
        if p in self.sub_of_part:
            with pytest.raises(SubscriptionRejected) as info:
                d.subscribe(sub, "o", {"partition": p})
            assert info.value.reason == "partition_taken"
            return
        assert d.subscribe(sub, "o", {"partition": p}) == 0
        self.active.append(sub)
        self.asked[sub] = self.delivered[sub] = 0
        self.part_of_sub[sub] = p
        self.sub_of_part[p] = sub

    @precondition(lambda self: self.active)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        sub = self.pick(data)
        p = self.part_of_sub.pop(sub)
        del self.sub_of_part[p]
        self.active.remove(sub)
        returned = self.dispatcher.cancel(sub)
        dropped = list(self.queues[p])
        self.queues[p].clear()
        assert returned == len(dropped)
        self.cancel_dropped.extend(dropped)
        self.upstream += returned
        self.collect_infos()

    def after_ask(self, sub: str) -> None:
        d = self.dispatcher
        p = self.part_of_sub[sub]
        for dsub, batch in d.deliveries:
            assert dsub == sub
            self.record_delivery(dsub, batch)
            queue = self.queues[p]
            head = [queue.popleft() for _ in range(len(batch))]
            assert batch == head, "ask must serve the partition's queue in order"
            self.note_keys(p, batch)
        d.deliveries.clear()
        self.collect_infos()

    def note_keys(self, p: int, batch: list[tuple[int, int]]) -> None:
        for event in batch:
            assert part_hash(event) == (event, p)
            assert self.key_part.setdefault(key_of(event), p) == p, "key in two partitions"
        self.got.extend(batch)

    def do_dispatch(self, events: list[Any], *, fresh: bool) -> None:
        d = self.dispatcher
        assert isinstance(d, PartitionDispatcher)
        if fresh:
            self.dispatched.extend(events)
        waiting = d.waiting
        leftover = d.dispatch(list(events))
        taken = events[: len(events) - len(leftover)]
        assert leftover == events[len(taken) :]
        accepted: dict[int, list[tuple[int, int]]] = {p: [] for p in range(N_PARTITIONS)}
        n_accepted = 0
        for event in taken:
            result = part_hash(event)
            if result is None:
                self.hash_dropped.append(event)
            else:
                accepted[result[1]].append(event)
                n_accepted += 1
        assert n_accepted <= waiting
        if leftover:
            assert n_accepted == waiting
            assert d.waiting == 0
        delivered: dict[int, list[tuple[int, int]]] = {}
        for sub, batch in d.deliveries:
            assert isinstance(sub, str)
            p = self.part_of_sub[sub]
            assert p not in delivered
            delivered[p] = batch
            self.record_delivery(sub, batch)
        d.deliveries.clear()
        for p, events_p in accepted.items():
            got = delivered.get(p, [])
            if self.queues[p]:
                assert got == [], "delivered past queued events"
            assert got == events_p[: len(got)]
            self.note_keys(p, got)
            self.queues[p].extend(events_p[len(got) :])
        self.buffer.extend(leftover)
        self.collect_infos()

    def before_info(self, msg: int) -> None:
        self.info_snapshot[msg] = {e for q in self.queues.values() for e in q}

    def collect_infos(self) -> None:
        super().collect_infos()
        queued = {e for q in self.queues.values() for e in q}
        for msg in self.released:
            snapshot = self.info_snapshot.pop(msg, None)
            if snapshot is not None:
                assert not snapshot & queued, "info released before earlier events"
        for msg, snapshot in self.info_snapshot.items():
            if msg in self.infos_issued and msg not in self.released:
                assert snapshot & queued, f"info {msg} held although nothing precedes it"

    @invariant()
    def conservation(self) -> None:
        d = self.dispatcher
        queued = [e for q in self.queues.values() for e in q]
        assert d.queued() == len(queued)
        for p in range(N_PARTITIONS):
            assert d.queued_in(p) == len(self.queues[p])  # type: ignore[attr-defined]
            if self.queues[p]:
                assert d.demand_of(p) == 0  # type: ignore[attr-defined]
        everything = self.got + self.buffer + self.hash_dropped + self.cancel_dropped + queued
        assert sorted(everything) == self.dispatched, "events lost or duplicated"

    @invariant()
    def demand_accounting(self) -> None:
        d = self.dispatcher
        assert isinstance(d, PartitionDispatcher)
        demand = sum(d.demand_of(p) for p in range(N_PARTITIONS))
        assert d.waiting == demand - d.queued() + d.pending
        for sub, p in self.part_of_sub.items():
            assert d.demand_of(p) <= self.asked[sub] - self.delivered[sub]


TestDemandDispatcher = DemandMachine.TestCase
TestDemandDispatcher.settings = SETTINGS
TestShuffledDemandDispatcher = ShuffledDemandMachine.TestCase
TestShuffledDemandDispatcher.settings = settings(SETTINGS, max_examples=50)
TestBroadcastDispatcher = BroadcastMachine.TestCase
TestBroadcastDispatcher.settings = SETTINGS
TestPartitionDispatcher = PartitionMachine.TestCase
TestPartitionDispatcher.settings = SETTINGS
