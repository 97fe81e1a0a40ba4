"""The guides' runnable examples run, and print what the guides show.

A ```python block right after ``<!-- run -->`` is executed (as a script); when a
```text block follows it right after ``<!-- output -->``, what the script printed
must be exactly that.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
GUIDES = ("quickstart.md", "dashboards.md", "hooks.md")
_SNIPPET = re.compile(
    r"<!-- run -->\n```python\n(?P<code>.*?)```\n(?:\n<!-- output -->\n```text\n(?P<out>.*?)```)?",
    re.S,
)


def snippets() -> list[tuple[str, str, str | None]]:
    """``(guide#n, code, expected output or None)`` for every runnable block."""
    found: list[tuple[str, str, str | None]] = []
    for guide in GUIDES:
        text = (DOCS / guide).read_text(encoding="utf-8")
        for number, match in enumerate(_SNIPPET.finditer(text), 1):
            found.append((f"{guide}#{number}", match.group("code"), match.group("out")))
    return found


def test_the_guides_have_runnable_examples() -> None:
    by_guide = {name.split("#")[0] for name, _code, _out in snippets()}
    assert by_guide == set(GUIDES)


@pytest.mark.parametrize(
    ("name", "code", "expected"), [pytest.param(*s, id=s[0]) for s in snippets()]
)
def test_snippet(
    name: str, code: str, expected: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(code, name, "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    if expected is not None:
        assert out == expected, f"{name} printed something else than the guide shows"
