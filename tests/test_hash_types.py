"""The stable hash of Decimal, UUID, datetime, date, time and Enum members (issue 13,
item 6): common partition keys (money, ids, timestamps, states). Equal values
hash equal, across types where Python says they are equal; the values are pinned,
and the same in another process."""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import subprocess
import sys
import uuid
import zoneinfo
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowstage import Flow, KeyHash, partition_of, stable_hash

UTC = dt.UTC
PLUS_2 = dt.timezone(dt.timedelta(hours=2))
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")

# A class the subprocess can define identically (module and qualified name given).
Color = enum.Enum("Color", ["RED", "GREEN"], module="shop", qualname="Color")


class Perm(enum.Flag):
    R = 4
    W = 2


class Code(enum.IntEnum):
    OK = 200


def test_pinned_values() -> None:
    # Part of the partitioning contract, like the values in test_hash.py: never
    # change them in a released version.
    assert stable_hash(Decimal("1.5")) == 3443651925282912418
    assert stable_hash(Decimal("0.1")) == 16294947855788902711
    assert stable_hash(Decimal("-12.345")) == 1295627068019126185
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert stable_hash(u) == 15590761470034231808
    assert stable_hash(dt.date(2024, 5, 1)) == 1689325736090340052
    assert stable_hash(dt.datetime(2024, 5, 1, 12, 30)) == 13083433436825473555
    assert stable_hash(dt.datetime(2024, 5, 1, 12, 30, tzinfo=UTC)) == 6103281711983716633
    assert stable_hash(dt.time(12, 30)) == 17435577599754729247
    assert stable_hash(dt.time(12, 30, tzinfo=UTC)) == 12743304056871392101
    assert stable_hash(Color.RED) == 12546303322780145910


def test_decimals_hash_like_the_numbers_they_equal() -> None:
    assert Decimal("1.5") == 1.5
    assert stable_hash(Decimal("1.5")) == stable_hash(1.5)
    assert Decimal(1) == 1 == True
    assert stable_hash(Decimal(1)) == stable_hash(1) == stable_hash(True)
    assert stable_hash(Decimal("2.000")) == stable_hash(2) == stable_hash(2.0)
    assert stable_hash(Decimal("-0")) == stable_hash(0)
    assert stable_hash(Decimal("1e30")) == stable_hash(10**30)
    assert stable_hash(Decimal("Infinity")) == stable_hash(float("inf"))
    assert stable_hash(Decimal("NaN")) == stable_hash(Decimal("sNaN")) == stable_hash(float("nan"))
    # Not equal to the float nearest 0.1, but equal whatever its trailing zeros.
    assert Decimal("0.1") != 0.1
    assert stable_hash(Decimal("0.1")) == stable_hash(Decimal("0.10")) != stable_hash(0.1)
    assert stable_hash(Decimal("0.1")) != stable_hash(Decimal("-0.1"))
    assert stable_hash(Decimal("0.1")) != stable_hash(Decimal("0.01"))


def test_huge_whole_decimals_are_refused() -> None:
    assert stable_hash(Decimal("1e99999")) == stable_hash(10**99999)
    with pytest.raises(TypeError, match="more than 100000 digits"):
        stable_hash(Decimal("1e100000"))


@given(st.decimals(allow_nan=False, places=None))
def test_decimals_equal_to_an_int_or_float_hash_like_it(d: Decimal) -> None:
    f = float(d)
    if d == f:
        assert stable_hash(d) == stable_hash(f)
    if d.is_finite() and d == d.to_integral_value() and d.adjusted() < 1000:
        assert stable_hash(d) == stable_hash(int(d))
    assert stable_hash(d) == stable_hash(Decimal(str(d)))
    assert stable_hash(d) == stable_hash(d.normalize()) or d.normalize() != d


def test_aware_datetimes_hash_by_instant() -> None:
    a = dt.datetime(2024, 5, 1, 12, tzinfo=UTC)
    b = dt.datetime(2024, 5, 1, 14, tzinfo=PLUS_2)
    c = a.astimezone(NEW_YORK)
    assert a == b == c
    assert stable_hash(a) == stable_hash(b) == stable_hash(c)
    # The fold is ignored by equality (same zone), and by the hash.
    x = dt.datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK)
    assert x == x.replace(fold=1)
    assert stable_hash(x) == stable_hash(x.replace(fold=1))
    naive = dt.datetime(2024, 5, 1, 12)
    assert naive == naive.replace(fold=1)
    assert stable_hash(naive) == stable_hash(naive.replace(fold=1))


def test_datetimes_that_python_never_equates_hash_apart() -> None:
    aware = dt.datetime(2024, 5, 1, 12, tzinfo=UTC)
    naive = dt.datetime(2024, 5, 1, 12)
    assert naive != aware
    assert stable_hash(naive) != stable_hash(aware)
    assert dt.date(2024, 5, 1) != dt.datetime(2024, 5, 1)
    assert stable_hash(dt.date(2024, 5, 1)) != stable_hash(dt.datetime(2024, 5, 1))
    assert stable_hash(dt.date(2024, 5, 1)) != stable_hash(dt.date(2024, 5, 2))
    assert stable_hash(dt.datetime.min) != stable_hash(dt.datetime.max)
    # The extremes do not overflow once shifted to UTC.
    stable_hash(dt.datetime.min.replace(tzinfo=PLUS_2))
    stable_hash(dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-23))))


@given(st.datetimes(timezones=st.timezones()), st.timezones())
def test_equal_datetimes_in_any_zones_hash_equal(a: dt.datetime, zone: dt.tzinfo) -> None:
    try:
        b = a.astimezone(zone)
    except OverflowError:
        return
    if a == b:
        assert stable_hash(a) == stable_hash(b)


def test_times() -> None:
    assert dt.time(12, tzinfo=UTC) == dt.time(14, tzinfo=PLUS_2)
    assert stable_hash(dt.time(12, tzinfo=UTC)) == stable_hash(dt.time(14, tzinfo=PLUS_2))
    assert dt.time(12) != dt.time(12, tzinfo=UTC)
    assert stable_hash(dt.time(12)) != stable_hash(dt.time(12, tzinfo=UTC))
    assert stable_hash(dt.time(12, fold=1)) == stable_hash(dt.time(12))
    assert stable_hash(dt.time(12)) != stable_hash(dt.time(12, 0, 0, 1))


def test_uuids() -> None:
    u = uuid.UUID(int=2**100 + 5)
    assert stable_hash(u) == stable_hash(uuid.UUID(str(u)))
    assert stable_hash(u) != stable_hash(uuid.UUID(int=5))
    assert stable_hash(u) != stable_hash(u.int)  # a UUID equals no int
    assert len({partition_of(uuid.UUID(int=i), 4) for i in range(100)}) == 4


def test_enum_members_hash_by_class_and_name() -> None:
    assert stable_hash(Color.RED) == stable_hash(Color["RED"]) == stable_hash(Color(1))
    assert stable_hash(Color.RED) != stable_hash(Color.GREEN)
    Other = enum.Enum("Color", ["RED"], module="elsewhere", qualname="Color")
    assert stable_hash(Other.RED) != stable_hash(Color.RED)
    # Members that are also ints or strs hash like the value they equal.
    assert stable_hash(Code.OK) == stable_hash(200)
    assert stable_hash(Perm.R | Perm.W) == stable_hash(Perm(6))
    assert stable_hash(Perm(0)) != stable_hash(Perm.R)


def test_key_hash_buckets_the_new_types_like_partition_of() -> None:
    keys = [Decimal(i) / 4 for i in range(50)] + [uuid.UUID(int=i) for i in range(50)]
    keys += [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(50)]
    keys += [Color.RED, Color.GREEN, "a str key", "another"]
    buckets = KeyHash(3).buckets(keys)
    for partition, items in enumerate(buckets):
        assert all(partition_of(k, 3) == partition for k in items)
    assert sorted(map(len, buckets)) != [0, 0, len(keys)]


_SCRIPT = """
import datetime as dt, enum, json, sys, uuid
from decimal import Decimal
sys.path.insert(0, sys.argv[1])
from flowstage import stable_hash
Color = enum.Enum("Color", ["RED", "GREEN"], module="shop", qualname="Color")
samples = [
    Decimal("1.5"), Decimal("-12.345"), uuid.UUID(int=2**100 + 5), dt.date(2024, 5, 1),
    dt.datetime(2024, 5, 1, 12, 30), dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
    dt.time(12, 30), Color.GREEN,
]
print(json.dumps([stable_hash(s) for s in samples]))
"""


@pytest.mark.parametrize("seed", ["0", "random"])
def test_stable_across_processes(seed: str) -> None:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(root)],
        env=dict(os.environ, PYTHONHASHSEED=seed),
        capture_output=True,
        text=True,
        check=True,
    )
    samples = [
        Decimal("1.5"),
        Decimal("-12.345"),
        uuid.UUID(int=2**100 + 5),
        dt.date(2024, 5, 1),
        dt.datetime(2024, 5, 1, 12, 30),
        dt.datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        dt.time(12, 30),
        Color.GREEN,
    ]
    assert json.loads(out.stdout) == [stable_hash(s) for s in samples]


@pytest.mark.anyio
async def test_a_flow_partitions_by_these_keys() -> None:
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i % 7) for i in range(70)]
    flow = Flow.from_iterable(days, stages=1).partition(stages=3).reduce(dict, count)
    counts = await flow.to_list()
    assert sorted(counts) == sorted((d, 10) for d in set(days))


def count(acc: dict[dt.date, int], key: dt.date) -> dict[dt.date, int]:
    acc[key] = acc.get(key, 0) + 1
    return acc
