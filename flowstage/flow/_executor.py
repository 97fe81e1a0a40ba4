"""The local executor: runs a compiled :class:`~flowstage.flow.Plan` as stages.

Entry points (called lazily by :class:`~flowstage.flow.Flow`):

* :func:`open_stream(plan) <open_stream>` -- ``async with`` it to get an async
  iterator over the flow's output (``Flow.stream()``, ``to_list()``, ``run()``).
* :func:`start_flow(plan) <start_flow>` -- ``async with`` it to get a
  :class:`RunningFlow` (``Flow.start()``, ``Flow.into_stages()``).

Topology (as Elixir's Flow builds it). One producer per source iterable, created in
``"accumulate"`` demand mode; ``stages`` :class:`~._exec_stages.MapReducer` stages
per layer, each subscribed (``cancel="transient"``, the layer's
``max_demand``/``min_demand``) to every producer of every input of its layer. A
producer feeding a ``"partition"`` input gets a ``PartitionDispatcher`` and stage
``i`` subscribes with ``partition=i``; every other producer uses a
``DemandDispatcher``. The output is consumed with :func:`flowstage.stream`
(transient subscriptions). Once every subscription to a flow-owned producer is
established (counted on the producer side), the sources (and ``from_stages``
producers that are in accumulate mode, as Flow's coordinator does) switch to
``"forward"``, so no consumer grabs everything before the others subscribed.

Scope and lifetime. Everything runs inside one task group entered by the
``async with``: flow stages (sources, map-reducers, the timer and, for
``start()``, the output drain) in an inner cancel scope, and stages passed by the
user that were not running yet (``from_stages``, ``through_stages``,
``into_stages``) in the outer one, as :func:`flowstage.stream` does. Leaving the
block (``break``, an exception, cancellation) cancels every stage and waits for
them: no task outlives the block.

Errors. The first failure cancels the flow and is raised from the
``async with`` as the original exception (not an ``ExceptionGroup``), with a note
naming the layer, the operation and the partition, such as ``in flow layer 1
(map), partition 0 of 2``. Secondary failures that only propagate the first one
(``StageExited`` of downstream stages, the same exception seen twice) are
dropped. When several stages fail independently (every partition raising at its
final trigger), the first failure is raised with a note listing the others; only
failures that are not ``Exception`` subclasses come out as an ``ExceptionGroup``.
A stage's output is emitted by demand and never overflows its bounded buffer
(see ``_exec_stages``).

``async for e in flow`` (``Flow.__aiter__``) does not use this module's task
group: :mod:`._exec_sliced` runs the flow in slices inside each ``__anext__``, so
leaving the loop at any point leaves nothing running.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import anyio

from .._errors import StageExited
from .._scope import _leaves
from .._stage import Stage
from .._stream import EventStream, stream
from ._exec_stages import (
    AsyncMapReducer,
    FlowAsyncIterableProducer,
    FlowIterableProducer,
    MapReducer,
    Timer,
    Trigger,
    make_dispatcher,
)
from ._plan import (
    AsyncIterableSource,
    Dispatch,
    IterableSource,
    LayerInput,
    LayerPlan,
    Plan,
    StagesSource,
    ThroughStagesSource,
)
from ._program import make_program

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Iterable
    from types import TracebackType

    from anyio.abc import TaskGroup, TaskStatus

__all__ = ["FlowStream", "RunningFlow", "collapse_flow_exception", "open_stream", "start_flow"]

T = TypeVar("T")


def open_stream(plan: Plan) -> FlowStream[Any]:
    """Run ``plan`` and consume its output::

        async with open_stream(plan) as events:
            async for event in events:
                ...

    The iterator also has ``batches()`` (an async iterator of lists). The
    iteration ends when every output stage has finished; leaving the block early
    stops the flow.
    """
    return FlowStream(plan)


def start_flow(plan: Plan) -> RunningFlow:
    """Run ``plan`` in the background: ``async with start_flow(plan) as running``.

    With ``plan.sink == "run"`` the output is drained and discarded; with
    ``"into_stages"`` ``plan.consumers`` are subscribed to the output.
    """
    return RunningFlow(plan)


# -- errors ----------------------------------------------------------------------------


def collapse_flow_exception(
    group: BaseExceptionGroup[BaseException], first: BaseException | None = None
) -> BaseException:
    """The one real failure in ``group``, or ``group`` when there are several.

    Cancellations are ignored; the same exception object seen twice counts once;
    ``StageExited`` errors next to exactly one other exception are consequences of
    it; several ``StageExited`` with the same reason are one failure. When several
    stages failed (for example every partition raising at its final trigger),
    ``first`` (the failure that happened first) is returned with a note listing
    the others, as a flow fails at its first error.
    """
    cancelled = anyio.get_cancelled_exc_class()
    leaves: list[BaseException] = []
    seen: set[int] = set()
    for leaf in _leaves(group):
        if isinstance(leaf, cancelled) or id(leaf) in seen:
            continue
        seen.add(id(leaf))
        leaves.append(leaf)
    if not leaves:
        return group
    if len(leaves) == 1:
        return leaves[0]
    roots = [e for e in leaves if not isinstance(e, StageExited)]
    if len(roots) == 1:
        return roots[0]
    if not roots:
        reasons = {repr(cast("StageExited", e).reason) for e in leaves}
        if len(reasons) == 1:
            return leaves[0]
    if (
        first is not None
        and any(e is first for e in leaves)
        and all(isinstance(e, Exception) for e in leaves)
    ):
        others = [e for e in leaves if e is not first]
        shown = ", ".join(repr(e) for e in others[:3])
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        first.add_note(f"other flow stages failed too (suppressed): {shown}{more}")
        return first
    return group


# -- building the graph -------------------------------------------------------------------


class _Graph:
    """The stages of a plan, created and wired (subscriptions queued), not started."""

    def __init__(self, plan: Plan, runtime: _Runtime) -> None:
        self.plan = plan
        self.runtime = runtime
        self.sources: list[Stage] = []  # flow-owned source producers
        self.tracked: list[Stage] = []  # flow-owned stages: sources and map-reducers
        self.owned: set[Stage] = set()
        self.foreign: list[Stage] = []  # user stages the flow uses
        self.layers: list[list[MapReducer]] = []
        self.expected = 0  # subscriptions to flow-owned producers still to be made
        self.consumer_of: dict[int, tuple[Dispatch, LayerPlan | None]] = {}
        for layer in plan.layers:
            for inp in layer.inputs:
                self._scan(inp, layer)
        for inp in plan.output:
            self._scan(inp, None)
        for layer in plan.layers:
            self._build_layer(layer)
        self.outputs: list[Stage] = []
        for inp in plan.output:
            self.outputs += self._producers(inp, None)

    def _scan(self, inp: LayerInput, consumer: LayerPlan | None) -> None:
        src = inp.source
        if isinstance(src, int):
            self.consumer_of[src] = (inp.dispatch, consumer)
        elif isinstance(src, ThroughStagesSource):
            for inner in src.inputs:
                self._scan(inner, None)

    def _foreign(self, stage: object, what: str, kind: tuple[str, ...]) -> Stage:
        if not isinstance(stage, Stage) or stage.kind not in kind:
            raise TypeError(f"{what} expects {' or '.join(kind)} stages, got: {stage!r}")
        if stage not in self.foreign:
            self.foreign.append(stage)
        return stage

    def _producers(self, inp: LayerInput, consumer: LayerPlan | None) -> list[Stage]:
        src = inp.source
        d = inp.dispatch
        if isinstance(src, int):
            return list(self.layers[src])
        if isinstance(src, IterableSource | AsyncIterableSource):
            out: list[Stage] = []
            for it in src.iterables:
                k = len(self.sources)
                disp = make_dispatcher(d.kind, d.partitions, d.hash, consumer)
                p: Stage
                if isinstance(src, IterableSource):
                    p = FlowIterableProducer(
                        cast("Iterable[Any]", it), self.runtime, disp, f"flow-source{k}"
                    )
                else:
                    p = FlowAsyncIterableProducer(
                        cast("AsyncIterable[Any]", it), self.runtime, disp, f"flow-source{k}"
                    )
                self.sources.append(p)
                self.tracked.append(p)
                self.owned.add(p)
                out.append(p)
            return out
        if isinstance(src, StagesSource):
            return [
                self._foreign(p, "Flow.from_stages", ("producer", "producer_consumer"))
                for p in src.producers
            ]
        through = [
            self._foreign(s, "Flow.through_stages", ("producer_consumer",)) for s in src.stages
        ]
        for inner in src.inputs:
            for p in self._producers(inner, None):
                for s in through:
                    self.subscribe(s, p, cancel="transient")
        return through

    def subscribe(self, consumer: Stage, producer: Stage, **opts: Any) -> None:
        consumer.subscribe(producer, **opts)
        if producer in self.owned:
            self.expected += 1

    def _build_layer(self, layer: LayerPlan) -> None:
        dispatch, consumer = self.consumer_of.get(layer.index, (Dispatch(), None))
        stages: list[MapReducer] = []
        for i in range(layer.stages):
            program = make_program(layer, i, layer.stages)
            cls = AsyncMapReducer if program.is_async else MapReducer
            disp = make_dispatcher(dispatch.kind, dispatch.partitions, dispatch.hash, consumer)
            stage = cls(program, layer, i, self.runtime, disp)
            stages.append(stage)
            self.tracked.append(stage)
            self.owned.add(stage)
        for inp in layer.inputs:
            producers = self._producers(inp, layer)
            partitioned = inp.dispatch.kind == "partition"
            for i, stage in enumerate(stages):
                extra = {"partition": i} if partitioned else {}
                for p in producers:
                    self.subscribe(
                        stage,
                        p,
                        max_demand=layer.max_demand,
                        min_demand=layer.min_demand,
                        cancel="transient",
                        **extra,
                    )
                    stage.expect_upstream()
        self.layers.append(stages)

    def trigger_targets(self) -> list[MapReducer]:
        """The stages of the last reducing layers (searching back from the output),
        or of the output layers when no layer reduces."""
        plan = self.plan
        start = [inp.source for inp in plan.output if isinstance(inp.source, int)]
        found: list[int] = []
        seen: set[int] = set()
        queue = deque(start)
        while queue:
            index = queue.popleft()
            if index in seen:
                continue
            seen.add(index)
            layer = plan.layers[index]
            if layer.ops.reducer is not None:
                found.append(index)
                continue
            for inp in layer.inputs:
                if isinstance(inp.source, int):
                    queue.append(inp.source)
        chosen = found or start
        return [s for index in sorted(set(chosen)) for s in self.layers[index]]


# -- the scope -----------------------------------------------------------------------------


class _Runtime:
    """The scope a flow runs in: one task group, the flow's stages in an inner
    cancel scope, and the bookkeeping stages report to."""

    def __init__(self, plan: Plan, *, drain: bool = False) -> None:
        self.plan = plan
        self.graph = _Graph(plan, self)
        self._pending = 0
        self._drain_subs: list[tuple[Stage, dict[str, Any]]] | None = None
        if drain:
            self._drain_subs = self.output_subscriptions()
        if plan.sink == "into_stages":
            for c in plan.consumers:
                consumer = self.graph._foreign(
                    c, "Flow.into_stages", ("consumer", "producer_consumer")
                )
                for p in self.graph.outputs:
                    self.graph.subscribe(consumer, p, cancel="transient")
        self._released = False
        self._timer: Timer | None = None
        self._outer: TaskGroup | None = None
        self._inner: TaskGroup | None = None
        self._stage_scope: anyio.CancelScope | None = None
        self._live = 0
        self._done = anyio.Event()
        self._failed = False
        self._first_failure: BaseException | None = None
        self._closed = False

    # -- what stages call -------------------------------------------------------------------

    def subscribed(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._release()

    def schedule(self, deadline: float, stage: MapReducer) -> None:
        timer = self._timer
        if timer is None:
            inner = self._inner
            if inner is None:
                return
            timer = self._timer = Timer()
            inner.start_soon(timer.run, name="flowstage:flow-timer")
        timer.schedule(deadline, stage)

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        for p in self.graph.sources:
            p.set_demand("forward")
        for p in self.graph.foreign:
            if p.kind == "producer" and p.demand_mode == "accumulate" and p.running:
                p.set_demand("forward")

    # -- output ---------------------------------------------------------------------------------

    def output_subscriptions(self) -> list[tuple[Stage, dict[str, Any]]]:
        """Subscriptions for a stream over the output; counted as expected."""
        subs: list[tuple[Stage, dict[str, Any]]] = []
        for p in self.graph.outputs:
            subs.append((p, {"cancel": "transient"}))
            if p in self.graph.owned:
                self.graph.expected += 1
        return subs

    def open_output(self, subs: list[tuple[Stage, dict[str, Any]]]) -> EventStream[Any]:
        return stream(subs, demand="accumulate", producers=[])

    # -- lifetime ---------------------------------------------------------------------------------

    async def open(self) -> None:
        self._pending = self.graph.expected
        outer = anyio.create_task_group()
        await outer.__aenter__()
        self._outer = outer
        try:
            for stage in self.graph.foreign:
                if not stage._started:
                    stage._claim()  # started now, so no other scope starts it too
                    outer.start_soon(stage._run, name=f"flowstage:{stage.name}")
            await outer.start(self._supervise, name="flowstage:flow")
        except BaseException as exc:
            await self.close(exc, exc)
            raise

    async def _supervise(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            with anyio.CancelScope() as scope:
                self._stage_scope = scope
                async with anyio.create_task_group() as inner:
                    self._inner = inner
                    for stage in self.graph.tracked:
                        stage._claim()
                        self._live += 1
                        inner.start_soon(self._run_tracked, stage, name=f"flowstage:{stage.name}")
                    if self._drain_subs is not None:
                        self._live += 1
                        inner.start_soon(self._run_drain, self._drain_subs, name="flowstage:drain")
                    if self._pending <= 0:
                        self._release()
                    task_status.started()
        finally:
            self._inner = None
        self._done.set()  # finished, or stopped with stop()

    def _one_done(self) -> None:
        self._live -= 1
        if self._live == 0 and self._stage_scope is not None:
            self._stage_scope.cancel()  # the timer, if any

    async def _run_tracked(self, stage: Stage) -> None:
        try:
            await stage._run()
        except Exception as exc:
            if self._first_failure is None:
                self._first_failure = exc
            raise
        finally:
            self._one_done()

    async def _run_drain(self, subs: list[tuple[Stage, dict[str, Any]]]) -> None:
        try:
            async with self.open_output(subs) as events:
                async for _ in events.batches():
                    pass
        finally:
            self._one_done()

    def stop(self) -> None:
        if self._stage_scope is not None:
            self._stage_scope.cancel()

    async def wait(self) -> None:
        await self._done.wait()

    async def close(self, exc: BaseException | None, original: BaseException | None) -> bool:
        """Stop everything and exit the task group; raise the flow's failure.

        ``exc`` is the exception leaving the block (``original`` the one the
        ``async with`` received). Returns True to suppress ``original``.
        """
        self._closed = True
        if self._stage_scope is not None:
            self._stage_scope.cancel()
        outer = self._outer
        assert outer is not None
        outer.cancel_scope.cancel()
        try:
            if exc is None:
                suppressed = await outer.__aexit__(None, None, None)
            else:
                suppressed = await outer.__aexit__(type(exc), exc, exc.__traceback__)
        except BaseExceptionGroup as group:
            self._failed = True
            raise collapse_flow_exception(group, self._first_failure) from None
        if exc is None or suppressed:
            return original is not None
        if exc is original:
            return False
        raise exc


# -- public handles ----------------------------------------------------------------------------


class FlowStream(Generic[T]):
    """``async with`` it to run the flow and iterate over its output (see
    :func:`open_stream`)."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._runtime: _Runtime | None = None
        self._events: EventStream[Any] | None = None

    async def __aenter__(self) -> AsyncIterator[T]:
        if self._runtime is not None:
            raise RuntimeError("a flow stream can only be entered once")
        runtime = self._runtime = _Runtime(self._plan)
        subs = runtime.output_subscriptions()
        await runtime.open()
        try:
            self._events = runtime.open_output(subs)
            it = await self._events.__aenter__()
        except BaseException as exc:
            await runtime.close(exc, exc)
            raise
        return cast("AsyncIterator[T]", it)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        runtime = self._runtime
        events = self._events
        assert runtime is not None
        assert events is not None
        leaving = exc
        try:
            if await events.__aexit__(exc_type, exc, tb):
                leaving = None
        except BaseException as new:
            leaving = new
        return await runtime.close(leaving, exc)


class RunningFlow:
    """A flow running in the background (``Flow.start()``, ``Flow.into_stages()``)::

        async with flow.start() as running:
            running.trigger("flush")
            await running.wait()

    Leaving the block stops the flow if it is still running. A failure of any
    stage cancels the block and is raised from the ``async with``.
    """

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._runtime: _Runtime | None = None

    async def __aenter__(self) -> RunningFlow:
        if self._runtime is not None:
            raise RuntimeError("a running flow can only be entered once")
        runtime = self._runtime = _Runtime(self._plan, drain=self._plan.sink != "into_stages")
        await runtime.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._runtime is not None
        return await self._runtime.close(exc, exc)

    def _rt(self) -> _Runtime:
        if self._runtime is None:
            raise RuntimeError("use 'async with flow.start() as running' first")
        return self._runtime

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages the flow owns (sources first, then each layer's stages)."""
        graph = self._rt().graph
        return (*graph.sources, *(s for layer in graph.layers for s in layer))

    @property
    def output_stages(self) -> tuple[Stage, ...]:
        """The stages whose events are the flow's output."""
        return tuple(self._rt().graph.outputs)

    @property
    def done(self) -> bool:
        """True once every stage of the flow has finished (or it was stopped)."""
        return self._rt()._done.is_set()

    def trigger(self, name: object) -> None:
        """Fire trigger ``name`` on every open window of every stage of the last
        reducing layer (``on_trigger`` sees ``(window_type, window_id, name)``).

        Raises ``anyio.WouldBlock`` if a stage's mailbox is full.
        """
        for stage in self._rt().graph.trigger_targets():
            stage.send(Trigger(name))

    def stop(self) -> None:
        """Stop every stage of the flow now (no error is raised)."""
        self._rt().stop()

    async def wait(self) -> None:
        """Return once the flow has finished (or was stopped).

        If a stage fails, the ``async with`` block is cancelled and the failure is
        raised from it; called after such a block, ``wait()`` raises the failure
        again. After a block left early it returns at once.
        """
        runtime = self._rt()
        if runtime._closed and not runtime._done.is_set():
            if runtime._first_failure is not None:
                raise runtime._first_failure
            if runtime._failed:
                raise RuntimeError("the flow failed (its error was raised from 'async with')")
            return
        await runtime.wait()
