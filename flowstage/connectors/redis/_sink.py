"""RedisStreamSink: a flow's output appended to a Redis stream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ..._options import check_callable, check_int, invalid
from . import _client
from ._entries import event_fields

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["RedisStreamSink"]

_CALL = "RedisStreamSink"


class RedisStreamSink:
    """A :class:`~flowstage.messages.Sink` appending each event to ``stream``
    (``XADD``).

    * ``write(events)`` encodes every event first (an event that cannot be encoded
      fails the write before anything is sent), then appends them in order in one
      round trip, as one ``MULTI`` transaction: a batch is written whole or not at
      all. A flow acknowledges its messages only after the write returned, so a
      crash between the two writes the batch again on redelivery (at-least-once:
      downstream readers should tolerate duplicates).
    * ``encode``: a function of an event returning its fields (a non-empty mapping
      of names to ``str``, ``bytes``, ``int`` or ``float``); by default the event
      must already be such a mapping.
    * ``maxlen``: trim the stream to about this many entries on every append
      (``MAXLEN ~``; exactly, with ``approximate=False``); ``None`` keeps everything.
    * The sink connects on its first write and pickles as its configuration, so it
      can be built in one process and used in another. ``aclose`` disconnects
      (shielded from cancellation, at most ``close_timeout`` seconds); a later write
      connects again.

    Runs on asyncio (and uvloop): redis-py's asyncio client needs asyncio.
    """

    def __init__(
        self,
        stream: str,
        *,
        url: str = _client.DEFAULT_URL,
        encode: Callable[[Any], Mapping[Any, Any]] | None = None,
        maxlen: int | None = None,
        approximate: bool = True,
        close_timeout: float = 5.0,
    ) -> None:
        if not isinstance(stream, str) or not stream:
            raise (TypeError if not isinstance(stream, str) else ValueError)(
                invalid("stream", "a non-empty string", stream, _CALL)
            )
        self.stream: Final = stream
        self.url: Final = _client.check_url(url, _CALL)
        self.encode: Final = (
            event_fields if encode is None else check_callable("encode", encode, _CALL)
        )
        self._custom_encode = encode is not None
        if maxlen is not None:
            maxlen = check_int("maxlen", maxlen, _CALL)
            if maxlen < 1:
                raise ValueError(invalid("maxlen", "an integer >= 1 or None", maxlen, _CALL))
        self.maxlen: Final = maxlen
        if not isinstance(approximate, bool):
            raise TypeError(invalid("approximate", "True or False", approximate, _CALL))
        self.approximate: Final = approximate
        self.close_timeout: Final = _client.check_seconds("close_timeout", close_timeout, _CALL)
        self._client: Any = None
        #: Entries written and ``write`` calls that wrote them.
        self.written: int = 0
        self.batches: int = 0

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles the configuration only (the copy connects on its first write)."""
        return (
            _rebuild,
            (
                self.stream,
                self.url,
                self.encode if self._custom_encode else None,
                self.maxlen,
                self.approximate,
                self.close_timeout,
            ),
        )

    def __repr__(self) -> str:
        return f"RedisStreamSink(stream={self.stream!r})"

    async def write(self, events: Sequence[Any]) -> None:
        """Append ``events`` to the stream, in order, in one round trip."""
        if not events:
            return
        encode = self.encode
        entries = [encode(event) for event in events]
        client = self._client
        if client is None:
            client = self._client = _client.connect(
                self.url,
                f"{_CALL}.write",
                socket_timeout=_client.COMMAND_TIMEOUT,
                name=_client.client_name("sink", self.stream),
            )
        maxlen, approximate, stream = self.maxlen, self.approximate, self.stream
        async with client.pipeline(transaction=True) as pipe:
            for fields in entries:
                pipe.xadd(
                    stream,
                    fields if type(fields) is dict else dict(fields),
                    maxlen=maxlen,
                    approximate=approximate,
                )
            await pipe.execute()
        self.written += len(entries)
        self.batches += 1

    async def aclose(self) -> None:
        """Disconnect (shielded, at most ``close_timeout`` seconds)."""
        client, self._client = self._client, None
        if client is not None:
            await _client.close(client, self.close_timeout)


def _rebuild(
    stream: str,
    url: str,
    encode: Callable[[Any], Mapping[Any, Any]] | None,
    maxlen: int | None,
    approximate: bool,
    close_timeout: float,
) -> RedisStreamSink:
    return RedisStreamSink(
        stream,
        url=url,
        encode=encode,
        maxlen=maxlen,
        approximate=approximate,
        close_timeout=close_timeout,
    )
