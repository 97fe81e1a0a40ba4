"""Can a plan run in another process? :func:`check_portable` says what stops it."""

from __future__ import annotations

import dataclasses
import functools
import pickle
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .._hash import KeyHash

if TYPE_CHECKING:
    from ._types import Plan

__all__ = ["PortabilityProblem", "Serializer", "check_portable"]


class Serializer(Protocol):
    """What :func:`check_portable` needs of a serializer: ``pickle`` or
    ``cloudpickle`` both fit."""

    def dumps(self, obj: Any, protocol: int | None = None) -> bytes: ...


class PortabilityProblem(NamedTuple):
    """One part of a plan that cannot be sent to another process."""

    #: Where it is, for example ``layers[1].ops.reducer.fn``.
    path: str
    #: What is wrong, for example ``<lambda> cannot be pickled``.
    problem: str
    #: How to fix it.
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}; {self.fix}"


def _describe(obj: object) -> str:
    name = getattr(obj, "__name__", None)
    if name == "<lambda>":
        return "<lambda>"
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(qualname, str) and callable(obj):
        return qualname
    return f"a {type(obj).__qualname__} object"


def _fix(obj: object, serializer: Serializer) -> str:
    qualname = getattr(obj, "__qualname__", "")
    local = isinstance(qualname, str) and ("<lambda>" in qualname or "<locals>" in qualname)
    if local or callable(obj):
        fix = "define it at module level" if local else "use a module-level function"
        if serializer is pickle:
            fix += " (or install cloudpickle, which sends lambdas and closures by value)"
        return fix
    return "make it picklable, or keep it out of the flow's callbacks"


def _children(obj: object, path: str) -> list[tuple[str, object]] | None:
    """The parts of a plan node, or None for a leaf."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [(f"{path}.{f.name}", getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    if isinstance(obj, tuple):
        return [(f"{path}[{i}]", item) for i, item in enumerate(obj)]
    if isinstance(obj, KeyHash):
        return [(f"{path}.key", obj.key)]
    if isinstance(obj, functools.partial):
        parts: list[tuple[str, object]] = [(f"{path}.func", obj.func)]
        parts += [(f"{path}.args[{i}]", a) for i, a in enumerate(obj.args)]
        parts += [(f"{path}.keywords[{k!r}]", v) for k, v in obj.keywords.items()]
        return parts
    return None


def check_portable(plan: Plan, serializer: Serializer | None = None) -> list[PortabilityProblem]:
    """The problems that would stop ``plan`` from running in another process.

    Each problem names its path in the plan and a fix, for example
    ``layers[1].ops.reducer.fn: <lambda> cannot be pickled; define it at module
    level``. Live objects the plan refers to by :class:`~flowstage.plan.LocalRef`
    (source iterables, running stages) are not problems: they stay in the process
    that built the flow. Returns ``[]`` when the plan is portable.

    ``serializer`` is ``pickle`` by default; pass ``cloudpickle`` to check what an
    executor using it can send.
    """
    ser: Serializer = pickle if serializer is None else serializer
    try:
        ser.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        pass
    else:
        return []
    problems: list[PortabilityProblem] = []
    stack: list[tuple[str, object]] = [("plan", plan)]
    while stack:
        path, obj = stack.pop()
        parts = _children(obj, path)
        if parts is not None:
            stack.extend(reversed(parts))
            continue
        try:
            ser.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            problem = f"{_describe(obj)} cannot be pickled"
            if not callable(obj):
                problem += f" ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            problems.append(PortabilityProblem(path.removeprefix("plan."), problem, _fix(obj, ser)))
    return problems
