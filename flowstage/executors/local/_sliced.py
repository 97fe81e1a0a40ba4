"""``async for e in flow``: running a flow without keeping a task alive between events.

An ``async for`` loop can be left at any point (``break``, ``return``, an
exception), and nothing then closes what the loop was iterating over. So an
iterator must not hold a task group open between two ``__anext__`` calls: the
group would be closed later, by the garbage collector, in another task (anyio and
trio forbid that, PEP 789 describes the hazard).

:class:`SlicedFlowIterator` therefore runs the flow in *slices*: each
``__anext__`` that needs more events opens a task group, runs every stage of the
flow (:func:`flowstage.lowlevel.run` with ``until``) until the next chunk of output
is available, pauses them at a message boundary and closes the group before
returning. Between two calls no task exists, so leaving the loop leaves nothing
running: the stages are plain objects that are simply dropped. Events inside a
chunk are returned without any task switch.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Generic, TypeVar

import anyio

from ... import hooks, lowlevel
from ..._flowstate import FlowState
from ..._stream import EventSink
from ._graph import Graph
from ._runtime import Runtime, first_failure
from ._statistics import snapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..._stage import Stage
    from ...plan import Bindings, Plan
    from ...statistics import FlowStatistics

T = TypeVar("T")

__all__ = ["SlicedFlowIterator"]


class SlicedFlowIterator(Generic[T]):
    """The iterator behind ``async for e in flow`` (see the module docstring)."""

    def __init__(
        self,
        plan: Plan,
        bindings: Bindings,
        graph: Callable[[Plan, Bindings, Runtime], Graph] = Graph,
    ) -> None:
        self._plan = plan
        self._bindings = bindings
        self._graph = graph
        self._prepared = False
        self._closed = False
        self._runtime: Runtime | None = None
        self._sink: EventSink[T] | None = None
        self._stages: list[Stage] = []
        self._pausing = False
        self._chunk: list[T] = []
        self._index = 0
        self._finished = False
        self._sliced = False  # a slice ran: every stage has started

    def __aiter__(self) -> SlicedFlowIterator[T]:
        return self

    @property
    def state(self) -> FlowState:
        """Where the flow is in its life (``STARTING`` until the first
        ``__anext__``)."""
        return self._runtime.state if self._runtime is not None else FlowState.STARTING

    def statistics(self) -> FlowStatistics:
        """A snapshot of the flow's counters, grouped by layer. Between two events
        nothing runs, so the counters are those of the last slice."""
        if self._runtime is None:
            self._setup()
        assert self._runtime is not None
        return snapshot(self._runtime)

    async def __anext__(self) -> T:
        index = self._index
        chunk = self._chunk
        if index < len(chunk):
            self._index = index + 1
            return chunk[index]
        if self._finished:
            raise StopAsyncIteration
        if self._runtime is None:
            self._setup()
        if not self._prepared:
            self._prepared = True
            assert self._runtime is not None
            await self._runtime.graph.prepare()
        batch = await self._slice()
        if batch is None:
            self._finished = True
            raise StopAsyncIteration
        self._chunk = batch
        self._index = 1
        return batch[0]

    def __del__(self) -> None:
        # Left without aclose(): nothing runs between two events, but a graph that
        # hosts layers elsewhere (worker processes) must not outlive the loop.
        runtime = self._runtime
        if runtime is not None and not self._closed:
            self._closed = True
            runtime.graph.abort()

    async def aclose(self) -> None:
        """End the iteration (for ``contextlib.aclosing``). Nothing is running
        between two events, so there is nothing to stop; sources that did not end
        are closed, so that their cleanup runs now, and instruments
        (:mod:`flowstage.hooks`) hear that the stages stopped (``"shutdown"``).
        Left without ``aclose()``, the paused stages are simply dropped and report
        no end."""
        report = self._sliced and not self._closed
        self._finished = True
        self._closed = True
        self._chunk = []
        self._index = 0
        if self._runtime is not None:
            self._runtime.end(FlowState.STOPPED)
        for stage in self._stages:
            if not lowlevel.is_terminated(stage):
                await lowlevel.close_source(stage)
                if report and hooks.active.on_stage_stopped:
                    hooks.emit_stage_stopped(stage.name, stage.kind, "shutdown")
        if self._runtime is not None:
            with anyio.CancelScope(shield=True):
                await self._runtime.graph.aclose()

    def _setup(self) -> None:
        runtime = self._runtime = Runtime(self._plan, self._bindings, graph=self._graph)
        runtime.started_at = time.monotonic()
        runtime.state = FlowState.RUNNING
        subs = runtime.output_subscriptions()
        runtime.pending = runtime.graph.expected
        # The sink is its own owner: nothing of the flow refers back to the iterator,
        # so dropping it (leaving the loop) frees it at once (see __del__).
        sink: EventSink[T] = EventSink()
        for producer, opts in subs:
            sink.subscribe(producer, **opts)
        self._sink = sink
        stages = [s for s in runtime.graph.foreign if not lowlevel.is_started(s)]
        stages += [s for s in runtime.graph.tracked if s not in stages]
        for stage in stages:
            lowlevel.claim(stage)
        self._stages = stages

    def _paused(self) -> bool:
        return self._pausing

    async def _slice(self) -> list[T] | None:
        """Run the stages until the sink has a chunk; None once the flow is over."""
        runtime = self._runtime
        sink = self._sink
        assert runtime is not None
        assert sink is not None
        live = [s for s in self._stages if not lowlevel.is_terminated(s)]
        self._pausing = False
        self._sliced = True
        result: list[T] | None = None
        try:
            async with anyio.create_task_group() as tg:
                runtime.inner = tg
                timer = runtime.timer
                if timer is not None:
                    tg.start_soon(timer.run, name="flowstage:flow-timer")
                tg.start_soon(runtime.graph.serve, name="flowstage:flow-graph")
                left = len(live)
                all_paused = anyio.Event()

                async def run(stage: Stage) -> None:
                    nonlocal left
                    try:
                        await lowlevel.run(stage, self._paused)
                    finally:
                        left -= 1
                        if left == 0:
                            all_paused.set()

                for stage in live:
                    tg.start_soon(run, stage, name=f"flowstage:{stage.name}")
                if runtime.pending <= 0:
                    runtime.release()
                try:
                    result = await sink.next_batch()
                finally:
                    self._pausing = True
                    for stage in live:
                        lowlevel.wake(stage)
                if live:
                    await all_paused.wait()
                tg.cancel_scope.cancel()  # the timer, if any
        except BaseException as exc:
            # Failed or cancelled: the flow is over. Stages that paused rather than
            # stopped still hold their sources open, and a graph that hosts layers
            # elsewhere must not outlive the loop: close both (shielded).
            self._finished = True
            self._closed = True
            failure = first_failure(exc)
            if failure is not None:
                runtime.failure = failure
            runtime.end(FlowState.FAILED if failure is not None else FlowState.STOPPED)
            await self._close_sources()
            with anyio.CancelScope(shield=True):
                await runtime.graph.aclose()
            if isinstance(exc, BaseExceptionGroup):
                raise lowlevel.collapse(exc) from None
            raise
        finally:
            runtime.inner = None
        if result is None:
            runtime.end(FlowState.DONE)
            self._closed = True
            with anyio.CancelScope(shield=True):
                await runtime.graph.aclose()
        return result

    async def _close_sources(self) -> None:
        for stage in self._stages:
            if not lowlevel.is_terminated(stage):
                await lowlevel.close_source(stage, quiet=True)
