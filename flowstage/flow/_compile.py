"""Compiling a ``Flow`` into a plan: the builder's records, and the compiler.

A :class:`~flowstage.flow.Flow` holds a :class:`FlowSpec`: what feeds its layer (a
``*Input`` record below), the operations added since, its window and options.
:func:`compile_flow` walks those records and produces a
:class:`~flowstage.plan.Plan` plus the :class:`~flowstage.plan.Bindings` of the live
objects the flow uses (iterables, running stages), which the plan names by
:class:`~flowstage.plan.LocalRef`.

Consecutive per-event operations of a layer are fused into its
:class:`~flowstage.plan.LayerOps`; merges without operations of their own are
compiled away (their inputs feed the next layer directly), and so are partitions
without operations right before another partitioning step (``partition`` with
``stages > 1``, a join), which re-partitions their inputs anyway; a ``partition``
before anything else keeps its layer. A ``partition`` with ``stages == 1`` uses
demand dispatch and ignores ``key``/``hash``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeAlias

from .._hash import KeyHash
from ..plan import (
    AsyncIterableSource,
    Bindings,
    DepartitionSpec,
    DepartitionTag,
    Dispatch,
    Emit,
    GroupBy,
    ItemKey,
    IterableSource,
    JoinHash,
    JoinMode,
    JoinSpec,
    LayerInput,
    LayerKind,
    LayerOps,
    LayerPlan,
    LocalRef,
    MapBatch,
    Mapper,
    MessageSource,
    OnTrigger,
    Operation,
    OutputEnd,
    Plan,
    PushSource,
    Reduce,
    Sink,
    Source,
    StagesSource,
    TakeSortTag,
    ThroughStagesSource,
    Uniq,
    Window,
)
from ..program import track_plan

if TYPE_CHECKING:
    from ._builder import Flow

__all__ = [
    "CompiledFlow",
    "DepartitionInput",
    "FlowSpec",
    "FlowsInput",
    "JoinInput",
    "KeySpec",
    "LayerOptions",
    "MessagesInput",
    "ProducerSpec",
    "SourceInput",
    "ThroughInput",
    "compile_flow",
]

KeySpec: TypeAlias = Callable[[Any], Any] | tuple[str, Any] | None


@dataclass(frozen=True, slots=True)
class LayerOptions:
    """Validated options of the layer a flow's operations run in."""

    stages: int
    max_demand: int
    min_demand: int


@dataclass(frozen=True, slots=True)
class SourceInput:
    """A flow's own sources: iterables, async iterables, running producers or a
    push handle."""

    kind: Literal["iterable", "async iterable", "stage", "push"]
    items: tuple[object, ...]
    origin: str


@dataclass(frozen=True, slots=True)
class MessagesInput:
    """``from_messages``: an acknowledged source."""

    source: object
    max_unacked: int
    catch: bool
    origin: str = "from_messages"


@dataclass(frozen=True, slots=True)
class FlowsInput:
    """``merge``, ``shuffle`` or ``partition`` of other flows."""

    flows: tuple[Flow[Any], ...]
    kind: Literal["demand", "partition"]
    origin: str
    key: KeySpec = None
    hash: Callable[[Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class JoinInput:
    mode: JoinMode
    left: Flow[Any]
    right: Flow[Any]
    left_key: Callable[[Any], Any]
    right_key: Callable[[Any], Any]
    join: Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class DepartitionInput:
    flow: Flow[Any]
    initial: Callable[[], Any]
    merge: Callable[[Any, Any], Any]
    done: Callable[..., Any]
    done_arity: int
    tag: DepartitionTag | TakeSortTag
    origin: str


@dataclass(frozen=True, slots=True)
class ThroughInput:
    flow: Flow[Any]
    stages: tuple[object, ...]


ProducerSpec: TypeAlias = (
    SourceInput | MessagesInput | FlowsInput | JoinInput | DepartitionInput | ThroughInput
)


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """Everything a :class:`~flowstage.flow.Flow` says, as records: what feeds its
    layer, the operations added since, its window and its options."""

    producers: ProducerSpec
    ops: tuple[Operation, ...]
    window: Window
    options: LayerOptions
    #: The sink the flow's output is written to (``write_to``), if any.
    writer: object | None = None

    def layer_ops(self) -> LayerOps:
        """The operations fused into the layer's phases."""
        ops = self.ops
        batch = tuple(o for o in ops if isinstance(o, MapBatch))
        mappers = tuple(o for o in ops if isinstance(o, Mapper | Uniq))
        reducer = next((o for o in ops if isinstance(o, Reduce | GroupBy)), None)
        trig = next((o for o in ops if isinstance(o, OnTrigger | Emit)), None)
        return LayerOps(batch, mappers, reducer, trig)


class CompiledFlow(NamedTuple):
    """A plan and the live objects it refers to."""

    plan: Plan
    bindings: Bindings


# -- hashing -------------------------------------------------------------------------


def _key_function(key: KeySpec) -> Callable[[Any], Any] | None:
    """Turn ``key=`` (callable, ``("elem", i)`` or ``("key", k)``) into a function."""
    if key is None or callable(key):
        return key
    return ItemKey(key[1])


def _partition_hash(
    key: KeySpec, user_hash: Callable[[Any], Any] | None, n: int
) -> Callable[[Any], tuple[Any, int] | None]:
    """The partition function of a ``partition`` layer with ``n`` stages."""
    if user_hash is not None:
        return user_hash
    # A KeyHash is callable per event like any hash, and partition dispatchers
    # recognise it and hash whole batches at once.
    return KeyHash(n, _key_function(key))


# -- compilation -----------------------------------------------------------------------


class _Compiler:
    def __init__(self) -> None:
        self.layers: list[LayerPlan] = []
        self.bindings = Bindings()
        #: ``catch`` of every acknowledged source met (``on_error="nack"``).
        self.catches: list[bool] = []

    def refs(self, items: tuple[object, ...], what: str) -> tuple[LocalRef, ...]:
        return tuple(self.bindings.add(item, what) for item in items)

    def source(self, p: SourceInput | MessagesInput) -> Source:
        if isinstance(p, MessagesInput):
            self.catches.append(p.catch)
            return MessageSource(self.bindings.add(p.source, "acknowledged source"), p.max_unacked)
        if p.kind == "push":
            (handle,) = p.items
            return PushSource(self.bindings.add(handle, "push handle"))
        refs = self.refs(p.items, p.kind)
        if p.kind == "iterable":
            return IterableSource(refs)
        if p.kind == "async iterable":
            return AsyncIterableSource(refs)
        return StagesSource(refs)

    def ends(self, flow: Flow[Any], want_partition: bool, last: bool = False) -> list[Source | int]:
        """Compile ``flow`` and return its ends: what a downstream consumer
        subscribes to. ``want_partition``: the downstream partitions events itself
        (a partition dispatcher, which running stages cannot be given after the
        fact). A ``partition`` without operations is compiled away only then: its
        inputs are re-partitioned downstream anyway. Before anything else (the
        output, ``through_stages``, ``into_stages``, ``shuffle``, ``merge``) it
        keeps its layer, whose stages each send on one partition's events.
        ``last``: ``flow`` is the whole flow (the only place ``write_to`` may be)."""
        spec = flow.spec
        p = spec.producers
        if spec.writer is not None and not last:
            raise ValueError(
                "write_to must be the last step of a flow: this flow is an input of another "
                "(write the combined flow instead)"
            )
        ops = spec.layer_ops()
        computes = ops.has_computation or isinstance(p, JoinInput | DepartitionInput)
        if not want_partition and isinstance(p, FlowsInput) and p.kind == "partition":
            computes = True
        if not computes:
            if spec.window != Window():
                raise ValueError(
                    "a window was set but no computation is happening on this partition "
                    "(add an operation such as reduce after the window, or drop window=)"
                )
            if isinstance(p, MessagesInput) or (isinstance(p, SourceInput) and p.kind != "stage"):
                return [self.source(p)]
            if isinstance(p, FlowsInput):
                return [e for f in p.flows for e in self.ends(f, want_partition)]
            if isinstance(p, SourceInput | ThroughInput) and not want_partition:
                return [self.stage_source(p)]
        return [self.layer(flow, ops)]

    def stage_source(self, p: SourceInput | ThroughInput) -> Source:
        if isinstance(p, SourceInput):
            return self.source(p)
        inputs = tuple(LayerInput(e) for e in self.ends(p.flow, False))
        return ThroughStagesSource(self.refs(p.stages, "stage"), inputs)

    def layer(self, flow: Flow[Any], ops: LayerOps) -> int:
        spec = flow.spec
        p = spec.producers
        opts = spec.options
        stages = opts.stages
        kind: LayerKind = "map_reduce"
        dep: DepartitionSpec | None = None
        join: JoinSpec | None = None
        inputs: list[LayerInput]
        if isinstance(p, SourceInput | MessagesInput):
            origin = p.origin
            inputs = [LayerInput(self.source(p))]
        elif isinstance(p, ThroughInput):
            origin = "through_stages"
            inputs = [LayerInput(self.stage_source(p))]
        elif isinstance(p, FlowsInput):
            origin = p.origin
            partitioned = p.kind == "partition" and stages > 1
            d = (
                Dispatch("partition", stages, _partition_hash(p.key, p.hash, stages))
                if partitioned
                else Dispatch()
            )
            inputs = [LayerInput(e, d) for f in p.flows for e in self.ends(f, partitioned)]
        elif isinstance(p, JoinInput):
            origin = f"{p.mode} join"
            kind = "join"
            join = JoinSpec(p.mode, p.join)
            dl = Dispatch("partition", stages, JoinHash(0, p.left_key, stages))
            dr = Dispatch("partition", stages, JoinHash(1, p.right_key, stages))
            inputs = [LayerInput(e, dl) for e in self.ends(p.left, True)]
            inputs += [LayerInput(e, dr) for e in self.ends(p.right, True)]
        else:
            origin = p.origin
            kind = "departition"
            (up,) = self.ends(p.flow, False)
            assert isinstance(up, int), "departition requires a reduce upstream"
            self.layers[up] = replace(self.layers[up], output_tag=p.tag)
            dep = DepartitionSpec(p.initial, p.merge, p.done, p.done_arity, self.layers[up].stages)
            inputs = [LayerInput(up)]
        index = len(self.layers)
        self.layers.append(
            LayerPlan(
                index=index,
                inputs=tuple(inputs),
                stages=stages,
                max_demand=opts.max_demand,
                min_demand=opts.min_demand,
                window=spec.window,
                ops=ops,
                kind=kind,
                departition=dep,
                join=join,
                origin=origin,
            )
        )
        return index


def compile_flow(
    flow: Flow[Any],
    *,
    sink: Sink = "stream",
    consumers: tuple[object, ...] = (),
) -> CompiledFlow:
    """Compile ``flow`` into a plan and the bindings of its live objects.

    A flow over acknowledged messages (``from_messages``) has every operation
    rewritten to keep lineage (:func:`flowstage.program.track_plan`) and its output
    settled in the calling process (``Plan.end``).

    Raises:
        ValueError: a non-default window on a layer without computation; an
            operation a flow over acknowledged messages cannot follow; ``write_to``
            on a flow that is not the last.
    """
    c = _Compiler()
    ends = c.ends(flow, False, last=True)
    writer = flow.spec.writer
    tracked = bool(c.catches)
    end = None
    if writer is not None or tracked:
        end = OutputEnd(
            None if writer is None else c.bindings.add(writer, "sink"), acknowledge=tracked
        )
    elif sink == "run":
        for e in ends:
            if isinstance(e, int):
                c.layers[e] = replace(c.layers[e], discard_output=True)
    plan = Plan(
        layers=tuple(c.layers),
        output=tuple(LayerInput(e) for e in ends),
        sink=sink,
        consumers=c.refs(consumers, "stage"),
        end=end,
    )
    if tracked:
        plan = track_plan(plan, catch=all(c.catches))
    return CompiledFlow(plan, c.bindings)
