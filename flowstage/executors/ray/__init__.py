"""The Ray executor: a flow's partitions in actors of a Ray cluster.

``RayExecutor(address=None)`` runs every layer of a flow in Ray actors: one actor per
partition index (partition ``i`` of every layer in actor ``i``, at most
``max_actors``), each hosting the same per-partition programs as the local and process
executors. Actors send each sub-batch of a ``partition``, ``shuffle`` or join straight
to the actor that owns its partition; the driver runs the sources (and anything that
is not portable: running stages, push handles) and, after them, only receives the
flow's output. Demand crosses actors as GenStage demand, and every pair of parties
keeps a bounded window of calls in flight, so memory stays bounded on a slow reducer.

Connecting: with ``address=None`` and Ray not initialized in this process, a local
Ray is started for the run and shut down after it; ``address="ray://host:10001"`` or
``"auto"`` connects to a running cluster. If the application called ``ray.init``
itself, runs use that connection and leave it open (the way to share one cluster
between many runs, since starting Ray takes seconds).

Ray is imported only when a run starts: install it with ``pip install
'flowstage[ray]'``. Plans travel with cloudpickle (Ray's bundled copy when the
``cloudpickle`` package is not installed): lambdas, closures and functions of the
script being run travel by value; functions of importable modules by reference, so
every node of the cluster needs flowstage and those modules installed (or Ray's
``runtime_env``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..._options import check_positive_int
from ..._public import fixup_module_metadata as _fixup_module_metadata
from ...plan import Bindings, Plan, require_version
from .._hosting import FlowNotPortable as FlowNotPortable
from .._hosting import HostedGraph, cloudpickle, serialize_plan
from .._hosting import RemoteError as RemoteError
from .._hosting import WorkerCrashed as WorkerCrashed
from .._hosting._executor import HostingExecutor

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..local._graph import Graph
    from ..local._runtime import Runtime

__all__ = ("FlowNotPortable", "RayExecutor", "RemoteError", "WorkerCrashed")

#: Calls in flight per pair of parties, by default.
DEFAULT_WINDOW = 4


def _check_options(option: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise TypeError(
            f"RayExecutor: {option} must be a dict of keyword arguments, got: {value!r}"
        )
    return dict(value)


class RayExecutor(HostingExecutor):
    """Runs a flow's layers in Ray actors (see the module docstring).

    Args:
        address: the cluster to connect to (``"auto"``, ``"ray://host:10001"``, ...);
            ``None`` starts a local Ray for the run, unless the application already
            initialized Ray (then that connection is used).
        max_actors: at most this many actors per run (default: one per partition of the
            widest layer).
        window: calls in flight between two parties (the driver and an actor, or two
            actors) before the sender waits for the oldest; with each layer's demand,
            it bounds the memory of a run.
        max_pending_calls: Ray's limit on calls queued per actor, a guard (default:
            what the window allows, ``window * actors + 4``; smaller fails at start).
        actor_options: options for the actors, as for ``ActorClass.options()``:
            ``num_cpus``, ``resources``, ``runtime_env``, ``scheduling_strategy``
            (``"SPREAD"`` by default) ... ``max_restarts`` is always 0: an actor that
            came back would have lost its partitions' state.
        init_options: options for ``ray.init`` when the run starts or connects to
            Ray (``num_cpus``, ``object_store_memory``, ``runtime_env`` ...).
        start_timeout: seconds to wait for the actors to start (a cluster without
            the resources asked for would otherwise wait forever).
    """

    name: ClassVar[str] = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        max_actors: int | None = None,
        window: int = DEFAULT_WINDOW,
        max_pending_calls: int | None = None,
        actor_options: dict[str, Any] | None = None,
        init_options: dict[str, Any] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        if address is not None and not isinstance(address, str):
            raise TypeError(f"RayExecutor: address must be a str or None, got: {address!r}")
        self.address = address
        self.max_actors: int | None = (
            None
            if max_actors is None
            else check_positive_int("max_actors", max_actors, "RayExecutor")
        )
        self.window: int = check_positive_int("window", window, "RayExecutor")
        self.max_pending_calls: int | None = (
            None
            if max_pending_calls is None
            else check_positive_int("max_pending_calls", max_pending_calls, "RayExecutor")
        )
        self.actor_options: dict[str, Any] = _check_options("actor_options", actor_options)
        for fixed in ("max_restarts", "max_task_retries", "max_pending_calls"):
            if fixed in self.actor_options:
                raise ValueError(
                    f"RayExecutor: actor_options cannot set {fixed!r} (the executor sets it)"
                )
        self.init_options: dict[str, Any] = _check_options("init_options", init_options)
        if (
            isinstance(start_timeout, bool)
            or not isinstance(start_timeout, int | float)
            or not start_timeout > 0
        ):
            raise ValueError(
                "RayExecutor: start_timeout must be a positive number of seconds, "
                f"got: {start_timeout!r}"
            )
        self.start_timeout: float = float(start_timeout)

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, max_actors={self.max_actors})"

    def _graph(self, plan: Plan) -> Callable[[Plan, Bindings, Runtime], Graph]:
        plan = require_version(plan)
        fallback = cloudpickle()
        if fallback is None:
            fallback = _ray_cloudpickle()
        data = serialize_plan(plan, fallback, "ray", "Ray actors", pickle_first=False)

        def pool(size: int) -> Any:
            from ._pool import RayPool

            return RayPool(
                size,
                address=self.address,
                init_options=self.init_options,
                actor_options=self.actor_options,
                window=self.window,
                max_pending_calls=self.max_pending_calls,
                start_timeout=self.start_timeout,
            )

        def make(plan: Plan, bindings: Bindings, runtime: Runtime) -> Graph:
            widest = max((layer.stages for layer in plan.layers), default=0)
            return HostedGraph(
                plan,
                bindings,
                runtime,
                hosts=widest if self.max_actors is None else self.max_actors,
                make_pool=pool,
                plan_bytes=data,
                backend="asyncio",
            )

        return make


def _ray_cloudpickle() -> Any:
    """Ray's bundled cloudpickle, when Ray is installed."""
    try:
        from ray import cloudpickle as bundled  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return bundled


_fixup_module_metadata(__name__, __all__)
