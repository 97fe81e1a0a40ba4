"""The process channel's framing: a frame's header and body are written without
being copied together, whatever the socket takes at a time, and the reader keeps
one buffer: frames split anywhere across reads come out whole and in order, a frame
larger than the buffer grows it, and the memory goes back once it is handled. A
large batch of Latin-1 text goes to the socket from its own joined bytes."""

from __future__ import annotations

import pickle
import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowstage.executors.process import _channel
from flowstage.executors.process._channel import Channel, encode
from flowstage.executors.process._pool import SEND_BUFFER, worker_socketpair

from ..services import speedups


class Trickle:
    """A socket that takes at most ``step`` bytes per call (and records them)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.written = bytearray()
        self.calls: list[str] = []

    def setblocking(self, flag: bool) -> None:
        pass

    def send(self, data: Any) -> int:
        self.calls.append("send")
        taken = bytes(data[: self.step])
        self.written += taken
        return len(taken)

    def sendmsg(self, buffers: list[Any]) -> int:
        self.calls.append("sendmsg")
        joined = b"".join(bytes(b) for b in buffers)[: self.step]
        self.written += joined
        return len(joined)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("step", [1, 3, 4, 5, 1000])
def test_a_frame_written_a_few_bytes_at_a_time_is_the_encoded_frame(step: int) -> None:
    messages = [("events", 1, [f"w{i}" for i in range(50)]), ("ask", 2, 10)]
    sock = Trickle(step)
    channel = Channel(sock, "trickle")  # type: ignore[arg-type]
    channel.held = True
    for message in messages:
        channel.send(message)
    for _ in range(100_000):
        channel.flush()
        if not channel._pending:  # everything written
            break
    assert bytes(sock.written) == encode(_channel.pack(messages))
    # The 4-byte header goes out with the start of the body (never copied into it):
    # one sendmsg per call until the header is written, then plain sends.
    with_header = -(-4 // step)
    assert sock.calls[:with_header] == ["sendmsg"] * with_header
    assert set(sock.calls[with_header:]) <= {"send"}


def frames_of(batches: list[list[int]]) -> bytes:
    return b"".join(encode([("events", i, batch)]) for i, batch in enumerate(batches))


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=70_000), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=1, max_value=400_000), min_size=1, max_size=8),
)
def test_frames_split_anywhere_across_reads_come_out_whole_and_in_order(
    sizes: list[int], cuts: list[int]
) -> None:
    # Batches up to 70,000 integers: frames up to about 350 kB, larger than the
    # read buffer, arriving in pieces of any size.
    batches = [list(range(n)) for n in sizes]
    data = frames_of(batches)
    a, b = socket.socketpair()
    receiver = Channel(b, "b")
    got: list[Any] = []
    try:
        a.setblocking(False)
        position = 0
        for cut in [*cuts, len(data)]:
            piece = data[position : position + cut]
            position += len(piece)
            while piece:
                try:
                    piece = piece[a.send(piece) :]
                except BlockingIOError:  # the socket holds less than a piece
                    receiver.poll(got.append)
            receiver.poll(got.append)
        receiver.poll(got.append)
    finally:
        a.close()
        receiver.close()
    assert [(m[0], m[1], m[2]) for m in got] == [
        ("events", i, batch) for i, batch in enumerate(batches)
    ]


def test_a_frame_larger_than_the_buffer_grows_it_and_the_memory_goes_back() -> None:
    big = [bytes(100)] * 30_000  # a frame of about 3.3 MB
    a, b = socket.socketpair()
    sender, receiver = Channel(a, "a"), Channel(b, "b")
    sender.held = True
    got: list[Any] = []
    largest = 0
    try:
        sender.send(("events", 1, big))
        sender.send(("done", 1))
        for _ in range(100_000):
            sender.flush()
            receiver.poll(got.append)
            largest = max(largest, len(receiver._buf))
            if got and got[-1] == ("done", 1):
                break
    finally:
        sender.close()
        receiver.close()
    assert [m[0] for m in got] == ["events", "done"]
    assert got[0][2] == big
    assert largest >= len(encode([("events", 1, big)]))  # held whole, once
    assert len(receiver._buf) == _channel._READ_SIZE  # and given back


LINES = [f"line {i} of some text, caf\u00e9 and more words to make it long" for i in range(4000)]


def test_a_large_latin1_batch_goes_to_the_socket_from_its_own_bytes() -> None:
    speedups()  # the compiled join makes the bytes
    # About 200 kB of Latin-1 lines: packed as their joined bytes, which pickle hands
    # to the frame's pieces as they are (not copied into the pickle).
    packed = _channel.pack([("events", 3, LINES), ("ask", 1, 5)])
    payload = packed[0][2]
    assert type(payload) is bytes
    assert len(payload) >= _channel.DIRECT
    pieces = _channel._frame(packed)
    assert any(piece is payload for piece in pieces)
    frame = b"".join(pieces)
    assert int.from_bytes(frame[:4], "little") == len(frame) - 4
    assert pickle.loads(frame[4:]) == packed
    # Written a few kB at a time, it is the same frame.
    sock = Trickle(7000)
    channel = Channel(sock, "trickle")  # type: ignore[arg-type]
    channel.held = True
    channel.send(("events", 3, LINES))
    channel.send(("ask", 1, 5))
    for _ in range(100_000):
        channel.flush()
        if not channel._pending:
            break
    assert bytes(sock.written) == frame
    assert "sendmsg" in sock.calls


def test_a_small_or_wide_batch_is_pickled_in_one_piece() -> None:
    speedups()
    small = _channel.pack([("events", 1, LINES[:100])])  # under DIRECT bytes
    wide = _channel.pack([("events", 1, [line + "\u20ac" for line in LINES])])  # a str
    assert type(wide[0][2]) is str
    for packed in (small, wide):
        header, body = _channel._frame(packed)
        assert pickle.loads(body) == packed
        assert int.from_bytes(header, "little") == len(body)


def test_large_batches_of_lines_cross_a_socket_whole() -> None:
    a, b = socket.socketpair()
    sender, receiver = Channel(a, "a"), Channel(b, "b")
    sender.held = True
    wide = [line + "\u20ac" for line in LINES]
    got: list[Any] = []
    try:
        sender.send(("events", 1, LINES))
        sender.send(("events", 2, wide))
        sender.send(("done", 1))
        for _ in range(100_000):
            sender.flush()
            receiver.poll(got.append)
            if got and got[-1] == ("done", 1):
                break
    finally:
        sender.close()
        receiver.close()
    assert [(m[0], m[1]) for m in got] == [("events", 1), ("events", 2), ("done", 1)]
    assert got[0][2] == LINES
    assert got[1][2] == wide
    assert {type(line) for line in got[0][2] + got[1][2]} == {str}


def test_the_parents_end_of_a_worker_socket_has_the_larger_send_buffer() -> None:
    # The kernel caps the request at net.core.wmem_max (Linux doubles what it
    # grants, for its own bookkeeping); the worker's end keeps the default.
    plain, other = socket.socketpair()
    parent_end, child_end = worker_socketpair()
    try:
        default = plain.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        granted = parent_end.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        assert child_end.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == default
        try:
            with open("/proc/sys/net/core/wmem_max") as f:
                cap = int(f.read())
        except OSError:  # not Linux: only that it is no smaller
            assert granted >= default
        else:
            assert granted >= min(SEND_BUFFER, cap)
            if cap >= SEND_BUFFER:
                assert granted > default
    finally:
        for sock in (plain, other, parent_end, child_end):
            sock.close()
