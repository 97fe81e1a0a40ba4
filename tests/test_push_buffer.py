"""The pure cores of push sources and fan-out: PushBuffer, DropLog, SubscriberQueue."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowstage._fanout_queue import SubscriberQueue
from flowstage._push_buffer import DropLog, PushBuffer

# -- PushBuffer: one event at a time ---------------------------------------------------


def filled(capacity: int, overflow: str, n: int) -> PushBuffer[int]:
    buf: PushBuffer[int] = PushBuffer(capacity, overflow)  # type: ignore[arg-type]
    for i in range(n):
        assert buf.offer(i, can_wait=False) == "accepted"
    return buf


def test_accepts_up_to_capacity_and_hands_out_in_order() -> None:
    buf = filled(3, "block", 3)
    assert len(buf) == 3
    assert buf.room == 0
    items, woken = buf.take(2)
    assert (items, woken) == ([0, 1], [])
    assert buf.take(10)[0] == [2]
    assert buf.take(10)[0] == []
    assert (buf.pushed, buf.accepted, buf.dropped, buf.rejected) == (3, 3, 0, 0)


def test_drop_oldest_keeps_the_newest() -> None:
    buf = filled(3, "drop_oldest", 3)
    assert buf.offer(3, can_wait=True) == "dropped_oldest"
    assert buf.offer(4, can_wait=False) == "dropped_oldest"
    assert buf.take(10)[0] == [2, 3, 4]
    assert (buf.pushed, buf.accepted, buf.dropped, buf.rejected) == (5, 5, 2, 0)


def test_drop_newest_keeps_the_oldest() -> None:
    buf = filled(2, "drop_newest", 2)
    assert buf.offer(2, can_wait=True) == "dropped_newest"
    assert buf.take(10)[0] == [0, 1]
    assert (buf.pushed, buf.accepted, buf.dropped, buf.rejected) == (3, 2, 1, 0)


def test_reject_refuses_without_changing_the_buffer() -> None:
    buf = filled(2, "reject", 2)
    assert buf.offer(2, can_wait=True) == "rejected"
    assert buf.take(10)[0] == [0, 1]
    assert (buf.pushed, buf.accepted, buf.dropped, buf.rejected) == (3, 2, 0, 1)


def test_block_asks_a_caller_that_can_wait_to_wait_and_rejects_one_that_cannot() -> None:
    buf = filled(2, "block", 2)
    assert buf.offer(2, can_wait=False) == "rejected"
    assert buf.offer(2, can_wait=True) is None
    assert (buf.pushed, buf.rejected) == (3, 1)


# -- PushBuffer: waiting pushers ("block") ------------------------------------------------


def test_waiting_events_are_admitted_in_order_as_room_frees() -> None:
    buf = filled(2, "block", 2)
    first = buf.wait([10, 11, 12], "first")
    second = buf.wait([20], "second")
    assert buf.waiting == 4
    assert buf.room == 0
    # A new event never overtakes waiting ones.
    assert buf.offer(99, can_wait=False) == "rejected"
    items, woken = buf.take(1)
    assert items == [0]
    assert woken == []
    assert first.admitted == 1
    items, woken = buf.take(3)
    # The buffer refills from the line while the taker wants more.
    assert items == [1, 10, 11]
    # Room for 12 and 20: both pushers are done.
    assert woken == [first, second]
    assert first.done
    assert second.done
    assert buf.waiting == 0
    items, woken = buf.take(10)
    assert (items, woken) == ([12, 20], [])
    assert (buf.pushed, buf.accepted) == (2 + 4 + 1, 6)


def test_a_withdrawn_waiter_keeps_what_was_admitted_and_is_not_counted_further() -> None:
    buf = filled(1, "block", 1)
    waiter = buf.wait([1, 2, 3], None)
    buf.take(1)
    assert waiter.admitted == 1
    assert buf.withdraw(waiter) == 1
    assert buf.waiting == 0
    assert buf.take(10)[0] == [1]
    assert (buf.pushed, buf.accepted) == (2, 2)
    assert buf.withdraw(waiter) == 1  # idempotent


def test_clear_waiters_empties_the_line() -> None:
    buf = filled(1, "block", 1)
    a = buf.wait([1], "a")
    b = buf.wait([2, 3], "b")
    assert buf.clear_waiters() == [a, b]
    assert not a.queued
    assert not b.queued
    assert buf.waiting == 0
    assert buf.pushed == 1
    assert buf.take(10) == ([0], [])


# -- PushBuffer: batches ------------------------------------------------------------------


def test_offer_many_takes_everything_that_fits() -> None:
    buf = filled(5, "reject", 1)
    assert buf.offer_many([1, 2, 3], can_wait=True) == []
    assert buf.take(10)[0] == [0, 1, 2, 3]


def test_offer_many_reject_is_all_or_nothing() -> None:
    buf = filled(4, "reject", 2)
    assert buf.offer_many([1, 2, 3], can_wait=True) == []
    assert buf.rejected == 3
    assert buf.take(10)[0] == [0, 1]


def test_offer_many_drop_oldest_keeps_the_newest_capacity() -> None:
    buf = filled(4, "drop_oldest", 3)
    buf.offer_many([10, 11, 12], can_wait=True)
    assert buf.take(10)[0] == [2, 10, 11, 12]
    assert buf.dropped == 2
    big = filled(3, "drop_oldest", 2)
    big.offer_many(list(range(10, 20)), can_wait=True)
    assert big.take(10)[0] == [17, 18, 19]
    assert big.dropped == 2 + 7


def test_offer_many_drop_newest_takes_what_fits() -> None:
    buf = filled(4, "drop_newest", 2)
    buf.offer_many([10, 11, 12], can_wait=True)
    assert buf.take(10)[0] == [0, 1, 10, 11]
    assert buf.dropped == 1


def test_offer_many_block_returns_what_must_wait() -> None:
    buf = filled(4, "block", 2)
    rest = buf.offer_many([10, 11, 12, 13, 14], can_wait=True)
    assert rest == [12, 13, 14]
    assert buf.accepted == 4
    waiter = buf.wait(rest, None)
    items, woken = buf.take(100)
    assert items == [0, 1, 10, 11, 12, 13, 14]
    assert woken == [waiter]
    assert buf.pushed == 7


@pytest.mark.parametrize("overflow", ["block", "drop_oldest", "drop_newest", "reject"])
def test_never_holds_more_than_capacity(overflow: str) -> None:
    buf: PushBuffer[int] = PushBuffer(3, overflow)  # type: ignore[arg-type]
    for i in range(20):
        if i % 3 == 0:
            buf.offer_many([i, i, i, i], can_wait=False)
        else:
            buf.offer(i, can_wait=False)
        assert len(buf) <= 3
        if i % 5 == 0:
            buf.take(2)


# -- DropLog ------------------------------------------------------------------------------


def test_drop_log_logs_the_first_drop_then_a_summary_per_interval() -> None:
    log = DropLog(interval=5.0)
    assert log.note(1, now=100.0) == 1
    assert log.note(3, now=101.0) == 0
    assert log.note(2, now=104.9) == 0
    assert log.note(1, now=105.0) == 6
    assert log.note(1, now=105.1) == 0
    assert log.note(0, now=200.0) == 1


# -- SubscriberQueue ------------------------------------------------------------------------


def test_subscriber_queue_shares_batches_and_keeps_order() -> None:
    q: SubscriberQueue[int] = SubscriberQueue(10, "drop_oldest")
    a, b = [1, 2, 3], [4, 5]
    assert q.offer(a)
    assert q.offer(b)
    assert q.offer([])
    assert len(q) == 5
    assert q.pop() == 1
    assert q.pop_batch() == [2, 3]
    assert q.pop_batch() == [4, 5]
    assert q.pop_batch() == []
    assert a == [1, 2, 3]  # published batches are never changed


def test_subscriber_queue_drop_oldest() -> None:
    q: SubscriberQueue[int] = SubscriberQueue(4, "drop_oldest")
    q.offer([1, 2, 3])
    q.offer([4, 5, 6])
    assert q.dropped == 2
    assert [q.pop() for _ in range(len(q))] == [3, 4, 5, 6]
    q.offer([7])
    q.offer(list(range(10, 20)))  # larger than the queue on its own
    assert q.dropped == 2 + 1 + 6
    assert q.pop_batch() == [16, 17, 18, 19]


def test_subscriber_queue_disconnect_refuses_a_batch_that_does_not_fit() -> None:
    q: SubscriberQueue[int] = SubscriberQueue(3, "disconnect")
    assert q.offer([1, 2])
    assert not q.offer([3, 4])
    assert q.dropped == 2
    assert q.pop_batch() == [1, 2]


def test_subscriber_queue_clear() -> None:
    q: SubscriberQueue[int] = SubscriberQueue(3, "drop_oldest")
    q.offer([1, 2])
    q.clear()
    assert len(q) == 0
    assert q.pop_batch() == []


# -- properties against a reference model ---------------------------------------------------

Op = tuple[str, int]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("offer"), st.integers(0, 1)),  # can_wait
        st.tuples(st.just("offer_many"), st.integers(0, 6)),
        st.tuples(st.just("take"), st.integers(0, 5)),
        st.tuples(st.just("withdraw"), st.integers(0, 3)),
    ),
    max_size=60,
)


@given(
    capacity=st.integers(1, 5),
    overflow=st.sampled_from(["block", "drop_oldest", "drop_newest", "reject"]),
    script=ops,
)
@settings(max_examples=300, deadline=None)
def test_push_buffer_matches_a_reference_model(
    capacity: int, overflow: str, script: list[Op]
) -> None:
    """Never more than ``capacity`` held; events leave in the order a simple model
    of each policy says; the counters add up (``pushed`` is what was accepted,
    dropped new, rejected or is waiting)."""
    buf: PushBuffer[int] = PushBuffer(capacity, overflow)  # type: ignore[arg-type]
    model: list[int] = []  # what the buffer should hold
    line: list[tuple[Any, list[int]]] = []  # waiters and their events not admitted yet
    waiters: list[Any] = []
    out: list[int] = []
    expected_out: list[int] = []
    counter = iter(range(10**6))
    dropped_new = 0

    def admit() -> None:
        while line and len(model) < capacity:
            left = line[0][1]
            k = min(capacity - len(model), len(left))
            model.extend(left[:k])
            del left[:k]
            if not left:
                line.pop(0)

    def model_offer(events: list[int], can_wait: bool, all_or_none: bool) -> list[int]:
        nonlocal dropped_new
        room = 0 if line else capacity - len(model)
        if len(events) <= room:
            model.extend(events)
            return []
        if overflow == "block" and can_wait:
            model.extend(events[:room])
            return events[room:]
        if overflow == "drop_oldest":
            model.extend(events)
            del model[: len(model) - capacity]
        elif overflow == "drop_newest":
            model.extend(events[:room])
            dropped_new += len(events) - room
        elif not all_or_none:
            model.extend(events[:room])  # pragma: no cover - never: one event
        return []

    for op, arg in script:
        if op == "offer":
            event = next(counter)
            result = buf.offer(event, can_wait=bool(arg))
            rest = model_offer([event], bool(arg), True)
            if result is None:
                assert rest == [event]
                waiters.append(buf.wait(rest, None))
                line.append((waiters[-1], list(rest)))
        elif op == "offer_many":
            events = [next(counter) for _ in range(arg)]
            rest = buf.offer_many(events, can_wait=True)
            assert rest == model_offer(events, True, True)
            if rest:
                waiters.append(buf.wait(rest, None))
                line.append((waiters[-1], list(rest)))
        elif op == "take":
            items, _woken = buf.take(arg)
            out += items
            while len(expected_out) < len(out):
                if not model:
                    break
                k = min(arg, len(model))
                expected_out += model[:k]
                del model[:k]
                admit()
                arg -= k
        elif op == "withdraw" and waiters:
            waiter = waiters.pop(arg % len(waiters))
            line[:] = [entry for entry in line if entry[0] is not waiter]
            buf.withdraw(waiter)
            admit()
        assert len(buf) <= capacity
        assert out == expected_out
        waiting = sum(len(left) for _, left in line)
        assert buf.waiting == waiting
        assert buf.pushed == buf.accepted + buf.rejected + dropped_new + waiting
    # Taking everything admits every waiting event as room frees.
    assert buf.take(10**6)[0] == model + [e for _, left in line for e in left]
