"""The local executor: every stage of a flow a task on the caller's event loop."""

from __future__ import annotations

from typing import Any, ClassVar

from ...plan import Bindings, Plan, require_version
from ._handles import LocalFlowStream, LocalRunningFlow
from ._sliced import SlicedFlowIterator

__all__ = ["LocalExecutor", "LocalFlowStream", "LocalRunningFlow", "SlicedFlowIterator"]


class LocalExecutor:
    """Runs a plan as stages on the current event loop (asyncio, uvloop or trio).

    Every stage is a coroutine task, so ``stages=`` buys I/O concurrency (``async
    def`` callbacks awaited side by side), not CPU parallelism. The default
    executor of every way of running a flow.
    """

    name: ClassVar[str] = "local"

    def open_stream(self, plan: Plan, bindings: Bindings) -> LocalFlowStream[Any]:
        return LocalFlowStream(require_version(plan), bindings)

    def start(self, plan: Plan, bindings: Bindings) -> LocalRunningFlow:
        return LocalRunningFlow(require_version(plan), bindings)

    def iterate(self, plan: Plan, bindings: Bindings) -> SlicedFlowIterator[Any]:
        return SlicedFlowIterator(require_version(plan), bindings)

    def __repr__(self) -> str:
        return "LocalExecutor()"
