"""Stream entries to messages, and back: the pure part of the Redis connector.

No I/O here: these functions turn what redis-py returns (entry ids and fields as
``bytes``) into :class:`~flowstage.messages.Message` objects, sort out the entries
that cannot be delivered, and build the entries the connector writes (dead letters,
sink events). The source and the sink call them; the tests call them directly.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ...messages import Message

if TYPE_CHECKING:
    from collections.abc import Callable, Container, Sequence

__all__ = [
    "DEAD_LETTER_FIELDS",
    "Entry",
    "Fields",
    "Sorted",
    "dead_letter_entry",
    "decode_fields",
    "event_fields",
    "sort_entries",
]

#: An entry's fields as redis-py returns them (``decode_responses=False``).
Fields = dict[bytes, bytes]
#: ``(id, fields)`` of one entry; ``fields`` is empty (or ``None``) for an entry that
#: is still pending but was deleted from the stream (``XDEL``, ``XTRIM``).
Entry = tuple[bytes, Fields | None]

#: The fields a dead letter carries besides the original entry's fields. An original
#: field with one of these names is kept as ``original:<name>``.
DEAD_LETTER_FIELDS: Final = ("error", "error_type", "source_stream", "source_id", "attempt")
_RESERVED: Final = frozenset(name.encode() for name in DEAD_LETTER_FIELDS)


def decode_fields(fields: Mapping[bytes, bytes]) -> dict[str, str]:
    """The default ``decode`` of :class:`RedisStreamSource`: the entry's fields as a
    ``dict`` of ``str`` (strict UTF-8; an entry that is not UTF-8 is a decode failure,
    moved to the dead-letter stream)."""
    return {name.decode(): value.decode() for name, value in fields.items()}


def event_fields(event: object) -> Mapping[Any, Any]:
    """The default ``encode`` of :class:`RedisStreamSink`: a non-empty mapping of
    field names to values (``str``, ``bytes``, ``int`` or ``float``) is written as it
    is."""
    if not isinstance(event, Mapping) or not event:
        raise TypeError(
            "RedisStreamSink: an event must be a non-empty mapping of field names to "
            f"str, bytes, int or float values (or pass encode=...), got: {event!r}"
        )
    return event


@dataclass(slots=True)
class Sorted:
    """What :func:`sort_entries` made of a batch of entries."""

    #: Messages to deliver, in stream order.
    messages: list[Message[Any]] = field(default_factory=list)
    #: Entries ``decode`` failed on: ``(id, fields, exception, attempt)``.
    failures: list[tuple[str, Fields, BaseException, int]] = field(default_factory=list)
    #: Ids of entries deleted from the stream while pending (nothing to deliver).
    deleted: list[str] = field(default_factory=list)
    #: Entries skipped because the flow already holds them.
    skipped: int = 0
    #: The id of the last entry of the batch (``None`` for an empty batch).
    last_id: str | None = None


def sort_entries(
    entries: Sequence[Entry],
    *,
    stream: str,
    decode: Callable[[Fields], Any],
    attempts: Mapping[str, int] | None = None,
    skip: Container[str] = (),
) -> Sorted:
    """Decode ``entries`` into messages of source ``stream``.

    ``attempts`` maps ids to their delivery count (entries missing from it, or all
    entries when it is ``None``, are first deliveries: attempt 1). Entries whose id
    is in ``skip`` (messages the flow already holds) are left out, entries without
    fields are reported deleted, and entries ``decode`` raises on are reported as
    failures with the exception: none of them is delivered.
    """
    out = Sorted()
    messages = out.messages
    for raw_id, fields in entries:
        mid = raw_id.decode()
        if mid in skip:
            out.skipped += 1
            continue
        if not fields:
            out.deleted.append(mid)
            continue
        attempt = 1 if attempts is None else attempts.get(mid, 1)
        try:
            data = decode(fields)
        except Exception as exc:
            out.failures.append((mid, fields, exc, attempt))
            continue
        # No metadata beyond the id, whose first part is the entry's time in ms.
        messages.append(Message(data, mid, stream, attempt, {}))
    if entries:
        out.last_id = entries[-1][0].decode()
    return out


def describe(exc: BaseException) -> str:
    """``"ValueError: bad input"``: the exception's type and message, on one line."""
    return "".join(traceback.format_exception_only(exc)).strip()


def dead_letter_entry(
    fields: Mapping[bytes, bytes] | None,
    exc: BaseException,
    *,
    stream: str,
    mid: str,
    attempt: int,
) -> dict[bytes, bytes | str | int]:
    """The entry written to the dead-letter stream for entry ``mid`` of ``stream``:
    its original ``fields`` (renamed ``original:<name>`` where a name is one of
    :data:`DEAD_LETTER_FIELDS`), then why and where it failed."""
    out: dict[bytes, bytes | str | int] = {}
    for name, value in (fields or {}).items():
        out[b"original:" + name if name in _RESERVED else name] = value
    kind = type(exc)
    out[b"error"] = describe(exc)
    out[b"error_type"] = f"{kind.__module__}.{kind.__qualname__}"
    out[b"source_stream"] = stream
    out[b"source_id"] = mid
    out[b"attempt"] = attempt
    return out
