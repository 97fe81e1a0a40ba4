"""The cores of a stage program: mappers, reducer and trigger emission, per window.

A *core* offers three generator methods over an opaque per-window accumulator
(see :mod:`._windows` for the request protocol): ``new_acc()``,
``reduce(events, acc, wtype, wid) -> (emitted, acc)`` and
``trigger(acc, info) -> (emitted, acc)``. :class:`BaseCore` runs a layer's fused
operations; :class:`JoinCore` and :class:`DepartitionCore` wrap it for join and
departition layers.

This module builds the closures a plan must not contain (``group_by``'s reducer),
from the plan's operation records.

Every trigger of every window reaches :meth:`BaseCore.trigger` (the wrapping cores
pass it on), which reports it to :mod:`flowstage.hooks` once the emission has
run: the programs' one side effect, a single attribute check when no instrument
listens.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import hooks
from ..plan import (
    DepartitionSpec,
    DepartitionTag,
    Emit,
    GroupBy,
    JoinSpec,
    LayerOps,
    LayerPlan,
    Mapper,
    OnTrigger,
    PartitionOutput,
    Reduce,
    TakeSortTag,
    Uniq,
)
from ._labels import labelled

if TYPE_CHECKING:
    from ._windows import Gen

__all__ = [
    "BaseCore",
    "DepartitionCore",
    "JoinCore",
    "as_reduce",
    "call",
    "check_trigger_result",
    "state_events",
]

_STATE_HINT = (
    "Flow attempted to convert the stage accumulator into events but failed; "
    "to explicitly convert your state into events use on_trigger"
)


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    r = fn(*args)
    if inspect.isawaitable(r):
        r = await r
    return r


@labelled("reduce state to events")
def state_events(acc: Any) -> list[Any]:
    if isinstance(acc, Mapping):
        return list(acc.items())
    try:
        return list(acc)
    except TypeError as e:
        raise TypeError(f"{type(acc).__name__!r} object is not iterable ({_STATE_HINT})") from e


@labelled("on_trigger")
def check_trigger_result(res: Any) -> tuple[list[Any], Any]:
    if isinstance(res, tuple) and len(res) == 2 and isinstance(res[0], list | tuple):
        return list(res[0]), res[1]
    raise TypeError(
        "expected on_trigger callback to return a tuple with a list of events as first "
        f"element and the new accumulator as second, got: {res!r}"
    )


def as_reduce(reducer: Reduce | GroupBy, is_async: bool) -> Reduce:
    """The :class:`~flowstage.plan.Reduce` a reducer record stands for.

    ``GroupBy`` becomes ``Reduce(dict, fn)`` with ``fn`` appending
    ``value(e)`` to ``acc[key(e)]`` (``(key, value)`` pairs for ``group_by_key``);
    with ``is_async`` the key and value functions may be ``async def``.
    """
    if isinstance(reducer, Reduce):
        return reducer
    key, value = reducer.key, reducer.value
    if is_async:

        async def agroup(acc: dict[Any, list[Any]], e: Any) -> dict[Any, list[Any]]:
            if key is None:
                k, v = e
            else:
                k = await call(key, e)
                v = e if value is None else await call(value, e)
            acc.setdefault(k, []).append(v)
            return acc

        return Reduce(dict, agroup)
    if key is None:

        def group_pairs(acc: dict[Any, list[Any]], e: Any) -> dict[Any, list[Any]]:
            k, v = e
            acc.setdefault(k, []).append(v)
            return acc

        return Reduce(dict, group_pairs)
    if value is None:

        def group(acc: dict[Any, list[Any]], e: Any) -> dict[Any, list[Any]]:
            acc.setdefault(key(e), []).append(e)
            return acc

        return Reduce(dict, group)
    vfn = value

    def group_values(acc: dict[Any, list[Any]], e: Any) -> dict[Any, list[Any]]:
        acc.setdefault(key(e), []).append(vfn(e))
        return acc

    return Reduce(dict, group_values)


# -- the fused per-event pipeline --------------------------------------------------


Step = Callable[[list[Any], list[set[Any]]], list[Any]]


def _sync_step(op: Mapper | Uniq, slot: int) -> Step:
    if isinstance(op, Uniq):
        key = op.key

        def uniq(xs: list[Any], sets: list[set[Any]]) -> list[Any]:
            seen = sets[slot]
            out = []
            for x in xs:
                k = x if key is None else key(x)
                if k not in seen:
                    seen.add(k)
                    out.append(x)
            return out

        return uniq
    # Comprehensions rather than map()/filter(): a callback that raises
    # StopIteration must fail the stage, not silently end the batch (and they are
    # no slower).
    f = op.fn
    if op.kind == "map":
        return lambda xs, _s: [f(x) for x in xs]
    if op.kind == "filter":
        return lambda xs, _s: [x for x in xs if f(x)]
    if op.kind == "reject":
        return lambda xs, _s: [x for x in xs if not f(x)]
    if op.kind == "flat_map":

        def flat_map(xs: list[Any], _s: list[set[Any]]) -> list[Any]:
            # One extend per input event (a C loop over its items) rather than a
            # comprehension step per output item; a callback raising StopIteration
            # still fails the stage (it is raised by a call, not by iteration).
            out: list[Any] = []
            extend = out.extend
            for x in xs:
                extend(f(x))
            return out

        return flat_map
    return lambda xs, _s: [(k, f(v)) for k, v in xs]


def _sync_pipeline(ops: LayerOps) -> Callable[[list[Any], list[set[Any]]], list[Any]]:
    slots = itertools.count()
    steps = [_sync_step(op, next(slots) if isinstance(op, Uniq) else -1) for op in ops.mappers]
    if not steps:
        return lambda xs, _s: xs
    if len(steps) == 1:
        return steps[0]
    if len(steps) == 2:
        a, b = steps
        return lambda xs, s: b(a(xs, s), s)

    def run(xs: list[Any], sets: list[set[Any]]) -> list[Any]:
        for step in steps:
            xs = step(xs, sets)
        return xs

    return run


async def _async_pipeline(ops: LayerOps, xs: list[Any], sets: list[set[Any]]) -> list[Any]:
    slot = 0
    for op in ops.mappers:
        out: list[Any] = []
        if isinstance(op, Uniq):
            seen = sets[slot]
            slot += 1
            for x in xs:
                k = x if op.key is None else await call(op.key, x)
                if k not in seen:
                    seen.add(k)
                    out.append(x)
        elif op.kind == "map":
            out = [await call(op.fn, x) for x in xs]
        elif op.kind == "filter":
            out = [x for x in xs if await call(op.fn, x)]
        elif op.kind == "reject":
            out = [x for x in xs if not await call(op.fn, x)]
        elif op.kind == "flat_map":
            for x in xs:
                out.extend(await call(op.fn, x))
        else:
            out = [(k, await call(op.fn, v)) for k, v in xs]
        xs = out
    return xs


# -- the base core: mappers + reducer + emission --------------------------------------


class BaseCore:
    """Mappers, reducer and trigger emission of one layer, for one stage.

    The per-window accumulator is ``(uniq_sets, reducer_acc)``.
    """

    def __init__(self, layer: LayerPlan, index: int, total: int, is_async: bool) -> None:
        ops = layer.ops
        self.ops = ops
        self.red = None if ops.reducer is None else as_reduce(ops.reducer, is_async)
        self.partition = (index, total)
        self.layer_index = layer.index
        self.nsets = sum(isinstance(o, Uniq) for o in ops.mappers)
        self.tag = layer.output_tag
        self.pipeline = _sync_pipeline(ops)
        self.p_new_acc: Callable[[], Any]
        self.p_reduce: Callable[[list[Any], Any], Any]
        self.p_trigger: Callable[[Any, Any], Any]
        if is_async:
            self.p_new_acc, self.p_reduce, self.p_trigger = (
                self._anew_acc,
                self._areduce,
                self._atrigger,
            )
        else:
            self.p_new_acc, self.p_reduce, self.p_trigger = (
                self._new_acc,
                self._make_sync_reduce(),
                self._trigger,
            )

    # sync primitives

    def _new_acc(self) -> Any:
        sets: list[set[Any]] = [set() for _ in range(self.nsets)]
        red = self.red
        return (sets, None if red is None else red.initial())

    def _make_sync_reduce(self) -> Callable[[list[Any], Any], tuple[list[Any], Any]]:
        pipeline = self.pipeline
        red = self.red
        dropping = self.tag is not None
        if red is None:
            return lambda events, acc: (pipeline(events, acc[0]), acc)
        fn = red.fn
        if not red.emits:

            def reduce(events: list[Any], acc: Any) -> tuple[list[Any], Any]:
                sets, racc = acc
                return [], (sets, functools.reduce(fn, pipeline(events, sets), racc))

            return reduce

        def emit_and_reduce(events: list[Any], acc: Any) -> tuple[list[Any], Any]:
            sets, racc = acc
            out: list[Any] = []
            for x in pipeline(events, sets):
                res = fn(racc, x)
                now, racc = res
                out.extend(now)
            return ([] if dropping else out), (sets, racc)

        return emit_and_reduce

    def _emission(self, racc: Any, info: Any) -> tuple[list[Any], Any, bool]:
        trig = self.ops.on_trigger
        if isinstance(trig, OnTrigger):
            args = (racc, self.partition, info)[: trig.arity]
            events, racc = check_trigger_result(trig.fn(*args))
            return events, racc, True
        return self._plain_emission(trig, racc)

    def _plain_emission(
        self, trig: Emit | OnTrigger | None, racc: Any
    ) -> tuple[list[Any], Any, bool]:
        if isinstance(trig, Emit):
            return ([racc] if trig.mode == "state" else []), racc, True
        if isinstance(self.tag, DepartitionTag):
            return [racc], racc, True  # the state itself goes to departition
        return state_events(racc), racc, False

    def _trigger(self, acc: Any, info: Any) -> tuple[list[Any], Any]:
        sets, racc = acc
        if self.red is None:
            return [], acc
        events, racc, _ = self._emission(racc, info)
        return self._tagged(events, info), (sets, racc)

    def _tagged(self, events: list[Any], info: Any) -> list[Any]:
        tag = self.tag
        if tag is None:
            return events
        if isinstance(tag, TakeSortTag):
            events = [sorted(events, key=tag.key, reverse=tag.reverse)[: tag.n]]
        return [PartitionOutput(self.partition[0], info, events)]

    # async primitives

    async def _anew_acc(self) -> Any:
        sets: list[set[Any]] = [set() for _ in range(self.nsets)]
        red = self.red
        return (sets, None if red is None else await call(red.initial))

    async def _areduce(self, events: list[Any], acc: Any) -> tuple[list[Any], Any]:
        sets, racc = acc
        xs = await _async_pipeline(self.ops, events, sets)
        red = self.red
        if red is None:
            return xs, acc
        out: list[Any] = []
        for x in xs:
            if red.emits:
                now, racc = await call(red.fn, racc, x)
                out.extend(now)
            else:
                racc = await call(red.fn, racc, x)
        return ([] if self.tag is not None else out), (sets, racc)

    async def _atrigger(self, acc: Any, info: Any) -> tuple[list[Any], Any]:
        sets, racc = acc
        if self.red is None:
            return [], acc
        trig = self.ops.on_trigger
        if isinstance(trig, OnTrigger):
            args = (racc, self.partition, info)[: trig.arity]
            events, racc = check_trigger_result(await call(trig.fn, *args))
        else:
            events, racc, _ = self._plain_emission(trig, racc)
        return self._tagged(events, info), (sets, racc)

    # core interface

    def new_acc(self) -> Gen:
        return (yield (self.p_new_acc,))

    def reduce(self, events: list[Any], acc: Any, wtype: str, wid: Any) -> Gen:
        return (yield (self.p_reduce, events, acc))

    def trigger(self, acc: Any, info: Any) -> Gen:
        result = yield (self.p_trigger, acc, info)
        if hooks.active.on_trigger_fired:
            hooks.emit_trigger_fired(self.layer_index, self.partition[0], info)
        return result


class JoinCore:
    """Join state per window: ``(left, right, inner_acc)`` with ``{key: [events]}``
    per side. Input events are ``(side, key, event)``."""

    def __init__(self, inner: BaseCore, spec: JoinSpec, is_async: bool) -> None:
        self.inner = inner
        self.spec = spec
        self.join_all: Callable[[list[tuple[Any, Any]]], Any] = (
            self._ajoin_all if is_async else self._join_all
        )

    def _join_all(self, pairs: list[tuple[Any, Any]]) -> list[Any]:
        j = self.spec.join
        return [j(a, b) for a, b in pairs]

    async def _ajoin_all(self, pairs: list[tuple[Any, Any]]) -> list[Any]:
        return [await call(self.spec.join, a, b) for a, b in pairs]

    def new_acc(self) -> Gen:
        iacc = yield from self.inner.new_acc()
        return ({}, {}, iacc)

    def reduce(self, events: list[Any], acc: Any, wtype: str, wid: Any) -> Gen:
        left, right, iacc = acc
        pairs: list[tuple[Any, Any]] = []
        for side, key, e in events:
            if side == 0:
                pairs.extend((e, r) for r in right.get(key, ()))
                left.setdefault(key, []).append(e)
            else:
                pairs.extend((lft, e) for lft in left.get(key, ()))
                right.setdefault(key, []).append(e)
        joined = (yield (self.join_all, pairs)) if pairs else []
        emitted, iacc = yield from self.inner.reduce(joined, iacc, wtype, wid)
        return emitted, (left, right, iacc)

    def trigger(self, acc: Any, info: Any) -> Gen:
        left, right, iacc = acc
        out: list[Any] = []
        mode = self.spec.mode
        if info[2] == "done" and mode != "inner":
            pairs: list[tuple[Any, Any]] = []
            if mode in ("left_outer", "full_outer"):
                pairs += [(e, None) for k, es in left.items() if k not in right for e in es]
            if mode in ("right_outer", "full_outer"):
                pairs += [(None, e) for k, es in right.items() if k not in left for e in es]
            if pairs:
                joined = yield (self.join_all, pairs)
                out, iacc = yield from self.inner.reduce(joined, iacc, info[0], info[1])
        emitted, iacc = yield from self.inner.trigger(iacc, info)
        return out + emitted, (left, right, iacc)


class DepartitionCore:
    """Departition state: ``({window_id: [pending_partitions, acc]}, inner_acc)``.
    Input events are :class:`PartitionOutput` items."""

    def __init__(self, inner: BaseCore, spec: DepartitionSpec) -> None:
        self.inner = inner
        self.spec = spec
        if spec.done_arity == 2:
            self.done_fn: Callable[[Any, Any], Any] = spec.done
        else:
            done = spec.done
            self.done_fn = lambda acc, _wid: done(acc)

    def new_acc(self) -> Gen:
        iacc = yield from self.inner.new_acc()
        return ({}, iacc)

    def reduce(self, events: list[Any], acc: Any, wtype: str, wid: Any) -> Gen:
        windows, iacc = acc
        out: list[Any] = []
        for item in events:
            partition, (_, window, name), values = item
            entry = windows.get(window)
            if entry is None:
                entry = [set(range(self.spec.partitions)), (yield (self.spec.initial,))]
            for v in values:
                entry[1] = yield (self.spec.merge, entry[1], v)
            if name == "done":
                entry[0].discard(partition)
            if entry[0]:
                windows[window] = entry
            else:
                windows.pop(window, None)
                out.append((yield (self.done_fn, entry[1], window)))
        emitted, iacc = yield from self.inner.reduce(out, iacc, wtype, wid)
        return emitted, (windows, iacc)

    def trigger(self, acc: Any, info: Any) -> Gen:
        windows, iacc = acc
        out: list[Any] = []
        if info[2] == "done" and windows:
            done = []
            for window in _sorted_ids(windows):
                done.append((yield (self.done_fn, windows[window][1], window)))
            windows = {}
            out, iacc = yield from self.inner.reduce(done, iacc, info[0], info[1])
        emitted, iacc = yield from self.inner.trigger(iacc, info)
        return out + emitted, (windows, iacc)


def _sorted_ids(windows: dict[Any, Any]) -> list[Any]:
    try:
        return sorted(windows)
    except TypeError:
        return list(windows)
