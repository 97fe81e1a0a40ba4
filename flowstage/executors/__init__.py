"""Executors: the ways one plan runs.

Every way of running a flow (``stream``, ``to_list``, ``run``, ``start``,
``into_stages``, ``iterate`` / ``async for``) takes ``executor=``: an
:class:`Executor` or its name, the local executor by default. See
``docs/architecture.md`` for the contract and how to add an executor.

The local executor is here; :class:`ProcessExecutor` (worker processes) and
:class:`RayExecutor` (a Ray cluster) are imported from their modules
(:mod:`flowstage.executors.process`, :mod:`flowstage.executors.ray`) on first use.

This package imports the engine, the plan and the programs below it, never the
``Flow`` builder.
"""

from typing import TYPE_CHECKING, Any

from .._public import fixup_module_metadata as _fixup_module_metadata
from ._base import AsyncForIterator as AsyncForIterator
from ._base import Executor as Executor
from ._base import FlowIterator as FlowIterator
from ._base import RunningFlow as RunningFlow
from ._resolve import EXECUTOR_NAMES as EXECUTOR_NAMES
from ._resolve import resolve as resolve
from .local import LocalExecutor as LocalExecutor

if TYPE_CHECKING:
    from .process import ProcessExecutor as ProcessExecutor
    from .ray import RayExecutor as RayExecutor

__all__ = (
    "EXECUTOR_NAMES",
    "AsyncForIterator",
    "Executor",
    "FlowIterator",
    "LocalExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "RunningFlow",
    "resolve",
)

_LAZY = {"ProcessExecutor": ".process", "RayExecutor": ".ray"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


_fixup_module_metadata(__name__, [n for n in __all__ if n not in _LAZY])
