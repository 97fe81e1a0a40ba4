"""docs/windows-and-triggers.md shows the code of examples/windows_guide.py and
exactly what it prints."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

from .test_examples import load

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "windows-and-triggers.md"
REGENERATE = "python examples/windows_guide.py --update-guide"


@pytest.fixture(scope="module")
def guide() -> ModuleType:
    return load("windows_guide")


def test_the_guide_shows_the_current_code_and_outputs(guide: ModuleType) -> None:
    text = GUIDE.read_text(encoding="utf-8")
    expected = guide.updated_guide(text)
    if expected != text:
        old, new = text.splitlines(), expected.splitlines()
        first = next(
            (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
            min(len(old), len(new)),
        )
        has, gives = old[first : first + 3], new[first : first + 3]
        pytest.fail(
            f"docs/windows-and-triggers.md is out of date from line {first + 1} "
            f"(the guide has {has!r}, the code gives {gives!r}); "
            f"regenerate the blocks with `{REGENERATE}`"
        )


def test_every_section_is_shown_with_its_output(guide: ModuleType) -> None:
    text = GUIDE.read_text(encoding="utf-8")
    shown = re.findall(r"<!-- output: (\w+) -->", text)
    coded = re.findall(r"<!-- code: (\w+) -->", text)
    assert sorted(shown) == sorted(guide.SECTIONS)
    assert sorted(coded) == sorted(guide.SECTIONS)


def test_the_outputs_are_not_empty_and_differ(guide: ModuleType) -> None:
    """A section that printed nothing (or the same as another) would make a
    useless example: each shows something of its own."""
    outputs = {name: tuple(guide.run(name)) for name in guide.SECTIONS}
    assert all(outputs.values())
    assert len(set(outputs.values())) == len(outputs)


def test_the_script_prints_each_section(
    guide: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    guide.main(["count_windows", "fixed_windows"])
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "== count_windows ==",
        *guide.run("count_windows"),
        "== fixed_windows ==",
        *guide.run("fixed_windows"),
    ]
    with pytest.raises(SystemExit, match="unknown section"):
        guide.main(["nope"])
