"""``MapReducer``: the one stage that runs a layer's program in the local executor.

Theory of operation. A :class:`MapReducer` is a ``ProducerConsumer`` wrapping a
:class:`~flowstage.program.StageProgram`. Each engine callback is written once, as
a generator that yields requests ``(program_call, *args)`` (the window machines'
pattern); a sync driver calls them, and for programs with ``async def`` callbacks
an async driver awaits them, so one class serves both.

Every callback passes the program's output to :meth:`MapReducer._output`, which
emits it under one rule: **emit only while the buffer is empty, at most
``buffer_size`` events at a time**. The engine hands emitted events to the
dispatcher up to the outstanding downstream demand and buffers only the rest, so
the buffer (bounded, and discarding on overflow) can never overflow. What cannot
be emitted yet waits in ``_pending`` and is drained by ``handle_demand``, which the
engine calls when new demand finds the buffer empty. A non-empty buffer means
downstream demand is exhausted, so the drain never stalls.

Input held back: a program that only maps, filters or expands events
(:attr:`~flowstage.program.StageProgram.streams_input`) is run on its input only
as far as downstream demand needs: each batch is held in ``_held`` and run in
pieces sized by the outstanding demand and the ratio of events out to events in
so far. A ``flat_map`` that turns a line into a dozen words then makes about as
many words as were asked for, instead of a batch's worth that wait in the buffer
(which costs memory and, in a word count, cache misses and garbage-collector
passes over the waiting lists). The outputs and their order are
those of running every batch at once. Held input is bounded by the messages the
engine hands over, which it does only against downstream demand; any other
callback (a trigger, a timer tick, an upstream ending) first runs everything held,
so it sees the stage as if nothing had been held.

Lifecycle (as Flow.MapReducer's): the program starts at the stage's first callback;
each upstream subscription that ends normally calls ``handle_producer_done``;
when the last one has ended, ``handle_done`` fires the final triggers, the output
is drained by demand and the stage calls :meth:`~flowstage.Stage.finish`. When all
downstream consumers cancel, the stage stops normally.

Timers: after every program call the stage reads ``next_deadline()``. Deadlines
already reached (including ``-inf``) are handled at once; later ones are handed to
the flow's single :class:`~._timer.Timer` task, which sends the stage a tick message
when ``anyio.current_time()`` reaches them. Time is only read through anyio, so
trio's ``MockClock`` drives windows and triggers in tests.

Errors: an exception raised by a user callback propagates unchanged, with one
note such as ``in flow layer 1 (map), partition 0 of 2`` (see
:mod:`flowstage.executors._failure`).
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections import deque
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import anyio

from ..._errors import is_normal_reason
from ..._kinds import ProducerConsumer
from ..._options import DEFAULT_BUFFER_SIZE
from ...program import Labels, StageProgram
from .._failure import note_partition_failure

if TYPE_CHECKING:
    from ...dispatchers import Dispatcher
    from ...plan import LayerPlan
    from ._timer import Timed

__all__ = ["BUFFER_SIZE", "TICK", "MapReducer", "Scheduler", "Trigger", "trigger_name"]

logger = logging.getLogger("flowstage")

#: The output buffer of every MapReducer, and the largest emission it makes at once.
BUFFER_SIZE: Final = DEFAULT_BUFFER_SIZE

#: Events run by a ``streams_input`` stage over which its out/in ratio is kept.
_RATIO_SPAN: Final = 1 << 16

#: A request to the driver: ``(callable, *args)``.
_Gen = Generator[tuple[Any, ...], Any, Any]


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


def trigger_name(message: object) -> tuple[bool, object]:
    """``(True, name)`` if ``message`` is a trigger message, else ``(False, None)``."""
    if isinstance(message, Trigger):
        return True, message.name
    if isinstance(message, tuple) and len(message) == 2 and message[0] == "trigger":
        return True, message[1]
    return False, None


class Scheduler(Protocol):
    """What a MapReducer needs from the executor that owns it."""

    def subscribed(self) -> None:
        """One subscription to a flow-owned producer is established."""

    def schedule(self, deadline: float, stage: Timed) -> None:
        """Call ``stage.fire(deadline)`` once ``anyio.current_time() >= deadline``."""


class MapReducer(ProducerConsumer[Any, Any]):
    """One stage of a flow layer (see the module docstring)."""

    def __init__(
        self,
        program: StageProgram,
        layer: LayerPlan,
        index: int,
        scheduler: Scheduler,
        dispatcher: Dispatcher[Any],
    ) -> None:
        self._program = program
        self._layer = layer
        self._index = index
        self._scheduler = scheduler
        self._labels: Labels | None = None
        self._prog_started = False
        #: upstream subscriptions created for this stage and not yet ended
        self._live_up = 0
        self._downstream: set[Any] = set()
        self._pending: deque[list[Any]] = deque()
        self._finishing = False
        self._finished = False
        self._armed: float | None = None
        #: Input not yet run (``streams_input`` programs): ``[events, start, from_]``.
        self._held: deque[list[Any]] = deque()
        #: Events run and events they gave, since the stage started (halved now and
        #: then, so that the ratio follows the input): sizes the next piece.
        self._ran_in = 0
        self._ran_out = 0
        p = program
        if p.is_async:
            self._p_start: Callable[..., Any] = p.astart
            self._p_events: Callable[..., Any] = p.ahandle_events
            self._p_time: Callable[..., Any] = p.ahandle_time
            self._p_trigger: Callable[..., Any] = p.ahandle_trigger
            self._p_producer_done: Callable[..., Any] = p.ahandle_producer_done
            self._p_done: Callable[..., Any] = p.ahandle_done
            # Instance attributes, so the engine sees coroutine functions.
            for name, callback in (
                ("handle_subscribe", self._async_subscribe),
                ("handle_events", self._async_events),
                ("handle_info", self._async_info),
                ("handle_cancel", self._async_cancel),
            ):
                setattr(self, name, callback)
        else:
            if p.streams_input:
                # Instance attributes: the engine calls these instead.
                self.handle_events = self._hold_events  # type: ignore[method-assign]
                self.handle_demand = self._run_held  # type: ignore[method-assign]
            self._p_start = p.start
            self._p_events = p.handle_events
            self._p_time = p.handle_time
            self._p_trigger = p.handle_trigger
            self._p_producer_done = p.handle_producer_done
            self._p_done = p.handle_done
        super().__init__(
            name=f"flow-layer{layer.index}-stage{index}",
            dispatcher=dispatcher,
            buffer_size=BUFFER_SIZE,
        )

    # -- helpers ------------------------------------------------------------------------

    def expect_upstream(self) -> None:
        """The executor created one more upstream subscription for this stage."""
        self._live_up += 1

    def _note(self, exc: BaseException) -> None:
        if self._labels is None:
            self._labels = Labels(self._layer)
        note_partition_failure(exc, self._layer, self._index, self._labels)

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

    # -- input held back (``streams_input`` programs) ------------------------------------

    def _run_held(self, demand: int = 0) -> list[Any] | None:
        """Meet the outstanding downstream demand from held input (also the
        ``handle_demand`` of such stages; output still pending goes first)."""
        if self._pending:
            self._flush()
            if self._pending:
                return None
        if not self._held or self.estimate_buffered_count():
            return None
        return self._output(self._run_pieces(self.downstream_demand()))

    def _hold_events(self, events: list[Any], from_: Any) -> list[Any] | None:
        """``handle_events`` of such stages: hold ``events``, run what demand needs."""
        self._held.append([events, 0, from_])
        return self._run_held()

    def _drain_held(self) -> list[Any]:
        """Run everything held (before any callback other than events)."""
        return self._run_pieces(sys.maxsize) if self._held else []

    def _run_pieces(self, want: int) -> list[Any]:
        """Run held input, oldest first, until its output reaches ``want`` events
        or nothing is held; each piece is sized by the ratio of events out to events
        in so far (one event out per event in, until some came out)."""
        held = self._held
        run = self._p_events
        out: list[Any] = []
        try:
            while held and len(out) < want:
                entry = held[0]
                events, start, from_ = entry
                need = want - len(out)
                ran_out = self._ran_out
                # Inputs expected to give ``need`` events: one each until some came out.
                end = start + (-(-need * self._ran_in // ran_out) if ran_out else need)
                if end >= len(events):
                    held.popleft()
                    piece = events[start:] if start else events
                else:
                    entry[1] = end
                    piece = events[start:end]
                got = run(piece, from_)
                self._ran_in += len(piece)
                self._ran_out += len(got)
                if self._ran_in > _RATIO_SPAN:
                    self._ran_in >>= 1
                    self._ran_out = (self._ran_out + 1) >> 1
                if not out:
                    out = got
                elif got:
                    out.extend(got)
        except Exception as exc:
            self._note(exc)
            raise
        return out

    def _arm(self, deadline: float) -> None:
        if deadline != self._armed:
            self._armed = deadline
            self._scheduler.schedule(deadline, self)

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

    def rearm(self, deadline: float) -> None:
        """The timer retries :meth:`fire` at ``deadline``."""
        self._armed = deadline

    def _downstream_gone(self, from_: Any) -> None:
        self._downstream.discard(from_)
        if not self._downstream:
            self.stop("normal")

    # -- the callbacks, written once as generators ----------------------------------------

    def _drive(self, gen: _Gen) -> Any:
        """Run ``gen``'s requests synchronously. Requests run outside the
        generator's frame, so a callback that raises StopIteration fails the stage
        instead of ending the generator; any failure gets the flow's note."""
        r: Any = None
        try:
            while True:
                try:
                    req = gen.send(r)
                except StopIteration as stop:
                    return stop.value
                r = req[0](*req[1:])
        except Exception as exc:
            self._note(exc)
            raise

    async def _adrive(self, gen: _Gen) -> Any:
        """As :meth:`_drive`, awaiting the requests that return awaitables."""
        r: Any = None
        try:
            while True:
                try:
                    req = gen.send(r)
                except StopIteration as stop:
                    return stop.value
                r = req[0](*req[1:])
                if inspect.isawaitable(r):
                    r = await r
        except Exception as exc:
            self._note(exc)
            raise

    def _g_timers(self, out: list[Any]) -> _Gen:
        program = self._program
        deadline = program.next_deadline()
        if deadline is None:
            return out
        now = anyio.current_time()
        while deadline is not None and deadline <= now:
            more = yield (self._p_time, now)
            if more:
                out = out + more
            deadline = program.next_deadline()
        if deadline is not None:
            self._arm(deadline)
        return out

    def _g_subscribe(
        self, kind: Literal["producer", "consumer"], options: Mapping[str, Any], from_: Any
    ) -> _Gen:
        if kind == "consumer":
            self._downstream.add(from_)
            self._scheduler.subscribed()
            return "automatic"
        if not self._prog_started:
            self._prog_started = True
            yield (self._p_start, anyio.current_time())
            out = yield from self._g_timers([])
            if out:
                self._pending.append(out)
                self._flush()  # never past the buffer, like any output
        self._program.add_producer(from_)
        return "automatic"

    def _g_events(self, events: list[Any], from_: Any) -> _Gen:
        out = yield (self._p_events, events, from_)
        if self._program.next_deadline() is not None:
            return (yield from self._g_after_events(out))
        return self._output(out)

    def _g_after_events(self, out: list[Any]) -> _Gen:
        out = yield from self._g_timers(out)
        return self._output(out)

    def _g_info(self, message: Any) -> _Gen:
        if message is TICK:
            out = yield from self._g_timers([])
        else:
            is_trigger, name = trigger_name(message)
            if not is_trigger:
                logger.warning("flow stage %s ignored the message %r", self.name, message)
                return None
            held = yield (self._drain_held,)
            out = yield (self._p_trigger, name)
            out = yield from self._g_timers(held + out if held else out)
        return self._output(out)

    def _g_cancel(self, reason: tuple[str, object], from_: Any) -> _Gen:
        if from_ in self._downstream:
            self._downstream_gone(from_)
            return None
        self._live_up -= 1
        if not is_normal_reason(reason[1]):
            return None  # the engine stops this stage with the same reason
        held = yield (self._drain_held,)
        out = yield (self._p_producer_done, from_)
        if held:
            out = held + out
        if self._live_up <= 0 and not self._finishing:
            self._finishing = True
            out = out + (yield (self._p_done,))
        out = yield from self._g_timers(out)
        if out:
            self._pending.append(out)
        self._flush()  # emits what fits, then finishes once nothing is pending
        return None

    # -- engine callbacks: sync programs --------------------------------------------------

    def handle_subscribe(
        self, kind: Literal["producer", "consumer"], options: Mapping[str, Any], from_: Any
    ) -> Literal["automatic"]:
        result: Literal["automatic"] = self._drive(self._g_subscribe(kind, options, from_))
        return result

    def handle_events(self, events: list[Any], from_: Any) -> list[Any] | None:
        # The hottest callback: the program is called directly, and the generator
        # driver only runs when a timer is due.
        try:
            out = self._p_events(events, from_)
        except Exception as exc:
            self._note(exc)
            raise
        if self._program.next_deadline() is not None:
            result: list[Any] | None = self._drive(self._g_after_events(out))
            return result
        return self._output(out)

    def handle_demand(self, demand: int) -> list[Any] | None:
        if self._pending:
            self._flush()
        return None

    def handle_info(self, message: Any) -> list[Any] | None:
        result: list[Any] | None = self._drive(self._g_info(message))
        return result

    def handle_cancel(self, reason: tuple[str, object], from_: Any) -> list[Any] | None:
        result: list[Any] | None = self._drive(self._g_cancel(reason, from_))
        return result

    # -- engine callbacks: programs with async callbacks -------------------------------------

    async def _async_subscribe(
        self, kind: Literal["producer", "consumer"], options: Mapping[str, Any], from_: Any
    ) -> Literal["automatic"]:
        result: Literal["automatic"] = await self._adrive(self._g_subscribe(kind, options, from_))
        return result

    async def _async_events(self, events: list[Any], from_: Any) -> list[Any] | None:
        result: list[Any] | None = await self._adrive(self._g_events(events, from_))
        return result

    async def _async_info(self, message: Any) -> list[Any] | None:
        result: list[Any] | None = await self._adrive(self._g_info(message))
        return result

    async def _async_cancel(self, reason: tuple[str, object], from_: Any) -> list[Any] | None:
        result: list[Any] | None = await self._adrive(self._g_cancel(reason, from_))
        return result
