"""Batches queued for one write on the same edge go as one batch (pure), and a
channel that merges delivers them so: fewer messages, the same events per edge in
the same order."""

from __future__ import annotations

import socket
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flowstage.executors.process._channel import Channel
from flowstage.executors.process._merge import merge_batches


def test_batches_of_one_edge_are_joined_across_other_edges_messages() -> None:
    a, b, c = [1, 2], [3], [4, 5]
    messages = [
        ("events", 1, a),
        ("ask", 2, 5),
        ("events", 3, [9]),
        ("events", 1, b),
        ("events", 1, c),
    ]
    assert merge_batches(messages) == [
        ("events", 1, [1, 2, 3, 4, 5]),
        ("ask", 2, 5),
        ("events", 3, [9]),
    ]
    assert (a, b, c) == ([1, 2], [3], [4, 5])  # the sender's lists are left alone


def test_a_message_that_is_not_about_an_edge_ends_every_run() -> None:
    messages = [
        ("events", 1, [1]),
        ("stats", -1, {}),
        ("events", 1, [2]),
        ("deadline", 1, 5.0),
        ("events", 1, [3]),
        ("events", 1, [4]),
    ]
    assert merge_batches(messages) == [
        ("events", 1, [1]),
        ("stats", -1, {}),
        ("events", 1, [2]),
        ("deadline", 1, 5.0),
        ("events", 1, [3, 4]),
    ]


def test_done_ends_its_edges_run_and_other_sequences_keep_their_type() -> None:
    messages = [
        ("events", 1, [1]),
        ("done", 1),
        ("events", 2, range(3)),
        ("events", 2, [7]),
        ("events", 2, [8]),
        ("events", 2, range(3, 5)),
    ]
    assert merge_batches(messages) == [
        ("events", 1, [1]),
        ("done", 1),
        ("events", 2, range(3)),
        ("events", 2, [7, 8]),
        ("events", 2, range(3, 5)),
    ]


def test_nothing_to_join_returns_the_same_list() -> None:
    messages = [("events", 1, [1]), ("events", 2, [2]), ("ask", 3, 4)]
    assert merge_batches(messages) is messages
    assert merge_batches([]) == []


KINDS = st.sampled_from(["events", "events", "events", "ask", "done", "stats"])


@given(st.lists(st.tuples(KINDS, st.integers(0, 2)), max_size=40))
def test_every_edge_sees_the_same_events_in_the_same_order(
    steps: list[tuple[str, int]],
) -> None:
    """Per edge, the events and where its other messages fall among them are kept,
    and the messages that are not about an edge keep their order among everything."""
    messages: list[Any] = []
    n = 0
    for kind, edge in steps:
        if kind == "events":
            messages.append(("events", edge, list(range(n, n + 3))))
            n += 3
        elif kind == "stats":
            messages.append(("stats", -1, n))
        else:
            messages.append((kind, edge, n))

    def flattened(ms: list[Any]) -> list[Any]:
        out: list[Any] = []
        for m in ms:
            if m[0] == "events":
                out.extend((m[1], e) for e in m[2])
            else:
                out.append(m)
        return out

    def per_edge(ms: list[Any], edge: int) -> list[Any]:
        return [x for x in flattened(ms) if x[1] == edge or x[0] == "stats"]

    merged = merge_batches(messages)
    for edge in range(3):
        assert per_edge(merged, edge) == per_edge(messages, edge)
    assert len(merged) <= len(messages)


def pair(*, merge: bool) -> tuple[Channel, Channel]:
    a, b = socket.socketpair()
    sender, receiver = Channel(a, "a", merge=merge), Channel(b, "b")
    sender.held = True
    return sender, receiver


def test_a_merging_channel_sends_an_edges_queued_batches_as_one() -> None:
    for merge, expected in ((True, 1), (False, 3)):
        sender, receiver = pair(merge=merge)
        try:
            for i in range(3):
                sender.send(("events", 4, [f"w{i}-{j}" for j in range(20)]))
            sender.flush()
            got: list[Any] = []
            receiver.poll(got.append)
            assert len(got) == expected
            assert [e for m in got for e in m[2]] == [
                f"w{i}-{j}" for i in range(3) for j in range(20)
            ]
        finally:
            sender.close()
            receiver.close()
