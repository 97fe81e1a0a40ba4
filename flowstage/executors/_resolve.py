"""Picking an executor by name or instance."""

from __future__ import annotations

import importlib
from typing import Final

from ._base import Executor

__all__ = ["EXECUTOR_NAMES", "resolve"]

#: Executors known by name, and where each lives (imported only when asked for).
EXECUTOR_NAMES: Final[dict[str, tuple[str, str]]] = {
    "local": ("flowstage.executors.local", "LocalExecutor"),
    "process": ("flowstage.executors.process", "ProcessExecutor"),
    "ray": ("flowstage.executors.ray", "RayExecutor"),
}


def resolve(executor: Executor | str | None = None) -> Executor:
    """The executor to run a flow with: ``None`` (the local executor), a name
    such as ``"local"``, or an :class:`Executor` instance (returned as it is).

    Raises:
        LookupError: an unknown name (the message lists the known ones).
        TypeError: neither a name nor an executor.
    """
    if executor is None:
        executor = "local"
    if isinstance(executor, str):
        where = EXECUTOR_NAMES.get(executor)
        if where is None:
            known = ", ".join(repr(n) for n in EXECUTOR_NAMES)
            raise LookupError(f"executor must be one of {known}, got: {executor!r}")
        module, cls = where
        made: Executor = getattr(importlib.import_module(module), cls)()
        return made
    if not isinstance(executor, Executor):
        raise TypeError(
            "executor must be an executor (such as flowstage.executors.LocalExecutor()) "
            f"or its name, got: {executor!r}"
        )
    return executor
