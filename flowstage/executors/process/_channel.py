"""Framed, pickled messages over a socket, for the parent and its workers.

A frame is a 4-byte little-endian length followed by a pickle (protocol 5) of a list
of messages: every message queued for one peer since the last write goes out in one
frame, so a batch and the asks that follow it cost one ``pickle.dumps`` and one
``send``. A batch of short strings travels as one joined string (see
:mod:`._text`) and comes out as an equal list; each ``("events", edge, batch)``
received is handed on with a fourth item, the bytes its events took in the frame
(their share of it), which bounds a relay's window in bytes.

A frame's header and body go out in one call without being copied together
(``sendmsg``). A frame that holds a large ``bytes`` payload (a batch of Latin-1
lines, joined: at least :data:`DIRECT` bytes) is pickled to a list of pieces
rather than to one ``bytes`` object: pickle hands such a payload to the file it
writes to as it is, so the payload goes from the batch's own ``bytes`` to the
socket without being copied into the pickle. A channel reads into one buffer it
keeps rather than a new one per read (grown to hold a larger frame whole, and
shrunk back once that is handled).
Reads and writes are non-blocking and run in separate tasks: a reader never waits
for a write, so two processes that send to each other at the same time cannot
deadlock. What a channel queues for writing is bounded by the protocol above it
(events are only sent against demand).

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

__all__ = [
    "DIRECT",
    "Channel",
    "ChannelClosed",
    "encode",
    "read_frame_blocking",
    "write_frame_blocking",
]

_HEADER: Final = struct.Struct("<I")
#: A channel reads into a buffer of this many bytes, grown to hold a larger frame
#: whole...
_READ_SIZE: Final = 1 << 18
#: ... and shrunk back once it is empty, if it grew past this many bytes.
_KEEP_SIZE: Final = 1 << 20
_MAX_FRAME: Final = (1 << 32) - 1
#: A packed text batch of at least this many bytes is written to the socket from
#: its own ``bytes`` object (pickle's frame size: from there it writes a payload
#: to its file directly, rather than into its buffer).
DIRECT: Final = 1 << 16
#: At most this many pieces of a frame go to one ``sendmsg`` (below any IOV_MAX).
_MAX_PIECES: Final = 256


class ChannelClosed(Exception):
    """The other end of a channel went away (end of file, or a broken pipe)."""


class _Pieces(list[Any]):
    """The file a frame's body is pickled to: the pieces pickle writes, in order (a
    large payload is one of them as it is, not a copy)."""

    __slots__ = ()
    write = list.append


def _direct(messages: list[Any]) -> bool:
    """Whether a packed message of ``messages`` holds a text batch of at least
    :data:`DIRECT` bytes."""
    for message in messages:
        if (
            type(message) is tuple
            and message[0] == "sized"
            and type(message[2]) is bytes
            and len(message[2]) >= DIRECT
        ):
            return True
    return False


def _frame(messages: list[Any]) -> list[Any]:
    """One frame holding ``messages``: its header, then the pieces of its body (one,
    or several when a large payload is written as it is: see :func:`_direct`)."""
    pieces: list[Any]
    if _direct(messages):
        pieces = _Pieces()
        pickle.Pickler(pieces, protocol=5).dump(messages)
        size = sum(map(len, pieces))
    else:
        body = pickle.dumps(messages, protocol=5)
        pieces = [body]
        size = len(body)
    if size > _MAX_FRAME:  # pragma: no cover - 4 GiB of events in one frame
        raise ValueError(f"a frame must be smaller than 4 GiB, got: {size} bytes")
    return [_HEADER.pack(size), *pieces]


def encode(messages: list[Any]) -> bytes:
    """One frame holding ``messages``, as bytes."""
    return b"".join(_frame(messages))


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
        "_end",
        "_out",
        "_pending",
        "_start",
        "_wake",
        "closed",
        "held",
        "merge",
        "name",
        "pieces",
        "sock",
    )

    def __init__(
        self,
        sock: socket.socket,
        name: str,
        *,
        merge: bool = False,
        pieces: list[str | None] | None = None,
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.name = name
        self.closed = False
        #: The cache of short strings that received text batches are cut through
        #: (:func:`._text.piece_cache`; shared by a process's channels), or ``None``.
        self.pieces = pieces
        #: Join the batches of an edge queued for one write (see :mod:`._merge`).
        #: Off where messages are counted one by one (quiescence under a virtual
        #: clock): a joined batch arrives as one message.
        self.merge = merge
        #: While true, :meth:`send` does not wake the writer task: the owner calls
        #: :meth:`flush` itself (a busy worker writes between messages without a
        #: turn of the event loop).
        self.held = False
        self._out: list[Any] = []
        # What is left to write of the frame being written: its pieces, in order.
        self._pending: list[Any] = []
        self._wake: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        # Received bytes not yet handled are ``_buf[_start:_end]``.
        self._buf = bytearray(_READ_SIZE)
        self._start = 0
        self._end = 0

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
        while True:
            if not self._pending:
                if not self._out:
                    return
                self._next_frame()
            try:
                self._write()
            except OSError:  # full (or broken: the writer task raises it)
                self._wake_writer()
                return

    def _next_frame(self) -> None:
        """Encode everything queued as the frame to write next."""
        out, self._out = self._out, []
        self._pending = _frame(pack(merge_batches(out) if self.merge else out))

    def _write(self) -> None:
        """Write as much of the current frame as the socket takes (one call)."""
        pending = self._pending
        if len(pending) == 1:
            sent = self.sock.send(pending[0])
        else:
            sent = self.sock.sendmsg(pending[:_MAX_PIECES])
        while sent:
            size = len(pending[0])
            if sent < size:
                pending[0] = memoryview(pending[0])[sent:]
                return
            sent -= size
            del pending[0]

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
                self._next_frame()
            while self._pending:
                try:
                    self._write()
                except (BlockingIOError, InterruptedError):
                    await anyio.wait_writable(sock)
                    continue
                except OSError as exc:
                    self.closed = True
                    raise ChannelClosed(f"{self.name}: {exc}") from exc

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
                received = self._receive()
            except (BlockingIOError, InterruptedError):
                await anyio.wait_readable(sock)
                continue
            except OSError:
                received = 0
            if not received:
                self.closed = True
                return
            self._parse(handle)

    def poll(self, handle: Callable[[Any], None]) -> None:
        """Hand ``handle`` what has already arrived, without waiting (an end of file
        or an error is left for :meth:`read_loop` to see)."""
        for _ in range(8):
            try:
                received = self._receive()
            except OSError:
                return
            if not received:
                return
            full = self._end == len(self._buf)
            self._parse(handle)
            if not full:
                return

    def _receive(self) -> int:
        """Read what the socket holds into the free end of the buffer (one call):
        the bytes read, 0 at the end of the stream."""
        if self._end == len(self._buf):
            self._make_room()
        with memoryview(self._buf) as view:
            received = self.sock.recv_into(view[self._end :])
        self._end += received
        return received

    def _make_room(self) -> None:
        """Room at the end of a full buffer: what is not handled yet (the start of a
        frame) moves to its start, into a larger buffer if the frame is larger."""
        buf = self._buf
        start, end = self._start, self._end
        size = len(buf)
        if end - start >= _HEADER.size:
            (body,) = _HEADER.unpack_from(buf, start)
            size = max(size, _HEADER.size + body)
        if size == end - start:  # pragma: no cover - complete frames were all handled
            size += _READ_SIZE
        if size > len(buf):
            grown = bytearray(size)
            grown[: end - start] = buf[start:end]
            self._buf = grown
        else:
            buf[: end - start] = buf[start:end]
        self._start, self._end = 0, end - start

    def _parse(self, handle: Callable[[Any], None]) -> None:
        """Handle every complete frame in the buffer; keep the rest."""
        buf = self._buf
        header = _HEADER.size
        read_size = _HEADER.unpack_from
        start = self._start
        end = self._end
        while end - start >= header:
            (size,) = read_size(buf, start)
            if end - start - header < size:
                break
            body = start + header
            with memoryview(buf) as view:
                messages = pickle.loads(view[body : body + size])
            start = body + size
            self._start = start
            events = 0
            pieces = self.pieces
            for i, message in enumerate(messages):
                # text batches back into lists
                message = messages[i] = unpack(message, pieces)
                if message[0] == "events":
                    events += len(message[2])
            for message in messages:
                if message[0] == "events" and events:
                    # With the share of the frame's size its events took.
                    message = (*message, size * len(message[2]) / events)
                handle(message)
        if start == end:
            self._start = self._end = 0
            if len(buf) > _KEEP_SIZE:  # a large frame grew it: give the memory back
                self._buf = bytearray(_READ_SIZE)

    def close(self) -> None:
        self.closed = True
        self._out.clear()
        with contextlib.suppress(OSError):
            self.sock.close()
