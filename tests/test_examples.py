"""The engine's examples run (the Flow examples are run by tests/flow/test_e2e_examples.py)."""

from __future__ import annotations

import importlib.util
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


def test_demo_runs_both_parts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = load("demo")
    import stages_demo
    import word_count

    monkeypatch.setattr(word_count, "stdlib_files", lambda: [str(EXAMPLES / "demo.py")])
    monkeypatch.setattr(stages_demo, "main", lambda: print("stages ran"))
    demo.main()
    out = capsys.readouterr().out
    assert "Word count" in out
    assert "stages ran" in out
