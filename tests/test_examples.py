"""The engine's examples run (the Flow examples are run by tests/flow/test_e2e_examples.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLES))


def test_stages_demo(capsys: pytest.CaptureFixture[str]) -> None:
    load("stages_demo").main(10_000)
    out = capsys.readouterr().out
    assert f"sum of squares below 10,000: {sum(i * i for i in range(10_000))}" in out
    assert "producer_consumer" in out


def test_demo_runs_every_part(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLOWSTAGE_DEMO_QUICK", "1")
    demo = load("demo")
    import stages_demo
    import word_count

    monkeypatch.setattr(word_count, "stdlib_files", lambda: [str(EXAMPLES / "demo.py")])
    monkeypatch.setattr(stages_demo, "main", lambda: print("stages ran"))
    demo.main()
    out = capsys.readouterr().out
    assert "Word count over 1 standard library files" in out
    # The four rows, the word about one event loop, and the process executor's row.
    for row in ("eager", "lazy", "concurrent", "parallel"):
        assert any(line.startswith(row) for line in out.splitlines()), row
    assert "one event loop" in out
    assert "stages ran" in out
    # The live part: every request produced was counted in exactly one window, and
    # the dashboard (not a terminal here) printed its table at the end.
    produced, counted = re.search(r"([\d,]+) requests produced, ([\d,]+) counted", out).groups()
    assert produced == counted
    assert int(produced.replace(",", "")) > 0
    windows = [int(n.replace(",", "")) for n in re.findall(r"window \d+: ([\d,]+) requests", out)]
    assert sum(windows) == int(counted.replace(",", ""))
    assert "partition(2)" in out


def test_live_dashboard_counts_every_request(capsys: pytest.CaptureFixture[str]) -> None:
    live = load("live_dashboard")
    counted = live.main(seconds=0.5, rate=2_000, window_ms=100)
    out = capsys.readouterr().out
    assert f"{counted:,} requests produced, {counted:,} counted" in out
    assert counted == 1_000
