"""The text fast paths of the process executor's frames: a batch of strings crosses
as one string and comes back equal, item for item and type for type; anything else
is left to pickle.

Every test runs on both paths: with the compiled helpers
(``flowstage._speedups.join_sized``/``split_sized``: any batch of exact ``str``
goes as one string and the lengths of its items) and without them (short strings
joined with a separator; long ones, and any holding the separator, pickled). The
compiled runs are skipped when the extension is not built, unless
``FLOWSTAGE_REQUIRE_EXTENSIONS=1`` (set by CI).
"""

from __future__ import annotations

import pickle
from array import array
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowstage.executors.process import _text
from flowstage.executors.process._text import (
    MAX_FIRST,
    MIN_ITEMS,
    SEP,
    join_sized_python,
    pack,
    pack_batch,
    split_sized_python,
    unpack,
)

from ..services import speedups, use_path


@pytest.fixture(autouse=True, params=["python", "compiled"])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with and without the compiled helpers."""
    use_path(request.param, monkeypatch, _text, "_c_split_sized", "split_sized")
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
    with pytest.raises(TypeError):
        speedups().split_sized(b"abc", array("I", [3]).tobytes())
