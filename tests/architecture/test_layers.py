"""The package's layers import only the layers below them, and the upper layers use
the engine through its public API only.

Layers, bottom to top: the stage engine (``flowstage/_*.py``,
``flowstage/dispatchers/``, ``flowstage/lowlevel.py``) <- ``flowstage.plan`` <-
``flowstage.program`` <- ``flowstage.executors`` <- ``flowstage.flow`` <- the
public API (``flowstage/__init__.py``, ``flowstage.testing`` and the
integrations). The connectors (``flowstage.connectors``) stand beside the public
API but import only the engine (``flowstage.messages``, ``flowstage.statistics`` and
``flowstage.hooks`` are part of it) and each
other. Every import is counted: top level, inside functions, and under
``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "flowstage"

#: Rank of each layer; a module may import modules of its own rank or lower.
RANKS: dict[str, int] = {
    "engine": 0,
    "plan": 1,
    "program": 2,
    "executors": 3,
    "flow": 4,
    "api": 5,
    "connectors": 5,
}

#: Layers that may import only the layers listed (besides the rank rule).
ONLY: dict[str, frozenset[str]] = {"connectors": frozenset({"engine", "connectors"})}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts == ["flowstage"]:
        return "api"
    sub = parts[1]
    if sub in ("plan", "program", "executors", "flow", "connectors"):
        return sub
    if sub.startswith("_") or sub in ("dispatchers", "lowlevel", "messages", "statistics", "hooks"):
        return "engine"
    return "api"  # testing, integrations


def modules() -> Iterator[Path]:
    yield from sorted(PACKAGE.rglob("*.py"))


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every flowstage module ``path`` imports."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    yield from imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of every flowstage module ``source`` (a module of
    ``package``) imports."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "flowstage":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != "flowstage":
                continue
            # ``from . import x`` / ``from .. import lowlevel`` import submodules.
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists() or (
                    PACKAGE.parent / Path(*sub.split("."))
                ).is_dir():
                    yield node.lineno, sub
                else:
                    yield node.lineno, target


def test_the_layers_are_where_the_docs_say() -> None:
    assert layer_of("flowstage._stage") == "engine"
    assert layer_of("flowstage.lowlevel") == "engine"
    assert layer_of("flowstage.plan._types") == "plan"
    assert layer_of("flowstage.executors.local._runtime") == "executors"
    assert layer_of("flowstage") == "api"
    assert layer_of("flowstage.connectors.redis._source") == "connectors"
    assert layer_of("flowstage.messages") == "engine"
    assert layer_of("flowstage.hooks") == "engine"


def upward(here: str, imports: Iterator[tuple[int, str]]) -> list[str]:
    return [
        f"line {line}: {target} ({layer_of(target)})"
        for line, target in imports
        if RANKS[layer_of(target)] > RANKS[here]
        or (here in ONLY and layer_of(target) not in ONLY[here])
    ]


@pytest.mark.parametrize("path", list(modules()), ids=lambda p: module_name(p))
def test_a_module_imports_only_its_layer_and_those_below(path: Path) -> None:
    here = layer_of(module_name(path))
    wrong = upward(here, imports_of(path))
    assert not wrong, f"{module_name(path)} ({here}) imports from a layer above it: {wrong}"


def test_the_layer_check_finds_upward_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from .._stage import Stage\n"
        "if TYPE_CHECKING:\n"
        "    from ..flow import Flow\n"
        "def f():\n"
        "    from ..executors import resolve\n"
        "    import flowstage\n"
    )
    wrong = upward("plan", imports_in(source, "flowstage.plan"))
    assert [w.split(":")[1].split()[0] for w in wrong] == [
        "flowstage.flow",
        "flowstage.executors",
        "flowstage",
    ]


def test_the_layer_check_keeps_connectors_on_the_engine() -> None:
    source = (
        "from ...messages import Message\n"
        "from ..._options import invalid\n"
        "from . import _client\n"
        "from ...flow import Flow\n"
        "from ...executors import resolve\n"
    )
    wrong = upward("connectors", imports_in(source, "flowstage.connectors.redis"))
    assert [w.split(":")[1].split()[0] for w in wrong] == [
        "flowstage.flow",
        "flowstage.executors",
    ]


def _private_names_defined(paths: list[Path]) -> set[str]:
    """Private attribute names defined by classes in ``paths``: methods, and
    attributes assigned on ``self``."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "_"
            ):
                names.add(node.name)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and node.attr.startswith("_")
            ):
                names.add(node.attr)
    return {n for n in names if not (n.startswith("__") and n.endswith("__"))}


def _assigned_on_self(cls: ast.ClassDef) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            names.add(node.attr)
    return names


def private_touches(path: Path, engine_private: set[str], where: str | None = None) -> list[str]:
    """Where ``path`` reads or writes a private attribute the engine defines: on
    another object (``stage._run``), or on ``self`` in a class that did not define
    it (a subclass of an engine class reaching into its base)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    where = where or module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{where}:{node.lineno} imports {alias.name}")
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    own_by_node: dict[int, set[str]] = {}
    for cls in classes:
        own = _assigned_on_self(cls)
        for node in ast.walk(cls):
            own_by_node[id(node)] = own
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or node.attr not in engine_private:
            continue
        value = node.value
        on_self = isinstance(value, ast.Name) and value.id in ("self", "cls")
        if on_self and node.attr in own_by_node.get(id(node), set()):
            continue
        found.append(f"{where}:{node.lineno} .{node.attr}")
    return found


def test_flow_and_executors_use_no_private_attribute_of_the_engine() -> None:
    engine_private = _private_names_defined(
        [p for p in modules() if layer_of(module_name(p)) == "engine"]
    )
    upper = [p for p in modules() if layer_of(module_name(p)) in ("flow", "executors")]
    found = [f for path in upper for f in private_touches(path, engine_private)]
    assert not found, "use flowstage.lowlevel instead of engine privates: " + ", ".join(found)


def test_the_private_attribute_check_finds_violations(tmp_path: Path) -> None:
    engine_private = _private_names_defined([PACKAGE / "_stage.py"])
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from flowstage._stream import _Hidden\n"
        "class Sub:\n"
        "    def run(self, stage):\n"
        "        stage._claim()\n"
        "        return self._buffer\n"
    )
    found = private_touches(bad, engine_private, "bad")
    assert any("imports _Hidden" in f for f in found)
    assert any("._claim" in f for f in found)
    assert any("._buffer" in f for f in found)
