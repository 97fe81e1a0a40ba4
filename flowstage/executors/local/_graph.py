"""Wiring a plan: its stages created and subscribed, not started.

Topology (as Elixir's Flow builds it). One producer per source iterable, created in
``"accumulate"`` demand mode; ``stages`` :class:`~._map_reducer.MapReducer` stages
per layer, each subscribed (``cancel="transient"``, the layer's
``max_demand``/``min_demand``) to every producer of every input of its layer. A
producer feeding a ``"partition"`` input gets a partition dispatcher and stage
``i`` subscribes with ``partition=i``; every other producer uses a demand
dispatcher.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, cast

import anyio

from ..._acked import Acker
from ..._stage import Stage
from ...plan import (
    AsyncIterableSource,
    Bindings,
    Dispatch,
    IterableSource,
    LayerInput,
    LayerPlan,
    LocalRef,
    MessageSource,
    Plan,
    PushSource,
    StagesSource,
)
from ...program import Tracked, make_program
from ._dispatch import make_dispatcher
from ._map_reducer import MapReducer, Scheduler, Trigger
from ._output import OutputStage, lineage_id
from ._sources import (
    FlowAsyncIterableProducer,
    FlowIterableProducer,
    FlowMessageProducer,
    FlowPushProducer,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Callable, Iterable

    from ..._push import PushHandle
    from ..._stats import StageStatistics
    from ..._subscription import Subscription
    from ...dispatchers import Dispatcher
    from ...messages import AckSource, Message, Sink

__all__ = ["Graph"]


class Graph:
    """The stages of a plan, created and wired (subscriptions queued), not started."""

    def __init__(self, plan: Plan, bindings: Bindings, scheduler: Scheduler) -> None:
        self.plan = plan
        self.bindings = bindings
        self.scheduler = scheduler
        self.sources: list[Stage] = []  # flow-owned source producers
        self.tracked: list[Stage] = []  # flow-owned stages: sources and map-reducers
        self.owned: set[Stage] = set()
        self.foreign: list[Stage] = []  # user stages the flow uses
        self.layers: list[list[MapReducer]] = []
        self.expected = 0  # subscriptions to flow-owned producers still to be made
        self.consumer_of: dict[int, tuple[Dispatch, LayerPlan | None]] = {}
        #: One per acknowledged source of the plan, in order.
        self.ackers: list[Acker] = []
        #: The push sources of the plan (``Flow.from_push``).
        self.push_sources: list[FlowPushProducer] = []
        self.writer: Sink | None = None
        #: The :class:`OutputStage` in front of the consumer, when the plan has an end.
        self.end_stage: Stage | None = None
        for layer in plan.layers:
            for inp in layer.inputs:
                self._scan(inp, layer)
        for inp in plan.output:
            self._scan(inp, None)
        for layer in plan.layers:
            self._build_layer(layer)
        self.outputs: list[Stage] = []
        for inp in plan.output:
            self.outputs += self.producers_of(inp, None)
        if plan.end is not None:
            self._build_end()

    def _build_end(self) -> None:
        """Put an :class:`OutputStage` between the outputs and the consumer."""
        end = self.plan.end
        assert end is not None
        if end.writer is not None:
            self.writer = cast("Sink", self.bindings.resolve(end.writer))
        stage = OutputStage(
            writer=self.writer,
            ackers=self.ackers if end.acknowledge else None,
            discard=self.plan.sink == "run",
            counter=self.scheduler,
            name="flow-output",
        )
        for producer in self.outputs:
            self.subscribe(stage, producer, cancel="transient")
            stage.expect_upstream()
        self.tracked.append(stage)
        self.owned.add(stage)
        self.outputs = [stage]
        self.end_stage = stage

    def _scan(self, inp: LayerInput, consumer: LayerPlan | None) -> None:
        src = inp.source
        if isinstance(src, int):
            self.consumer_of[src] = (inp.dispatch, consumer)
        elif not isinstance(
            src, IterableSource | AsyncIterableSource | StagesSource | MessageSource | PushSource
        ):
            for inner in src.inputs:
                self._scan(inner, None)

    def foreign_stage(self, ref: LocalRef, what: str, kind: tuple[str, ...]) -> Stage:
        """The user's stage behind ``ref``, checked to be of one of ``kind``."""
        stage = self.bindings.resolve(ref)
        if not isinstance(stage, Stage) or stage.kind not in kind:
            raise TypeError(f"{what} expects {' or '.join(kind)} stages, got: {stage!r}")
        if stage not in self.foreign:
            self.foreign.append(stage)
        return stage

    def producers_of(self, inp: LayerInput, consumer: LayerPlan | None) -> list[Stage]:
        src = inp.source
        if isinstance(src, int):
            return list(self.layers[src])
        if isinstance(src, IterableSource | AsyncIterableSource):
            out: list[Stage] = []
            for ref in src.iterables:
                k = len(self.sources)
                disp = self.source_dispatcher(inp, consumer)
                it = self.bindings.resolve(ref)
                p: Stage
                if isinstance(src, IterableSource):
                    p = self.iterable_producer(
                        cast("Iterable[Any]", it), disp, f"flow-source{k}", consumer
                    )
                else:
                    p = FlowAsyncIterableProducer(
                        cast("AsyncIterable[Any]", it), self.scheduler, disp, f"flow-source{k}"
                    )
                self.sources.append(p)
                self.tracked.append(p)
                self.owned.add(p)
                out.append(p)
            return out
        if isinstance(src, StagesSource):
            return [
                self.foreign_stage(ref, "Flow.from_stages", ("producer", "producer_consumer"))
                for ref in src.producers
            ]
        if isinstance(src, PushSource):
            k = len(self.sources)
            handle = cast("PushHandle[Any]", self.bindings.resolve(src.handle))
            disp = self.source_dispatcher(inp, consumer)
            push = FlowPushProducer(
                handle, self._failure, self.scheduler, disp, handle.name or f"flow-source{k}"
            )
            self.push_sources.append(push)
            self.sources.append(push)
            self.tracked.append(push)
            self.owned.add(push)
            return [push]
        if isinstance(src, MessageSource):
            k = len(self.sources)
            index = len(self.ackers)
            acker = Acker(
                cast("AckSource[Any]", self.bindings.resolve(src.source)), src.max_unacked
            )
            self.ackers.append(acker)
            disp = self.source_dispatcher(inp, consumer)
            m = FlowMessageProducer(acker, _wrapper(index), self.scheduler, disp, f"flow-source{k}")
            self.sources.append(m)
            self.tracked.append(m)
            self.owned.add(m)
            return [m]
        through = [
            self.foreign_stage(ref, "Flow.through_stages", ("producer_consumer",))
            for ref in src.stages
        ]
        for inner in src.inputs:
            for p in self.producers_of(inner, None):
                for s in through:
                    self.subscribe(s, p, cancel="transient")
        return through

    def source_dispatcher(self, inp: LayerInput, consumer: LayerPlan | None) -> Dispatcher[Any]:
        """The dispatcher of a source feeding ``consumer`` through ``inp``."""
        d = inp.dispatch
        return make_dispatcher(d.kind, d.partitions, d.hash, consumer)

    def iterable_producer(
        self,
        iterable: Iterable[Any],
        dispatcher: Dispatcher[Any],
        name: str,
        consumer: LayerPlan | None,
    ) -> Stage:
        """The source stage over a synchronous iterable feeding ``consumer`` (a layer,
        or ``None`` for a parent-side stage such as ``through_stages``)."""
        return FlowIterableProducer(iterable, self.scheduler, dispatcher, name)

    def _failure(self) -> BaseException | None:
        """The flow's failure, once known (for push sources' ``PushClosed``)."""
        failure: BaseException | None = getattr(self.scheduler, "failure", None)
        return failure

    def subscribe(self, consumer: Stage, producer: Stage, **opts: Any) -> Subscription[Any]:
        sub: Subscription[Any] = consumer.subscribe(producer, **opts)
        if producer in self.owned:
            self.expected += 1
        return sub

    def _build_layer(self, layer: LayerPlan) -> None:
        dispatch, consumer = self.consumer_of.get(layer.index, (Dispatch(), None))
        stages: list[MapReducer] = []
        for i in range(layer.stages):
            program = make_program(layer, i, layer.stages)
            disp = make_dispatcher(dispatch.kind, dispatch.partitions, dispatch.hash, consumer)
            stage = MapReducer(program, layer, i, self.scheduler, disp)
            stages.append(stage)
            self.tracked.append(stage)
            self.owned.add(stage)
        for inp in layer.inputs:
            producers = self.producers_of(inp, layer)
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

    # -- what the runtime calls; executors that host layers elsewhere override them --------

    async def prepare(self) -> None:
        """Called once before any stage starts: opens the acknowledged sources."""
        for acker in self.ackers:
            await acker.source.open()
            acker.opened = True

    async def serve(self) -> None:
        """Background work of the graph, run beside its stages (in each slice under
        ``async for``); cancelled when the flow ends: sending acknowledgements."""
        if not self.ackers:
            return
        async with anyio.create_task_group() as tg:
            for acker in self.ackers:
                tg.start_soon(acker.run, name="flowstage:acknowledgements")

    async def aclose(self) -> None:
        """Called once when the flow has ended, whatever ended it: sends the last
        acknowledgements, closes the acknowledged sources and the sink, and makes
        push sources refuse pushes."""
        for push in self.push_sources:
            push.close_handle()
        try:
            for acker in self.ackers:
                await acker.close()
        finally:
            if self.writer is not None:
                await self.writer.aclose()

    def layer_statistics(self, index: int) -> tuple[StageStatistics, ...]:
        """The counters of the stages of layer ``index`` (hosted graphs report
        what their hosts last sent)."""
        return tuple(stage.statistics() for stage in self.layers[index])

    def abort(self) -> None:
        """Called instead of :meth:`aclose` when the flow is dropped without being
        closed (an ``async for`` left without ``aclose()``): release at once, without
        waiting, what must not outlive it (push sources refuse pushes)."""
        for push in self.push_sources:
            push.close_handle()

    def trigger(self, name: object) -> None:
        """Fire trigger ``name`` on every stage of the last reducing layers.

        Raises ``anyio.WouldBlock`` if a stage's mailbox is full.
        """
        for stage in self.trigger_targets():
            stage.send(Trigger(name))

    def trigger_layers(self) -> list[int]:
        """The last reducing layers (searching back from the output), or the output
        layers when no layer reduces."""
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
        return sorted(set(found or start))

    def trigger_targets(self) -> list[MapReducer]:
        """The stages of :meth:`trigger_layers`."""
        return [s for index in self.trigger_layers() for s in self.layers[index]]


def _wrapper(index: int) -> Callable[[Message[Any]], Tracked]:
    """How the ``index``-th acknowledged source's messages enter the flow."""

    def wrap(message: Message[Any]) -> Tracked:
        return Tracked(message, lineage_id(index, message.id))

    return wrap
