"""Smoke test of the benchmark suite: every module runs in ``--quick`` mode.

No timing is asserted; this only checks that each benchmark runs on asyncio and
prints a Markdown table with the rows it promises.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .services import speedups

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load_runner() -> ModuleType:
    name = "benchmarks_run"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


runner = _load_runner()
MODULES = runner.discover()


def _table_rows(output: str) -> list[list[str]]:
    """The body rows of the Markdown tables in ``output``, as lists of cells."""
    rows = []
    for line in output.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_engine_is_discovered() -> None:
    assert "engine" in [path.stem for path in MODULES]


#: Benchmarks that measure the compiled helpers only.
COMPILED = {"flow_text_frames"}
#: Benchmarks that run no event loop (their backend column says "-").
NO_EVENT_LOOP = {"flow_text_frames"}

#: Benchmarks that need a service (a pytest marker, and the fixture that provides it).
NEEDS = {"flow_ray": ("ray", "ray_cluster"), "flow_redis": ("redis", "redis_url")}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            path,
            id=path.stem,
            marks=[getattr(pytest.mark, NEEDS[path.stem][0])] if path.stem in NEEDS else [],
        )
        for path in MODULES
    ],
)
def test_quick_run_prints_the_expected_rows(
    path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    if path.stem in NEEDS:
        request.getfixturevalue(NEEDS[path.stem][1])
    if path.stem in COMPILED:
        speedups()  # skips without the compiled helpers (fails in CI)
    module = runner.load(path)
    assert module.main(["--quick"]) == 0
    rows = _table_rows(capsys.readouterr().out)
    assert rows, "no Markdown table printed"
    header, body = rows[0], rows[1:]
    assert "backend" in header
    assert "case" in header
    assert [row[header.index("case")] for row in body] == list(module.ROWS)
    backends = {row[header.index("backend")] for row in body}
    assert backends == ({"-"} if path.stem in NO_EVENT_LOOP else {"asyncio"})


def test_engine_rows() -> None:
    engine = runner.load(BENCHMARKS / "engine.py")
    assert "plain Python loop" in engine.ROWS
    assert any("producer-consumer" in label for label in engine.ROWS)
    for md in (100, 1000, 5000):
        assert f"producer → consumer, max_demand={md}" in engine.ROWS


def test_runner_passes_options_through(capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(["--only", "engine", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "## Stage engine" in out
    assert len(_table_rows(out)) == 1 + len(runner.load(BENCHMARKS / "engine.py").ROWS)
