"""``Relay``: keeps events in flight on an edge that crosses processes.

A consumer asks for at most ``max_demand`` events and asks again only after handling
a chunk, so between stages of one process the producer hears of new demand
microseconds after the consumer could take it. Between processes that ask takes a
round trip, and a consumer that waits for it sits idle. A relay sits in the
consumer's process, in front of the consumer, and acts as a GenStage buffer stage:
it asks the remote producer for up to ``window`` events ahead (and tops the window
up as events move on), holds what arrives, and answers the consumer's own asks from
what it holds, with no round trip.

Demand still runs end to end: the relay never asks for more than ``window`` events
beyond what the consumer has taken, so a slow consumer still slows its producers, and
an edge holds at most ``window`` events (plus the consumer's own ``max_demand``).
The host may :meth:`~Relay.resize` the window as it learns what an event costs (a
relay holding many expensive events leaves one process busy at the end while the
others are done). The relay is pure: it returns the messages to send.

What it hands the consumer at once goes as one batch where it can: the pieces of
several received batches that one ask takes are joined into one list (a message,
and a call into the consumer, per ask rather than per batch received).
"""

from __future__ import annotations

from collections import deque
from itertools import chain
from typing import Any

__all__ = ["Relay"]


class Relay:
    """The consumer-side end of one edge from another process (see the module
    docstring). Methods return ``(to_consumer, ask_upstream)``: batches (or ``None``
    for "done") to hand to the consumer, and how many events to ask upstream (0:
    nothing)."""

    __slots__ = (
        "_asked",
        "_buffer",
        "_buffered",
        "_delivered_done",
        "_done",
        "_offset",
        "_want",
        "max_ask",
        "window",
    )

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"window must be an integer >= 1, got: {window!r}")
        self.window = window
        #: The first ask (the whole first window): the host sends a larger one as
        #: several asks of at most this many events.
        self.max_ask = window
        self._asked = 0  # asked upstream, not yet received
        self._buffer: deque[list[Any]] = deque()
        self._buffered = 0
        self._offset = 0  # events of the head batch already handed out
        self._want = 0  # the consumer asked and did not get yet
        self._done = False
        self._delivered_done = False

    @property
    def buffered(self) -> int:
        """Events held, waiting for the consumer to ask."""
        return self._buffered

    def resize(self, window: int) -> None:
        """Hold at most ``window`` events from now on (asked upstream or held). A
        smaller window takes effect as events move on: nothing already asked is
        taken back, and the relay asks again only once below the new window."""
        if window < 1:
            raise ValueError(f"window must be an integer >= 1, got: {window!r}")
        self.window = window

    def start(self) -> int:
        """The first ask upstream: the whole window."""
        self._asked = self.window
        return self.window

    def on_events(self, batch: list[Any]) -> tuple[list[list[Any] | None], int]:
        """Events arrived from upstream (any sequence that slices: the pieces
        handed out are slices of it, so a ``range`` gives ranges)."""
        self._asked -= len(batch)
        if batch:
            self._buffer.append(batch)
            self._buffered += len(batch)
        return self._serve()

    def on_done(self) -> tuple[list[list[Any] | None], int]:
        """Upstream finished."""
        self._done = True
        return self._serve()

    def on_ask(self, n: int) -> tuple[list[list[Any] | None], int]:
        """The consumer asked for ``n`` more events."""
        self._want += n
        return self._serve()

    def _serve(self) -> tuple[list[list[Any] | None], int]:
        out: list[list[Any] | None] = []
        buffer = self._buffer
        while self._want > 0 and buffer:
            # The head batch is handed out behind an offset, so a large batch served
            # in many small asks is copied once, not once per ask.
            first = buffer[0]
            offset = self._offset
            left = len(first) - offset
            if left <= self._want:
                buffer.popleft()
                self._offset = 0
                piece = first if offset == 0 else first[offset:]
            else:
                self._offset = offset + self._want
                piece = first[offset : self._offset]
            self._want -= len(piece)
            self._buffered -= len(piece)
            out.append(piece)
        if len(out) > 1:
            out = _joined(out)
        if self._done:
            if not buffer and not self._delivered_done:
                self._delivered_done = True
                out.append(None)
            return out, 0
        # Keep the window full, asking in steps of at least half a window.
        room = self.window - self._asked - self._buffered
        if room >= max(self.window // 2, 1):
            self._asked += room
            return out, room
        return out, 0


def _joined(pieces: list[list[Any] | None]) -> list[list[Any] | None]:
    """``pieces`` with each run of consecutive plain lists joined into one list (a
    new list: a piece may be a batch its sender still holds). Anything else (a
    ``range`` slice, a list subclass, ``None`` for "done") stays as it is."""
    out: list[list[Any] | None] = []
    run: list[list[Any]] = []
    for piece in pieces:
        if type(piece) is list:
            run.append(piece)
            continue
        if run:
            out.append(run[0] if len(run) == 1 else list(chain.from_iterable(run)))
            run = []
        out.append(piece)
    if run:
        out.append(run[0] if len(run) == 1 else list(chain.from_iterable(run)))
    return out
