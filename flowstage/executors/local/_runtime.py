"""The scope a local flow runs in.

Everything runs inside one task group entered by the ``async with`` (an
:class:`~flowstage.lowlevel.OwningScope`): flow stages (sources, map-reducers, the
timer and, for ``start()``, the output drain) in an inner cancel scope, and stages
passed by the user that were not running yet (``from_stages``, ``through_stages``,
``into_stages``) in the outer one, as :func:`flowstage.stream` does. Leaving the
block (``break``, an exception, cancellation) cancels every stage and waits for
them: no task outlives the block.

Consumers passed to ``into_stages`` that were not running yet are the flow's own:
they run beside its stages and, once every stage of the flow has finished, are
told to ``finish()``, so they handle every event already sent to them before they
stop and the flow is done (nothing is cancelled with events still in a mailbox).
Consumers that were already running belong to their own scope and are left
running.

Release: sources start in ``"accumulate"`` demand mode. Once every subscription to
a flow-owned producer is established (counted on the producer side), the sources
(and ``from_stages`` producers that are in accumulate mode, as Flow's coordinator
does) switch to ``"forward"``, so no consumer grabs everything before the others
subscribed.

Errors follow :mod:`flowstage.executors._failure`: the first failure cancels the
flow and is raised from the ``async with`` as the original exception.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio

from ... import lowlevel
from ..._fanout import Hub
from ..._flowstate import FlowState
from ..._stage import Stage
from ..._stream import EventStream, stream
from ._graph import Graph
from ._timer import Timer

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup, TaskStatus

    from ...plan import Bindings, Plan
    from ._timer import Timed

__all__ = ["Runtime"]

Subscriptions = list[tuple[Stage, dict[str, Any]]]


class Runtime:
    """One task group, the flow's stages in an inner cancel scope, and the
    bookkeeping stages report to (see the module docstring)."""

    def __init__(
        self,
        plan: Plan,
        bindings: Bindings,
        *,
        drain: bool = False,
        graph: Callable[[Plan, Bindings, Runtime], Graph] = Graph,
    ) -> None:
        self.plan = plan
        self.graph = graph(plan, bindings, self)
        self.pending = 0
        self._drain_subs: Subscriptions | None = None
        if drain:
            self._drain_subs = self.output_subscriptions()
        if plan.sink == "into_stages":
            for ref in plan.consumers:
                consumer = self.graph.foreign_stage(
                    ref, "Flow.into_stages", ("consumer", "producer_consumer")
                )
                for p in self.graph.outputs:
                    self.graph.subscribe(consumer, p, cancel="transient")
        #: ``into_stages`` consumers this flow started: drained, then stopped.
        self.owned_consumers: list[Stage] = []
        self._released = False
        self.timer: Timer | None = None
        self._scope = lowlevel.OwningScope()
        self.inner: TaskGroup | None = None
        self._stage_scope: anyio.CancelScope | None = None
        self._live = 0  # flow stages (and the drain) still running
        self._consumers_live = 0  # owned consumers still running
        self.done = anyio.Event()
        #: The exception the flow failed with: the failing stage's as soon as it
        #: fails, then the one raised to the caller.
        self.failure: BaseException | None = None
        self.closed = False
        #: Where the flow is in its life (see :class:`~flowstage.FlowState`).
        self.state = FlowState.STARTING
        #: ``time.monotonic()`` when the flow was opened, and when it ended.
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._stop_requested = False
        #: The fan-out of a published flow's output (None when not published).
        self.hub: Hub[Any] | None = Hub() if plan.sink == "publish" else None

    # -- what stages call -------------------------------------------------------------------

    def subscribed(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.release()

    def schedule(self, deadline: float, stage: Timed) -> None:
        timer = self.timer
        if timer is None:
            inner = self.inner
            if inner is None:
                return
            timer = self.timer = Timer()
            inner.start_soon(timer.run, name="flowstage:flow-timer")
        timer.schedule(deadline, stage)

    def release(self) -> None:
        """Switch the sources to ``"forward"`` (once)."""
        if self._released:
            return
        self._released = True
        for p in self.graph.sources:
            p.set_demand("forward")
        for p in self.graph.foreign:
            if p.kind == "producer" and p.demand_mode == "accumulate" and p.running:
                p.set_demand("forward")

    # -- output ---------------------------------------------------------------------------------

    def output_subscriptions(self) -> Subscriptions:
        """Subscriptions for a stream over the output; counted as expected."""
        subs: Subscriptions = []
        for p in self.graph.outputs:
            subs.append((p, {"cancel": "transient"}))
            if p in self.graph.owned:
                self.graph.expected += 1
        return subs

    def open_output(self, subs: Subscriptions) -> EventStream[Any]:
        return stream(subs, demand="accumulate", producers=[])

    # -- lifetime ---------------------------------------------------------------------------------

    def end(self, state: FlowState) -> None:
        """Record how the flow ended (the first end counts)."""
        if not self.state.ended:
            self.state = state
            self.ended_at = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the flow was opened (until it ended)."""
        if self.started_at is None:
            return 0.0
        end = self.ended_at if self.ended_at is not None else time.monotonic()
        return end - self.started_at

    async def open(self) -> None:
        self.started_at = time.monotonic()
        self.pending = self.graph.expected
        outer = await self._scope.enter()
        try:
            await self.graph.prepare()
            consumers = {id(self.graph.bindings.resolve(ref)) for ref in self.plan.consumers}
            for stage in self.graph.foreign:
                if lowlevel.is_started(stage):
                    continue
                # Claimed now, so no other scope starts it too.
                if id(stage) in consumers:
                    lowlevel.claim(stage)
                    self.owned_consumers.append(stage)
                else:
                    self._scope.start(stage)
            await outer.start(self._supervise, name="flowstage:flow")
        except BaseException as exc:
            await self.close(exc, exc)
            raise
        if self.state is FlowState.STARTING:
            self.state = FlowState.RUNNING

    async def _supervise(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            with anyio.CancelScope() as scope:
                self._stage_scope = scope
                async with anyio.create_task_group() as inner:
                    self.inner = inner
                    for stage in self.graph.tracked:
                        lowlevel.claim(stage)
                        self._live += 1
                        inner.start_soon(self._run_tracked, stage, name=f"flowstage:{stage.name}")
                    if self._drain_subs is not None:
                        self._live += 1
                        inner.start_soon(self._run_drain, self._drain_subs, name="flowstage:drain")
                    inner.start_soon(self._serve_graph, name="flowstage:flow-graph")
                    for stage in self.owned_consumers:
                        self._consumers_live += 1
                        inner.start_soon(self._run_consumer, stage, name=f"flowstage:{stage.name}")
                    if self.pending <= 0:
                        self.release()
                    task_status.started()
        except BaseException as exc:
            failure = first_failure(exc)
            if failure is not None:
                # Seen at once (state, health checks), before the caller's block
                # is cancelled and the failure raised from it.
                self.failure = failure
                self.end(FlowState.FAILED)
                self.done.set()
            raise
        finally:
            self.inner = None
        self.end(self._ending())
        self.done.set()  # finished, or stopped with stop()

    def _one_done(self) -> None:
        self._live -= 1
        if self._live == 0:
            # Every event the flow emitted is in its consumers' mailboxes, before
            # this finish: they handle them all, then stop.
            for stage in self.owned_consumers:
                if not lowlevel.is_terminated(stage):
                    stage.finish()
            self._maybe_over()

    def _maybe_over(self) -> None:
        if self._live == 0 and self._consumers_live == 0 and self._stage_scope is not None:
            self._stage_scope.cancel()  # the timer, if any

    async def _run_consumer(self, stage: Stage) -> None:
        try:
            await lowlevel.run(stage)
        finally:
            self._consumers_live -= 1
            self._maybe_over()

    def _failed(self, exc: Exception) -> None:
        """Record a failure before the other stages are cancelled (so a push source
        names it to pushers it wakes); the first one counts."""
        if self.failure is None:
            self.failure = exc

    async def _serve_graph(self) -> None:
        try:
            await self.graph.serve()
        except Exception as exc:  # a remote failure, a crashed worker
            self._failed(exc)
            raise

    async def _run_tracked(self, stage: Stage) -> None:
        try:
            await lowlevel.run(stage)
        except Exception as exc:
            self._failed(exc)
            raise
        finally:
            self._one_done()

    async def _run_drain(self, subs: Subscriptions) -> None:
        hub = self.hub
        try:
            async with self.open_output(subs) as events:
                async for batch in events.batches():
                    if hub is not None:
                        hub.publish(batch)
        finally:
            if hub is not None:
                hub.close()  # subscriptions end with the flow, however it ends
            self._one_done()

    def _ending(self) -> FlowState:
        if self.failure is not None:
            return FlowState.FAILED
        return FlowState.STOPPED if self._stop_requested else FlowState.DONE

    def _cut_short(self) -> None:
        """Note that the flow is being stopped before it finished by itself."""
        if self.state.ended:
            return
        stages = (*self.graph.tracked, *self.owned_consumers)
        if not all(lowlevel.is_terminated(stage) for stage in stages):
            self._stop_requested = True

    def stop(self) -> None:
        self._cut_short()
        if self._stage_scope is not None:
            self._stage_scope.cancel()

    def close_sources(self) -> None:
        """Tell every source the flow owns to finish: each sends what it has
        already emitted, then ends as if its input had ended, so the layers flush
        their windows and the flow finishes by itself."""
        if self.state in (FlowState.STARTING, FlowState.RUNNING):
            self.state = FlowState.DRAINING
        for stage in self.graph.sources:
            if not lowlevel.is_terminated(stage):
                stage.finish()

    async def close(self, exc: BaseException | None, original: BaseException | None) -> bool:
        """Stop everything and exit the task group; raise the flow's failure.

        ``exc`` is the exception leaving the block (``original`` the one the
        ``async with`` received). Returns True to suppress ``original``.
        """
        self.closed = True
        self._cut_short()
        if self._stage_scope is not None:
            self._stage_scope.cancel()
        try:
            try:
                suppressed = await self._scope.exit(exc)
            finally:
                with anyio.CancelScope(shield=True):
                    await self.graph.aclose()
        except BaseException as raised:
            if raised is not exc and not isinstance(raised, anyio.get_cancelled_exc_class()):
                self.failure = raised
            raise
        finally:
            self.end(self._ending())
            self.done.set()
        if exc is None or suppressed:
            return original is not None
        if exc is original:
            return False
        raise exc


def first_failure(exc: BaseException) -> BaseException | None:
    """The first exception in ``exc`` that is not a cancellation (None if none)."""
    cancelled = anyio.get_cancelled_exc_class()
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_failure(inner)
            if found is not None:
                return found
        return None
    return None if isinstance(exc, cancelled) else exc
