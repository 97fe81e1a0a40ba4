"""Framed, pickled messages over a socket, for the parent and its workers.

A frame is a 4-byte little-endian length followed by a pickle (protocol 5) of a list
of messages: every message queued for one peer since the last write goes out in one
frame, so a batch and the asks that follow it cost one ``pickle.dumps`` and one
``send``. A batch of short strings travels as one joined string (see
:mod:`._text`) and comes out as an equal list; each ``("events", edge, batch)``
received is handed on with a fourth item, the bytes its events took in the frame
(their share of it), which bounds a relay's window in bytes. Reads and writes are non-blocking
and run in separate tasks: a reader never waits for a write, so two processes that
send to each other at the same time cannot deadlock. What a channel queues for
writing is bounded by the protocol above it (events are only sent against demand).

The sockets are socketpairs made for the run: pickled frames only ever travel
between a parent and its own workers, never over a network port (unpickling data
from anywhere else would let anyone who can reach the port run code).
"""

from __future__ import annotations

import contextlib
import pickle
import struct
from typing import TYPE_CHECKING, Any, Final

import anyio

from ._merge import merge_batches
from ._text import pack, unpack

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

__all__ = ["Channel", "ChannelClosed", "encode", "read_frame_blocking", "write_frame_blocking"]

_HEADER: Final = struct.Struct("<I")
_READ_SIZE: Final = 1 << 18
_MAX_FRAME: Final = (1 << 32) - 1


class ChannelClosed(Exception):
    """The other end of a channel went away (end of file, or a broken pipe)."""


def encode(messages: list[Any]) -> bytes:
    """One frame holding ``messages``."""
    body = pickle.dumps(messages, protocol=5)
    if len(body) > _MAX_FRAME:  # pragma: no cover - 4 GiB of events in one frame
        raise ValueError(f"a frame must be smaller than 4 GiB, got: {len(body)} bytes")
    return _HEADER.pack(len(body)) + body


def write_frame_blocking(sock: socket.socket, messages: list[Any]) -> None:
    """Send one frame on a blocking socket (set-up, before any event loop runs)."""
    sock.sendall(encode(messages))


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ChannelClosed("the other end closed the connection")
        chunks += chunk
    return bytes(chunks)


def read_frame_blocking(sock: socket.socket) -> list[Any]:
    """Receive one frame on a blocking socket."""
    (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size))
    messages: list[Any] = pickle.loads(_recv_exactly(sock, size))
    return messages


class Channel:
    """Messages to and from one peer over a connected socket (see the module docstring).

    ``send`` queues without blocking; :meth:`write_loop` sends what is queued;
    :meth:`read_loop` hands every received message to a callback. Both loops may be
    cancelled while they wait and run again later: nothing is lost between runs. The
    owner of a :attr:`held` channel also calls :meth:`flush` and :meth:`poll` itself,
    which never wait: what they cannot do at once is left to the two loops.
    """

    __slots__ = (
        "_buf",
        "_drained",
        "_out",
        "_pending",
        "_wake",
        "closed",
        "held",
        "merge",
        "name",
        "sock",
    )

    def __init__(self, sock: socket.socket, name: str, *, merge: bool = False) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.name = name
        self.closed = False
        #: Join the batches of an edge queued for one write (see :mod:`._merge`).
        #: Off where messages are counted one by one (quiescence under a virtual
        #: clock): a joined batch arrives as one message.
        self.merge = merge
        #: While true, :meth:`send` does not wake the writer task: the owner calls
        #: :meth:`flush` itself (a busy worker writes between messages without a
        #: turn of the event loop).
        self.held = False
        self._out: list[Any] = []
        self._pending = memoryview(b"")  # encoded, not yet fully written
        self._wake: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        self._buf = bytearray()

    def __repr__(self) -> str:
        return f"<Channel {self.name}>"

    def send(self, message: Any) -> None:
        """Queue ``message`` for the next write (dropped once the channel closed)."""
        if self.closed:
            return
        self._out.append(message)
        if not self.held:
            self._wake_writer()

    def _wake_writer(self) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    def flush(self) -> None:
        """Write what is queued, as far as the socket takes it without blocking; the
        writer task sends the rest (and reports a peer that went away)."""
        if self.closed:
            return
        sock = self.sock
        while True:
            if not self._pending:
                if not self._out:
                    return
                out, self._out = self._out, []
                self._pending = memoryview(self._encode(out))
            try:
                sent = sock.send(self._pending)
            except OSError:  # full (or broken: the writer task raises it)
                self._wake_writer()
                return
            self._pending = self._pending[sent:]

    def _encode(self, out: list[Any]) -> bytes:
        return encode(pack(merge_batches(out) if self.merge else out))

    def fileno(self) -> int:
        return self.sock.fileno()

    async def write_loop(self) -> None:
        """Write queued messages until cancelled.

        Raises:
            ChannelClosed: the peer went away.
        """
        sock = self.sock
        while True:
            if not self._pending:
                if not self._out:
                    drained = self._drained
                    if drained is not None:
                        self._drained = None
                        drained.set()
                    self._wake = wake = anyio.Event()
                    await wake.wait()
                    continue
                out, self._out = self._out, []
                self._pending = memoryview(self._encode(out))
            while self._pending:
                try:
                    sent = sock.send(self._pending)
                except (BlockingIOError, InterruptedError):
                    await anyio.wait_writable(sock)
                    continue
                except OSError as exc:
                    self.closed = True
                    raise ChannelClosed(f"{self.name}: {exc}") from exc
                self._pending = self._pending[sent:]

    async def drain(self) -> None:
        """Return once everything queued so far has been written (the write loop
        must be running)."""
        self.held = False
        self._wake_writer()
        while (self._out or self._pending) and not self.closed:
            if self._drained is None:
                self._drained = anyio.Event()
            await self._drained.wait()

    async def read_loop(self, handle: Callable[[Any], None]) -> None:
        """Call ``handle(message)`` for every message received, in order, until the
        peer closes the connection (then return) or the loop is cancelled."""
        sock = self.sock
        while True:
            try:
                chunk = sock.recv(_READ_SIZE)
            except (BlockingIOError, InterruptedError):
                await anyio.wait_readable(sock)
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return
            self._buf += chunk
            self._parse(handle)

    def poll(self, handle: Callable[[Any], None]) -> None:
        """Hand ``handle`` what has already arrived, without waiting (an end of file
        or an error is left for :meth:`read_loop` to see)."""
        sock = self.sock
        for _ in range(8):
            try:
                chunk = sock.recv(_READ_SIZE)
            except OSError:
                return
            if not chunk:
                return
            self._buf += chunk
            self._parse(handle)
            if len(chunk) < _READ_SIZE:
                return

    def _parse(self, handle: Callable[[Any], None]) -> None:
        """Handle every complete frame in the buffer; keep the rest."""
        buf = self._buf
        header = _HEADER.size
        read_size = _HEADER.unpack_from
        start = 0
        end = len(buf)
        while end - start >= header:
            (size,) = read_size(buf, start)
            if end - start - header < size:
                break
            body = start + header
            with memoryview(buf) as view:
                messages = pickle.loads(view[body : body + size])
            start = body + size
            events = 0
            for i, message in enumerate(messages):
                message = messages[i] = unpack(message)  # text batches back into lists
                if message[0] == "events":
                    events += len(message[2])
            for message in messages:
                if message[0] == "events" and events:
                    # With the share of the frame's size its events took.
                    message = (*message, size * len(message[2]) / events)
                handle(message)
        if start:
            del buf[:start]

    def close(self) -> None:
        self.closed = True
        self._out.clear()
        with contextlib.suppress(OSError):
            self.sock.close()
