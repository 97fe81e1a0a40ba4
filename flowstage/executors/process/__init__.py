"""The process executor: a flow's partitions in worker processes, on every core.

``ProcessExecutor(workers=None)`` runs every layer of a flow in long-lived worker
processes (``os.cpu_count()`` of them by default, at most one per partition of the
widest layer). Each worker hosts partitions of every layer (partition ``i`` in
worker ``i % workers``), runs the same per-partition programs as the local executor,
and routes each sub-batch of a ``partition``, ``shuffle`` or join straight to the
worker that owns its partition. The parent runs the sources and anything that is not
portable (running stages, push handles) on the local engine and talks to the
workers through proxies. Demand crosses processes as GenStage demand, so memory
stays bounded however large the input and however slow a consumer.

Plans travel to the workers pickled, so callbacks must be importable (module-level
functions); with ``cloudpickle`` installed, lambdas and closures travel too.
:func:`~flowstage.plan.check_portable` runs before any process starts, and
:class:`FlowNotPortable` names every callback that cannot be sent, with a fix.

Trust boundary: pickled frames travel only between the parent and its own workers,
over socketpairs made for the run, never over a network port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..._options import check_choice, check_positive_int
from ..._public import fixup_module_metadata as _fixup_module_metadata
from ...plan import Bindings, Plan, require_version
from .._hosting import FlowNotPortable as FlowNotPortable
from .._hosting import HostedGraph, cloudpickle, serialize_plan
from .._hosting import RemoteError as RemoteError
from .._hosting import WorkerCrashed as WorkerCrashed
from .._hosting._executor import HostingExecutor
from ._pool import PARENT_WINDOW, WorkerPool, default_workers, running_backend, start_method

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..local._graph import Graph
    from ..local._runtime import Runtime

__all__ = ("FlowNotPortable", "ProcessExecutor", "RemoteError", "WorkerCrashed")


class ProcessExecutor(HostingExecutor):
    """Runs a flow's layers in worker processes (see the module docstring).

    Args:
        workers: how many worker processes at most (default: the CPUs this process
            may use); a run starts one per partition of its widest layer, up to this.
        start_method: ``"forkserver"`` (the default where it exists) or ``"spawn"``;
            never a bare ``fork`` of the (threaded) parent.

    Scripts that use it must guard their entry point with
    ``if __name__ == "__main__":``, as for any ``multiprocessing`` program: the
    ``forkserver`` and ``spawn`` methods import the main module in every worker.
    """

    name: ClassVar[str] = "process"

    def __init__(self, workers: int | None = None, *, start_method: str | None = None) -> None:
        self.workers: int = (
            default_workers()
            if workers is None
            else check_positive_int("workers", workers, "ProcessExecutor")
        )
        self.start_method: str | None = (
            None
            if start_method is None
            else check_choice(
                "start_method", start_method, ("forkserver", "spawn"), "ProcessExecutor"
            )
        )

    def __repr__(self) -> str:
        return f"ProcessExecutor(workers={self.workers})"

    def _graph(self, plan: Plan) -> Callable[[Plan, Bindings, Runtime], Graph]:
        plan = require_version(plan)
        data = serialize_plan(plan, cloudpickle(), "process", "worker processes")

        method = self.start_method or start_method()

        def pool(size: int) -> WorkerPool:
            return WorkerPool(size, method)

        def make(plan: Plan, bindings: Bindings, runtime: Runtime) -> Graph:
            return HostedGraph(
                plan,
                bindings,
                runtime,
                hosts=self.workers,
                make_pool=pool,
                plan_bytes=data,
                backend=running_backend(),
                parent_window=PARENT_WINDOW,
            )

        return make


_fixup_module_metadata(__name__, __all__)
