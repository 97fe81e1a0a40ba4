"""Executors: the ways one plan runs.

Every way of running a flow (``stream``, ``to_list``, ``run``, ``start``,
``into_stages``, ``iterate`` / ``async for``) takes ``executor=``: an
:class:`Executor` or its name, the local executor by default. See
``docs/architecture.md`` for the contract and how to add an executor.

This package imports the engine, the plan and the programs below it, never the
``Flow`` builder.
"""

from .._public import fixup_module_metadata as _fixup_module_metadata
from ._base import Executor as Executor
from ._base import FlowIterator as FlowIterator
from ._base import RunningFlow as RunningFlow
from ._resolve import EXECUTOR_NAMES as EXECUTOR_NAMES
from ._resolve import resolve as resolve
from .local import LocalExecutor as LocalExecutor

__all__ = (
    "EXECUTOR_NAMES",
    "Executor",
    "FlowIterator",
    "LocalExecutor",
    "RunningFlow",
    "resolve",
)

_fixup_module_metadata(__name__, __all__)
