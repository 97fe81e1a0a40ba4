"""The optional compiled helper (flowstage/_speedups.c) against the Python reference.

Every ``KeyHash.buckets`` test runs twice: on the pure-Python path and on the compiled
one. The compiled runs are skipped when the extension is not built, unless
``FLOWSTAGE_REQUIRE_EXTENSIONS=1`` (set by CI), which turns a missing module into a
failure.
"""

from __future__ import annotations

import enum
import operator
import os
import random
import subprocess
import sys
import zlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowstage import _hash
from flowstage._hash import KeyHash, partition_of
from flowstage.executors.process import _text

from .services import speedups, use_path

_speedups: ModuleType | None
try:
    from flowstage import _speedups
except ImportError:
    _speedups = None

REQUIRED = os.environ.get("FLOWSTAGE_REQUIRE_EXTENSIONS", "") not in ("", "0")
DISABLED = os.environ.get("FLOWSTAGE_NO_EXTENSIONS", "") not in ("", "0")
NS = [1, 2, 3, 7, 64, 1000]


def _compiled() -> ModuleType:
    return speedups()


@pytest.fixture(params=["python", "compiled"])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on one path of KeyHash.buckets."""
    return use_path(request.param, monkeypatch, _hash, "_c_buckets", "buckets")


def _reference(
    events: Sequence[Any], n: int, key: Callable[[Any], object] | None = None
) -> list[list[Any]]:
    """The contract: each event in the list of partition_of(key), in arrival order."""
    lists: list[list[Any]] = [[] for _ in range(n)]
    for e in events:
        lists[partition_of(e if key is None else key(e), n)].append(e)
    return lists


class _Shade(str, enum.Enum):  # noqa: UP042 (not StrEnum: str() differs from the value)
    DARK = "dark"
    LIGHT = "lïght ✓"


class _Weird(str):
    def __str__(self) -> str:
        return "something else"


def _words(rng: random.Random, alphabet: str, count: int, longest: int) -> list[str]:
    return ["".join(rng.choices(alphabet, k=rng.randint(0, longest))) for _ in range(count)]


_RNG = random.Random(20240501)
ASCII = _words(_RNG, "abcdefghijklmnopqrstuvwxyz", 600, 10)
NON_ASCII = _words(_RNG, "aeéèàçüößøå€—中文字日本語한국어😀🎉🐍", 600, 12)
LONG = (
    ["x" * k for k in (7, 8, 9, 15, 16, 17, 63, 64, 255, 256, 257, 1000)]
    + ["é" * k for k in (85, 86, 127, 128, 129, 500)]
    + ["😀" * k for k in (63, 64, 65, 300)]
)
SUBCLASSES = [_Shade.DARK, _Shade.LIGHT, _Weird("x"), _Weird("ünï"), _Weird("")]
SURROGATES = ["\ud800", "a\udfffb", "\udcff", "\ud83d\ude00", "é\ud800中"]

STRING_BATCHES = {
    "ascii": ASCII,
    "non-ascii": NON_ASCII,
    "empty strings": ["", "", "a", ""],
    "long": LONG,
    "subclasses": [*SUBCLASSES, "dark", "x"],
    "surrogates": [*SURROGATES, "plain", "😀"],
    "everything": ASCII[:50] + NON_ASCII[:50] + LONG + SUBCLASSES + SURROGATES,
}
MIXED_BATCHES: dict[str, list[Any]] = {
    "int last": [*ASCII[:100], 7],
    "int first": [7, *ASCII[:100]],
    "all types": ["a", 1, 2.5, None, b"a", ("a", 1), frozenset({"a"}), True, _Shade.DARK],
    "bytes": [b"abc", "abc"],
}


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("batch", list(STRING_BATCHES), ids=str)
def test_string_keys_match_partition_of(impl: str, batch: str, n: int) -> None:
    events = STRING_BATCHES[batch]
    got = KeyHash(n).buckets(events)
    assert got == _reference(events, n)
    # The very same objects, not equal copies.
    assert [id(e) for lst in got for e in lst] == [
        id(e) for lst in _reference(events, n) for e in lst
    ]


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("batch", list(MIXED_BATCHES), ids=str)
def test_other_key_types_match_partition_of(impl: str, batch: str, n: int) -> None:
    events = MIXED_BATCHES[batch]
    assert KeyHash(n).buckets(events) == _reference(events, n)


@pytest.mark.parametrize("n", NS)
def test_with_a_key_function(impl: str, n: int) -> None:
    events = [(w, i) for i, w in enumerate(ASCII[:100] + NON_ASCII[:100] + SURROGATES)]
    key = operator.itemgetter(0)
    assert KeyHash(n, key).buckets(events) == _reference(events, n, key)
    # The key may be of any supported type; the events need not be.
    mixed = [(i, object()) for i in range(50)] + [("w", object())]
    assert KeyHash(n, key).buckets(mixed) == _reference(mixed, n, key)
    assert KeyHash(n, operator.itemgetter(1)).buckets(events) == _reference(
        events, n, operator.itemgetter(1)
    )


def test_pinned_partitions(impl: str) -> None:
    # zlib.crc32(b"hello") == 907060870 (test_hash.py pins it).
    for n in NS:
        assert KeyHash(n).buckets(["hello"])[907060870 % n] == ["hello"]


def test_empty_batch_and_sequences(impl: str) -> None:
    assert KeyHash(3).buckets([]) == [[], [], []]
    assert KeyHash(1).buckets(["a", "b", "a"]) == [["a", "b", "a"]]
    words = ASCII[:200]
    assert KeyHash(7).buckets(tuple(words)) == _reference(words, 7)

    class MyList(list[str]):
        pass

    assert KeyHash(7).buckets(MyList(words)) == _reference(words, 7)


def test_unsupported_keys_raise(impl: str) -> None:
    with pytest.raises(TypeError, match="stable partition hash"):
        KeyHash(4).buckets(["a", object()])
    with pytest.raises(TypeError, match="stable partition hash"):
        KeyHash(4).buckets(["a", ["a list"]])


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(
        st.text(
            st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
            | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())
            | st.characters(max_codepoint=0x7F)
        )
    ),
    n=st.sampled_from(NS),
)
def test_property_both_paths_agree(words: list[str], n: int) -> None:
    expected = _reference(words, n)
    assert _hash._buckets_python(words, None, n) == expected
    if _speedups is not None:
        assert _speedups.buckets(words, None, n) == expected
        assert KeyHash(n).buckets(words) == expected


# -- the compiled module itself --------------------------------------------------------


def test_str_crc32_is_zlib_crc32_of_surrogatepass_utf8() -> None:
    mod = _compiled()
    rng = random.Random(7)
    ranges = [(0, 0x7F), (0, 0xFF), (0x80, 0x7FF), (0, 0xFFFF), (0xD800, 0xDFFF), (0, 0x10FFFF)]
    for _ in range(3000):
        low, high = rng.choice(ranges)
        length = rng.choice([0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 63, 64, 65, 85, 86, 300, 2000])
        s = "".join(chr(rng.randint(low, high)) for _ in range(length))
        assert mod.str_crc32(s) == zlib.crc32(s.encode("utf-8", "surrogatepass")), repr(s)
    # A str subclass hashes the value it holds, whatever its __str__ says.
    assert mod.str_crc32(_Shade.DARK) == zlib.crc32(b"dark")
    assert mod.str_crc32(_Weird("x")) == zlib.crc32(b"x")
    with pytest.raises(TypeError):
        mod.str_crc32(b"x")


def test_buckets_holds_one_reference_per_event_and_leaks_none() -> None:
    """Each event is referenced once by its partition's list, also when a key that
    is not a str sends the batch to the general path half-way."""
    mod = _compiled()
    events = [f"event-{i}" for i in range(50)]
    before = [sys.getrefcount(e) for e in events]
    lists = mod.buckets(events, None, 7)
    assert [sys.getrefcount(e) for e in events] == [b + 1 for b in before]
    assert sorted(e for lst in lists for e in lst) == sorted(events)
    del lists
    assert [sys.getrefcount(e) for e in events] == before
    keys = [*events[:25], 25, *events[26:]]
    before = [sys.getrefcount(e) for e in events]
    assert mod.buckets(events, keys, 7) is None
    assert [sys.getrefcount(e) for e in events] == before


def test_buckets_returns_none_for_what_it_does_not_handle() -> None:
    mod = _compiled()
    assert mod.buckets(["a", 1], None, 3) is None
    assert mod.buckets([b"a"], None, 3) is None
    assert mod.buckets(("a",), None, 3) is None
    assert mod.buckets(["a"], ("a",), 3) is None
    assert mod.buckets(["a"], [1], 3) is None

    class MyList(list[str]):
        pass

    assert mod.buckets(MyList(["a"]), None, 3) is None
    assert mod.buckets([], None, 3) == [[], [], []]
    assert mod.buckets([1], ["k"], 2) == _reference([1], 2, lambda _: "k")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((["a"], None, 0), ValueError),
        ((["a"], None, -5), ValueError),
        ((["a"], None, "3"), TypeError),
        ((["a"], None, 3.0), TypeError),
        ((["a"], None, 2**80), OverflowError),
        ((["a"], ["a", "b"], 3), ValueError),
        ((["a"], None), TypeError),
        ((), TypeError),
    ],
)
def test_buckets_rejects_bad_arguments(args: tuple[Any, ...], error: type[Exception]) -> None:
    mod = _compiled()
    with pytest.raises(error):
        mod.buckets(*args)


def test_buckets_keeps_reference_counts_balanced() -> None:
    mod = _compiled()
    event = "a word"
    other = object()
    before = sys.getrefcount(event), sys.getrefcount(other)
    for _ in range(1000):
        assert mod.buckets([event, other], None, 3) is None  # falls back half way
        result = mod.buckets([event] * 5, None, 64)
        assert result is not None
        assert sum(map(len, result)) == 5
        del result
        assert mod.buckets([other], [event], 2) is not None
    assert (sys.getrefcount(event), sys.getrefcount(other)) == before


def test_large_modulus() -> None:
    mod = _compiled()
    words = ASCII[:100]
    assert mod.buckets(words, None, 100_003) == _reference(words, 100_003)


# -- wiring ------------------------------------------------------------------------------


def test_extension_in_use_when_required() -> None:
    if not REQUIRED or DISABLED:
        pytest.skip("only checked when FLOWSTAGE_REQUIRE_EXTENSIONS=1")
    assert _hash._c_buckets is not None
    assert None not in (_text._c_join_sized, _text._c_split_sized)
    assert None not in (_text._c_join_pairs, _text._c_split_pairs)


def test_no_extensions_variable_selects_pure_python() -> None:
    code = "import flowstage._hash as h; print(h._c_buckets is None)"
    env = dict(os.environ, FLOWSTAGE_NO_EXTENSIONS="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"
