"""Batches of text events cross processes as one string (a fast path under pickle).

Pickling a list of strings costs about 145 ns per short string (words, keys) there
and back, and about 190 per line of text: pickle frames and memoizes every string.
With flowstage's compiled helpers, a batch of strings goes as their concatenation
and the length of each (``("sized", edge, text, lengths)``, lengths as native
``uint32``): joined in one pass, cut by the lengths on the other side, about 52 ns
per word and 128 per line there and back, whatever the strings hold. Without them,
short strings go joined with a separator that no item contains
(``("text", edge, joined)``, split on the other side: about 85 ns per word there
and back), and long strings (lines of text), which pickle faster than a separator
can be searched for in them, are pickled: a batch whose first item is longer than
:data:`MAX_FIRST` characters.

:func:`pack` replaces each ``("events", edge, batch)`` whose batch holds only
``str`` objects (exactly ``str``: a subclass keeps its type through pickle only) by
one of those; :func:`unpack` turns it back into ``("events", edge, batch)`` with a
list equal to the original, item for item, every item of type ``str``. Every other
message is left alone: pickle stays the general path.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any, Final

from ..._compiled import compiled

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MAX_FIRST",
    "MIN_ITEMS",
    "SEP",
    "join_sized_python",
    "pack",
    "pack_batch",
    "split_sized",
    "split_sized_python",
    "unpack",
]

#: The separator: ``"\x00"`` rarely occurs in text; a batch where it does is pickled.
SEP: Final = "\x00"
#: Below this many events a batch is pickled (the checks would cost more than they save).
MIN_ITEMS: Final = 16
#: A batch whose first item is longer than this is pickled (long strings pickle fast).
MAX_FIRST: Final = 32
_ONLY_STR: Final = frozenset({str})

# The optional compiled helpers (flowstage/_speedups.c); the Python functions below
# are their reference (tests compare them). Without them, pack takes the joined text
# path instead (faster in Python than computing lengths).
_c_join_sized: Callable[[object], tuple[str, bytes] | None] | None = compiled("join_sized")
_c_split_sized: Callable[[str, bytes], list[str]] | None = compiled("split_sized")


def join_sized_python(batch: object) -> tuple[str, bytes] | None:
    """The reference of the compiled ``join_sized``: ``("".join(batch), lengths)``
    (native ``uint32`` lengths) for a list of exact ``str``, else ``None``."""
    if type(batch) is not list or any(type(item) is not str for item in batch):
        return None
    return "".join(batch), array("I", map(len, batch)).tobytes()


def split_sized_python(text: str, lengths: bytes) -> list[str]:
    """The reference of the compiled ``split_sized``: ``text`` cut into pieces of
    ``lengths``."""
    sizes = array("I")
    sizes.frombytes(lengths)
    if sum(sizes) != len(text):
        raise ValueError("split_sized() got lengths that do not add up")
    out: list[str] = []
    start = 0
    for size in sizes:
        out.append(text[start : start + size])
        start += size
    return out


def split_sized(text: str, lengths: bytes) -> list[str]:
    """The batch a ``("sized", edge, text, lengths)`` message carries."""
    split = _c_split_sized if _c_split_sized is not None else split_sized_python
    return split(text, lengths)


def pack_batch(batch: list[Any]) -> str | None:
    """``batch`` joined with :data:`SEP`, or ``None`` when it should be pickled (too
    short, a long first item, an item that is not exactly ``str``, or an item
    containing the separator)."""
    if len(batch) < MIN_ITEMS:
        return None
    first = batch[0]
    if type(first) is not str or len(first) > MAX_FIRST:
        return None
    if set(map(type, batch)) != _ONLY_STR:
        return None
    joined = SEP.join(batch)
    if joined.count(SEP) != len(batch) - 1:  # an item contains the separator
        return None
    return joined


def pack(messages: list[Any]) -> list[Any]:
    """``messages`` with every text batch joined (the same list when there is none)."""
    out = messages
    sized = _c_join_sized
    for i, message in enumerate(messages):
        if message[0] == "events" and type(message[2]) is list:
            batch = message[2]
            packed: tuple[Any, ...] | None = None
            if sized is not None:
                if len(batch) >= MIN_ITEMS and type(batch[0]) is str:
                    both = sized(batch)
                    if both is not None:
                        packed = ("sized", message[1], both[0], both[1])
            else:
                joined = pack_batch(batch)
                if joined is not None:
                    packed = ("text", message[1], joined)
            if packed is not None:
                if out is messages:
                    out = list(messages)
                out[i] = packed
    return out


def unpack(message: Any) -> Any:
    """``message``, with a joined text batch split back into its list."""
    if message[0] == "text":
        return ("events", message[1], message[2].split(SEP))
    if message[0] == "sized":
        return ("events", message[1], split_sized(message[2], message[3]))
    return message
