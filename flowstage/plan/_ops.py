"""Operation records: what each builder method adds to a layer, as plain data.

Every record is a frozen dataclass holding only user callables, numbers and
strings: the library never builds a closure into a plan (the per-partition programs
of :mod:`flowstage.program` do that in the process that runs them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Emit",
    "GroupBy",
    "LayerOps",
    "MapBatch",
    "Mapper",
    "MapperKind",
    "OnTrigger",
    "Operation",
    "Reduce",
    "Reducer",
    "Uniq",
]

MapperKind = Literal["map", "flat_map", "filter", "reject", "map_values"]


@dataclass(frozen=True, slots=True)
class Mapper:
    """A per-event operation: ``map``, ``flat_map``, ``filter``, ``reject`` or
    ``map_values`` (``fn`` maps the value of ``(key, value)`` events)."""

    kind: MapperKind
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
class GroupBy:
    """Reduce into ``{key(e): [value(e), ...]}`` per window (``group_by``).

    ``key`` None means ``group_by_key``: events are ``(key, value)`` pairs.
    ``value`` None keeps the event itself.
    """

    key: Callable[[Any], Any] | None = None
    value: Callable[[Any], Any] | None = None


Reducer: TypeAlias = Reduce | GroupBy


@dataclass(frozen=True, slots=True)
class OnTrigger:
    """``fn(acc[, partition[, trigger]]) -> (events, acc)``; ``arity`` in 1..3."""

    fn: Callable[..., Any]
    arity: int


@dataclass(frozen=True, slots=True)
class Emit:
    """``emit("state")`` (``[acc]``, keep acc) or ``emit("nothing")``."""

    mode: Literal["state", "nothing"]


Operation: TypeAlias = Mapper | MapBatch | Uniq | Reduce | GroupBy | OnTrigger | Emit


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
    reducer: Reducer | None = None
    on_trigger: OnTrigger | Emit | None = None

    @property
    def has_computation(self) -> bool:
        return bool(self.map_batch or self.mappers or self.reducer or self.on_trigger)
