"""What the process and Ray executors share: the local executor's handles, each
given a graph whose layers run on hosts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..local import LocalFlowStream, LocalRunningFlow, SlicedFlowIterator

if TYPE_CHECKING:
    from collections.abc import Callable

    from ...plan import Bindings, Plan
    from ..local._graph import Graph
    from ..local._runtime import Runtime

__all__ = ["HostingExecutor"]


class HostingExecutor:
    """An executor whose layers run on hosts: subclasses say how to build the
    graph of a plan (:meth:`_graph`); sources, handles, state and statistics are the
    local executor's."""

    def _graph(self, plan: Plan) -> Callable[[Plan, Bindings, Runtime], Graph]:
        raise NotImplementedError

    def open_stream(self, plan: Plan, bindings: Bindings) -> LocalFlowStream[Any]:
        return LocalFlowStream(plan, bindings, graph=self._graph(plan))

    def start(self, plan: Plan, bindings: Bindings) -> LocalRunningFlow:
        return LocalRunningFlow(plan, bindings, graph=self._graph(plan))

    def iterate(self, plan: Plan, bindings: Bindings) -> SlicedFlowIterator[Any]:
        return SlicedFlowIterator(plan, bindings, graph=self._graph(plan))
