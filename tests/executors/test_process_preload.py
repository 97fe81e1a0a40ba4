"""What the fork server imports before it forks workers (``process/_preload.py``)."""

from __future__ import annotations

import _json  # the standard library's own, imported by json
import difflib
import fractions
import json
import json.decoder
import statistics
import sys
import types

import pytest

from flowstage.executors.process import _preload


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """No walk remembered from an earlier main module."""
    monkeypatch.setattr(_preload, "_walked", None)


def module(monkeypatch: pytest.MonkeyPatch, name: str, **names: object) -> types.ModuleType:
    """A module imported under ``name`` (in ``sys.modules`` for the test) with
    ``names`` as its globals."""
    made = types.ModuleType(name)
    for key, value in names.items():
        setattr(made, key, value)
    monkeypatch.setitem(sys.modules, name, made)
    return made


def function_of(module_name: str) -> types.FunctionType:
    def f() -> None:
        return None

    f.__module__ = module_name
    return f  # type: ignore[return-value]


@pytest.mark.usefixtures("fresh")
def test_the_standard_library_modules_the_main_script_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = module(monkeypatch, "not_the_standard_library")
    module(
        monkeypatch,
        "__main__",
        statistics=statistics,  # a module
        JSONDecoder=json.decoder.JSONDecoder,  # a class
        dumps=json.dumps,  # a function
        other=other,  # a module from elsewhere, with nothing in it
        answer=42,
    )
    assert _preload.main_script_modules() == ["json", "json.decoder", "statistics"]


@pytest.mark.usefixtures("fresh")
def test_no_main_module_preloads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "__main__")
    assert _preload.main_script_modules() == []


@pytest.mark.usefixtures("fresh")
def test_the_modules_the_main_script_imports_are_looked_into(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # main -> helper (a module) -> fractions; main -> build (a function of
    # pipeline) -> pipeline -> difflib; both helpers name main and themselves.
    main = module(monkeypatch, "__main__")
    helper = module(monkeypatch, "app_helper", fractions=fractions)
    pipeline = module(monkeypatch, "app_pipeline", difflib=difflib, main=main)
    helper.helper = helper  # type: ignore[attr-defined]
    pipeline.build = function_of("app_pipeline")  # type: ignore[attr-defined]
    main.helper = helper  # type: ignore[attr-defined]
    main.build = pipeline.build  # type: ignore[attr-defined]
    assert _preload.main_script_modules() == ["difflib", "fractions"]


@pytest.mark.usefixtures("fresh")
def test_the_walk_stops_after_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # main -> chain_0 -> chain_1 -> ... -> chain_4 -> difflib
    last = module(monkeypatch, "chain_4", difflib=difflib)
    for i in range(3, -1, -1):
        last = module(monkeypatch, f"chain_{i}", next=last)
    module(monkeypatch, "__main__", first=last, json=json)
    # Six modules to look into: main and five links.
    assert _preload.main_script_modules(limit=5) == ["json"]
    assert _preload.main_script_modules(limit=6) == ["difflib", "json"]


@pytest.mark.usefixtures("fresh")
def test_modules_that_do_something_when_imported_are_never_preloaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readline = module(monkeypatch, "readline")  # sets up the terminal
    runs = module(monkeypatch, "json.__main__")  # would run a program
    module(monkeypatch, "__main__", readline=readline, runs=runs, private=_json, json=json)
    assert "readline" in _preload.NOT_PRELOADED
    assert _preload.main_script_modules() == ["json"]


@pytest.mark.usefixtures("fresh")
def test_the_walk_is_done_once_for_a_main_module(monkeypatch: pytest.MonkeyPatch) -> None:
    walks: list[str] = []
    walk = _preload._walk

    def counted(main: types.ModuleType, limit: int) -> list[str]:
        walks.append(main.__name__)
        return walk(main, limit)

    monkeypatch.setattr(_preload, "_walk", counted)
    main = module(monkeypatch, "__main__", json=json)
    first = _preload.main_script_modules()
    first.append("changed by the caller")
    assert _preload.main_script_modules() == ["json"]
    assert walks == ["__main__"]
    # Another main module is walked again.
    main = module(monkeypatch, "__main__", statistics=statistics)
    assert _preload.main_script_modules() == ["statistics"]
    assert len(walks) == 2
    assert main is sys.modules["__main__"]


@pytest.mark.usefixtures("fresh")
def test_what_the_fork_server_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    module(monkeypatch, "__main__", statistics=statistics)
    modules = _preload.preload_modules("asyncio")
    assert modules[0] == "flowstage.executors.process._worker"
    assert "anyio._backends._asyncio" in modules
    assert "ctypes" in modules  # the allocator's tuning
    assert modules[-1] == "statistics"
    assert "anyio._backends._trio" in _preload.preload_modules("trio")
    assert "anyio._backends._asyncio" not in _preload.preload_modules("trio")
