"""Batches of text events cross processes as one joined string (a fast path under pickle).

Pickling a list of short strings (words, keys) costs about 145 ns per item there
and back (pickle frames and memoizes every string); joining them with a separator
that no item contains, pickling the one string and splitting it on the other side
costs about 110. Long strings (lines of text) pickle faster than they join and
split, so a batch whose first item is longer than :data:`MAX_FIRST` characters is
pickled.

:func:`pack` replaces each ``("events", edge, batch)`` whose batch holds only
``str`` objects (exactly ``str``: a subclass keeps its type through pickle only) and
no separator by ``("text", edge, joined)``; :func:`unpack` turns it back into
``("events", edge, batch)`` with a list equal to the original, item for item, every
item of type ``str``. Every other message is left alone: pickle stays the general
path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ..._compiled import compiled

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MAX_FIRST", "MIN_ITEMS", "SEP", "pack", "pack_batch", "unpack"]

#: The separator: ``"\x00"`` rarely occurs in text; a batch where it does is pickled.
SEP: Final = "\x00"
#: Below this many events a batch is pickled (the checks would cost more than they save).
MIN_ITEMS: Final = 16
#: A batch whose first item is longer than this is pickled (long strings pickle fast).
MAX_FIRST: Final = 32
_ONLY_STR: Final = frozenset({str})

# The optional compiled helper (flowstage/_speedups.c): the checks and the join in
# one pass, the same result as the Python code below (the reference and fallback).
_c_join: Callable[[object, str], str | None] | None = compiled("join_text")


def pack_batch(batch: list[Any]) -> str | None:
    """``batch`` joined with :data:`SEP`, or ``None`` when it should be pickled (too
    short, a long first item, an item that is not exactly ``str``, or an item
    containing the separator)."""
    if len(batch) < MIN_ITEMS:
        return None
    first = batch[0]
    if type(first) is not str or len(first) > MAX_FIRST:
        return None
    if _c_join is not None:
        return _c_join(batch, SEP)
    if set(map(type, batch)) != _ONLY_STR:
        return None
    joined = SEP.join(batch)
    if joined.count(SEP) != len(batch) - 1:  # an item contains the separator
        return None
    return joined


def pack(messages: list[Any]) -> list[Any]:
    """``messages`` with every text batch joined (the same list when there is none)."""
    out = messages
    for i, message in enumerate(messages):
        if message[0] == "events" and type(message[2]) is list:
            joined = pack_batch(message[2])
            if joined is not None:
                if out is messages:
                    out = list(messages)
                out[i] = ("text", message[1], joined)
    return out


def unpack(message: Any) -> Any:
    """``message``, with a joined text batch split back into its list."""
    if message[0] == "text":
        return ("events", message[1], message[2].split(SEP))
    return message
