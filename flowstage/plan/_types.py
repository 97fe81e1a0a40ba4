"""The compiled form of a flow: plain, immutable, versioned data.

Shape of a plan::

    Plan
      layers: (LayerPlan, ...)      topologically ordered: a layer's inputs only
                                    name sources or layers with a smaller index
      output: (LayerInput, ...)     what the final consumer subscribes to
      sink:   "stream" | "run" | "into_stages" | "publish"
      consumers: (LocalRef, ...)    the running consumers for "into_stages"
      end: OutputEnd | None         what the output passes through first (a sink,
                                    acknowledgements), in the calling process
      version: PLAN_VERSION

    LayerPlan                       one layer = ``stages`` identical stages
      inputs: (LayerInput, ...)     every stage of the layer subscribes to every
                                    producer of every input
      stages, max_demand, min_demand, window, ops, kind, ...

    LayerInput(source, dispatch)    ``source`` is a source spec (run its producers)
                                    or an ``int`` (the stages of that layer);
                                    ``dispatch`` is the dispatcher those producers
                                    use to feed this consumer.

A plan holds only user callables, frozen records, numbers and strings. Live objects
(iterables, running stages) are :class:`~flowstage.plan.LocalRef` entries resolved
through :class:`~flowstage.plan.Bindings`, which are never shipped. So a plan whose
callbacks are module-level functions pickles, and ``pickle.loads(pickle.dumps(plan))
== plan``; :func:`~flowstage.plan.check_portable` lists what stops one that does not.

The executor contract:

* Each stage of layer ``L`` runs ``make_program(L, index, L.stages)`` (see
  :mod:`flowstage.program`). Partitioned inputs (``dispatch.kind == "partition"``)
  route event ``e`` with ``dispatch.hash(e)``, which returns ``(event, partition)``
  (the event may be rewritten) or ``None`` (drop it); stage ``i`` subscribes to
  partition ``i``. ``"demand"`` inputs use a demand dispatcher.
* A source spec used as an input stands for its producers: one producer per
  iterable of :class:`IterableSource` / :class:`AsyncIterableSource`, the given
  running producers of :class:`StagesSource`, and for :class:`ThroughStagesSource`
  the given producer-consumers, each first subscribed (demand dispatch, transient)
  to every producer of its ``inputs``.
* ``Plan.output`` is consumed with demand dispatch by the stream (``"stream"``),
  drained and discarded (``"run"``; final layers then have ``discard_output`` set
  and emit nothing), drained and handed to the running flow's subscribers
  (``"publish"``, ``flow.start(publish=True)``), or by ``Plan.consumers``
  (``"into_stages"``).
* :class:`PushSource` stands for one producer over a push handle, run in the
  process that holds the bindings.
* :class:`MessageSource` stands for one producer over an acknowledged source (see
  :mod:`flowstage.messages`) emitting each message as
  ``flowstage.program.Tracked(message, message.id)``; a plan with one has every
  operation rewritten to keep lineage (``flowstage.program.track_plan``), and
  ``Plan.end.acknowledge`` set: the output's lineages are settled in the calling
  process, each message acknowledged (or nacked) once everything derived from it
  reached the output, and the output's values are consumed. ``Plan.end.writer``, when
  set, is a sink whose ``write`` each output batch goes through first.
* A flow object used twice in one plan (for example both sides of a join) is
  compiled, and its sources iterated, twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._ops import LayerOps
    from ._refs import LocalRef
    from ._window import Window

__all__ = [
    "JOIN_MODES",
    "PLAN_VERSION",
    "MessageSource",
    "OutputEnd",
    "AsyncIterableSource",
    "DepartitionSpec",
    "DepartitionTag",
    "Dispatch",
    "IterableSource",
    "JoinMode",
    "JoinSpec",
    "LayerInput",
    "LayerKind",
    "LayerPlan",
    "OutputTag",
    "PartitionOutput",
    "Plan",
    "PlanVersionError",
    "PushSource",
    "Sink",
    "Source",
    "StagesSource",
    "TakeSortTag",
    "ThroughStagesSource",
    "TriggerInfo",
    "require_version",
]

#: The version of the plan format. A process that receives a plan of another
#: version refuses it (:func:`require_version`).
PLAN_VERSION: Final = 3

#: ``(window_type, window_id, trigger_name)`` as passed to ``on_trigger``.
TriggerInfo: TypeAlias = tuple[str, Any, Any]

JoinMode = Literal["inner", "left_outer", "right_outer", "full_outer"]
JOIN_MODES: Final[tuple[str, ...]] = ("inner", "left_outer", "right_outer", "full_outer")
LayerKind = Literal["map_reduce", "departition", "join"]
Sink = Literal["stream", "run", "into_stages", "publish"]


# -- sources -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IterableSource:
    """One producer per iterable (each a :class:`LocalRef`), each emitting the
    iterable's items in order, never more than demanded."""

    iterables: tuple[LocalRef, ...]


@dataclass(frozen=True, slots=True)
class AsyncIterableSource:
    """One producer per async iterable (each a :class:`LocalRef`)."""

    iterables: tuple[LocalRef, ...]


@dataclass(frozen=True, slots=True)
class StagesSource:
    """Already running producers of the stage engine (``from_stages``), by
    reference. They end the flow's input by finishing normally."""

    producers: tuple[LocalRef, ...]


@dataclass(frozen=True, slots=True)
class ThroughStagesSource:
    """Running producer-consumers (by reference) inserted after ``inputs``
    (``through_stages``): subscribe each of ``stages`` to every producer of
    ``inputs``, then consume from ``stages``."""

    stages: tuple[LocalRef, ...]
    inputs: tuple[LayerInput, ...]


@dataclass(frozen=True, slots=True)
class MessageSource:
    """One producer over an acknowledged source (a :class:`LocalRef` to a
    :class:`flowstage.messages.AckSource`), holding at most ``max_unacked`` messages
    delivered and not yet acknowledged or nacked."""

    source: LocalRef
    max_unacked: int


@dataclass(frozen=True, slots=True)
class PushSource:
    """One producer over a push handle (a :class:`LocalRef` to a
    :class:`flowstage.PushHandle`): it emits the events pushed into the handle, and
    ends once the handle is closed and everything accepted was emitted."""

    handle: LocalRef


Source: TypeAlias = (
    IterableSource
    | AsyncIterableSource
    | StagesSource
    | ThroughStagesSource
    | MessageSource
    | PushSource
)


# -- dispatch, layers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dispatch:
    """How producers feed a consumer layer.

    ``kind == "demand"``: a demand dispatcher (``partitions``/``hash`` unused).
    ``kind == "partition"``: ``partitions`` partitions, ``hash(event)`` returns
    ``(event, partition)`` or ``None`` to drop the event (a
    :class:`~flowstage.KeyHash`, a :class:`~flowstage.plan.JoinHash` or the user's
    ``hash=``).
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
    """A join layer. Its inputs' hashes (:class:`~flowstage.plan.JoinHash`)
    rewrite events to ``(side, key, event)`` with side 0 for left and 1 for right."""

    mode: JoinMode
    join: Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class LayerPlan:
    """One layer of identical stages; see the module docstring.

    ``origin`` names the builder call that started the layer (``"from_iterable"``,
    ``"partition"``, ``"merge"``, ...), for labels.
    """

    index: int
    inputs: tuple[LayerInput, ...]
    stages: int
    max_demand: int
    min_demand: int
    window: Window
    ops: LayerOps
    kind: LayerKind = "map_reduce"
    departition: DepartitionSpec | None = None
    join: JoinSpec | None = None
    output_tag: OutputTag = None
    discard_output: bool = False
    origin: str = "layer"


@dataclass(frozen=True, slots=True)
class OutputEnd:
    """What a flow's output passes through in the calling process before it is
    consumed: ``writer`` (a :class:`flowstage.messages.Sink`, by reference) writes each
    batch; ``acknowledge`` settles the lineage of each event (the plan reads an
    acknowledged source) and hands on the plain values."""

    writer: LocalRef | None = None
    acknowledge: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled flow; see the module docstring."""

    layers: tuple[LayerPlan, ...]
    output: tuple[LayerInput, ...]
    sink: Sink = "stream"
    consumers: tuple[LocalRef, ...] = ()
    end: OutputEnd | None = None
    version: int = PLAN_VERSION


class PlanVersionError(ValueError):
    """Raised when a plan was made by another version of the plan format."""


def require_version(plan: Plan) -> Plan:
    """Return ``plan`` if this flowstage can run it.

    Raises:
        PlanVersionError: the plan was made by a flowstage with another plan format.
    """
    version = getattr(plan, "version", None)
    if version != PLAN_VERSION:
        raise PlanVersionError(
            f"this plan has format version {version!r}, but this flowstage runs version "
            f"{PLAN_VERSION}: run every process of a flow on the same flowstage version"
        )
    return plan
