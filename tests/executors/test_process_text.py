"""The text fast paths of the process executor's frames: a batch of strings crosses
as one string and comes back equal, item for item and type for type; anything else
is left to pickle.

Every test runs on both paths: with the compiled helpers
(``flowstage._speedups.join_sized``/``split_sized``: any batch of exact ``str``
goes as one string and the lengths of its items; ``join_pairs``/``split_pairs``: a
batch of ``(str, int)`` pairs as the keys joined, their lengths and the values) and
without them (short strings joined with a separator; long ones, any holding the
separator, and pairs, pickled). The
compiled runs are skipped when the extension is not built, unless
``FLOWSTAGE_REQUIRE_EXTENSIONS=1`` (set by CI).
"""

from __future__ import annotations

import gc
import pickle
import sys
from array import array
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowstage.executors.process import _text
from flowstage.executors.process._text import (
    MAX_FIRST,
    MIN_ITEMS,
    PIECE_SLOTS,
    SEP,
    join_pairs_python,
    join_sized_python,
    pack,
    pack_batch,
    piece_cache,
    split_pairs_python,
    split_sized_python,
    unpack,
)

from ..services import speedups, use_path


@pytest.fixture(autouse=True, params=["python", "compiled"])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with and without the compiled helpers."""
    use_path(request.param, monkeypatch, _text, "_c_split_sized", "split_sized")
    use_path(request.param, monkeypatch, _text, "_c_join_pairs", "join_pairs")
    use_path(request.param, monkeypatch, _text, "_c_split_pairs", "split_pairs")
    return use_path(request.param, monkeypatch, _text, "_c_join_sized", "join_sized")


class Word(str):
    """A str subclass: must keep its type, so it must not take the fast path."""


def roundtrip(messages: list[Any]) -> list[Any]:
    return [unpack(m) for m in pickle.loads(pickle.dumps(pack(messages), protocol=5))]


def test_words_take_the_fast_path_and_come_back_equal(impl: str) -> None:
    words = [f"w{i}" for i in range(100)] + ["", "é", "日本"]
    packed = pack([("events", 3, words), ("ask", 4, 10)])
    assert packed[0][0] == ("sized" if impl == "compiled" else "text")
    assert packed[1] == ("ask", 4, 10)
    back = roundtrip([("events", 3, words), ("ask", 4, 10)])
    assert back == [("events", 3, words), ("ask", 4, 10)]
    assert all(type(w) is str for w in back[0][2])


def test_batches_that_must_be_pickled_are_left_alone() -> None:
    short = ["a"] * (MIN_ITEMS - 1)
    subclass = ["a"] * MIN_ITEMS + [Word("b")]
    numbers = list(range(MIN_ITEMS * 2))
    mixed = ["a"] * MIN_ITEMS + [1]
    for batch in (short, subclass, numbers, mixed):
        assert pack_batch(batch) is None, batch
        messages = [("events", 1, batch)]
        assert pack(messages) is messages
        back = roundtrip(messages)
        assert back == messages
        assert [type(e) for e in back[0][2]] == [type(e) for e in batch]


def test_lines_and_strings_with_the_separator_take_the_sized_path_only(impl: str) -> None:
    """Without the compiled helpers, long strings are pickled (faster than searching
    them for the separator) and so is a batch with the separator in an item; with
    them, both go as one string and its lengths."""
    long_first = ["x" * (MAX_FIRST + 1)] + ["a"] * MIN_ITEMS
    with_sep = ["a"] * MIN_ITEMS + [f"b{SEP}c"]
    for batch in (long_first, with_sep):
        assert pack_batch(batch) is None, batch
        messages = [("events", 1, batch)]
        packed = pack(messages)
        if impl == "compiled":
            assert packed[0][0] == "sized"
        else:
            assert packed is messages
        assert roundtrip(messages) == messages


@given(st.lists(st.text(max_size=40) | st.builds(Word, st.text(max_size=5)), max_size=80))
def test_any_list_of_strings_comes_back_equal_with_its_types(batch: list[str]) -> None:
    back = roundtrip([("events", 7, batch), ("done", 7)])
    assert back == [("events", 7, batch), ("done", 7)]
    assert [type(e) for e in back[0][2]] == [type(e) for e in batch]


BATCHES = st.lists(
    st.text(max_size=12, alphabet=st.characters(codec="utf-8") | st.just(SEP))
    | st.builds(Word, st.text(max_size=3))
    | st.integers(),
    max_size=60,
)


@given(BATCHES)
def test_the_compiled_join_decides_as_the_python_code(batch: list[object]) -> None:
    join_sized = speedups().join_sized
    expected = join_sized_python(batch)
    assert join_sized(batch) == expected
    assert join_sized(tuple(batch)) is None  # only exact lists
    if expected is not None:
        text, lengths = expected
        assert speedups().split_sized(text, lengths) == batch
        assert split_sized_python(text, lengths) == batch


def test_the_sized_split_refuses_lengths_that_do_not_describe_the_text() -> None:
    for split in (speedups().split_sized, split_sized_python):
        with pytest.raises(ValueError, match="do not add up"):
            split("abc", array("I", [1, 1]).tobytes())
        with pytest.raises(ValueError, match="do not add up"):
            split("abc", array("I", [2, 2]).tobytes())
        assert split("", b"") == []
        assert split("abc", array("I", [0, 3, 0]).tobytes()) == ["", "abc", ""]
    with pytest.raises(ValueError, match="partial length"):
        speedups().split_sized("abc", b"\x03\x00")
    for text in (bytearray(b"abc"), memoryview(b"abc"), 3):
        with pytest.raises(TypeError, match="a str or bytes"):
            speedups().split_sized(text, array("I", [3]).tobytes())
    for split in (speedups().split_sized, split_sized_python):
        with pytest.raises(ValueError, match="do not add up"):
            split(b"abc", array("I", [2, 2]).tobytes())


def test_a_latin1_batch_is_joined_as_its_bytes_and_cut_back_from_them() -> None:
    # Every item Latin-1 (code points below 256): the items' own bytes, joined.
    latin = ["ab", "", "café", "\xff\x00x", "é"]
    for join in (speedups().join_sized, join_sized_python):
        joined, lengths = join(latin) or (b"", b"")
        assert joined == "".join(latin).encode("latin-1")
        assert type(joined) is bytes
        # One item beyond Latin-1 and the batch is joined as a str.
        wide = join([*latin, "€"])
        assert wide is not None
        assert wide[0] == "".join(latin) + "€"
        assert type(wide[0]) is str
    joined, lengths = speedups().join_sized(latin) or (b"", b"")
    for split in (speedups().split_sized, split_sized_python):
        back = split(joined, lengths)
        assert back == latin
        assert all(type(item) is str for item in back)
    # Bytes are read as Latin-1, whoever made them.
    assert speedups().split_sized(b"\xe9t\xe9", array("I", [1, 2]).tobytes()) == ["é", "té"]


@given(
    st.lists(
        st.binary(max_size=40) | st.sampled_from([b"ab", b"\xe9\xe9", b"x"]),
        max_size=20,
    ),
    st.booleans(),
)
def test_pieces_cut_from_bytes_are_the_strs_latin1_makes(parts: list[bytes], cached: bool) -> None:
    # An all-ASCII text is checked once and its pieces made directly; a text with one
    # byte of 0x80 or more anywhere (the eight-byte steps and the tail of the check)
    # takes the general path. Either way every piece is the str Latin-1 makes,
    # flagged ASCII exactly when it is, hashed and compared as such.
    text = b"".join(parts)
    cache = piece_cache() if cached else None
    for _ in range(2):  # the second time, repeated pieces come from the cache
        back = speedups().split_sized(text, array("I", map(len, parts)).tobytes(), cache)
        expected = [part.decode("latin-1") for part in parts]
        assert back == expected
        assert [piece.isascii() for piece in back] == [piece.isascii() for piece in expected]
        assert {piece: i for i, piece in enumerate(back)} == {
            piece: i for i, piece in enumerate(expected)
        }


# -- the receiving process's cache of short strings ---------------------------------------


def _sized(batch: list[str]) -> tuple[str, bytes]:
    return "".join(batch), array("I", map(len, batch)).tobytes()


def test_a_short_string_cut_again_is_the_object_cut_before() -> None:
    cache = piece_cache()
    assert len(cache) == PIECE_SLOTS
    words = ["the", "cat", "the", "a", "x" * 33, "the", "x" * 33]
    first = speedups().split_sized(*_sized(words), cache)
    second = speedups().split_sized(*_sized(words), cache)
    assert first == second == words
    assert first[0] is first[2] is first[5] is second[0]  # one "the" for all six
    assert first[1] is second[1]
    assert first[4] is not first[6]  # longer than 32 characters: not cached
    kept = [item for item in cache if item is not None]
    assert sorted(kept) == ["cat", "the"]  # only strings of 2 to 32 characters
    assert speedups().split_sized(*_sized(words)) is not None  # no cache: still fine


def test_a_cached_string_is_found_from_text_of_any_width() -> None:
    # "hello" cut from 1-byte text, then from 2-byte and 4-byte text (the other items
    # widen them), is the same object; a 2-byte word is found from 4-byte text too.
    cache = piece_cache()
    ascii_ = speedups().split_sized(*_sized(["hello", "ok"]), cache)
    wide = speedups().split_sized(*_sized(["hello", "€uro"]), cache)
    wider = speedups().split_sized(*_sized(["hello", "😀!", "€uro"]), cache)
    assert ascii_[0] is wide[0] is wider[0]
    assert wide[1] is wider[2]
    assert [type(item) for item in (*ascii_, *wide, *wider)] == [str] * 7
    # From bytes (a Latin-1 batch as join_sized makes it) too, both ways round.
    narrow = speedups().split_sized(b"hellocaf\xe9", array("I", [5, 4]).tobytes(), cache)
    assert narrow[0] is ascii_[0]
    again = speedups().split_sized(*_sized(["café", "€"]), cache)
    assert again[0] is narrow[1]


@given(st.lists(st.lists(st.text(max_size=6), min_size=1, max_size=30), max_size=8))
def test_batches_cut_through_one_small_cache_come_back_equal(batches: list[list[str]]) -> None:
    # Four slots: words collide and replace each other all the time.
    cache: list[str | None] = [None] * 4
    for batch in batches:
        back = speedups().split_sized(*_sized(batch), cache)
        assert back == batch
        assert all(type(item) is str for item in back)
        assert len(cache) == 4
        assert all(item is None or (type(item) is str and 2 <= len(item) <= 32) for item in cache)


def test_a_long_batch_finds_every_repeat_however_far_ahead_it_was_hashed() -> None:
    # split_sized hashes pieces ahead of the one it cuts (and asks the processor for
    # their slots early): a batch much longer than that distance, words of every
    # length between pieces that are never looked up (one character, or over 32),
    # still cuts every word equal to one before it as that same object.
    words = ["alpha", "be", "gamma", "delta", "epsilon" * 5, "z", "eta", "theta"]
    batch = [words[(i * 7 + i // 3) % len(words)] for i in range(300)]
    cache = piece_cache()
    back = speedups().split_sized(*_sized(batch), cache)
    assert back == batch
    first: dict[str, str] = {}
    for word in back:
        if 2 <= len(word) <= 32:
            assert first.setdefault(word, word) is word
    again = speedups().split_sized(*_sized(batch[::-1]), cache)
    assert again == batch[::-1]
    assert all(word is first[word] for word in again if word in first)


@given(st.lists(st.lists(st.sampled_from(["ab", "c", "def", "x" * 40, "ghij", ""]), max_size=120)))
def test_long_batches_through_a_small_cache_come_back_equal(batches: list[list[str]]) -> None:
    cache: list[str | None] = [None] * 8
    for batch in batches:
        assert speedups().split_sized(*_sized(batch), cache) == batch


def test_a_batch_of_strings_that_do_not_repeat_stops_filling_the_cache() -> None:
    # After 16 lookups with fewer than 2 found, the rest of the batch is cut directly.
    unique = [f"id-{i}" for i in range(200)]
    cache = piece_cache()
    assert speedups().split_sized(*_sized(unique), cache) == unique
    assert 0 < sum(item is not None for item in cache) <= 16
    # Strings that repeat keep the cache on for the whole batch.
    mixed = [f"w{i % 10}" for i in range(16)] + [f"new-{i}" for i in range(100)]
    cache = piece_cache()
    assert speedups().split_sized(*_sized(mixed), cache) == mixed
    assert sum(item is not None for item in cache) > 16


def test_a_cache_holds_one_reference_to_each_string_it_keeps() -> None:
    cache = piece_cache()
    back = speedups().split_sized(*_sized(["word", "word"]), cache)
    word = back[0]
    assert sys.getrefcount(word) == 5  # the list twice, the cache, the name, the argument
    del back
    assert sys.getrefcount(word) == 3
    del cache
    assert sys.getrefcount(word) == 2


def test_a_cache_that_is_not_a_list_of_a_power_of_two_is_refused() -> None:
    text, lengths = _sized(["ab", "cd"])
    with pytest.raises(TypeError, match="list as cache"):
        speedups().split_sized(text, lengths, (None,) * 4)
    for size in (0, 3, 6):
        with pytest.raises(ValueError, match="power of two, got " + str(size)):
            speedups().split_sized(text, lengths, [None] * size)


def test_a_cache_that_changes_size_while_in_use_is_an_error_not_a_crash() -> None:
    cache: list[Any] = [None] * 2

    class Shrinks:
        def __del__(self) -> None:
            cache.clear()

    cache[:] = [Shrinks(), Shrinks()]  # whatever slot the first piece takes
    text, lengths = _sized(["ab", "cd", "ef"])
    with pytest.raises(RuntimeError, match="changed size"):
        speedups().split_sized(text, lengths, cache)


def test_unpack_cuts_text_through_the_cache_it_is_given(impl: str) -> None:
    cache = piece_cache()
    words = ["alpha", "beta"] * MIN_ITEMS
    first = unpack(pack([("events", 0, words)])[0], cache)
    second = unpack(pack([("events", 0, list(words))])[0], cache)
    assert first == second == ("events", 0, words)
    if impl == "compiled":
        assert first[2][0] is second[2][0] is second[2][2]


# -- (str, int) pairs -----------------------------------------------------------------------

INT64 = (-(1 << 63), (1 << 63) - 1)


def test_pairs_take_the_fast_path_and_come_back_equal(impl: str) -> None:
    pairs = [(f"w{i}", i * 7 - 300) for i in range(100)] + [("", INT64[0]), ("日本", INT64[1])]
    packed = pack([("events", 3, pairs), ("done", 3)])
    if impl == "compiled":
        assert packed[0][0] == "pairs"
    else:
        assert packed[0] == ("events", 3, pairs)  # pickled
    back = roundtrip([("events", 3, pairs), ("done", 3)])
    assert back == [("events", 3, pairs), ("done", 3)]
    assert all(type(p) is tuple and type(p[0]) is str and type(p[1]) is int for p in back[0][2])


class Pair(tuple):  # type: ignore[type-arg]
    """A tuple subclass (a named tuple is one): must keep its type."""


def test_pairs_that_must_be_pickled_are_left_alone() -> None:
    base: list[Any] = [("a", 1)] * MIN_ITEMS
    for odd in (
        ("b", True),  # a bool is an int subclass
        ("b", INT64[1] + 1),  # beyond 64 bits
        ("b", INT64[0] - 1),
        ("b", 1.5),
        (Word("b"), 1),
        ("b", 1, 2),
        ("b",),
        ["b", 1],
        Pair(("b", 1)),
        "b",
    ):
        for batch in ([*base, odd], [odd, *base]):
            messages = [("events", 1, batch)]
            assert pack(messages) is messages, odd
            back = roundtrip(messages)
            assert back == messages
            assert [type(e) for e in back[0][2]] == [type(e) for e in batch]
            assert [type(e[0]) for e in back[0][2]] == [type(e[0]) for e in batch]


PAIRS = st.lists(
    st.tuples(st.text(max_size=10), st.integers(min_value=INT64[0], max_value=INT64[1]))
    | st.tuples(st.text(max_size=3), st.integers() | st.booleans() | st.floats(allow_nan=False))
    | st.tuples(st.builds(Word, st.text(max_size=3)), st.integers(0, 9))
    | st.text(max_size=3),
    max_size=40,
)


@given(PAIRS)
def test_the_compiled_pair_join_decides_as_the_python_code(batch: list[Any]) -> None:
    join_pairs = speedups().join_pairs
    expected = join_pairs_python(batch)
    assert join_pairs(batch) == expected
    assert join_pairs(tuple(batch)) is None  # only exact lists
    if expected is not None:
        back = speedups().split_pairs(*expected)
        assert back == batch
        assert [type(v) for _, v in back] == [type(v) for _, v in batch]
        assert split_pairs_python(*expected) == batch
    back = roundtrip([("events", 2, batch)])[0][2]
    assert back == batch
    assert [type(e) for e in back] == [type(e) for e in batch]


def test_the_pair_split_refuses_parts_that_do_not_fit() -> None:
    text, lengths, values = join_pairs_python([("ab", 1), ("c", 2)]) or ("", b"", b"")
    for split in (speedups().split_pairs, split_pairs_python):
        assert split(text, lengths, values) == [("ab", 1), ("c", 2)]
        with pytest.raises(ValueError, match="do not add up"):
            split("abcd", lengths, values)
        with pytest.raises(ValueError, match="needs as many values as lengths"):
            split(text, lengths, values[:8])
        assert split("", b"", b"") == []
    with pytest.raises(ValueError, match="partial length"):
        speedups().split_pairs(text, lengths[:5], values)
    with pytest.raises(TypeError):
        speedups().split_pairs(text, lengths)  # type: ignore[call-arg]


def test_the_pair_join_holds_no_reference_it_does_not_return() -> None:
    """A batch taken apart, and one refused halfway (its keys up to there were
    already referenced from a list the helper drops): every reference given back."""
    keys = [f"key-{i}" for i in range(40)]
    good = [(k, i) for i, k in enumerate(keys)]
    refused = [*good[:20], ("x", 1.5), *good[20:]]
    before = [sys.getrefcount(k) for k in keys]
    for _ in range(3):
        assert speedups().join_pairs(good) is not None
        assert speedups().join_pairs(refused) is None
    assert [sys.getrefcount(k) for k in keys] == before


def test_the_compiled_pair_split_leaves_its_pairs_to_reference_counting() -> None:
    """A pair of an exact str and an exact int can never be part of a cycle: the
    compiled split hands them out untracked by the cyclic garbage collector (which
    would untrack each at its first look), so a large result kept by the receiver
    gives the collector nothing to look at or to age. They still behave as any
    tuple: equal, hashable, freed with the list."""
    batch = [(f"k{i}", i) for i in range(1000)]
    back = speedups().split_pairs(*(join_pairs_python(batch) or ("", b"", b"")))
    assert back == batch
    assert not any(gc.is_tracked(pair) for pair in back)
    assert gc.is_tracked(back)  # the list itself is an ordinary list
    assert len(set(back)) == len(batch)
    key = back[0][0]
    assert sys.getrefcount(key) == 3  # the pair, the local name, getrefcount's argument
    del back
    assert sys.getrefcount(key) == 2  # the pair was freed when the list was
