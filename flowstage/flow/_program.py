"""Per-stage programs: the port of ``Flow.MapReducer`` for one stage.

``make_program(layer, index, total)`` returns a :class:`StageProgram`, a pure
state machine (no clock, no I/O, no ``await`` outside the ``a*`` methods). The
executor owns one per stage and calls, from the stage's single loop:

* ``start(now)`` once, before anything else (``now`` from
  ``anyio.current_time()``; ``None`` if unknown).
* ``add_producer(producer)`` for every upstream subscription, before its
  first batch (fixed windows hold the watermark until every registered producer
  sent an event; unknown producers are registered on their first batch).
* ``handle_events(events, producer) -> list`` for each batch (or
  ``await ahandle_events(...)`` when ``is_async``).
* ``handle_producer_done(producer) -> list`` when one upstream finishes normally.
* ``handle_done() -> list`` once every upstream finished: fires the final
  ``"done"`` trigger(s); then the stage drains its output and stops.
* ``handle_trigger(name) -> list``: an external trigger on every open window.
* ``next_deadline() -> float | None`` after every call, and
  ``handle_time(now) -> list`` once ``now >= deadline``. A deadline of
  ``float("-inf")`` means "call ``handle_time`` now" (the program needs the current
  time to schedule something).

Every ``handle_*`` has an ``ahandle_*`` twin; when ``is_async`` is True the
executor must use the twins (user callbacks are awaited one at a time, in order).
Returned lists are the events to emit, in order; the executor dispatches them by
demand. A program whose layer has ``discard_output`` returns empty lists.

Tagging formats (see ``_plan.py``): a layer with ``output_tag`` emits one
:class:`PartitionOutput` per trigger (events emitted right away by
``emit_and_reduce`` are dropped in such layers); a join layer receives
``(side, key, event)`` tuples (side 0 = left, 1 = right), produced by its inputs'
hash functions.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from ._plan import (
    DepartitionSpec,
    DepartitionTag,
    Emit,
    JoinSpec,
    LayerOps,
    LayerPlan,
    Mapper,
    OnTrigger,
    PartitionOutput,
    TakeSortTag,
    Uniq,
)
from ._program_window import (
    CountWindow,
    FixedWindow,
    Gen,
    GlobalWindow,
    PeriodicWindow,
    PunctuationCore,
    WindowMachine,
)
from ._validate import is_async_callable

__all__ = ["StageProgram", "make_program"]

_STATE_HINT = (
    "Flow attempted to convert the stage accumulator into events but failed; "
    "to explicitly convert your state into events use on_trigger"
)


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    r = fn(*args)
    if inspect.isawaitable(r):
        r = await r
    return r


def _state_events(acc: Any) -> list[Any]:
    if isinstance(acc, Mapping):
        return list(acc.items())
    try:
        return list(acc)
    except TypeError as e:
        raise TypeError(f"{type(acc).__name__!r} object is not iterable ({_STATE_HINT})") from e


def _check_trigger_result(res: Any) -> tuple[list[Any], Any]:
    if isinstance(res, tuple) and len(res) == 2 and isinstance(res[0], list | tuple):
        return list(res[0]), res[1]
    raise TypeError(
        "expected on_trigger callback to return a tuple with a list of events as first "
        f"element and the new accumulator as second, got: {res!r}"
    )


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
        return lambda xs, _s: [y for x in xs for y in f(x)]
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
                k = x if op.key is None else await _call(op.key, x)
                if k not in seen:
                    seen.add(k)
                    out.append(x)
        elif op.kind == "map":
            out = [await _call(op.fn, x) for x in xs]
        elif op.kind == "filter":
            out = [x for x in xs if await _call(op.fn, x)]
        elif op.kind == "reject":
            out = [x for x in xs if not await _call(op.fn, x)]
        elif op.kind == "flat_map":
            for x in xs:
                out.extend(await _call(op.fn, x))
        else:
            out = [(k, await _call(op.fn, v)) for k, v in xs]
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
        self.partition = (index, total)
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
        red = self.ops.reducer
        return (sets, None if red is None else red.initial())

    def _make_sync_reduce(self) -> Callable[[list[Any], Any], tuple[list[Any], Any]]:
        pipeline = self.pipeline
        red = self.ops.reducer
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
            events, racc = _check_trigger_result(trig.fn(*args))
            return events, racc, True
        return self._plain_emission(trig, racc)

    def _plain_emission(
        self, trig: Emit | OnTrigger | None, racc: Any
    ) -> tuple[list[Any], Any, bool]:
        if isinstance(trig, Emit):
            return ([racc] if trig.mode == "state" else []), racc, True
        if isinstance(self.tag, DepartitionTag):
            return [racc], racc, True  # the state itself goes to departition
        return _state_events(racc), racc, False

    def _trigger(self, acc: Any, info: Any) -> tuple[list[Any], Any]:
        sets, racc = acc
        if self.ops.reducer is None:
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
        red = self.ops.reducer
        return (sets, None if red is None else await _call(red.initial))

    async def _areduce(self, events: list[Any], acc: Any) -> tuple[list[Any], Any]:
        sets, racc = acc
        xs = await _async_pipeline(self.ops, events, sets)
        red = self.ops.reducer
        if red is None:
            return xs, acc
        out: list[Any] = []
        for x in xs:
            if red.emits:
                now, racc = await _call(red.fn, racc, x)
                out.extend(now)
            else:
                racc = await _call(red.fn, racc, x)
        return ([] if self.tag is not None else out), (sets, racc)

    async def _atrigger(self, acc: Any, info: Any) -> tuple[list[Any], Any]:
        sets, racc = acc
        if self.ops.reducer is None:
            return [], acc
        trig = self.ops.on_trigger
        if isinstance(trig, OnTrigger):
            args = (racc, self.partition, info)[: trig.arity]
            events, racc = _check_trigger_result(await _call(trig.fn, *args))
        else:
            events, racc, _ = self._plain_emission(trig, racc)
        return self._tagged(events, info), (sets, racc)

    # core interface

    def new_acc(self) -> Gen:
        return (yield (self.p_new_acc,))

    def reduce(self, events: list[Any], acc: Any, wtype: str, wid: Any) -> Gen:
        return (yield (self.p_reduce, events, acc))

    def trigger(self, acc: Any, info: Any) -> Gen:
        return (yield (self.p_trigger, acc, info))


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
        return [await _call(self.spec.join, a, b) for a, b in pairs]

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


# -- the program --------------------------------------------------------------------


def _layer_callbacks(layer: LayerPlan) -> Iterable[object]:
    ops = layer.ops
    yield from (b.fn for b in ops.map_batch)
    for m in ops.mappers:
        yield m.fn if isinstance(m, Mapper) else m.key
    if ops.reducer is not None:
        yield ops.reducer.initial
        yield ops.reducer.fn
    if isinstance(ops.on_trigger, OnTrigger):
        yield ops.on_trigger.fn
    w = layer.window
    yield w.by
    if w.punctuation is not None:
        yield w.punctuation.initial
        yield w.punctuation.fn
    if layer.departition is not None:
        d = layer.departition
        yield from (d.initial, d.merge, d.done)
    if layer.join is not None:
        yield layer.join.join


class StageProgram:
    """The pure program of one stage; see the module docstring for the protocol.

    Guarantees: events of one batch are processed in order; emitted lists keep
    the order in which events were produced (immediate events of a batch first,
    then the output of triggers that batch fired, in firing order).
    """

    def __init__(self, layer: LayerPlan, index: int, total: int) -> None:
        self.layer = layer
        self.index = index
        self.total = total
        self.is_async: bool = any(
            f is not None and is_async_callable(f) for f in _layer_callbacks(layer)
        )
        base = BaseCore(layer, index, total, self.is_async)
        core: Any = base
        if layer.join is not None:
            core = JoinCore(base, layer.join, self.is_async)
        elif layer.departition is not None:
            core = DepartitionCore(base, layer.departition)
        w = layer.window
        if w.punctuation is not None:
            core = PunctuationCore(core, w.punctuation.initial, w.punctuation.fn)
        self.window: WindowMachine
        if w.type == "count":
            self.window = CountWindow(core, w.size)
        elif w.type == "periodic":
            self.window = PeriodicWindow(core, w.duration_ms / 1000)
        elif w.type == "fixed":
            assert w.by is not None
            self.window = FixedWindow(
                core, w.duration_ms, self._by_all(w.by, layer.kind == "join"), w.lateness_ms / 1000
            )
        else:
            self.window = GlobalWindow(core)
        self._periodically: list[list[Any]] = [
            [ms / 1000, name, None] for ms, name in w.periodically
        ]
        self._batch_fns = [b.fn for b in layer.ops.map_batch]
        self._discard = layer.discard_output
        self._started = False
        self._finished = False
        self._fast: Callable[[list[Any], Any], tuple[list[Any], Any]] | None = None
        if isinstance(self.window, GlobalWindow) and core is base and not self.is_async:
            self._fast = base.p_reduce

    def _by_all(self, by: Callable[[Any], Any], join: bool) -> Callable[[list[Any]], Any]:
        def unwrap(t: Any) -> Any:
            return by(t[2])

        key = unwrap if join else by
        if self.is_async:

            async def aby_all(events: list[Any]) -> list[Any]:
                return [await _call(key, e) for e in events]

            return aby_all

        def by_all(events: list[Any]) -> list[Any]:
            return [key(e) for e in events]

        return by_all

    # -- drivers ----------------------------------------------------------------------

    # The drivers call the requested callbacks outside their ``try``: a callback
    # that raises StopIteration fails the stage instead of ending the generator.

    def _drive(self, gen: Gen) -> list[Any]:
        if self.is_async:
            raise RuntimeError("this program has async callbacks: use the ahandle_* methods")
        out: list[Any]
        r: Any = None
        while True:
            try:
                req = gen.send(r)
            except StopIteration as stop:
                out = stop.value
                break
            r = req[0](*req[1:])
        return [] if self._discard else out

    async def _adrive(self, gen: Gen) -> list[Any]:
        out: list[Any]
        r: Any = None
        while True:
            try:
                req = gen.send(r)
            except StopIteration as stop:
                out = stop.value
                break
            r = req[0](*req[1:])
            if inspect.isawaitable(r):
                r = await r
        return [] if self._discard else out

    # -- generators for each entry point ----------------------------------------------------

    def _g_start(self, now: float | None) -> Gen:
        self._started = True
        for p in self._periodically:
            p[2] = None if now is None else now + p[0]
        return (yield from self.window.start(now))

    def _g_ensure(self) -> Gen:
        if not self._started:
            yield from self._g_start(None)

    def _g_events(self, events: list[Any], producer: Hashable) -> Gen:
        yield from self._g_ensure()
        for fn in self._batch_fns:
            res = yield (fn, events)
            events = res if isinstance(res, list) else list(res)
        return (yield from self.window.events(events, producer))

    def _g_producer_done(self, producer: Hashable) -> Gen:
        yield from self._g_ensure()
        return (yield from self.window.producer_done(producer))

    def _g_done(self) -> Gen:
        yield from self._g_ensure()
        if self._finished:
            return []
        self._finished = True
        return (yield from self.window.done())

    def _g_trigger(self, name: Any) -> Gen:
        yield from self._g_ensure()
        if self._finished:
            return []
        return (yield from self.window.trigger(name))

    def _g_time(self, now: float) -> Gen:
        yield from self._g_ensure()
        if self._finished:
            return []
        out: list[Any] = yield from self.window.time(now)
        for p in self._periodically:
            interval, name, deadline = p
            if deadline is None:
                p[2] = now + interval
            elif now >= deadline:
                while p[2] <= now:
                    p[2] += interval
                out += yield from self.window.trigger(name)
        return out

    # -- public interface --------------------------------------------------------------------

    def add_producer(self, producer: Hashable) -> None:
        """Register an upstream producer before its first batch."""
        self.window.add_producer(producer)

    def start(self, now: float | None = None) -> list[Any]:
        """Start the stage at time ``now``: creates the first window (and its
        timers). Always returns ``[]``; called implicitly with ``None`` if needed."""
        return self._drive(self._g_start(now))

    async def astart(self, now: float | None = None) -> list[Any]:
        return await self._adrive(self._g_start(now))

    def handle_events(self, events: list[Any], producer: Hashable) -> list[Any]:
        """Process one batch from ``producer``; return the events to emit now."""
        fast = self._fast
        if fast is not None and self._started and not self._batch_fns:
            window = self.window
            assert isinstance(window, GlobalWindow)
            out, window.acc = fast(events, window.acc)
            return [] if self._discard else out
        return self._drive(self._g_events(events, producer))

    async def ahandle_events(self, events: list[Any], producer: Hashable) -> list[Any]:
        return await self._adrive(self._g_events(events, producer))

    def handle_producer_done(self, producer: Hashable) -> list[Any]:
        """One upstream producer finished normally."""
        return self._drive(self._g_producer_done(producer))

    async def ahandle_producer_done(self, producer: Hashable) -> list[Any]:
        return await self._adrive(self._g_producer_done(producer))

    def handle_done(self) -> list[Any]:
        """Every upstream finished: fire the final ``"done"`` trigger(s). Later
        calls of ``handle_done``/``handle_trigger``/``handle_time`` return ``[]``."""
        return self._drive(self._g_done())

    async def ahandle_done(self) -> list[Any]:
        return await self._adrive(self._g_done())

    def handle_trigger(self, name: Any) -> list[Any]:
        """Fire trigger ``name`` on every open window (accumulators are kept)."""
        return self._drive(self._g_trigger(name))

    async def ahandle_trigger(self, name: Any) -> list[Any]:
        return await self._adrive(self._g_trigger(name))

    def next_deadline(self) -> float | None:
        """When ``handle_time`` must next be called (``None``: no timer)."""
        if self._finished:
            return None
        deadlines: list[float] = [
            float("-inf") if p[2] is None else p[2] for p in self._periodically
        ]
        wd = self.window.next_deadline()
        if wd is not None:
            deadlines.append(wd)
        return min(deadlines) if deadlines else None

    def handle_time(self, now: float) -> list[Any]:
        """Run the timers due at ``now`` (periodic windows, lateness,
        ``trigger_periodically``)."""
        return self._drive(self._g_time(now))

    async def ahandle_time(self, now: float) -> list[Any]:
        return await self._adrive(self._g_time(now))


def make_program(layer: LayerPlan, index: int, total: int) -> StageProgram:
    """The program of stage ``index`` (0-based) of ``total`` in ``layer``."""
    return StageProgram(layer, index, total)
