"""Write docs/api.md, the API reference, from the public modules' docstrings.

Usage: python docs/gen_api.py [--check]

The public modules are every module of the ``flowstage`` package whose dotted name
has no part starting with ``_`` (so a new public module is documented without
touching this script). Each one's ``__all__`` says what it exports, in that order.
A name is documented in full in its home module (its ``__module__``) and listed
as a re-export elsewhere. A module that cannot be imported because an optional
dependency is missing is left out and named at the end of the page.

The output depends only on the code: no addresses, no dates, sets sorted. With
``--check`` nothing is written, and the exit status says whether docs/api.md is
up to date. Standard library only.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "api.md"
COMMAND = "python docs/gen_api.py"
PACKAGE = "flowstage"


# -- finding the public modules -------------------------------------------------


def public_module_names() -> list[str]:
    """Every importable-looking public module of the package, sorted."""
    package = importlib.import_module(PACKAGE)
    names = {PACKAGE}
    for info in pkgutil.walk_packages(package.__path__, f"{PACKAGE}.", onerror=lambda _n: None):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.add(info.name)
    return sorted(names)


def load(name: str) -> ModuleType | str:
    """The module, or why it could not be imported (a missing optional dependency)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        return f"{type(exc).__name__}: {exc}"


# -- text -------------------------------------------------------------------------

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|py:\w+):`~?([^`]+)`")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def markdown(doc: str | None) -> str:
    """A docstring as Markdown: ``code`` becomes `code`, Sphinx roles plain code."""
    if not doc:
        return ""
    text = inspect.cleandoc(doc)

    def role(match: re.Match[str]) -> str:
        target = match.group(1)
        if match.group(0).split("`")[1].startswith("~"):
            target = target.rsplit(".", 1)[-1]
        return f"`{target}`"

    text = _ROLE.sub(role, text)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    return text.replace("::\n", ":\n")


def clean(text: str) -> str:
    """Strip memory addresses from reprs (they change between runs)."""
    return _ADDRESS.sub("", text)


def value_repr(value: object) -> str:
    if isinstance(value, set | frozenset):
        items = ", ".join(sorted(repr(v) for v in value))
        text = f"{type(value).__name__}({{{items}}})"
    else:
        text = repr(value)
    text = clean(text)
    return text if len(text) <= 200 else f"<{type(value).__name__}>"


class _Raw:
    """Shown as its text, unquoted, in a signature."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _annotation(annotation: Any) -> Any:
    if annotation is inspect.Parameter.empty:
        return annotation
    if isinstance(annotation, str):
        return _Raw(annotation)
    forward = getattr(annotation, "__forward_arg__", None)
    if isinstance(forward, str):
        return _Raw(forward)
    return _Raw(inspect.formatannotation(annotation))


def _default(value: Any) -> Any:
    if value is inspect.Parameter.empty:
        return value
    if inspect.isclass(value) or inspect.isroutine(value):
        return _Raw(getattr(value, "__qualname__", repr(value)))
    return _Raw(value_repr(value))


def signature(obj: Any, name: str) -> str | None:
    """``name(params) -> return``, annotations as written in the source."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = [
        p.replace(annotation=_annotation(p.annotation), default=_default(p.default))
        for p in sig.parameters.values()
    ]
    ret = sig.return_annotation
    if inspect.isclass(obj):
        ret = inspect.Signature.empty
    sig = sig.replace(parameters=params, return_annotation=_annotation(ret))
    return clean(f"{name}{sig}")


def anchor(qualname: str) -> str:
    return qualname.replace(".", "-")


@functools.cache
def _class_sources(module_name: str) -> dict[str, str]:
    """The source of every top-level class of a module, by class name."""
    try:
        source = inspect.getsource(sys.modules[module_name])
    except (OSError, TypeError, KeyError):
        return {}
    return {
        node.name: ast.get_source_segment(source, node) or ""
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef)
    }


def class_source(cls: type) -> str:
    """The source of ``cls``'s definition, found in the module that defines it
    (``inspect.getsource`` looks in ``__module__``, which public packages
    rewrite)."""
    for name in sorted(sys.modules):
        if not name.startswith(PACKAGE) or vars(sys.modules[name]).get(cls.__name__) is not cls:
            continue
        found = _class_sources(name).get(cls.__name__)
        if found is not None:
            return found
    return ""


def comments(obj: Any) -> dict[str, str]:
    """``#:`` comments before the assignments in ``obj``'s source, by name."""
    try:
        source = class_source(obj) if inspect.isclass(obj) else inspect.getsource(obj)
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    found: dict[str, str] = {}
    pending: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = re.match(r"(\w+)\s*(?::[^=]*)?(?:=|$)", stripped)
        if pending and match:
            found[match.group(1)] = " ".join(pending)
        pending = []
    return found


# -- one name ------------------------------------------------------------------------


def is_documentable(value: object) -> bool:
    return inspect.isclass(value) or inspect.isfunction(value) or inspect.isroutine(value)


def class_members(cls: type) -> list[str]:
    out: list[str] = []
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    notes = comments(cls)
    for name, raw in vars(cls).items():
        if name.startswith("_") or name in fields:
            continue
        qual = f"{cls.__name__}.{name}"
        if isinstance(raw, property):
            ret = inspect.signature(raw.fget).return_annotation if raw.fget else None
            shown = None if ret in (None, inspect.Signature.empty) else _annotation(ret)
            kind = f" -> {clean(repr(shown))}" if shown is not None else ""
            out.append(f"#### `{qual}`{kind} (property)\n")
            doc = markdown(inspect.getdoc(raw))
        elif isinstance(raw, staticmethod | classmethod) or inspect.isfunction(raw):
            func = raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw
            prefix = "@classmethod\n" if isinstance(raw, classmethod) else ""
            prefix = "@staticmethod\n" if isinstance(raw, staticmethod) else prefix
            sig = signature(func, name) or name
            is_async = (
                "async "
                if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)
                else ""
            )
            out.append(f"#### `{qual}`\n\n```python\n{prefix}{is_async}def {sig}\n```\n")
            doc = markdown(inspect.getdoc(getattr(cls, name, func)))
        elif isinstance(raw, int | float | str | bool | tuple | frozenset) and not isinstance(
            raw, enum.Enum
        ):
            out.append(f"#### `{qual}`\n\n```python\n{name} = {value_repr(raw)}\n```\n")
            doc = markdown(notes.get(name))
        else:
            continue
        if doc:
            out.append(doc + "\n")
    return out


def document_class(cls: type, qualname: str) -> list[str]:
    out = [f'<a id="{anchor(qualname)}"></a>\n', f"### `{qualname}`\n"]
    bases = [b for b in cls.__bases__ if b not in (object, Generic)]
    base_text = ", ".join(
        f"{b.__module__}.{b.__qualname__}" if b.__module__ != "builtins" else b.__qualname__
        for b in bases
    )
    sig = None
    if not issubclass(cls, enum.Enum) and not getattr(cls, "_is_protocol", False):
        sig = signature(cls, cls.__name__)
        if sig is not None and sig.endswith("(*args, **kwargs)"):
            sig = None
    head = f"class {sig or cls.__name__}"
    out.append(f"```python\n{head}\n```\n")
    if base_text:
        out.append(f"Bases: {clean(base_text)}\n")
    doc = markdown(
        cls.__doc__ if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}(") else None
    )
    if doc:
        out.append(doc + "\n")
    if issubclass(cls, enum.Enum):
        rows = [f"* `{m.name}` = `{m.value!r}`" for m in cls]
        out.append("Members:\n\n" + "\n".join(rows) + "\n")
    if dataclasses.is_dataclass(cls):
        notes = comments(cls)
        rows = []
        for f in dataclasses.fields(cls):
            kind = f.type if isinstance(f.type, str) else inspect.formatannotation(f.type)
            note = f": {markdown(notes[f.name])}" if f.name in notes else ""
            rows.append(f"* `{f.name}: {clean(kind)}`{note}")
        if rows:
            out.append("Fields:\n\n" + "\n".join(rows) + "\n")
    out.extend(class_members(cls))
    return out


def document_function(func: Any, qualname: str) -> list[str]:
    out = [f'<a id="{anchor(qualname)}"></a>\n', f"### `{qualname}`\n"]
    sig = signature(func, func.__name__) or func.__name__
    is_async = (
        "async " if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func) else ""
    )
    out.append(f"```python\n{is_async}def {sig}\n```\n")
    doc = markdown(inspect.getdoc(func))
    if doc:
        out.append(doc + "\n")
    return out


def document_value(value: object, qualname: str, note: str | None) -> list[str]:
    name = qualname.rsplit(".", 1)[-1]
    out = [f'<a id="{anchor(qualname)}"></a>\n', f"### `{qualname}`\n"]
    out.append(f"```python\n{name} = {value_repr(value)}\n```\n")
    if note:
        out.append(markdown(note) + "\n")
    return out


# -- one module ------------------------------------------------------------------------


def document_module(module: ModuleType, documented: set[str]) -> list[str]:
    name = module.__name__
    out = [f'<a id="{anchor(name)}"></a>\n', f"## `{name}`\n"]
    doc = markdown(module.__doc__)
    if doc:
        out.append(doc + "\n")
    exported = list(getattr(module, "__all__", ()))
    if not exported:
        out.append("_This module exports no names of its own._\n")
        return out
    notes = comments(module)
    reexports: list[str] = []
    for attr in exported:
        value = getattr(module, attr)
        qualname = f"{name}.{attr}"
        home = getattr(value, "__module__", None)
        if is_documentable(value) and home != name and home in documented:
            target = f"{home}.{getattr(value, '__name__', attr)}"
            reexports.append(f"[`{attr}`](#{anchor(target)})")
            continue
        if inspect.ismodule(value):
            out.append(
                f"### `{qualname}`\n\nThe module [`{value.__name__}`](#{anchor(value.__name__)}).\n"
            )
        elif inspect.isclass(value):
            out.extend(document_class(value, qualname))
        elif inspect.isfunction(value) or inspect.isroutine(value):
            out.extend(document_function(value, qualname))
        else:
            out.extend(document_value(value, qualname, notes.get(attr)))
    if reexports:
        out.insert(3 if doc else 2, "Also exports " + ", ".join(reexports) + ".\n")
    return out


def generate() -> tuple[str, list[str]]:
    """The page, and the modules left out (``"name (why)"``)."""
    modules: list[ModuleType] = []
    skipped: list[str] = []
    for name in public_module_names():
        loaded = load(name)
        if isinstance(loaded, str):
            skipped.append(f"{name} ({loaded})")
        else:
            modules.append(loaded)
    documented = {m.__name__ for m in modules}
    parts = [
        "# API reference\n",
        f"Generated from the docstrings by `{COMMAND}`; do not edit by hand. The guides "
        "are listed in [the docs index](README.md).\n",
        "\n".join(f"* [`{m.__name__}`](#{anchor(m.__name__)})" for m in modules) + "\n",
    ]
    for module in modules:
        parts.extend(document_module(module, documented))
    if skipped:
        parts.append("## Not documented here\n")
        parts.append(
            "These modules could not be imported when this page was generated (an "
            "optional dependency is missing):\n\n" + "\n".join(f"* {s}" for s in skipped) + "\n"
        )
    text = "\n".join(part.rstrip("\n") + "\n" for part in parts)
    return text, skipped


def main(argv: list[str]) -> int:
    text, skipped = generate()
    for line in skipped:
        print(f"left out: {line}", file=sys.stderr)
    if argv == ["--check"]:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"docs/api.md is out of date: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
