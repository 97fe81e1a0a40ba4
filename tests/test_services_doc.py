"""The push-and-subscribe example of docs/services.md runs as shown."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "services.md"


def test_the_push_and_fanout_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    example = next(b for b in blocks if "Flow.from_push" in b and "anyio.run(main)" in b)
    exec(compile(example, "docs/services.md", "exec"), {"__name__": "services_example"})
    printed = capsys.readouterr().out.splitlines()
    # One dict per partition and window; together they count every word.
    totals: dict[str, int] = {}
    for line in printed:
        for word, n in ast.literal_eval(line).items():
            totals[word] = totals.get(word, 0) + n
    assert totals == {"a": 2, "b": 1}
