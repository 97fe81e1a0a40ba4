"""A process-independent hash for partitioning.

Python's built-in :func:`hash` of ``str`` and ``bytes`` is salted per process
(``PYTHONHASHSEED``), so two runs, or two worker processes, would send the same key
to different partitions. :func:`stable_hash` never depends on the process: the same
value gives the same 64-bit result in every process, run, platform and Python
version that flowstage supports.

**The values are part of the partitioning contract.** Which partition a key lands
in (and therefore the order of results a partitioned flow produces) depends on these
exact numbers, so they must never change in a released version. Tests pin them.

Theory of operation:

* ``int`` (and ``bool``, which equals ``0``/``1``) is mixed like SplitMix64's output
  (add the golden-ratio constant, then the finaliser), so consecutive integers
  spread evenly over any modulus. Integers that
  do not fit in 64 bits are folded 64 bits at a time.
* ``float`` values that are whole numbers hash like the equal ``int`` (``2.0 == 2``,
  ``-0.0 == 0``); other floats hash their IEEE-754 bits.
* ``str`` is ``zlib.crc32`` of its UTF-8 encoding (lone surrogates allowed), mixed
  with a type tag; ``bytes`` the same with a different tag.
* ``tuple`` combines its items in order; ``frozenset`` combines them with a
  commutative sum, so iteration order does not matter.

Values that compare equal hash equal (a key never reaches two partitions because
of a representation change such as ``1`` vs ``1.0``). Any other type raises
:class:`TypeError`: pass ``key=`` (to hash a supported part of the event) or
``hash=`` (your own function) instead.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["partition_of", "stable_hash"]

_M64 = (1 << 64) - 1
_MIN_I64 = -(1 << 63)
_LIMIT_U64 = 1 << 64
_GAMMA = 0x9E3779B97F4A7C15

# Type tags, so that values of different types that are not equal rarely collide.
_NONE = 0x6E6F6E6500000001
_STR = 0x7374720000000002
_BYTES = 0x6279746500000003
_FLOAT = 0x666C6F6100000004
_TUPLE = 0x7475706C00000005
_FSET = 0x6673657400000006
_BIGINT = 0x6269676900000007

_pack_double = struct.Struct("<d").pack


def _mix64(x: int) -> int:
    """SplitMix64 finaliser: a bijection on 64-bit integers with full avalanche."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _hash_int(x: int) -> int:
    # SplitMix64's output for state ``x``: the golden-ratio increment before the
    # finaliser keeps small windows of consecutive integers well balanced.
    if _MIN_I64 <= x < _LIMIT_U64:
        return _mix64(((x & _M64) + _GAMMA) & _M64)
    h = _BIGINT
    while x not in (0, -1):
        h = _mix64(h ^ (x & _M64))
        x >>= 64
    return _mix64(h ^ (x & _M64))


def _hash_bool(x: bool) -> int:
    return _hash_int(int(x))


def _hash_none(_: None) -> int:
    return _mix64(_NONE)


def _hash_float(x: float) -> int:
    if x.is_integer():
        return _hash_int(int(x))
    if math.isnan(x):
        # NaN never equals anything; give every NaN the same value.
        x = math.nan
    return _mix64(int.from_bytes(_pack_double(x), "little") ^ _FLOAT)


def _hash_str(x: str) -> int:
    return _mix64(zlib.crc32(x.encode("utf-8", "surrogatepass")) ^ _STR)


def _hash_bytes(x: bytes) -> int:
    return _mix64(zlib.crc32(x) ^ _BYTES)


def _hash_tuple(x: tuple[object, ...]) -> int:
    h = _TUPLE ^ len(x)
    for item in x:
        h = _mix64(h ^ stable_hash(item))
    return h


def _hash_frozenset(x: frozenset[object]) -> int:
    total = 0
    for item in x:
        total += stable_hash(item)
    return _mix64((total & _M64) ^ _FSET ^ len(x))


_HASHERS: dict[type, Callable[[Any], int]] = {
    int: _hash_int,
    str: _hash_str,
    bool: _hash_bool,
    type(None): _hash_none,
    float: _hash_float,
    bytes: _hash_bytes,
    tuple: _hash_tuple,
    frozenset: _hash_frozenset,
}


def stable_hash(obj: object) -> int:
    """Return a 64-bit, non-negative hash of ``obj`` that is the same in every process.

    Supports ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``tuple`` (of
    supported values, recursively) and ``frozenset`` (order independent), including
    subclasses of these types (for example ``IntEnum`` members hash like their value).
    Values that compare equal hash equal.

    Raises:
        TypeError: for any other type (the message suggests ``key=`` or ``hash=``).
    """
    hasher = _HASHERS.get(type(obj))
    if hasher is not None:
        return hasher(obj)
    # Subclasses (IntEnum, str subclasses, named tuples, ...): hash like the base.
    if isinstance(obj, bool):
        return _hash_bool(obj)
    if isinstance(obj, int):
        return _hash_int(int(obj))
    if isinstance(obj, str):
        return _hash_str(str(obj))
    if isinstance(obj, float):
        return _hash_float(float(obj))
    if isinstance(obj, bytes):
        return _hash_bytes(bytes(obj))
    if isinstance(obj, tuple):
        return _hash_tuple(obj)
    if isinstance(obj, frozenset):
        return _hash_frozenset(obj)
    raise TypeError(
        f"cannot compute a stable partition hash for a value of type {type(obj).__qualname__!r} "
        f"(got: {obj!r}); supported types are None, bool, int, float, str, bytes, and tuples "
        "and frozensets of those. Pass key= to hash a supported part of the event, or hash= "
        "to compute the partition yourself"
    )


def partition_of(obj: object, n: int) -> int:
    """Return the partition (``0 <= p < n``) that :func:`stable_hash` assigns to ``obj``.

    Raises:
        TypeError: as :func:`stable_hash`.
        ValueError: when ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"the number of partitions must be >= 1, got: {n!r}")
    return stable_hash(obj) % n
