"""What the fork server imports before it forks workers (``process/_preload.py``)."""

from __future__ import annotations

import _json  # the standard library's own, imported by json
import difflib
import fractions
import importlib.util
import json
import json.decoder
import math
import statistics
import subprocess
import sys
import types
from pathlib import Path

import pytest

from flowstage.executors.process import _preload

pytestmark = pytest.mark.usefixtures("fresh")


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
        sqrt=math.sqrt,  # a built-in function
        other=other,  # a module from elsewhere, with nothing in it
        answer=42,
    )
    assert _preload.main_script_modules() == ["json", "json.decoder", "math", "statistics"]


def test_no_main_module_preloads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "__main__")
    assert _preload.main_script_modules() == []


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


def test_each_module_is_looked_into_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # main -> one, two; one -> one, two, main; two -> one, three; three -> difflib.
    # Four modules to look into, if none is looked into twice.
    main = module(monkeypatch, "__main__")
    one = module(monkeypatch, "mod_one")
    two = module(monkeypatch, "mod_two")
    three = module(monkeypatch, "mod_three", difflib=difflib)
    main.one, main.two = one, two  # type: ignore[attr-defined]
    one.me, one.two, one.main = one, two, main  # type: ignore[attr-defined]
    two.one, two.three = one, three  # type: ignore[attr-defined]
    assert _preload.main_script_modules(limit=4) == ["difflib"]


def test_the_walk_stops_after_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # main -> chain_0 -> chain_1 -> ... -> chain_4 -> difflib
    last = module(monkeypatch, "chain_4", difflib=difflib)
    for i in range(3, -1, -1):
        last = module(monkeypatch, f"chain_{i}", next=last)
    module(monkeypatch, "__main__", first=last, json=json)
    # Six modules to look into: main and five links.
    assert _preload.main_script_modules(limit=5) == ["json"]
    assert _preload.main_script_modules(limit=6) == ["difflib", "json"]


def test_a_local_module_with_a_standard_library_name_is_not_preloaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A calendar.py beside the script shadows the real one: it is the script's own
    # (it could start a thread when imported), looked into like any other.
    (tmp_path / "calendar.py").write_text("import difflib\n")
    spec = importlib.util.spec_from_file_location("calendar", tmp_path / "calendar.py")
    assert spec is not None
    local = importlib.util.module_from_spec(spec)
    local.difflib = difflib  # type: ignore[attr-defined]  # as if it had run
    monkeypatch.setitem(sys.modules, "calendar", local)
    module(monkeypatch, "__main__", calendar=local, json=json)
    assert _preload.main_script_modules() == ["difflib", "json"]


@pytest.mark.parametrize(
    ("name", "preloaded"),
    [
        ("json", True),
        ("tkinter", True),
        ("readline", False),  # sets up the terminal
        ("idlelib.pyshell", False),  # exits when tkinter is missing
        ("json.__main__", False),  # runs a program
        ("_json", False),  # private
        ("imp", False),  # warns when imported
        ("lib2to3.pgen2", False),
        ("tkinter.tix", False),
    ],
)
def test_which_standard_library_modules_may_be_preloaded(name: str, preloaded: bool) -> None:
    assert _preload._preloadable(name) is preloaded


def test_private_standard_library_modules_are_not_preloaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module(monkeypatch, "__main__", private=_json, json=json)
    assert _preload.main_script_modules() == ["json"]


def test_odd_objects_and_lazy_modules_are_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    class Proxy:
        """Like a lazily configured settings object: touching it raises."""

        @property  # type: ignore[misc]
        def __class__(self) -> type:
            raise RuntimeError("not configured")

        def __getattr__(self, name: str) -> object:
            raise RuntimeError("not configured")

    class Lazy(types.ModuleType):
        """A module loaded on first use (importlib.util.LazyLoader makes these)."""

        loaded = False

        def __getattribute__(self, name: str) -> object:
            type(self).loaded = True
            return super().__getattribute__(name)

    lazy = Lazy("lazy_helper")
    object.__setattr__(lazy, "difflib", difflib)
    monkeypatch.setitem(sys.modules, "lazy_helper", lazy)
    monkeypatch.setitem(sys.modules, "not_a_module", object())
    module(
        monkeypatch,
        "__main__",
        proxy=Proxy(),
        lazy=lazy,
        stray=function_of("not_a_module"),  # its "module" is not one
        json=json,
    )
    assert _preload.main_script_modules() == ["json"]
    assert not Lazy.loaded


def test_the_walk_is_done_once_for_a_main_module(monkeypatch: pytest.MonkeyPatch) -> None:
    walks: list[str] = []
    walk = _preload._walk

    def counted(main: types.ModuleType, limit: int) -> list[str]:
        walks.append(main.__name__)
        return walk(main, limit)

    monkeypatch.setattr(_preload, "_walk", counted)
    module(monkeypatch, "__main__", json=json)
    first = _preload.main_script_modules()
    first.append("changed by the caller")
    assert _preload.main_script_modules() == ["json"]
    assert walks == ["__main__"]
    # Another main module is walked again.
    module(monkeypatch, "__main__", statistics=statistics)
    assert _preload.main_script_modules() == ["statistics"]
    assert len(walks) == 2


def test_what_the_fork_server_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    module(monkeypatch, "__main__", statistics=statistics)
    modules = _preload.preload_modules("asyncio")
    assert modules[0] == "flowstage.executors.process._worker"
    assert "anyio._backends._asyncio" in modules
    assert "ctypes" in modules  # the allocator's tuning
    assert modules[-1] == "statistics"
    assert "anyio._backends._trio" in _preload.preload_modules("trio")
    assert "anyio._backends._asyncio" not in _preload.preload_modules("trio")


def test_what_this_process_would_preload_imports_quietly_under_w_error() -> None:
    # The test runner's own main module leads to a few hundred modules: what the
    # walk keeps must import in a fresh interpreter with every warning an error, as
    # the fork server (which inherits -W and PYTHONWARNINGS) imports it.
    found = _preload.main_script_modules()
    assert len(found) > 20, found
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", f"import {', '.join(found)}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
