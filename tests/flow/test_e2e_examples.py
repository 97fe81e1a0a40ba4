"""The examples run on small inputs (so they never rot)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    """Import an example by its own name, as running it does: its callbacks must be
    importable by worker processes (which get this process's ``sys.path``)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


@pytest.fixture
def text_files(tmp_path: Path) -> list[str]:
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_text("the quick brown fox\njumps over the lazy dog\n")
    b.write_text("the end\n\nof the story the\n")
    return [str(a), str(b)]


@pytest.mark.anyio
async def test_word_count_versions_agree(text_files: list[str]) -> None:
    wc = load("word_count")
    eager = wc.eager(text_files)
    assert eager["the"] == 5
    assert wc.lazy(text_files) == eager
    assert await wc.concurrent(text_files, stages=2) == eager
    assert await wc.parallel(text_files, workers=2) == eager


def test_word_count_main_prints_top_words(
    text_files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    load("word_count").main(text_files)
    out = capsys.readouterr().out
    assert out.count("the:5") == 4
    assert "words/s" in out


def test_word_count_finds_the_stdlib() -> None:
    files = load("word_count").stdlib_files()
    assert any(f.endswith("collections/__init__.py") for f in files)


@pytest.mark.anyio
async def test_windows_example() -> None:
    win = load("windows")
    events = win.readings(30)
    rows = await win.per_second_averages(events)
    done = [r for r in rows if r[1] == "done"]
    assert sum(r[3] for r in done) <= 30
    assert {r[1] for r in rows} <= {"watermark", "done"}
    groups = await win.every_n(events, 7)
    assert [len(g) for g in groups] == [7, 7, 7, 7, 2]
    totals = await win.running_totals(events[:10], tick_ms=5)
    assert totals[-1] == ("done", 10)


def test_windows_main(capsys: pytest.CaptureFixture[str]) -> None:
    load("windows").main()
    assert "running totals" in capsys.readouterr().out


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["inner", "left_outer", "right_outer", "full_outer"])
async def test_join_example(mode: str) -> None:
    join = load("join")
    rows = await join.join_orders(join.ORDERS, join.CUSTOMERS, mode)
    matched = [r for r in rows if r[0] is not None and r[1] is not None]
    assert sorted(matched) == [(100, "Ada", 30), (101, "Grace", 12), (102, "Ada", 7)]
    assert ((103, None, 99) in rows) == (mode in ("left_outer", "full_outer"))
    assert ((None, "Edsger", None) in rows) == (mode in ("right_outer", "full_outer"))
    assert await join.totals_per_customer(join.ORDERS, join.CUSTOMERS) == [
        ("Ada", 37),
        ("Grace", 12),
    ]


def test_join_main(capsys: pytest.CaptureFixture[str]) -> None:
    load("join").main("inner")
    assert "revenue per customer" in capsys.readouterr().out
