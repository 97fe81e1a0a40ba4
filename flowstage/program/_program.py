"""Per-stage programs: the port of ``Flow.MapReducer`` for one stage.

``make_program(layer, index, total)`` returns a :class:`StageProgram`, a pure
state machine (no clock, no I/O, no anyio, no ``await`` outside the ``a*``
methods; its one side effect is reporting each trigger to the instruments of
:mod:`flowstage.hooks` in the process that runs it), so it runs in any process or
actor. The executor owns one per stage and
calls, from the stage's single loop:

* ``start(now)`` once, before anything else (``now`` from the executor's clock,
  such as ``anyio.current_time()``; ``None`` if unknown).
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

Producers are any hashable ids the executor chooses (a subscription, or a small
picklable id across processes).

Tagging formats (see :mod:`flowstage.plan`): a layer with ``output_tag`` emits one
:class:`~flowstage.plan.PartitionOutput` per trigger (events emitted right away by
``emit_and_reduce`` are dropped in such layers); a join layer receives
``(side, key, event)`` tuples (side 0 = left, 1 = right), produced by its inputs'
hash functions.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from .._options import is_async_callable
from ..plan import EveryTrigger, GroupBy, LayerPlan, Mapper, OnTrigger, Punctuation
from ._cores import BaseCore, DepartitionCore, JoinCore, call
from ._windows import (
    CountWindow,
    FixedWindow,
    Gen,
    GlobalWindow,
    PeriodicWindow,
    PunctuationCore,
    PunctuationResult,
    WindowMachine,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterable

__all__ = ["StageProgram", "every_trigger", "layer_callbacks", "make_program"]


# -- the program --------------------------------------------------------------------


def every_trigger(n: int) -> Punctuation:
    """The punctuation trigger ``Window.trigger_every(n)`` stands for: fire
    ``("every", n)`` after every ``n`` received events, splitting batches."""
    name = ("every", n)

    def initial() -> int:
        return n

    def fn(acc: int, events: list[Any]) -> PunctuationResult:
        if len(events) >= acc:
            return ("trigger", name, events[:acc], events[acc:], n)
        return ("cont", acc - len(events))

    return Punctuation(initial, fn)


def layer_callbacks(layer: LayerPlan) -> Iterable[object]:
    """Every user callback of ``layer`` (``None`` entries included)."""
    ops = layer.ops
    yield from (b.fn for b in ops.map_batch)
    for m in ops.mappers:
        yield m.fn if isinstance(m, Mapper) else m.key
    red = ops.reducer
    if isinstance(red, GroupBy):
        yield red.key
        yield red.value
    elif red is not None:
        yield red.initial
        yield red.fn
    if isinstance(ops.on_trigger, OnTrigger):
        yield ops.on_trigger.fn
    w = layer.window
    yield w.by
    if isinstance(w.punctuation, Punctuation):
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
            f is not None and is_async_callable(f) for f in layer_callbacks(layer)
        )
        base = BaseCore(layer, index, total, self.is_async)
        core: Any = base
        if layer.join is not None:
            core = JoinCore(base, layer.join, self.is_async)
        elif layer.departition is not None:
            core = DepartitionCore(base, layer.departition)
        w = layer.window
        punct = w.punctuation
        if isinstance(punct, EveryTrigger):
            punct = every_trigger(punct.n)
        if punct is not None:
            core = PunctuationCore(core, punct.initial, punct.fn)
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
        #: :meth:`handle_events` may be given any sequence that iterates, slices and
        #: has a length (a ``range`` included), not only a list: a sync program with
        #: the global window and no ``map_batch`` (whose callback gets the batch
        #: itself) whose first step iterates each batch into a new list (a mapper),
        #: or reduces it, so the batch itself never comes out.
        self.iterates_input: bool = (
            self._fast is not None
            and not self._batch_fns
            and (bool(layer.ops.mappers) or base.red is not None)
        )
        #: A batch may also be handed over in consecutive pieces, with the same
        #: outputs (concatenated) and state as handing it over at once: the program
        #: only maps, filters or expands events one by one (mappers and no reducer,
        #: the global window, no periodic trigger). An executor may then hold input
        #: back and run it as downstream demand needs its output.
        self.streams_input: bool = (
            self.iterates_input and base.red is None and not self._periodically
        )

    def _by_all(self, by: Callable[[Any], Any], join: bool) -> Callable[[list[Any]], Any]:
        def unwrap(t: Any) -> Any:
            return by(t[2])

        key = unwrap if join else by
        if self.is_async:

            async def aby_all(events: list[Any]) -> list[Any]:
                return [await call(key, e) for e in events]

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
        if not self._periodically:  # called after every batch: the common case first
            return self.window.next_deadline()
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
