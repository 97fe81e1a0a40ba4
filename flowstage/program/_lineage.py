"""Lineage: which source messages each event of an acknowledged flow comes from.

A flow over an acknowledged source (``Flow.from_messages``) must acknowledge a message
only when everything derived from it has passed the flow's last layer. Events of such
a flow travel as :class:`Tracked` pairs: the user's value and its *lineage*, a small
value that says which messages (or which share of them) the event accounts for:

* ``str``: one whole message (its id): what the source emits;
* :class:`Part`: part ``1/n`` of group ``gid``; exactly one part of a group, the
  *carrier*, holds the group's inner lineage (what ``flat_map`` into ``n`` events, or a
  trigger emitting ``n`` events, splits);
* :class:`Bundle`: several lineages together (what a reducer accumulated);
* :class:`Failed`: a lineage whose messages a callback failed on (they are nacked).

The algebra conserves messages: every message id reaches the end exactly once, inside
some lineage, however its events were split, dropped, reduced or emitted. An event
a step drops (``filter``, an empty ``flat_map``, a hash that returns ``None``) becomes
a *marker*: a :class:`Tracked` without a value, which later steps pass on and which
reducers absorb, so its lineage still reaches the end.

:func:`track_plan` rewrites a plan's operations into lineage-keeping ones (module-level
callables, so plans still travel to other processes); :class:`Ledger` is the
accounting at the end of the flow that turns lineages into acknowledgements.
Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import itertools
import os
import pickle
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from .._options import is_async_callable
from ..plan import (
    Dispatch,
    Emit,
    GroupBy,
    LayerInput,
    LayerOps,
    LayerPlan,
    MapBatch,
    Mapper,
    MessageSource,
    OnTrigger,
    Plan,
    Reduce,
    ThroughStagesSource,
    Uniq,
)
from ._cores import call, check_trigger_result, state_events

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "MARK",
    "Bundle",
    "Failed",
    "Ledger",
    "Lineage",
    "Part",
    "Tracked",
    "check_trackable",
    "track_plan",
]


# -- lineage values -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """Part of group ``gid`` of ``n`` parts; ``inner`` is the group's lineage on the
    one carrier part, ``None`` on the others."""

    gid: str
    n: int
    inner: Lineage | None


@dataclass(frozen=True, slots=True)
class Bundle:
    """Several lineages, settled together."""

    lins: tuple[Lineage, ...]


@dataclass(frozen=True, slots=True)
class Failed:
    """``lin``, whose messages a callback failed on with ``error``."""

    lin: Lineage
    error: BaseException

    def __reduce__(self) -> tuple[Any, ...]:
        return (Failed, (self.lin, _portable_error(self.error)))


Lineage: TypeAlias = str | Part | Bundle | Failed


def _portable_error(exc: BaseException) -> BaseException:
    """``exc``, or a RuntimeError naming it when it does not pickle."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
    return exc


class _Mark:
    """The value of a marker event (see the module docstring)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MARK"

    def __reduce__(self) -> str:
        return "MARK"


#: The value of a marker: an event a step dropped, kept for its lineage.
MARK: Final = _Mark()


class Tracked:
    """An event of an acknowledged flow: the user's ``value`` and its ``lin``eage
    (``value is MARK`` for a marker)."""

    __slots__ = ("lin", "value")

    def __init__(self, value: Any, lin: Lineage) -> None:
        self.value: Any = value
        self.lin: Lineage = lin

    def __reduce__(self) -> tuple[Any, ...]:
        return (Tracked, (self.value, self.lin))

    def __repr__(self) -> str:
        return f"Tracked({self.value!r}, {self.lin!r})"


_counter = itertools.count()
_prefix = os.urandom(6).hex()


def _gid() -> str:
    """A group id unique across processes and runs."""
    return f"{_prefix}:{os.getpid()}:{next(_counter)}"


def split(lin: Lineage, n: int) -> list[Lineage]:
    """``lin`` shared by ``n`` events (``n >= 1``)."""
    if n == 1:
        return [lin]
    gid = _gid()
    rest = Part(gid, n, None)
    return [Part(gid, n, lin), *itertools.repeat(rest, n - 1)]


def bundle(lins: list[Lineage]) -> Lineage:
    """Several lineages as one."""
    return lins[0] if len(lins) == 1 else Bundle(tuple(lins))


# -- the ledger at the end of the flow ------------------------------------------------------


class Ledger:
    """Turns the lineages that reach the end of the flow into message ids done.

    :meth:`settle` takes the lineage of each event that reached the end; it returns
    the ids whose every part has now arrived, split into acknowledged and failed
    (with the first exception that failed each). Each id comes out exactly once.
    Memory: one entry per group some of whose parts are still on their way.
    """

    __slots__ = ("_groups",)

    def __init__(self) -> None:
        # gid -> [parts seen, inner lineage (once the carrier came), failure]
        self._groups: dict[str, list[Any]] = {}

    @property
    def open_groups(self) -> int:
        """Groups with parts still on their way."""
        return len(self._groups)

    def settle(self, lins: Iterable[Lineage]) -> tuple[list[str], list[tuple[str, BaseException]]]:
        acked: list[str] = []
        failed: list[tuple[str, BaseException]] = []
        # In the order the lineages came (ids come out in that order).
        todo: deque[tuple[Lineage, BaseException | None]] = deque((lin, None) for lin in lins)
        groups = self._groups
        while todo:
            lin, error = todo.popleft()
            if isinstance(lin, str):
                if error is None:
                    acked.append(lin)
                else:
                    failed.append((lin, error))
            elif isinstance(lin, Part):
                entry = groups.get(lin.gid)
                if entry is None:
                    entry = groups[lin.gid] = [0, None, None]
                entry[0] += 1
                if lin.inner is not None:
                    entry[1] = lin.inner
                if error is not None and entry[2] is None:
                    entry[2] = error
                if entry[0] == lin.n:
                    del groups[lin.gid]
                    todo.appendleft((entry[1], entry[2]))
            elif isinstance(lin, Bundle):
                todo.extendleft((inner, error) for inner in reversed(lin.lins))
            else:
                todo.appendleft((lin.lin, error if error is not None else lin.error))
        return acked, failed


# -- wrapped operations -------------------------------------------------------------------
#
# Each wrapper is a module-level class (plans travel pickled), in a sync and an async
# form (``async def __call__``, which programs detect). ``catch``: a callback that
# raises turns the event into a failed marker (the message is nacked) rather than
# failing the flow.


class _Wrapper:
    __slots__ = ("catch", "fn")

    def __init__(self, fn: Callable[..., Any], catch: bool) -> None:
        self.fn = fn
        self.catch = catch

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.fn, self.catch))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (self.fn, self.catch) == (other.fn, other.catch)

    def __hash__(self) -> int:
        return hash((type(self), self.fn))


def _failed(ev: Tracked, exc: Exception) -> Tracked:
    return Tracked(MARK, Failed(ev.lin, exc))


class TMap(_Wrapper):
    """``map``: ``fn(value)``, lineage kept."""

    __slots__ = ()

    def __call__(self, ev: Tracked) -> Tracked:
        if ev.value is MARK:
            return ev
        try:
            return Tracked(self.fn(ev.value), ev.lin)
        except Exception as exc:
            if not self.catch:
                raise
            return _failed(ev, exc)


class ATMap(_Wrapper):
    """``map`` with an ``async def`` callback."""

    __slots__ = ()

    async def __call__(self, ev: Tracked) -> Tracked:
        if ev.value is MARK:
            return ev
        try:
            return Tracked(await call(self.fn, ev.value), ev.lin)
        except Exception as exc:
            if not self.catch:
                raise
            return _failed(ev, exc)


class TMapValues(_Wrapper):
    """``map_values``: ``(k, fn(v))``."""

    __slots__ = ()

    def __call__(self, ev: Tracked) -> Tracked:
        if ev.value is MARK:
            return ev
        try:
            k, v = ev.value
            return Tracked((k, self.fn(v)), ev.lin)
        except Exception as exc:
            if not self.catch:
                raise
            return _failed(ev, exc)


class ATMapValues(_Wrapper):
    __slots__ = ()

    async def __call__(self, ev: Tracked) -> Tracked:
        if ev.value is MARK:
            return ev
        try:
            k, v = ev.value
            return Tracked((k, await call(self.fn, v)), ev.lin)
        except Exception as exc:
            if not self.catch:
                raise
            return _failed(ev, exc)


class TFilter:
    """``filter`` (``keep=True``) or ``reject``: a dropped event becomes a marker."""

    __slots__ = ("catch", "fn", "keep")

    def __init__(self, fn: Callable[[Any], Any], catch: bool, keep: bool) -> None:
        self.fn = fn
        self.catch = catch
        self.keep = keep

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.fn, self.catch, self.keep))

    def __call__(self, ev: Tracked) -> Tracked:
        if ev.value is MARK:
            return ev
        try:
            if bool(self.fn(ev.value)) is self.keep:
                return ev
        except Exception as exc:
            if not self.catch:
                raise
            return _failed(ev, exc)
        return Tracked(MARK, ev.lin)


class ATFilter(TFilter):
    __slots__ = ()

    async def __call__(self, ev: Tracked) -> Tracked:  # type: ignore[override]
        if ev.value is MARK:
            return ev
        try:
            if bool(await call(self.fn, ev.value)) is self.keep:
                return ev
        except Exception as exc:
            if not self.catch:
                raise
            return _failed(ev, exc)
        return Tracked(MARK, ev.lin)


def _children(ev: Tracked, values: list[Any]) -> list[Tracked]:
    if not values:
        return [Tracked(MARK, ev.lin)]
    return [Tracked(v, lin) for v, lin in zip(values, split(ev.lin, len(values)), strict=True)]


class TFlatMap(_Wrapper):
    """``flat_map``: the children share the event's lineage (none: a marker)."""

    __slots__ = ()

    def __call__(self, ev: Tracked) -> list[Tracked]:
        if ev.value is MARK:
            return [ev]
        try:
            values = list(self.fn(ev.value))
        except Exception as exc:
            if not self.catch:
                raise
            return [_failed(ev, exc)]
        return _children(ev, values)


class ATFlatMap(_Wrapper):
    __slots__ = ()

    async def __call__(self, ev: Tracked) -> list[Tracked]:
        if ev.value is MARK:
            return [ev]
        try:
            values = list(await call(self.fn, ev.value))
        except Exception as exc:
            if not self.catch:
                raise
            return [_failed(ev, exc)]
        return _children(ev, values)


def _batch_out(events: list[Tracked], values: list[Any]) -> list[Tracked]:
    marks = [ev for ev in events if ev.value is MARK]
    lins = [ev.lin for ev in events if ev.value is not MARK]
    if not lins:
        return marks
    lin = bundle(lins)
    if not values:
        return [*marks, Tracked(MARK, lin)]
    return marks + [Tracked(v, p) for v, p in zip(values, split(lin, len(values)), strict=True)]


class TMapBatch(_Wrapper):
    """``map_batch``: the outputs share the batch's lineage."""

    __slots__ = ()

    def __call__(self, events: list[Tracked]) -> list[Tracked]:
        values = [ev.value for ev in events if ev.value is not MARK]
        try:
            out = list(self.fn(values)) if values else []
        except Exception as exc:
            if not self.catch:
                raise
            return [_failed(ev, exc) if ev.value is not MARK else ev for ev in events]
        return _batch_out(events, out)


class ATMapBatch(_Wrapper):
    __slots__ = ()

    async def __call__(self, events: list[Tracked]) -> list[Tracked]:
        values = [ev.value for ev in events if ev.value is not MARK]
        try:
            out = list(await call(self.fn, values)) if values else []
        except Exception as exc:
            if not self.catch:
                raise
            return [_failed(ev, exc) if ev.value is not MARK else ev for ev in events]
        return _batch_out(events, out)


# -- reducers -------------------------------------------------------------------------------


class TState:
    """A reducer's accumulator and the lineages reduced into it."""

    __slots__ = ("acc", "lins")

    def __init__(self, acc: Any) -> None:
        self.acc = acc
        self.lins: list[Lineage] = []


class TInitial:
    """``initial()`` wrapped in a :class:`TState`."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.fn,))

    def __call__(self) -> TState:
        return TState(self.fn())


class ATInitial(TInitial):
    __slots__ = ()

    async def __call__(self) -> TState:  # type: ignore[override]
        return TState(await call(self.fn))


class TReduce:
    """``reduce``: the value into ``acc``, the lineage into the state's lineages; with
    ``emits`` (``emit_and_reduce``) the emitted events and the state share it."""

    __slots__ = ("catch", "emits", "fn")

    def __init__(self, fn: Callable[[Any, Any], Any], catch: bool, emits: bool) -> None:
        self.fn = fn
        self.catch = catch
        self.emits = emits

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.fn, self.catch, self.emits))

    def _after(self, st: TState, ev: Tracked, res: Any) -> Any:
        if not self.emits:
            st.acc = res
            st.lins.append(ev.lin)
            return st
        now, st.acc = res
        now = list(now)
        parts = split(ev.lin, len(now) + 1)
        st.lins.append(parts[0])  # the carrier stays with the state
        return [Tracked(v, p) for v, p in zip(now, parts[1:], strict=True)], st

    def _absorb(self, st: TState, lin: Lineage) -> Any:
        st.lins.append(lin)
        return ([], st) if self.emits else st

    def __call__(self, st: TState, ev: Tracked) -> Any:
        if ev.value is MARK:
            return self._absorb(st, ev.lin)
        try:
            res = self.fn(st.acc, ev.value)
        except Exception as exc:
            if not self.catch:
                raise
            return self._absorb(st, Failed(ev.lin, exc))
        return self._after(st, ev, res)


class ATReduce(TReduce):
    __slots__ = ()

    async def __call__(self, st: TState, ev: Tracked) -> Any:
        if ev.value is MARK:
            return self._absorb(st, ev.lin)
        try:
            res = await call(self.fn, st.acc, ev.value)
        except Exception as exc:
            if not self.catch:
                raise
            return self._absorb(st, Failed(ev.lin, exc))
        return self._after(st, ev, res)


class GroupFn:
    """``group_by`` / ``group_by_key`` as a reducer function (``acc`` a dict of lists)."""

    __slots__ = ("key", "value")

    def __init__(
        self, key: Callable[[Any], Any] | None, value: Callable[[Any], Any] | None
    ) -> None:
        self.key = key
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.value))

    def __call__(self, acc: dict[Any, list[Any]], e: Any) -> dict[Any, list[Any]]:
        if self.key is None:
            k, v = e
        else:
            k = self.key(e)
            v = e if self.value is None else self.value(e)
        acc.setdefault(k, []).append(v)
        return acc


class AGroupFn(GroupFn):
    __slots__ = ()

    async def __call__(self, acc: dict[Any, list[Any]], e: Any) -> dict[Any, list[Any]]:  # type: ignore[override]
        if self.key is None:
            k, v = e
        else:
            k = await call(self.key, e)
            v = e if self.value is None else await call(self.value, e)
        acc.setdefault(k, []).append(v)
        return acc


class TTrigger:
    """What a trigger emits (``on_trigger``, ``emit`` or the state's events), each
    event with a share of the lineages the state holds; none: one marker."""

    __slots__ = ("catch", "op")

    def __init__(self, op: OnTrigger | Emit | None, catch: bool) -> None:
        self.op = op
        self.catch = catch

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.op, self.catch))

    def _emission(self, st: TState, partition: Any, info: Any) -> tuple[list[Any], Any]:
        op = self.op
        if isinstance(op, OnTrigger):
            args = (st.acc, partition, info)[: op.arity]
            return check_trigger_result(op.fn(*args))
        if isinstance(op, Emit):
            return ([st.acc] if op.mode == "state" else []), st.acc
        return state_events(st.acc), st.acc

    def _out(self, st: TState, values: list[Any], acc: Any) -> tuple[list[Tracked], TState]:
        new = TState(acc)
        if not st.lins:
            return [Tracked(v, Bundle(())) for v in values], new
        lin = bundle(st.lins)
        if not values:
            return [Tracked(MARK, lin)], new
        return [Tracked(v, p) for v, p in zip(values, split(lin, len(values)), strict=True)], new

    def _fail(self, st: TState, exc: Exception) -> tuple[list[Tracked], TState]:
        lin = Failed(bundle(st.lins) if st.lins else Bundle(()), exc)
        return [Tracked(MARK, lin)], TState(st.acc)

    def __call__(self, st: TState, partition: Any, info: Any) -> tuple[list[Tracked], TState]:
        try:
            values, acc = self._emission(st, partition, info)
        except Exception as exc:
            if not self.catch:
                raise
            return self._fail(st, exc)
        return self._out(st, values, acc)


class ATTrigger(TTrigger):
    __slots__ = ()

    async def __call__(  # type: ignore[override]
        self, st: TState, partition: Any, info: Any
    ) -> tuple[list[Tracked], TState]:
        op = self.op
        try:
            if isinstance(op, OnTrigger):
                args = (st.acc, partition, info)[: op.arity]
                values, acc = check_trigger_result(await call(op.fn, *args))
            else:
                values, acc = self._emission(st, partition, info)
        except Exception as exc:
            if not self.catch:
                raise
            return self._fail(st, exc)
        return self._out(st, values, acc)


# -- routing ---------------------------------------------------------------------------------


class THash:
    """A partition hash on the value; a marker (or an event the hash drops) goes to
    the partitions in turn."""

    __slots__ = ("_turn", "inner", "partitions")

    def __init__(self, inner: Callable[[Any], tuple[Any, int] | None], partitions: int) -> None:
        self.inner = inner
        self.partitions = partitions
        self._turn = 0

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.inner, self.partitions))

    def _next(self) -> int:
        self._turn = turn = (self._turn + 1) % self.partitions
        return turn

    def __call__(self, ev: Tracked) -> tuple[Tracked, int]:
        if ev.value is MARK:
            return ev, self._next()
        res = self.inner(ev.value)
        if res is None:
            return Tracked(MARK, ev.lin), self._next()
        value, partition = res
        return (ev if value is ev.value else Tracked(value, ev.lin)), partition


# -- the plan rewrite -----------------------------------------------------------------------


def _unsupported(layer: LayerPlan) -> list[str]:
    found: list[str] = []
    w = layer.window
    if w.type in ("count", "fixed"):
        found.append(f"Window.{w.type} windows")
    if w.punctuation is not None:
        found.append("Window.trigger / trigger_every triggers")
    if layer.join is not None:
        found.append("joins")
    if layer.departition is not None or layer.output_tag is not None:
        found.append("departition and take_sort")
    if any(isinstance(m, Uniq) for m in layer.ops.mappers):
        found.append("uniq and uniq_by")
    for inp in layer.inputs:
        if isinstance(inp.source, ThroughStagesSource):
            found.append("through_stages")
        elif not isinstance(inp.source, int | MessageSource):
            found.append("sources other than Flow.from_messages")
    return found


def check_trackable(plan: Plan) -> None:
    """Raise ValueError naming what a flow over acknowledged messages cannot do
    (each operation whose output's lineage could not be followed)."""
    found: list[str] = []
    for layer in plan.layers:
        for what in _unsupported(layer):
            if what not in found:
                found.append(what)
    for inp in plan.output:
        if (
            not isinstance(inp.source, int | MessageSource)
            and "sources other than Flow.from_messages" not in found
        ):
            found.append("sources other than Flow.from_messages")
    if found:
        raise ValueError(
            "a flow over acknowledged messages (Flow.from_messages) cannot use: "
            + ", ".join(found)
            + " (their output could not be traced back to the messages it comes from, "
            "so those messages could never be acknowledged); processing-time windows "
            "(Window.periodic, trigger_periodically) and the global window work"
        )


def _mapper(op: Mapper, catch: bool) -> Mapper:
    fn = op.fn
    is_async = is_async_callable(fn)
    if op.kind == "map":
        return Mapper("map", (ATMap if is_async else TMap)(fn, catch))
    if op.kind == "map_values":
        return Mapper("map", (ATMapValues if is_async else TMapValues)(fn, catch))
    if op.kind in ("filter", "reject"):
        return Mapper("map", (ATFilter if is_async else TFilter)(fn, catch, op.kind == "filter"))
    return Mapper("flat_map", (ATFlatMap if is_async else TFlatMap)(fn, catch))


def _reducer(red: Reduce | GroupBy, catch: bool) -> Reduce:
    if isinstance(red, GroupBy):
        is_async = any(f is not None and is_async_callable(f) for f in (red.key, red.value))
        fn: Callable[..., Any] = (AGroupFn if is_async else GroupFn)(red.key, red.value)
        initial: Callable[[], Any] = dict
        emits = False
    else:
        fn, initial, emits = red.fn, red.initial, red.emits
    is_async = is_async_callable(fn) or is_async_callable(initial)
    return Reduce(
        (ATInitial if is_async_callable(initial) else TInitial)(initial),
        (ATReduce if is_async else TReduce)(fn, catch, emits),
        emits,
    )


def _trigger(op: OnTrigger | Emit | None, catch: bool) -> OnTrigger:
    is_async = isinstance(op, OnTrigger) and is_async_callable(op.fn)
    return OnTrigger((ATTrigger if is_async else TTrigger)(op, catch), 3)


def _ops(ops: LayerOps, catch: bool) -> LayerOps:
    batch = tuple(
        MapBatch((ATMapBatch if is_async_callable(b.fn) else TMapBatch)(b.fn, catch))
        for b in ops.map_batch
    )
    mappers = tuple(_mapper(m, catch) for m in ops.mappers if isinstance(m, Mapper))
    if ops.reducer is None:
        return LayerOps(batch, mappers, None, ops.on_trigger)
    return LayerOps(batch, mappers, _reducer(ops.reducer, catch), _trigger(ops.on_trigger, catch))


def _input(inp: LayerInput) -> LayerInput:
    d = inp.dispatch
    if d.kind != "partition" or d.hash is None:
        return inp
    return replace(inp, dispatch=Dispatch("partition", d.partitions, THash(d.hash, d.partitions)))


def track_plan(plan: Plan, *, catch: bool = True) -> Plan:
    """``plan`` with every operation keeping lineage (see the module docstring).

    ``catch``: a callback that raises on an event nacks its messages and the flow goes
    on; ``False``: the flow fails (and its unacknowledged messages are redelivered).

    Raises:
        ValueError: the plan uses an operation lineage cannot follow
            (:func:`check_trackable`).
    """
    check_trackable(plan)
    layers = tuple(
        replace(
            layer,
            ops=_ops(layer.ops, catch),
            inputs=tuple(_input(i) for i in layer.inputs),
        )
        for layer in plan.layers
    )
    return replace(plan, layers=layers)
