"""The text fast path of the process executor's frames: a batch of short strings
crosses as one joined string and comes back equal, item for item and type for type;
anything else is left to pickle.

Every test runs on the pure-Python path and on the compiled one
(``flowstage._speedups.join_text``); the compiled runs are skipped when the
extension is not built, unless ``FLOWSTAGE_REQUIRE_EXTENSIONS=1`` (set by CI).
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowstage.executors.process import _text
from flowstage.executors.process._text import MAX_FIRST, MIN_ITEMS, SEP, pack, pack_batch, unpack

from ..services import speedups, use_path


@pytest.fixture(autouse=True, params=["python", "compiled"])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on one path of pack_batch."""
    return use_path(request.param, monkeypatch, _text, "_c_join", "join_text")


class Word(str):
    """A str subclass: must keep its type, so it must not take the fast path."""


def roundtrip(messages: list[Any]) -> list[Any]:
    return [unpack(m) for m in pickle.loads(pickle.dumps(pack(messages), protocol=5))]


def test_words_take_the_fast_path_and_come_back_equal() -> None:
    words = [f"w{i}" for i in range(100)] + ["", "é", "日本"]
    packed = pack([("events", 3, words), ("ask", 4, 10)])
    assert packed[0][0] == "text"
    assert packed[1] == ("ask", 4, 10)
    back = roundtrip([("events", 3, words), ("ask", 4, 10)])
    assert back == [("events", 3, words), ("ask", 4, 10)]
    assert all(type(w) is str for w in back[0][2])


def test_batches_that_must_be_pickled_are_left_alone() -> None:
    short = ["a"] * (MIN_ITEMS - 1)
    long_first = ["x" * (MAX_FIRST + 1)] + ["a"] * MIN_ITEMS
    with_sep = ["a"] * MIN_ITEMS + [f"b{SEP}c"]
    subclass = ["a"] * MIN_ITEMS + [Word("b")]
    numbers = list(range(MIN_ITEMS * 2))
    mixed = ["a"] * MIN_ITEMS + [1]
    for batch in (short, long_first, with_sep, subclass, numbers, mixed):
        assert pack_batch(batch) is None, batch
        messages = [("events", 1, batch)]
        assert pack(messages) is messages
        back = roundtrip(messages)
        assert back == messages
        assert [type(e) for e in back[0][2]] == [type(e) for e in batch]


@given(st.lists(st.text(max_size=40) | st.builds(Word, st.text(max_size=5)), max_size=80))
def test_any_list_of_strings_comes_back_equal_with_its_types(batch: list[str]) -> None:
    back = roundtrip([("events", 7, batch), ("done", 7)])
    assert back == [("events", 7, batch), ("done", 7)]
    assert [type(e) for e in back[0][2]] == [type(e) for e in batch]


@given(
    st.lists(
        st.text(max_size=12, alphabet=st.characters(codec="utf-8") | st.just(SEP))
        | st.builds(Word, st.text(max_size=3))
        | st.integers(),
        min_size=MIN_ITEMS,
        max_size=60,
    )
)
def test_the_compiled_join_decides_as_the_python_code(batch: list[object]) -> None:
    join_text = speedups().join_text
    expected = None
    if set(map(type, batch)) == {str}:
        joined = SEP.join(batch)  # type: ignore[arg-type]
        expected = joined if joined.count(SEP) == len(batch) - 1 else None
    assert join_text(batch, SEP) == expected
    assert join_text(tuple(batch), SEP) is None  # only exact lists


def test_the_compiled_join_checks_its_separator() -> None:
    join_text = speedups().join_text
    with pytest.raises(TypeError, match="one-character"):
        join_text(["a"], "ab")
    with pytest.raises(TypeError, match="one-character"):
        join_text(["a"], b"\x00")
