"""Batches of text events, and of ``(str, int)`` pairs, cross processes as one string
(a fast path under pickle).

Pickling a list of strings costs about 86 ns per short string (words, keys) there
and back, and about 124 per line of text: pickle frames and memoizes every string.
With flowstage's compiled helpers, a batch of strings goes as their concatenation
and the length of each (``("sized", edge, text, lengths)``, lengths as native
``uint32``): joined in one pass, cut by the lengths on the other side, about 45-55
ns per word and 60-85 per line there and back (``benchmarks/flow_text_frames.py``),
whatever the strings hold. A batch whose
every item is Latin-1 (no code point above 255: most text) is joined as those
items' own bytes (``text`` is then ``bytes``, read back as Latin-1), which pickle
can write out without copying them (see :mod:`._channel`); any other batch is
joined as a ``str``. The receiving
process keeps a cache of the short strings it made (:func:`piece_cache`,
:data:`PIECE_SLOTS` slots, one string each): a word that arrives again is the same
object as before, not a new one, so it is neither allocated nor freed again and its
hash is computed once, in the reducer's first dict lookup (a batch whose first 16
lookups found fewer than 2, strings that do not repeat, cuts the rest without the
cache). Without them, short strings go joined with a separator that no item contains
(``("text", edge, joined)``, split on the other side: about 85 ns per word there
and back), and long strings (lines of text), which pickle faster than a separator
can be searched for in them, are pickled: a batch whose first item is longer than
:data:`MAX_FIRST` characters.

:func:`pack` replaces each ``("events", edge, batch)`` whose batch holds only
``str`` objects (exactly ``str``: a subclass keeps its type through pickle only) by
one of those; :func:`unpack` turns it back into ``("events", edge, batch)`` with a
list equal to the original, item for item, every item of type ``str``.

Key/value pairs, the events of a reduction's dict (a word count's result) or of a
``map`` to ``(key, 1)``, pickle at about 75-95 ns a pair (pickle memoizes every
tuple and string) and unpickle at 100-115. With the compiled helpers, a batch of
exact 2-tuples of an exact ``str`` and an exact ``int`` within 64 bits goes as the
keys joined, their lengths and the values (``("pairs", edge, text, lengths,
values)``, lengths as native ``uint32``, values as native ``int64``): 13-17 ns a
pair to frame and 70-80 to make the pairs again. The pairs it makes are not tracked
by the cyclic garbage collector (a tuple of a ``str`` and an ``int`` cannot be part
of a cycle, and the collector would untrack it at its first look): a reduction's
result of many thousand pairs, kept by the parent, gives the collector nothing to
look at or to age. Without the helpers, or when a batch holds anything else, pairs
are pickled.

Every other message is left alone: pickle stays the general path.
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
    "PIECE_SLOTS",
    "SEP",
    "join_pairs_python",
    "join_sized_python",
    "pack",
    "pack_batch",
    "piece_cache",
    "split_pairs",
    "split_pairs_python",
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
_c_join_sized: Callable[[object], tuple[bytes | str, bytes] | None] | None = compiled("join_sized")
_c_split_sized: Callable[[bytes | str, bytes, list[str | None] | None], list[str]] | None = (
    compiled("split_sized")
)
_c_join_pairs: Callable[[object], tuple[str, bytes, bytes] | None] | None = compiled("join_pairs")
_c_split_pairs: Callable[[str, bytes, bytes], list[tuple[str, int]]] | None = compiled(
    "split_pairs"
)
#: The slots of a receiving process's cache of short strings (a power of two): at
#: most this many strings of 2 to 32 characters are kept, 64 K slots, 512 KiB of
#: pointers and at most about 5 MiB of strings. On the benchmark's corpus
#: (45,000 distinct words in 750,000), a word finds itself in its slot about 9
#: times in 10.
PIECE_SLOTS: Final = 1 << 16
#: The values a pair may hold on the fast path (a native int64).
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1


def join_sized_python(batch: object) -> tuple[bytes | str, bytes] | None:
    """The reference of the compiled ``join_sized``: ``(joined, lengths)`` (native
    ``uint32`` lengths) for a list of exact ``str``, else ``None``; ``joined`` is
    ``"".join(batch)`` encoded as Latin-1 when every item is Latin-1 (no code point
    above 255), else that ``str``."""
    if type(batch) is not list or any(type(item) is not str for item in batch):
        return None
    joined = "".join(batch)
    lengths = array("I", map(len, batch)).tobytes()
    if all(item.isascii() or max(item) <= "\xff" for item in batch if item):
        return joined.encode("latin-1"), lengths
    return joined, lengths


def split_sized_python(text: bytes | str, lengths: bytes) -> list[str]:
    """The reference of the compiled ``split_sized``: ``text`` (bytes are read as
    Latin-1) cut into pieces of ``lengths``."""
    chars = text.decode("latin-1") if isinstance(text, bytes) else text
    sizes = array("I")
    sizes.frombytes(lengths)
    if sum(sizes) != len(chars):
        raise ValueError("split_sized() got lengths that do not add up")
    out: list[str] = []
    start = 0
    for size in sizes:
        out.append(chars[start : start + size])
        start += size
    return out


def join_pairs_python(batch: object) -> tuple[str, bytes, bytes] | None:
    """The reference of the compiled ``join_pairs``: for a list of exact 2-tuples of
    an exact ``str`` and an exact ``int`` within 64 bits, ``(keys joined, lengths,
    values)`` (native ``uint32`` lengths, native ``int64`` values), else ``None``."""
    if type(batch) is not list:
        return None
    for pair in batch:
        if type(pair) is not tuple or len(pair) != 2:
            return None
        key, value = pair
        if type(key) is not str or type(value) is not int:
            return None
        if not _INT64_MIN <= value <= _INT64_MAX:
            return None
    keys = [key for key, _ in batch]
    return (
        "".join(keys),
        array("I", map(len, keys)).tobytes(),
        array("q", [value for _, value in batch]).tobytes(),
    )


def split_pairs_python(text: str, lengths: bytes, values: bytes) -> list[tuple[str, int]]:
    """The reference of the compiled ``split_pairs``: the pairs ``join_pairs`` took
    apart."""
    numbers = array("q")
    numbers.frombytes(values)
    keys = split_sized_python(text, lengths)
    if len(keys) != len(numbers):
        raise ValueError("split_pairs() needs as many values as lengths")
    return list(zip(keys, numbers.tolist(), strict=True))


def split_pairs(text: str, lengths: bytes, values: bytes) -> list[tuple[str, int]]:
    """The batch a ``("pairs", edge, text, lengths, values)`` message carries."""
    split = _c_split_pairs if _c_split_pairs is not None else split_pairs_python
    return split(text, lengths, values)


def piece_cache() -> list[str | None]:
    """A new, empty cache of short strings for :func:`split_sized` (one per
    receiving process and run, shared by its channels; freed with them)."""
    return [None] * PIECE_SLOTS


def split_sized(
    text: bytes | str, lengths: bytes, cache: list[str | None] | None = None
) -> list[str]:
    """The batch a ``("sized", edge, text, lengths)`` message carries. With the
    compiled helpers and a ``cache`` (see :func:`piece_cache`), a short item equal to
    one cut before is that same object."""
    if _c_split_sized is not None:
        return _c_split_sized(text, lengths, cache)
    return split_sized_python(text, lengths)


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
    pairs = _c_join_pairs
    for i, message in enumerate(messages):
        if message[0] == "events" and type(message[2]) is list:
            batch = message[2]
            packed: tuple[Any, ...] | None = None
            if sized is not None:
                if len(batch) >= MIN_ITEMS:
                    first = type(batch[0])
                    if first is str:
                        both = sized(batch)
                        if both is not None:
                            packed = ("sized", message[1], both[0], both[1])
                    elif first is tuple and pairs is not None:
                        three = pairs(batch)
                        if three is not None:
                            packed = ("pairs", message[1], *three)
            else:
                joined = pack_batch(batch)
                if joined is not None:
                    packed = ("text", message[1], joined)
            if packed is not None:
                if out is messages:
                    out = list(messages)
                out[i] = packed
    return out


def unpack(message: Any, cache: list[str | None] | None = None) -> Any:
    """``message``, with a joined text batch split back into its list (short strings
    through ``cache``, see :func:`split_sized`)."""
    if message[0] == "text":
        return ("events", message[1], message[2].split(SEP))
    if message[0] == "sized":
        return ("events", message[1], split_sized(message[2], message[3], cache))
    if message[0] == "pairs":
        return ("events", message[1], split_pairs(message[2], message[3], message[4]))
    return message
