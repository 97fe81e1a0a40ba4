"""The stages the local executor runs: ``MapReducer`` (one per stage of a layer),
source producers, the partition dispatcher with error notes, and the timer.

Theory of operation. A :class:`MapReducer` is a ``ProducerConsumer`` wrapping a
:class:`~flowstage.flow._program.StageProgram`. Every engine callback forwards to
the program and passes the returned list to :meth:`MapReducer._output`, which
emits it under one rule: **emit only while the buffer is empty, at most
``buffer_size`` events at a time**. The engine hands emitted events to the
dispatcher up to the outstanding downstream demand and buffers only the rest, so
the buffer (bounded, and discarding on overflow) can never overflow. What cannot
be emitted yet waits in ``_pending`` and is drained by ``handle_demand``, which the
engine calls when new demand finds the buffer empty. A non-empty buffer means
downstream demand is exhausted, so the drain never stalls.

Lifecycle (as Flow.MapReducer's): the program starts at the stage's first callback;
each upstream subscription that ends normally calls ``handle_producer_done``;
when the last one has ended, ``handle_done`` fires the final triggers, the output
is drained by demand and the stage calls :meth:`~flowstage.Stage.finish`. When all
downstream consumers cancel, the stage stops normally.

Timers: after every program call the stage reads ``next_deadline()``. Deadlines
already reached (including ``-inf``) are handled at once; later ones are handed to
the flow's single :class:`Timer` task, which sends the stage a tick message when
``anyio.current_time()`` reaches them. Time is only read through anyio, so trio's
``MockClock`` drives windows and triggers in tests.

Errors: an exception raised by a user callback propagates unchanged, with one
note such as ``in flow layer 1 (map), partition 0 of 2``. The failing operation
is found by matching the traceback's code objects against the layer's callbacks.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
from collections import deque
from types import CodeType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import anyio

from .._kinds import ProducerConsumer
from .._sources import AsyncIterableProducer, IterableProducer
from ..dispatchers import DemandDispatcher, Dispatcher, PartitionDispatcher
from ._plan import Emit, LayerPlan, Mapper, OnTrigger, Uniq

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Callable, Iterable, Mapping

    from ._program import StageProgram

__all__ = [
    "BUFFER_SIZE",
    "TICK",
    "AsyncMapReducer",
    "FlowAsyncIterableProducer",
    "FlowIterableProducer",
    "FlowPartitionDispatcher",
    "MapReducer",
    "Runtime",
    "Timer",
    "Trigger",
    "add_flow_note",
    "make_dispatcher",
]

logger = logging.getLogger("flowstage")

#: The output buffer of every MapReducer, and the largest emission it makes at once.
BUFFER_SIZE: Final = 10_000

_NOTED: Final = "_flowstage_flow_noted"


class _Tick:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<flow timer tick>"


#: The message the timer sends a stage whose deadline was reached.
TICK: Final = _Tick()


class Trigger:
    """The message that fires trigger ``name`` on every open window of a stage
    (``("trigger", name)`` tuples are accepted as well, as in Flow)."""

    __slots__ = ("name",)

    def __init__(self, name: object) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Trigger({self.name!r})"


class Runtime(Protocol):
    """What stages need from the executor that owns them."""

    def subscribed(self) -> None:
        """One subscription to a flow-owned producer is established."""

    def schedule(self, deadline: float, stage: MapReducer) -> None:
        """Wake ``stage`` (with :data:`TICK`) once ``anyio.current_time() >= deadline``."""


def add_flow_note(exc: BaseException, note: str) -> None:
    """Add ``note`` to ``exc`` unless another flow note was added already (the
    innermost place that knows what failed wins)."""
    if isinstance(exc, Exception) and not getattr(exc, _NOTED, False):
        exc.add_note(note)
        with contextlib.suppress(AttributeError):  # exceptions with __slots__
            setattr(exc, _NOTED, True)


# -- describing a layer and its callbacks ------------------------------------------------


def _code_of(fn: object) -> CodeType | None:
    while isinstance(fn, functools.partial):
        fn = fn.func
    code = getattr(fn, "__code__", None)
    if isinstance(code, CodeType):
        return code
    code = getattr(type(fn).__dict__.get("__call__"), "__code__", None)
    return code if isinstance(code, CodeType) else None


def _internal_labels() -> dict[CodeType, str]:
    """Checks inside the program that fail because of what a callback returned."""
    from . import _program, _program_window

    out: dict[CodeType, str] = {}
    for module, name, label in (
        (_program, "_check_trigger_result", "on_trigger"),
        (_program, "_state_events", "reduce state to events"),
        (_program_window, "_as_int", "window by"),
    ):
        code = _code_of(getattr(module, name, None))
        if code is not None:
            out[code] = label
    punct = getattr(_program_window, "PunctuationCore", None)
    code = _code_of(getattr(punct, "reduce", None))
    if code is not None:
        out[code] = "window trigger"
    return out


def _op_names(layer: LayerPlan) -> list[str]:
    ops = layer.ops
    names: list[str] = []
    if layer.kind == "join" and layer.join is not None:
        names.append(f"{layer.join.mode} join")
    elif layer.kind == "departition":
        names.append("departition")
    names += ["map_batch"] * len(ops.map_batch)
    for m in ops.mappers:
        names.append(m.kind if isinstance(m, Mapper) else "uniq")
    if ops.reducer is not None:
        names.append("emit_and_reduce" if ops.reducer.emits else "reduce")
    if isinstance(ops.on_trigger, OnTrigger):
        names.append("on_trigger")
    elif isinstance(ops.on_trigger, Emit):
        names.append(f"emit {ops.on_trigger.mode}")
    if layer.window.type != "global":
        names.append(f"{layer.window.type} window")
    return names or ["identity"]


def describe_layer(layer: LayerPlan) -> str:
    """A short summary such as ``map, filter, reduce``."""
    return ", ".join(_op_names(layer))


class Labels:
    """Maps the code objects of a layer's callbacks to operation names."""

    def __init__(self, layer: LayerPlan) -> None:
        self.summary = describe_layer(layer)
        codes: dict[CodeType, str] = _internal_labels()
        ops = layer.ops

        def add(fn: object, label: str) -> None:
            code = _code_of(fn)
            if code is not None:
                codes[code] = label

        for b in ops.map_batch:
            add(b.fn, "map_batch")
        for m in ops.mappers:
            if isinstance(m, Uniq):
                add(m.key, "uniq_by")
            else:
                add(m.fn, m.kind)
        if ops.reducer is not None:
            name = "emit_and_reduce" if ops.reducer.emits else "reduce"
            add(ops.reducer.initial, f"{name} initial")
            add(ops.reducer.fn, name)
        if isinstance(ops.on_trigger, OnTrigger):
            add(ops.on_trigger.fn, "on_trigger")
        w = layer.window
        add(w.by, "window by")
        if w.punctuation is not None:
            add(w.punctuation.initial, "window trigger initial")
            add(w.punctuation.fn, "window trigger")
        if layer.departition is not None:
            d = layer.departition
            add(d.initial, "departition initial")
            add(d.merge, "departition merge")
            add(d.done, "departition done")
        if layer.join is not None:
            add(layer.join.join, "join")
        self.codes = codes

    def of(self, exc: BaseException) -> str:
        """The innermost known callback in ``exc``'s traceback, else the summary."""
        label = None
        tb = exc.__traceback__
        codes = self.codes
        while tb is not None:
            found = codes.get(tb.tb_frame.f_code)
            if found is not None:
                label = found
            tb = tb.tb_next
        return label or self.summary


# -- dispatchers -------------------------------------------------------------------------


class FlowPartitionDispatcher(PartitionDispatcher[Any]):
    """A partition dispatcher whose hash errors carry a note naming the flow layer
    the events were being routed to."""

    __slots__ = ("_note",)

    def __init__(
        self,
        partitions: int,
        hash: Callable[[Any], tuple[Any, int] | None] | None,
        note: str,
    ) -> None:
        super().__init__(partitions, hash=hash)
        self._note = note

    def dispatch(self, events: list[Any]) -> list[Any]:
        try:
            return super().dispatch(events)
        except Exception as exc:
            add_flow_note(exc, self._note)
            raise


def make_dispatcher(
    kind: Literal["demand", "partition"],
    partitions: int,
    hash: Callable[[Any], tuple[Any, int] | None] | None,
    consumer: LayerPlan | None,
) -> Dispatcher[Any]:
    """The dispatcher a producer uses to feed ``consumer`` (``None``: the output)."""
    if kind != "partition":
        return DemandDispatcher()
    what = "join key" if consumer is not None and consumer.kind == "join" else "partition key/hash"
    layer = "?" if consumer is None else str(consumer.index)
    note = f"in flow layer {layer} ({what}), routing events to {partitions} partitions"
    return FlowPartitionDispatcher(partitions, hash, note)


# -- sources -----------------------------------------------------------------------------


class _ReportsSubscriptions:
    """Tells the flow's runtime of every consumer that subscribes (sources start
    accumulating and are released once every subscription is made)."""

    _runtime: Runtime

    def handle_subscribe(
        self, kind: Literal["producer", "consumer"], options: Mapping[str, Any], from_: Any
    ) -> Literal["automatic"]:
        if kind == "consumer":
            self._runtime.subscribed()
        return "automatic"


class FlowIterableProducer(_ReportsSubscriptions, IterableProducer[Any]):
    """A flow source: starts in accumulate mode, reports its subscriptions."""

    def __init__(
        self, iterable: Iterable[Any], runtime: Runtime, dispatcher: Dispatcher[Any], name: str
    ) -> None:
        super().__init__(
            iterable, on_cancel="stop", name=name, dispatcher=dispatcher, demand="accumulate"
        )
        self._runtime = runtime

    def handle_demand(self, demand: int) -> list[Any] | None:
        try:
            return super().handle_demand(demand)
        except Exception as exc:
            add_flow_note(exc, f"in {self.name} (iterating the source iterable)")
            raise


class FlowAsyncIterableProducer(_ReportsSubscriptions, AsyncIterableProducer[Any]):
    """As :class:`FlowIterableProducer`, over an async iterable."""

    def __init__(
        self,
        iterable: AsyncIterable[Any],
        runtime: Runtime,
        dispatcher: Dispatcher[Any],
        name: str,
    ) -> None:
        super().__init__(
            iterable, on_cancel="stop", name=name, dispatcher=dispatcher, demand="accumulate"
        )
        self._runtime = runtime

    def _pull_failure_note(self) -> str:
        return f"in {self.name} (iterating the source async iterable)"


# -- the map-reducer stages -----------------------------------------------------------


def _is_trigger(message: object) -> tuple[bool, object]:
    if isinstance(message, Trigger):
        return True, message.name
    if isinstance(message, tuple) and len(message) == 2 and message[0] == "trigger":
        return True, message[1]
    return False, None


class MapReducer(ProducerConsumer[Any, Any]):
    """One stage of a flow layer, running a plain (synchronous) program."""

    def __init__(
        self,
        program: StageProgram,
        layer: LayerPlan,
        index: int,
        runtime: Runtime,
        dispatcher: Dispatcher[Any],
    ) -> None:
        total = layer.stages
        super().__init__(
            name=f"flow-layer{layer.index}-stage{index}",
            dispatcher=dispatcher,
            buffer_size=BUFFER_SIZE,
        )
        self._program = program
        self._layer = layer
        self._runtime = runtime
        self._labels: Labels | None = None
        self._where = f"partition {index} of {total}"
        self._prog_started = False
        #: upstream subscriptions created for this stage and not yet ended
        self._live_up = 0
        self._downstream: set[Any] = set()
        self._pending: deque[list[Any]] = deque()
        self._finishing = False
        self._finished = False
        self._armed: float | None = None

    # -- helpers shared with the async twin ----------------------------------------------

    def expect_upstream(self) -> None:
        """The executor created one more upstream subscription for this stage."""
        self._live_up += 1

    def _note(self, exc: BaseException) -> None:
        if self._labels is None:
            self._labels = Labels(self._layer)
        label = self._labels.of(exc)
        add_flow_note(exc, f"in flow layer {self._layer.index} ({label}), {self._where}")

    def _output(self, out: list[Any]) -> list[Any] | None:
        """Emit ``out`` (or queue it) without ever overflowing the buffer; see the
        module docstring. Returns what the engine may emit directly."""
        pending = self._pending
        if not pending:
            if not out:
                return None
            if len(out) <= BUFFER_SIZE and not self.estimate_buffered_count():
                return out
        if out:
            pending.append(out)
        self._flush()
        return None

    def _flush(self) -> None:
        pending = self._pending
        while pending and not self.estimate_buffered_count():
            first = pending[0]
            if len(first) <= BUFFER_SIZE:
                pending.popleft()
                self.emit(first)
            else:
                pending[0] = first[BUFFER_SIZE:]
                self.emit(first[:BUFFER_SIZE])
        if not pending and self._finishing and not self._finished:
            self._finished = True
            self.finish()

    def _arm(self, deadline: float) -> None:
        if deadline != self._armed:
            self._armed = deadline
            self._runtime.schedule(deadline, self)

    def fire(self, deadline: float) -> bool:
        """Called by the timer: send a tick if ``deadline`` is still the armed one."""
        if self._armed != deadline or not self.running:
            return True
        try:
            self.send(TICK)
        except anyio.WouldBlock:
            return False
        self._armed = None
        return True

    def _downstream_gone(self, from_: Any) -> None:
        self._downstream.discard(from_)
        if not self._downstream:
            self.stop("normal")

    # -- engine callbacks ------------------------------------------------------------------

    def _timers(self, out: list[Any]) -> list[Any]:
        program = self._program
        deadline = program.next_deadline()
        if deadline is None:
            return out
        now = anyio.current_time()
        while deadline is not None and deadline <= now:
            more = program.handle_time(now)
            if more:
                out = out + more
            deadline = program.next_deadline()
        if deadline is not None:
            self._arm(deadline)
        return out

    def _start(self) -> None:
        self._prog_started = True
        self._program.start(anyio.current_time())

    def handle_subscribe(
        self, kind: Literal["producer", "consumer"], options: Mapping[str, Any], from_: Any
    ) -> Literal["automatic"]:
        if kind == "consumer":
            self._downstream.add(from_)
            self._runtime.subscribed()
            return "automatic"
        try:
            if not self._prog_started:
                self._start()
                out = self._timers([])
                if out:
                    self._pending.append(out)
                    self._flush()  # never past the buffer, like any output
            self._program.add_producer(from_)
        except Exception as exc:
            self._note(exc)
            raise
        return "automatic"

    def handle_events(self, events: list[Any], from_: Any) -> list[Any] | None:
        try:
            out = self._timers(self._program.handle_events(events, from_))
        except Exception as exc:
            self._note(exc)
            raise
        return self._output(out)

    def handle_demand(self, demand: int) -> None:
        if self._pending:
            self._flush()

    def handle_info(self, message: Any) -> list[Any] | None:
        try:
            if message is TICK:
                out = self._timers([])
            else:
                is_trigger, name = _is_trigger(message)
                if not is_trigger:
                    logger.warning("flow stage %s ignored the message %r", self.name, message)
                    return None
                out = self._timers(self._program.handle_trigger(name))
        except Exception as exc:
            self._note(exc)
            raise
        return self._output(out)

    def handle_cancel(self, reason: tuple[str, object], from_: Any) -> list[Any] | None:
        if from_ in self._downstream:
            self._downstream_gone(from_)
            return None
        self._live_up -= 1
        if not _normal(reason[1]):
            return None  # the engine stops this stage with the same reason
        program = self._program
        try:
            out = program.handle_producer_done(from_)
            if self._live_up <= 0 and not self._finishing:
                self._finishing = True
                out = out + program.handle_done()
            out = self._timers(out)
        except Exception as exc:
            self._note(exc)
            raise
        if out:
            self._pending.append(out)
        self._flush()  # emits what fits, then finishes once nothing is pending
        return None


class AsyncMapReducer(MapReducer):
    """One stage of a flow layer whose program has ``async def`` callbacks."""

    async def _atimers(self, out: list[Any]) -> list[Any]:
        program = self._program
        deadline = program.next_deadline()
        if deadline is None:
            return out
        now = anyio.current_time()
        while deadline is not None and deadline <= now:
            more = await program.ahandle_time(now)
            if more:
                out = out + more
            deadline = program.next_deadline()
        if deadline is not None:
            self._arm(deadline)
        return out

    async def handle_subscribe(  # type: ignore[override]
        self, kind: Literal["producer", "consumer"], options: Mapping[str, Any], from_: Any
    ) -> Literal["automatic"]:
        if kind == "consumer":
            self._downstream.add(from_)
            self._runtime.subscribed()
            return "automatic"
        try:
            if not self._prog_started:
                self._prog_started = True
                await self._program.astart(anyio.current_time())
                out = await self._atimers([])
                if out:
                    self._pending.append(out)
                    self._flush()  # never past the buffer, like any output
            self._program.add_producer(from_)
        except Exception as exc:
            self._note(exc)
            raise
        return "automatic"

    async def handle_events(self, events: list[Any], from_: Any) -> list[Any] | None:  # type: ignore[override]
        try:
            out = await self._atimers(await self._program.ahandle_events(events, from_))
        except Exception as exc:
            self._note(exc)
            raise
        return self._output(out)

    async def handle_info(self, message: Any) -> list[Any] | None:  # type: ignore[override]
        try:
            if message is TICK:
                out = await self._atimers([])
            else:
                is_trigger, name = _is_trigger(message)
                if not is_trigger:
                    logger.warning("flow stage %s ignored the message %r", self.name, message)
                    return None
                out = await self._atimers(await self._program.ahandle_trigger(name))
        except Exception as exc:
            self._note(exc)
            raise
        return self._output(out)

    async def handle_cancel(  # type: ignore[override]
        self, reason: tuple[str, object], from_: Any
    ) -> list[Any] | None:
        if from_ in self._downstream:
            self._downstream_gone(from_)
            return None
        self._live_up -= 1
        if not _normal(reason[1]):
            return None
        program = self._program
        try:
            out = await program.ahandle_producer_done(from_)
            if self._live_up <= 0 and not self._finishing:
                self._finishing = True
                out = out + await program.ahandle_done()
            out = await self._atimers(out)
        except Exception as exc:
            self._note(exc)
            raise
        if out:
            self._pending.append(out)
        self._flush()  # emits what fits, then finishes once nothing is pending
        return None


def _normal(reason: object) -> bool:
    from .._errors import is_normal_reason

    return is_normal_reason(reason)


# -- the timer ---------------------------------------------------------------------------


class Timer:
    """One task per flow that wakes stages at their deadlines.

    Deadlines are kept in a heap; stale entries (a stage re-armed since) are
    skipped by :meth:`MapReducer.fire`. Time comes from ``anyio.current_time()``.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, MapReducer]] = []
        self._seq = itertools.count()
        self._wake: anyio.Event | None = None

    def schedule(self, deadline: float, stage: MapReducer) -> None:
        heap = self._heap
        if not heap or deadline < heap[0][0]:
            wake = self._wake
            if wake is not None:
                wake.set()
        heapq.heappush(heap, (deadline, next(self._seq), stage))

    async def run(self) -> None:
        heap = self._heap
        while True:
            now = anyio.current_time()
            while heap and heap[0][0] <= now:
                deadline, _, stage = heapq.heappop(heap)
                if not stage.fire(deadline):
                    # The stage's mailbox is full: try again a little later.
                    heapq.heappush(heap, (now + 0.001, next(self._seq), stage))
                    stage._armed = now + 0.001
                    break
            self._wake = wake = anyio.Event()
            with anyio.CancelScope(deadline=heap[0][0] if heap else float("inf")):
                await wake.wait()
            self._wake = None
