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
* ``str`` is ``zlib.crc32`` of its UTF-8 encoding (lone surrogates allowed), with
  no further mixing (strings are the common key; crc32's low bits are well spread);
  ``bytes`` is crc32 mixed with a type tag.
* ``tuple`` combines its items in order; ``frozenset`` combines them with a
  commutative sum, so iteration order does not matter.
* ``decimal.Decimal``: a whole number hashes like the equal ``int``
  (``Decimal("2.00") == 2 == 2.0``), a value a ``float`` holds exactly like that
  ``float`` (``Decimal("1.5") == 1.5``), NaN like a float NaN, and any other value
  by its sign, its digits without trailing zeros and its exponent (so
  ``Decimal("0.10")`` and ``Decimal("0.1")`` agree). A whole number with more
  than 100,000 digits raises :class:`TypeError`.
* ``uuid.UUID`` is its 128-bit integer, mixed with a type tag (a UUID equals no
  other type).
* ``datetime.date`` is its proleptic Gregorian ordinal, mixed with a type tag.
* ``datetime.datetime`` is its count of microseconds since 0001-01-01 00:00: for a
  timezone-aware value (``utcoffset()`` not ``None``) counted in UTC, so equal
  instants in different zones agree, mixed with one tag; for a naive value counted
  on its own clock, mixed with another (a naive and an aware datetime are never
  equal). As Python's own ``hash()``, the offset is read with ``fold=0`` (the
  fold is ignored by equality). A ``date`` and a ``datetime`` are never equal and
  hash differently.
* ``datetime.time`` likewise: microseconds since midnight, on its own clock when
  naive; in UTC when it has an offset (with the whole seconds of the offset, as
  Python compares them), under another tag.
* A plain ``enum.Enum`` member (one that is not also an ``int``, ``str``, ...,
  which hash like their value) is the crc32 of its class's module and qualified
  name and its member name, mixed with a type tag: ``Color.RED`` of module
  ``shop`` hashes ``"shop.Color.RED"``, in every process, whatever its value.
  Renaming the class, its module or the member changes the hash. A ``Flag``
  member without a name (``Perm(0)``) uses its value's hash instead.

Values that compare equal hash equal (a key never reaches two partitions because
of a representation change such as ``1`` vs ``1.0``, ``Decimal("1.5")`` vs
``1.5``, or one instant in two time zones). Any other type raises
:class:`TypeError`: pass ``key=`` (to hash a supported part of the event) or
``hash=`` (your own function) instead.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import math
import operator
import struct
import sys
import zlib
from typing import TYPE_CHECKING, Any, TypeVar

from ._compiled import compiled
from ._options import check_positive_int

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

# The optional compiled helper (flowstage/_speedups.c): the same partitions as the
# Python code below, which stays the reference and the fallback.
_c_buckets: Callable[[object, object, int], list[list[Any]] | None] | None = compiled("buckets")

__all__ = ["ItemKey", "KeyHash", "partitions_of", "partition_of", "stable_hash"]

T = TypeVar("T")

_M64 = (1 << 64) - 1
_MIN_I64 = -(1 << 63)
_LIMIT_U64 = 1 << 64
_GAMMA = 0x9E3779B97F4A7C15

# Type tags, so that values of different types that are not equal rarely collide.
_NONE = 0x6E6F6E6500000001
_BYTES = 0x6279746500000003
_FLOAT = 0x666C6F6100000004
_TUPLE = 0x7475706C00000005
_FSET = 0x6673657400000006
_BIGINT = 0x6269676900000007
_DECIMAL = 0x646563690000000A
_UUID = 0x7575696400000008
_DATE = 0x6461746500000009
_DATETIME = 0x647474690000000B  # naive
_DATETIME_UTC = 0x647475740000000C  # aware
_TIME = 0x74696D650000000D  # naive
_TIME_UTC = 0x746D75740000000E  # aware
_ENUM = 0x656E756D0000000F

#: Whole decimals with more digits than this are refused (their int would be huge).
_MAX_DECIMAL_DIGITS = 100_000
_US = _dt.timedelta(microseconds=1)

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
    # crc32 alone is well spread in its low bits, and strings are by far the most
    # common keys: no extra mixing on this hot path (see partitions_of).
    return zlib.crc32(x.encode("utf-8", "surrogatepass"))


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


def _hash_decimal(x: decimal.Decimal) -> int:
    if x.is_nan():
        return _hash_float(math.nan)
    if x.is_infinite():
        return _hash_float(float(x))
    if x == x.to_integral_value():
        if x.adjusted() >= _MAX_DECIMAL_DIGITS:
            raise TypeError(
                f"cannot compute a stable partition hash for a Decimal with more than "
                f"{_MAX_DECIMAL_DIGITS} digits (got one with {x.adjusted() + 1}); pass key= "
                "or hash="
            )
        return _hash_int(int(x))
    f = float(x)
    if f == x:  # exact: Decimal compares with float by value
        return _hash_float(f)
    sign, digits, exponent = x.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0")
    exponent += len(digits) - len(text)
    h = _mix64(_DECIMAL ^ sign)
    h = _mix64(h ^ zlib.crc32(text.encode("ascii")))
    return _mix64(h ^ (exponent & _M64))


def _hash_uuid(x: Any) -> int:
    value: int = x.int
    return _mix64(_mix64((value & _M64) ^ _UUID) ^ (value >> 64))


def _hash_date(x: _dt.date) -> int:
    return _mix64(_hash_int(x.toordinal()) ^ _DATE)


def _hash_datetime(x: _dt.datetime) -> int:
    offset = (x.replace(fold=0) if x.fold else x).utcoffset()
    seconds = x.toordinal() * 86400 + x.hour * 3600 + x.minute * 60 + x.second
    micros = seconds * 1_000_000 + x.microsecond
    if offset is None:
        return _mix64(_hash_int(micros) ^ _DATETIME)
    return _mix64(_hash_int(micros - offset // _US) ^ _DATETIME_UTC)


def _hash_time(x: _dt.time) -> int:
    offset = (x.replace(fold=0) if x.fold else x).utcoffset()
    seconds = x.hour * 3600 + x.minute * 60 + x.second
    if offset is None:
        return _mix64(_hash_int(seconds * 1_000_000 + x.microsecond) ^ _TIME)
    # As Python compares aware times: the offset's days and seconds, not its
    # microseconds.
    seconds -= offset.days * 86400 + offset.seconds
    return _mix64(_hash_int(seconds * 1_000_000 + x.microsecond) ^ _TIME_UTC)


def _hash_enum(x: enum.Enum) -> int:
    cls = type(x)
    name: str | None = x.name  # None for a Flag member such as Perm(0)
    if name is None:  # a Flag member without a name, such as Perm(0)
        h = stable_hash(x.value)
    else:
        h = zlib.crc32(name.encode("utf-8", "surrogatepass"))
    where = f"{cls.__module__}.{cls.__qualname__}".encode("utf-8", "surrogatepass")
    return _mix64(_mix64(zlib.crc32(where) ^ _ENUM) ^ h)


_HASHERS: dict[type, Callable[[Any], int]] = {
    int: _hash_int,
    str: _hash_str,
    bool: _hash_bool,
    type(None): _hash_none,
    float: _hash_float,
    bytes: _hash_bytes,
    tuple: _hash_tuple,
    frozenset: _hash_frozenset,
    decimal.Decimal: _hash_decimal,
    _dt.datetime: _hash_datetime,
    _dt.date: _hash_date,
    _dt.time: _hash_time,
}


def stable_hash(obj: object) -> int:
    """Return a 64-bit, non-negative hash of ``obj`` that is the same in every process.

    Supports ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``tuple`` (of
    supported values, recursively), ``frozenset`` (order independent),
    ``decimal.Decimal``, ``uuid.UUID``, ``datetime.datetime``, ``datetime.date``,
    ``datetime.time`` and ``enum.Enum`` members, including subclasses of these types,
    which hash like the value they hold (``IntEnum`` and ``(str, Enum)`` members hash
    like their value, whatever their ``str()``; a plain ``Enum`` member by its class
    and name). Values that compare equal hash equal. The module docstring says
    how each type is hashed.

    Raises:
        TypeError: for any other type (the message suggests ``key=`` or ``hash=``).
    """
    hasher = _HASHERS.get(type(obj))
    if hasher is not None:
        return hasher(obj)
    # Subclasses (IntEnum, str-mixin Enums, named tuples, ...): hash the value the
    # base type holds, which is what equality compares (``__str__``, ``__int__``
    # and friends may be overridden, as Enum does).
    if isinstance(obj, bool):
        return _hash_bool(obj)
    if isinstance(obj, int):
        return _hash_int(int.__index__(obj))
    if isinstance(obj, str):
        return _hash_str(str.__str__(obj))
    if isinstance(obj, float):
        return _hash_float(float.__float__(obj))
    if isinstance(obj, bytes):
        return _hash_bytes(bytes.__bytes__(obj))
    if isinstance(obj, tuple):
        return _hash_tuple(obj)
    if isinstance(obj, frozenset):
        return _hash_frozenset(obj)
    if isinstance(obj, decimal.Decimal):
        return _hash_decimal(obj)
    if isinstance(obj, _dt.datetime):  # before date: a datetime is a date
        return _hash_datetime(obj)
    if isinstance(obj, _dt.date):
        return _hash_date(obj)
    if isinstance(obj, _dt.time):
        return _hash_time(obj)
    if isinstance(obj, enum.Enum):
        return _hash_enum(obj)
    uuid = sys.modules.get("uuid")  # a UUID exists only once uuid was imported
    if uuid is not None and isinstance(obj, uuid.UUID):
        return _hash_uuid(obj)
    raise TypeError(
        f"cannot compute a stable partition hash for a value of type {type(obj).__qualname__!r} "
        f"(got: {obj!r}); supported types are None, bool, int, float, str, bytes, Decimal, "
        "UUID, datetime, date, time, Enum members, and tuples and frozensets of those. "
        "Pass key= to hash a supported part of the event, or hash= to compute the partition "
        "yourself"
    )


def partition_of(obj: object, n: int) -> int:
    """Return the partition (``0 <= p < n``) that :func:`stable_hash` assigns to ``obj``.

    Raises:
        TypeError: as :func:`stable_hash`, or ``n`` is not an integer.
        ValueError: when ``n < 1``.
    """
    if type(n) is not int or n < 1:
        n = check_positive_int("n", n, "partition_of")
    return stable_hash(obj) % n


def partitions_of(values: Sequence[object], n: int) -> list[int]:
    """``[partition_of(v, n) for v in values]``, computed in one tight loop.

    Strings, the most common keys, are hashed inline.
    """
    crc = zlib.crc32
    hash_any = stable_hash
    return [
        crc(v.encode("utf-8", "surrogatepass")) % n if type(v) is str else hash_any(v) % n
        for v in values
    ]


def _buckets_python(events: Sequence[T], keys: Sequence[object] | None, n: int) -> list[list[T]]:
    """:meth:`KeyHash.buckets` in Python: the reference for the compiled helper.

    ``keys`` is ``None`` when each event is its own key.
    """
    lists: list[list[T]] = [[] for _ in range(n)]
    appenders = [lst.append for lst in lists]
    crc = zlib.crc32
    # str.encode encodes the value of a str or str subclass (as stable_hash
    # does) and raises TypeError for anything else.
    encode = str.encode
    try:
        if keys is None:
            for event in events:
                appenders[crc(encode(event)) % n](event)  # type: ignore[arg-type]
        else:
            for event, k in zip(events, keys, strict=True):
                appenders[crc(encode(k)) % n](event)  # type: ignore[arg-type]
    except (TypeError, UnicodeError):
        # Other key types, or a lone surrogate: the general path (which also
        # names unsupported types).
        lists = [[] for _ in range(n)]
        appenders = [lst.append for lst in lists]
        for event, partition in zip(
            events, partitions_of(events if keys is None else keys, n), strict=True
        ):
            appenders[partition](event)
    return lists


class ItemKey:
    """``event[item]``, as a record: the key of ``partition(key=("elem", i))`` and
    ``key=("key", k)``. Equal when the items are equal (so plans holding one
    compare equal after pickling); :class:`KeyHash` reads it with
    :func:`operator.itemgetter`, in C."""

    __slots__ = ("item",)

    def __init__(self, item: object) -> None:
        self.item: object = item

    def __call__(self, event: Any) -> Any:
        return event[self.item]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ItemKey):
            return NotImplemented
        return bool(self.item == other.item)

    def __hash__(self) -> int:
        return hash((ItemKey, self.item))

    def __repr__(self) -> str:
        return f"ItemKey({self.item!r})"

    def __reduce__(self) -> tuple[type[ItemKey], tuple[object]]:
        return (ItemKey, (self.item,))


class KeyHash:
    """The default partition function of ``n`` partitions, optionally on a key.

    Called per event it behaves like any custom ``hash=`` function and returns
    ``(event, partition_of(key(event), n))``. Dispatchers recognise it and call
    :meth:`buckets` once per batch instead, which is several times faster.

    Two ``KeyHash`` are equal when they have the same ``n`` and the same ``key``
    (so a pickled and unpickled copy equals the original when ``key`` is a
    module-level function).
    """

    __slots__ = ("_get", "key", "n")

    def __init__(self, n: int, key: Callable[[Any], object] | None = None) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"the number of partitions must be an integer >= 1, got: {n!r}")
        if key is not None and not callable(key):
            raise TypeError(f"key must be callable, got: {key!r}")
        self.n: int = n
        self.key: Callable[[Any], object] | None = key
        # What extracts keys: an ItemKey runs as operator.itemgetter, in C.
        self._get: Callable[[Any], object] | None = (
            operator.itemgetter(key.item) if isinstance(key, ItemKey) else key
        )

    def __call__(self, event: object) -> tuple[object, int]:
        key = self._get
        return event, stable_hash(event if key is None else key(event)) % self.n

    def partitions(self, events: Sequence[object]) -> list[int]:
        """The partition of every event, in order."""
        key = self._get
        return partitions_of(events if key is None else [key(e) for e in events], self.n)

    def buckets(self, events: Sequence[T]) -> list[list[T]]:
        """The events of each partition ``0 .. n - 1``, each list in arrival order.

        Equivalent to bucketing by :meth:`partitions` (``key`` is called once per
        event), but when every key is a string (the common case) hashing and
        bucketing run in one loop, compiled when flowstage's optional extension is
        available.
        """
        n = self.n
        key = self._get
        keys = None if key is None else [key(e) for e in events]
        fast = _c_buckets
        if fast is not None:
            # None: a key that is not a str, or events that are not a list.
            lists = fast(events, keys, n)
            if lists is not None:
                return lists
        return _buckets_python(events, keys, n)

    def __repr__(self) -> str:
        return f"KeyHash(n={self.n}, key={self.key!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyHash):
            return NotImplemented
        return self.n == other.n and self.key == other.key

    def __hash__(self) -> int:
        return hash((KeyHash, self.n, self.key))

    def __reduce__(self) -> tuple[type[KeyHash], tuple[int, Callable[[Any], object] | None]]:
        return (KeyHash, (self.n, self.key))
