"""The compiled form of a flow: plain, immutable data that any executor can run.

``compile_flow(flow)`` turns a :class:`~flowstage.flow.Flow` description into a
:class:`Plan`. A plan holds callables and iterables, but no tasks, channels or
clocks, so an in-process executor, worker processes or a cluster can all run the
same plan.

Shape of a plan::

    Plan
      layers: (LayerPlan, ...)      topologically ordered: a layer's inputs only
                                    name sources or layers with a smaller index
      output: (LayerInput, ...)     what the final consumer subscribes to
      sink:   "stream" | "run" | "into_stages"
      consumers: (...)              the running consumers for "into_stages"

    LayerPlan                       one layer = ``stages`` identical stages
      inputs: (LayerInput, ...)     every stage of the layer subscribes to every
                                    producer of every input
      stages, max_demand, min_demand, window, ops, kind, ...

    LayerInput(source, dispatch)    ``source`` is a source spec (run its producers)
                                    or an ``int`` (the stages of that layer);
                                    ``dispatch`` is the dispatcher those producers
                                    use to feed this consumer.

Executor contract:

* Each stage of layer ``L`` runs ``make_program(L, index, L.stages)`` (see
  ``_program.py``). Partitioned inputs (``dispatch.kind == "partition"``) route
  event ``e`` with ``dispatch.hash(e)``, which returns ``(event, partition)`` (the
  event may be rewritten) or ``None`` (drop it); stage ``i`` subscribes to
  partition ``i``. ``"demand"`` inputs use a demand dispatcher.
* A source spec used as an input stands for its producers: one producer per
  iterable of :class:`IterableSource` / :class:`AsyncIterableSource`, the given
  running producers of :class:`StagesSource`, and for :class:`ThroughStagesSource`
  the given producer-consumers, each first subscribed (demand dispatch, transient)
  to every producer of its ``inputs``.
* ``Plan.output`` is consumed with demand dispatch by the stream (``"stream"``),
  drained and discarded (``"run"``; final layers then have ``discard_output``
  set and emit nothing), or by ``Plan.consumers`` (``"into_stages"``).
* A flow object used twice in one plan (for example both sides of a join) is
  compiled, and its sources iterated, twice.
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeAlias

from ._window import Window

if TYPE_CHECKING:
    from ._builder import Flow

__all__ = [
    "AsyncIterableSource",
    "DepartitionSpec",
    "DepartitionTag",
    "Dispatch",
    "Emit",
    "IterableSource",
    "JoinSpec",
    "LayerInput",
    "LayerOps",
    "LayerPlan",
    "MapBatch",
    "Mapper",
    "OnTrigger",
    "Operation",
    "PartitionOutput",
    "Plan",
    "Reduce",
    "Source",
    "StagesSource",
    "TakeSortTag",
    "ThroughStagesSource",
    "TriggerInfo",
    "Uniq",
    "compile_flow",
]

#: ``(window_type, window_id, trigger_name)`` as passed to ``on_trigger``.
TriggerInfo: TypeAlias = tuple[str, Any, Any]

JoinMode = Literal["inner", "left_outer", "right_outer", "full_outer"]
JOIN_MODES: tuple[str, ...] = ("inner", "left_outer", "right_outer", "full_outer")


# -- operations ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mapper:
    """A per-event operation; ``kind`` is ``map``, ``flat_map``, ``filter``,
    ``reject`` or ``map_values``."""

    kind: Literal["map", "flat_map", "filter", "reject", "map_values"]
    fn: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class MapBatch:
    """``fn(list_of_events) -> list``, applied to each raw batch first."""

    fn: Callable[[list[Any]], Any]


@dataclass(frozen=True, slots=True)
class Uniq:
    """Drop events whose ``key(event)`` (the event itself if ``key`` is None) was
    already seen in this window of this stage."""

    key: Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class Reduce:
    """``reduce`` (``emits=False``: ``fn(acc, e) -> acc``) or ``emit_and_reduce``
    (``emits=True``: ``fn(acc, e) -> (events, acc)``); ``initial()`` per window."""

    initial: Callable[[], Any]
    fn: Callable[[Any, Any], Any]
    emits: bool = False


@dataclass(frozen=True, slots=True)
class OnTrigger:
    """``fn(acc[, partition[, trigger]]) -> (events, acc)``; ``arity`` in 1..3."""

    fn: Callable[..., Any]
    arity: int


@dataclass(frozen=True, slots=True)
class Emit:
    """``emit("state")`` (``[acc]``, keep acc) or ``emit("nothing")``."""

    mode: Literal["state", "nothing"]


Operation: TypeAlias = Mapper | MapBatch | Uniq | Reduce | OnTrigger | Emit


@dataclass(frozen=True, slots=True)
class LayerOps:
    """The fused operations of one layer, in execution order.

    ``map_batch`` functions run on each raw batch; the window sees their output;
    then ``mappers`` (which include stateful ``Uniq`` filters) run per event, then
    ``reducer``; ``on_trigger`` (an :class:`OnTrigger` or :class:`Emit`) runs at
    triggers. Without a reducer the layer emits mapped events immediately and its
    triggers emit nothing.
    """

    map_batch: tuple[MapBatch, ...] = ()
    mappers: tuple[Mapper | Uniq, ...] = ()
    reducer: Reduce | None = None
    on_trigger: OnTrigger | Emit | None = None

    @property
    def has_computation(self) -> bool:
        return bool(self.map_batch or self.mappers or self.reducer or self.on_trigger)


# -- sources, dispatch, layers -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class IterableSource:
    """One producer per iterable, each emitting the iterable's items in order."""

    iterables: tuple[Iterable[Any], ...]


@dataclass(frozen=True, slots=True)
class AsyncIterableSource:
    """One producer per async iterable."""

    iterables: tuple[AsyncIterable[Any], ...]


@dataclass(frozen=True, slots=True)
class StagesSource:
    """Already running producers from the stage engine (opaque here). They end the
    flow's input by finishing normally."""

    producers: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Dispatch:
    """How producers feed a consumer layer.

    ``kind == "demand"``: a demand dispatcher (``partitions``/``hash`` unused).
    ``kind == "partition"``: ``partitions`` partitions, ``hash(event)`` returns
    ``(event, partition)`` or ``None`` to drop the event.
    """

    kind: Literal["demand", "partition"] = "demand"
    partitions: int = 0
    hash: Callable[[Any], tuple[Any, int] | None] | None = None


@dataclass(frozen=True, slots=True)
class LayerInput:
    """An input of a layer (or of the output): a source spec or a layer index,
    and the dispatcher its producers use towards this consumer."""

    source: Source | int
    dispatch: Dispatch = Dispatch()


@dataclass(frozen=True, slots=True)
class ThroughStagesSource:
    """Running producer-consumers inserted after ``inputs`` (``through_stages``):
    subscribe each of ``stages`` to every producer of ``inputs``, then consume from
    ``stages``."""

    stages: tuple[object, ...]
    inputs: tuple[LayerInput, ...]


Source: TypeAlias = IterableSource | AsyncIterableSource | StagesSource | ThroughStagesSource


class PartitionOutput(NamedTuple):
    """What a layer feeding a ``departition`` (or ``take_sort``) layer emits: one
    item per trigger of each of its stages.

    ``values`` are the events its ``on_trigger`` emitted, or ``[acc]`` (the
    state itself) when the layer has no ``on_trigger``/``emit``; for ``take_sort``
    it is ``[sorted(emitted)[:n]]``. Items are emitted even when ``values`` is
    empty, so the departition stage always learns that a window is done.
    """

    partition: int
    trigger: TriggerInfo
    values: list[Any]


@dataclass(frozen=True, slots=True)
class DepartitionTag:
    """Tag this layer's trigger output as :class:`PartitionOutput` (values: the
    on_trigger events, or ``[acc]``)."""


@dataclass(frozen=True, slots=True)
class TakeSortTag:
    """Tag this layer's trigger output as :class:`PartitionOutput` whose values
    are ``[sorted(emitted, key=key, reverse=reverse)[:n]]``."""

    n: int
    key: Callable[[Any], Any] | None
    reverse: bool


OutputTag: TypeAlias = DepartitionTag | TakeSortTag | None


@dataclass(frozen=True, slots=True)
class DepartitionSpec:
    """A departition layer (always 1 stage): per window id, ``merge(acc, value)``
    for every value of every :class:`PartitionOutput`; when all ``partitions``
    upstream partitions sent ``"done"`` for it, ``done(acc)`` (or
    ``done(acc, window_id)`` when ``done_arity == 2``) becomes an event of this
    layer."""

    initial: Callable[[], Any]
    merge: Callable[[Any, Any], Any]
    done: Callable[..., Any]
    done_arity: int
    partitions: int


@dataclass(frozen=True, slots=True)
class JoinSpec:
    """A join layer. Its inputs' hashes rewrite events to ``(side, key, event)``
    with side 0 for left and 1 for right."""

    mode: JoinMode
    join: Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class LayerPlan:
    """One layer of identical stages; see the module docstring."""

    index: int
    inputs: tuple[LayerInput, ...]
    stages: int
    max_demand: int
    min_demand: int
    window: Window
    ops: LayerOps
    kind: Literal["map_reduce", "departition", "join"] = "map_reduce"
    departition: DepartitionSpec | None = None
    join: JoinSpec | None = None
    output_tag: OutputTag = None
    discard_output: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled flow; see the module docstring."""

    layers: tuple[LayerPlan, ...]
    output: tuple[LayerInput, ...]
    sink: Literal["stream", "run", "into_stages"] = "stream"
    consumers: tuple[object, ...] = field(default=())


# -- the builder's producer descriptions (internal to the builder/compiler) ----------


KeySpec: TypeAlias = Callable[[Any], Any] | tuple[str, Any] | None


@dataclass(frozen=True, slots=True)
class FlowsInput:
    flows: tuple[Flow[Any], ...]
    kind: Literal["demand", "partition"]
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


@dataclass(frozen=True, slots=True)
class ThroughInput:
    flow: Flow[Any]
    stages: tuple[object, ...]


ProducerSpec: TypeAlias = (
    IterableSource
    | AsyncIterableSource
    | StagesSource
    | FlowsInput
    | JoinInput
    | DepartitionInput
    | ThroughInput
)


# -- hashing -------------------------------------------------------------------------


def key_function(key: KeySpec) -> Callable[[Any], Any] | None:
    """Turn ``key=`` (callable, ``("elem", i)`` or ``("key", k)``) into a function."""
    if key is None or callable(key):
        return key
    return operator.itemgetter(key[1])


def make_hash(
    key: KeySpec, user_hash: Callable[[Any], Any] | None, n: int
) -> Callable[[Any], tuple[Any, int] | None]:
    """The partition function of a ``partition`` layer with ``n`` stages."""
    if user_hash is not None:
        return user_hash
    from .._hash import KeyHash

    # A KeyHash is callable per event like any hash, and partition dispatchers
    # recognise it and hash whole batches at once.
    return KeyHash(n, key_function(key))


def make_join_hash(
    side: int, key: Callable[[Any], Any], n: int
) -> Callable[[Any], tuple[Any, int] | None]:
    """Partition a join side by ``key`` and rewrite events to ``(side, key, event)``."""
    from .._hash import partition_of

    def h(e: Any) -> tuple[Any, int]:
        k = key(e)
        return (side, k, e), partition_of(k, n)

    return h


# -- compilation -----------------------------------------------------------------------


class _Compiler:
    def __init__(self) -> None:
        self.layers: list[LayerPlan] = []

    def ends(self, flow: Flow[Any], want_partition: bool, last: bool = False) -> list[Source | int]:
        """Compile ``flow`` and return its ends: what a downstream consumer
        subscribes to. ``want_partition``: the downstream uses a partition
        dispatcher, which running stages cannot be given after the fact. ``last``:
        ``flow`` is the whole flow, so a trailing ``partition`` keeps its layer (its
        stages are what ``into_stages`` consumers see, one per partition)."""
        p = flow._producers
        ops = flow._layer_ops()
        computes = ops.has_computation or isinstance(p, JoinInput | DepartitionInput)
        if last and isinstance(p, FlowsInput) and p.kind == "partition":
            computes = True
        if not computes:
            if flow._window != Window():
                raise ValueError(
                    "a window was set but no computation is happening on this partition "
                    "(add an operation such as reduce after the window, or drop window=)"
                )
            if isinstance(p, IterableSource | AsyncIterableSource):
                return [p]
            if isinstance(p, FlowsInput):
                return [e for f in p.flows for e in self.ends(f, want_partition)]
            if isinstance(p, StagesSource | ThroughInput) and not want_partition:
                return [self.source(p)]
        return [self.layer(flow, ops)]

    def source(self, p: StagesSource | ThroughInput) -> Source:
        if isinstance(p, StagesSource):
            return p
        inputs = tuple(LayerInput(e) for e in self.ends(p.flow, False))
        return ThroughStagesSource(p.stages, inputs)

    def layer(self, flow: Flow[Any], ops: LayerOps) -> int:
        p = flow._producers
        opts = flow._options
        stages = opts.stages
        kind: Literal["map_reduce", "departition", "join"] = "map_reduce"
        dep: DepartitionSpec | None = None
        join: JoinSpec | None = None
        inputs: list[LayerInput]
        if isinstance(p, IterableSource | AsyncIterableSource | StagesSource):
            inputs = [LayerInput(p)]
        elif isinstance(p, ThroughInput):
            inputs = [LayerInput(self.source(p))]
        elif isinstance(p, FlowsInput):
            partitioned = p.kind == "partition" and stages > 1
            d = (
                Dispatch("partition", stages, make_hash(p.key, p.hash, stages))
                if partitioned
                else Dispatch()
            )
            inputs = [LayerInput(e, d) for f in p.flows for e in self.ends(f, partitioned)]
        elif isinstance(p, JoinInput):
            kind = "join"
            join = JoinSpec(p.mode, p.join)
            dl = Dispatch("partition", stages, make_join_hash(0, p.left_key, stages))
            dr = Dispatch("partition", stages, make_join_hash(1, p.right_key, stages))
            inputs = [LayerInput(e, dl) for e in self.ends(p.left, True)]
            inputs += [LayerInput(e, dr) for e in self.ends(p.right, True)]
        else:
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
                window=flow._window,
                ops=ops,
                kind=kind,
                departition=dep,
                join=join,
            )
        )
        return index


def compile_flow(
    flow: Flow[Any],
    *,
    sink: Literal["stream", "run", "into_stages"] = "stream",
    consumers: tuple[object, ...] = (),
) -> Plan:
    """Compile ``flow`` into a :class:`Plan`.

    Consecutive per-event operations of a layer are fused into its
    :class:`LayerOps`; merges and partitions without operations of their own are
    compiled away (their inputs feed the next layer directly); a ``partition``
    with ``stages == 1`` uses demand dispatch and ignores ``key``/``hash``.

    Raises:
        ValueError: a non-default window on a layer without computation.
    """
    c = _Compiler()
    ends = c.ends(flow, False, last=True)
    if sink == "run":
        for e in ends:
            if isinstance(e, int):
                c.layers[e] = replace(c.layers[e], discard_output=True)
    return Plan(
        layers=tuple(c.layers),
        output=tuple(LayerInput(e) for e in ends),
        sink=sink,
        consumers=consumers,
    )
