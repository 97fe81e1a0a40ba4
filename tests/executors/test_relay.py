"""The relay on an edge between processes: a bounded GenStage buffer (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowstage.executors._hosting._relay import Relay


def test_asks_the_whole_window_first_and_serves_what_the_consumer_asks() -> None:
    relay = Relay(100)
    assert relay.start() == 100
    out, ask = relay.on_events(list(range(60)))
    assert out == []  # the consumer has not asked yet
    assert ask == 0
    out, ask = relay.on_ask(25)
    assert out == [list(range(25))]
    assert ask == 0  # 40 in flight + 35 held: room 25 < half a window
    out, ask = relay.on_ask(30)
    assert out == [list(range(25, 55))]
    assert ask == 55  # 40 in flight + 5 held: room 55
    assert relay.buffered == 5


def test_done_reaches_the_consumer_after_everything_held() -> None:
    relay = Relay(10)
    relay.start()
    relay.on_events([1, 2, 3])
    out, ask = relay.on_done()
    assert out == []
    assert ask == 0
    out, _ = relay.on_ask(2)
    assert out == [[1, 2]]
    out, _ = relay.on_ask(10)
    assert out == [[3], None]
    out, _ = relay.on_ask(10)
    assert out == []  # done is delivered once


class CountingList(list[int]):
    """A list that counts the events its slices copy."""

    copied = 0

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            part = CountingList(super().__getitem__(index))
            CountingList.copied += len(part)
            return part
        return super().__getitem__(index)


def test_a_large_batch_served_in_small_asks_is_copied_once() -> None:
    relay = Relay(1000)
    relay.start()
    relay.on_events(CountingList(range(1000)))
    CountingList.copied = 0
    pieces = [relay.on_ask(30)[0] for _ in range(34)]
    assert [e for out in pieces for piece in out if piece for e in piece] == list(range(1000))
    assert CountingList.copied == 1000  # each event once (the old way: ~17,000)
    assert relay.buffered == 0


def test_a_batch_the_consumer_takes_whole_is_not_copied() -> None:
    relay = Relay(100)
    relay.start()
    batch = list(range(50))
    relay.on_events(batch)
    (piece,), _ = relay.on_ask(100)
    assert piece is batch


def test_bad_window() -> None:
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        Relay(0)


@given(
    window=st.integers(1, 50),
    steps=st.lists(st.tuples(st.sampled_from(["ask", "send"]), st.integers(1, 30)), max_size=60),
)
def test_never_exceeds_the_window_and_keeps_order(
    window: int, steps: list[tuple[str, int]]
) -> None:
    """Whatever the interleaving: the producer is never asked for more than the
    window beyond what the consumer took, events come out in order, and the
    consumer never gets more than it asked for."""
    relay = Relay(window)
    granted = relay.start()  # asked upstream, not yet sent
    sent = 0
    taken: list[int] = []
    asked_by_consumer = 0
    for action, n in steps:
        if action == "send" and granted > 0:
            k = min(n, granted)
            granted -= k
            out, ask = relay.on_events(list(range(sent, sent + k)))
            sent += k
        elif action == "ask":
            asked_by_consumer += n
            out, ask = relay.on_ask(n)
        else:
            continue
        for piece in out:
            assert piece is not None
            taken.extend(piece)
        granted += ask
        assert sent + granted - len(taken) <= window  # held + in flight
        assert relay.buffered == sent - len(taken)
    assert taken == list(range(len(taken)))
    assert len(taken) <= asked_by_consumer


def test_resize_shrinks_as_events_move_on_and_grows_at_once() -> None:
    relay = Relay(100)
    assert relay.start() == 100
    relay.resize(20)
    out, ask = relay.on_events(list(range(100)))
    assert ask == 0  # 100 held: nothing asked back
    out, ask = relay.on_ask(90)
    assert out == [list(range(90))]
    assert ask == 10  # 10 held: room 10 >= half the new window
    relay.resize(60)
    out, ask = relay.on_ask(5)
    assert ask == 45  # 5 held + 10 in flight: room 45
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        relay.resize(0)


@given(
    window=st.integers(1, 50),
    steps=st.lists(
        st.tuples(st.sampled_from(["ask", "send", "resize"]), st.integers(1, 30)), max_size=60
    ),
)
def test_resized_never_asks_beyond_the_window_and_keeps_order(
    window: int, steps: list[tuple[str, int]]
) -> None:
    """After any ask, what is held and in flight fits the window of that moment."""
    relay = Relay(window)
    granted = relay.start()
    sent = 0
    taken: list[int] = []
    largest = window
    for action, n in steps:
        if action == "resize":
            relay.resize(n)
            largest = max(largest, n)
            continue
        if action == "send" and granted > 0:
            k = min(n, granted)
            granted -= k
            out, ask = relay.on_events(list(range(sent, sent + k)))
            sent += k
        elif action == "ask":
            out, ask = relay.on_ask(n)
        else:
            continue
        for piece in out:
            assert piece is not None
            taken.extend(piece)
        granted += ask
        if ask:
            assert sent + granted - len(taken) <= relay.window
        assert sent + granted - len(taken) <= largest
    assert taken == list(range(len(taken)))


def test_the_pieces_one_ask_takes_from_several_batches_go_as_one_list() -> None:
    relay = Relay(100)
    relay.start()
    first, second, third = [1, 2, 3], [4, 5], [6, 7, 8]
    for batch in (first, second, third):
        relay.on_events(batch)
    out, _ = relay.on_ask(7)
    assert out == [[1, 2, 3, 4, 5, 6, 7]]  # one piece: one message, one call
    assert (first, second, third) == ([1, 2, 3], [4, 5], [6, 7, 8])  # left alone
    out, _ = relay.on_ask(10)
    assert out == [[8]]


def test_ranges_and_list_subclasses_are_handed_out_as_they_are() -> None:
    relay = Relay(100)
    relay.start()
    relay.on_events([1])
    relay.on_events(range(2, 4))
    relay.on_events([4])
    relay.on_events([5])
    relay.on_events(CountingList([6]))
    relay.on_done()
    out, _ = relay.on_ask(10)
    assert out == [[1], range(2, 4), [4, 5], [6], None]
    assert type(out[3]) is CountingList
