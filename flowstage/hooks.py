"""Instruments: callbacks for stage lifecycle events, for logging and telemetry.

An *instrument* is an object with one or more of these methods, each called with
one small frozen record::

    on_stage_started(StageStarted)        a stage's task started
    on_stage_stopped(StageStopped)        a stage ended without failing (with its reason)
    on_stage_failed(StageFailed)          a stage's callback raised (with the exception)
    on_events_discarded(EventsDiscarded)  a bounded buffer dropped events (with the count)
    on_trigger_fired(TriggerFired)        a flow partition fired a trigger on a window

Subclass :class:`Instrument` and override the methods you need; only the methods an
instrument overrides are called, so an instrument that counts discards costs
nothing on the trigger path. Register it for the whole process::

    remove = flowstage.hooks.add_instrument(MyInstrument())
    ...
    remove()

or for a block (tests)::

    with flowstage.hooks.instrumented(MyInstrument()):
        await flow.to_list()

Guarantees:

* **No cost when nothing listens.** The engine checks one attribute of
  :data:`active` (an empty tuple when no instrument has that method) before it builds
  a record, so with no instrument registered no record is ever built.
* **A hook never breaks the flow.** An exception raised by a hook (an
  ``Exception``; ``KeyboardInterrupt`` and cancellation are not caught) is logged on
  the ``flowstage`` logger, with its traceback, the first time that method of that
  instrument raises; the instrument stays registered and later failures of the same
  method are not logged again.
* Hooks run synchronously, in the task (and thread) where the event happens, in the
  order the instruments were added. They must be quick and must not block: an
  instrument that exports somewhere slow should hand the record to a bounded queue.
* Every stage that reports ``on_stage_started`` later reports exactly one of
  ``on_stage_stopped`` or ``on_stage_failed`` when its task ends. A stage cancelled
  by its owning scope (a flow stopped or shut down, a failure elsewhere) stops with
  the reason ``"shutdown"``; one whose producer failed may stop first, with that
  exception as its reason (the failure itself is reported once, by the stage whose
  callback raised). The one exception: ``async for`` over a flow runs its
  stages in slices, so a loop left early drops its paused stages without an end
  unless the iterator is closed (``aclose()``), which reports them stopped with
  ``"shutdown"``.
* The registry is per process. The process and Ray executors run flow partitions
  in workers: their ``on_trigger_fired`` calls happen there, with the worker's own
  registry (empty unless the worker's imports register an instrument), so the
  parent's instruments do not see them. Stages that run in the parent (the sources,
  the output, the proxies to the workers) report to the parent's instruments.

Events come from these places: the stage engine (``on_stage_started``,
``on_stage_stopped``, ``on_stage_failed`` and ``on_events_discarded`` for every
:class:`~flowstage.Stage`, flow stages included), a flow partition's window machine
(``on_trigger_fired``: every trigger of every window, including the final
``"done"``, the watermark and count window ends, ``trigger_every``,
``trigger_periodically`` and the triggers sent with ``running.trigger(name)``),
and any source that drops events on its own, which reports through
:func:`emit_discarded`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = (
    "EVENT_NAMES",
    "ActiveHooks",
    "EventsDiscarded",
    "Instrument",
    "LoggingInstrument",
    "StageFailed",
    "StageStarted",
    "StageStopped",
    "TriggerFired",
    "active",
    "add_instrument",
    "emit_discarded",
    "emit_stage_failed",
    "emit_stage_started",
    "emit_stage_stopped",
    "emit_trigger_fired",
    "instrumented",
    "instruments",
    "remove_instrument",
)

_logger = logging.getLogger("flowstage")

#: The hook methods an instrument may define, in the order the docs list them.
EVENT_NAMES: Final[tuple[str, ...]] = (
    "on_stage_started",
    "on_stage_stopped",
    "on_stage_failed",
    "on_events_discarded",
    "on_trigger_fired",
)


# -- the records ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StageStarted:
    """A stage's task started (once per stage, before it handles any message)."""

    #: The stage's name (flow stages: ``flow-source0``, ``flow-layer1-stage2``, ...).
    stage: str
    #: ``"producer"``, ``"producer_consumer"`` or ``"consumer"``.
    kind: str


@dataclass(frozen=True, slots=True)
class StageStopped:
    """A stage ended without a failing callback of its own."""

    #: The stage's name.
    stage: str
    #: ``"producer"``, ``"producer_consumer"`` or ``"consumer"``.
    kind: str
    #: Why: ``"normal"``, ``"shutdown"`` (cancelled by its scope), the reason given to
    #: ``stop``, or the exception the producer it depends on failed with (that
    #: failure is reported once, by the stage whose callback raised).
    reason: object


@dataclass(frozen=True, slots=True)
class StageFailed:
    """A stage's callback raised: the stage ended and the exception propagates (the
    flow or scope that owns the stage fails with it)."""

    #: The stage's name.
    stage: str
    #: ``"producer"``, ``"producer_consumer"`` or ``"consumer"``.
    kind: str
    #: The exception the callback raised (with flowstage's notes added).
    exception: BaseException


@dataclass(frozen=True, slots=True)
class EventsDiscarded:
    """A bounded buffer dropped events."""

    #: The stage (or source) that dropped them.
    stage: str
    #: How many events were dropped this time (at least 1).
    count: int
    #: ``"buffer_full"`` for a producer buffer that overflowed (its ``buffer_keep``
    #: decides which events go); a source with its own policy names it (for example
    #: ``"drop_oldest"``).
    reason: str


@dataclass(frozen=True, slots=True)
class TriggerFired:
    """A flow partition fired a trigger on one of its windows (after the layer's
    ``on_trigger`` callback, if any, returned)."""

    #: The flow stage: ``flow-layer{layer}-stage{partition}``.
    stage: str
    #: The layer's index in the flow's plan.
    layer: int
    #: The partition (stage) index within the layer.
    partition: int
    #: The trigger's name: ``"done"``, ``"watermark"``, ``("every", n)``, the name
    #: given to ``trigger_periodically`` or sent with a trigger message, ...
    trigger: object
    #: ``"global"``, ``"count"``, ``"periodic"`` or ``"fixed"``.
    window_type: str
    #: The window's id (``"global"``, a count window's number, a fixed window's
    #: start), as ``on_trigger`` receives it.
    window: object


# -- instruments --------------------------------------------------------------------------


class Instrument:
    """Base class of instruments: every method does nothing. Override the ones you
    need; the registry calls only overridden methods (see the module docstring)."""

    def on_stage_started(self, event: StageStarted) -> None:
        """A stage's task started."""

    def on_stage_stopped(self, event: StageStopped) -> None:
        """A stage ended without failing."""

    def on_stage_failed(self, event: StageFailed) -> None:
        """A stage's callback raised."""

    def on_events_discarded(self, event: EventsDiscarded) -> None:
        """A bounded buffer dropped events."""

    def on_trigger_fired(self, event: TriggerFired) -> None:
        """A flow partition fired a trigger on a window."""


class LoggingInstrument(Instrument):
    """Logs every event: lifecycle and triggers at ``level``, discards at
    ``WARNING`` and failures at ``ERROR`` (or at ``level`` when it is higher).

    Each record carries the event as ``extra={"flowstage_event": event}``, so
    structured handlers (structlog, JSON formatters) can read its fields.

    Args:
        logger: a logger or a logger name; default ``"flowstage.hooks"``.
        level: the level of lifecycle and trigger messages (default ``INFO``).
        events: the hook names to log (default: all of :data:`EVENT_NAMES`).

    Raises:
        ValueError: ``events`` names an unknown hook, or ``level`` is not an int.
    """

    def __init__(
        self,
        logger: logging.Logger | str | None = None,
        level: int = logging.INFO,
        *,
        events: Iterable[str] | None = None,
    ) -> None:
        if isinstance(logger, str) or logger is None:
            logger = logging.getLogger(logger or "flowstage.hooks")
        elif not isinstance(logger, logging.Logger):
            raise TypeError(
                f"expected logger to be a logging.Logger, a logger name or None, got: {logger!r}"
            )
        if isinstance(level, bool) or not isinstance(level, int):
            raise ValueError(f"expected level to be a logging level (an int), got: {level!r}")
        chosen = EVENT_NAMES if events is None else tuple(events)
        if isinstance(events, str):
            chosen = (events,)
        unknown = [e for e in chosen if e not in EVENT_NAMES]
        if unknown:
            raise ValueError(
                f"expected events to name hooks among {', '.join(EVENT_NAMES)}, got: {unknown[0]!r}"
            )
        #: Where the messages go.
        self.logger: logging.Logger = logger
        #: The level of lifecycle and trigger messages.
        self.level: int = level
        #: The hooks this instrument logs.
        self.events: frozenset[str] = frozenset(chosen)

    def _log(self, hook: str, level: int, event: object, msg: str, *args: object) -> None:
        if hook in self.events and self.logger.isEnabledFor(level):
            self.logger.log(level, msg, *args, extra={"flowstage_event": event})

    def on_stage_started(self, event: StageStarted) -> None:
        self._log("on_stage_started", self.level, event, "stage %s started", event.stage)

    def on_stage_stopped(self, event: StageStopped) -> None:
        self._log(
            "on_stage_stopped",
            self.level,
            event,
            "stage %s stopped: %r",
            event.stage,
            event.reason,
        )

    def on_stage_failed(self, event: StageFailed) -> None:
        self._log(
            "on_stage_failed",
            max(self.level, logging.ERROR),
            event,
            "stage %s failed: %s: %s",
            event.stage,
            type(event.exception).__name__,
            event.exception,
        )

    def on_events_discarded(self, event: EventsDiscarded) -> None:
        self._log(
            "on_events_discarded",
            max(self.level, logging.WARNING),
            event,
            "stage %s discarded %d events (%s)",
            event.stage,
            event.count,
            event.reason,
        )

    def on_trigger_fired(self, event: TriggerFired) -> None:
        self._log(
            "on_trigger_fired",
            self.level,
            event,
            "stage %s fired trigger %r on %s window %r",
            event.stage,
            event.trigger,
            event.window_type,
            event.window,
        )

    def __repr__(self) -> str:
        return f"LoggingInstrument(logger={self.logger.name!r}, level={self.level!r})"


# -- the registry ------------------------------------------------------------------------


class ActiveHooks:
    """The hooks to call for each event, as tuples of bound methods; an empty
    (false) tuple means nothing listens. Read :data:`active`; never assign to it:
    :func:`add_instrument` and :func:`remove_instrument` replace the tuples."""

    __slots__ = EVENT_NAMES

    def __init__(self) -> None:
        #: Hooks for :class:`StageStarted`.
        self.on_stage_started: tuple[Callable[[StageStarted], object], ...] = ()
        #: Hooks for :class:`StageStopped`.
        self.on_stage_stopped: tuple[Callable[[StageStopped], object], ...] = ()
        #: Hooks for :class:`StageFailed`.
        self.on_stage_failed: tuple[Callable[[StageFailed], object], ...] = ()
        #: Hooks for :class:`EventsDiscarded`.
        self.on_events_discarded: tuple[Callable[[EventsDiscarded], object], ...] = ()
        #: Hooks for :class:`TriggerFired`.
        self.on_trigger_fired: tuple[Callable[[TriggerFired], object], ...] = ()


#: What the engine checks before it builds a record (see :class:`ActiveHooks`).
active: Final[ActiveHooks] = ActiveHooks()

_lock = threading.Lock()
#: Registered instruments, in order.
_instruments: list[Instrument] = []
#: ``(instrument id, hook name)`` pairs whose failure was already logged.
_failed: set[tuple[int, str]] = set()


def _overridden(instrument: Instrument) -> list[str]:
    """The hook methods ``instrument`` overrides (the base class's are no-ops)."""
    names = []
    for name in EVENT_NAMES:
        method = getattr(instrument, name)
        if getattr(method, "__func__", None) is getattr(Instrument, name):
            continue
        if not callable(method):
            raise TypeError(f"instrument {instrument!r} has a {name} that is not callable")
        names.append(name)
    return names


def _rebuild() -> None:
    """Recompute :data:`active` from the registered instruments (under the lock)."""
    for name in EVENT_NAMES:
        hooks = tuple(_guarded(inst, name) for inst in _instruments if name in _overridden(inst))
        setattr(active, name, hooks)


def _guarded(instrument: Instrument, name: str) -> Callable[[Any], None]:
    method = getattr(instrument, name)
    key = (id(instrument), name)

    def call(event: Any) -> None:
        try:
            method(event)
        except Exception:
            if key not in _failed:
                _failed.add(key)
                _logger.exception(
                    "flowstage instrument %r raised in %s (logged once; the flow goes on)",
                    instrument,
                    name,
                )

    return call


def add_instrument(instrument: Instrument) -> Callable[[], None]:
    """Register ``instrument`` for every stage of this process; returns a function
    that removes it again (calling that more than once does nothing). Adding an
    instrument that is already registered does nothing.

    Raises:
        TypeError: ``instrument`` is not an :class:`Instrument`.
    """
    if not isinstance(instrument, Instrument):
        raise TypeError(
            "expected instrument to be a flowstage.hooks.Instrument (subclass it and "
            f"override the on_* methods you need), got: {instrument!r}"
        )
    with _lock:
        if all(inst is not instrument for inst in _instruments):
            _overridden(instrument)  # checks before anything changes
            _instruments.append(instrument)
            _rebuild()

    def remove() -> None:
        with _lock:
            _remove(instrument)

    return remove


def _remove(instrument: Instrument) -> bool:
    for i, inst in enumerate(_instruments):
        if inst is instrument:
            del _instruments[i]
            for name in EVENT_NAMES:
                _failed.discard((id(instrument), name))
            _rebuild()
            return True
    return False


def remove_instrument(instrument: Instrument) -> None:
    """Unregister ``instrument``.

    Raises:
        ValueError: it is not registered.
    """
    with _lock:
        if not _remove(instrument):
            raise ValueError(f"instrument {instrument!r} is not registered")


def instruments() -> tuple[Instrument, ...]:
    """The registered instruments, in the order they were added."""
    with _lock:
        return tuple(_instruments)


@contextlib.contextmanager
def instrumented(*instruments: Instrument) -> Iterator[None]:
    """Register ``instruments`` for the duration of the ``with`` block (those that
    were registered before stay registered after it)."""
    removers = []
    try:
        for inst in instruments:
            with _lock:
                before = any(inst is other for other in _instruments)
            remove = add_instrument(inst)
            if not before:
                removers.append(remove)
        yield
    finally:
        for remove in reversed(removers):
            remove()


# -- emitting (the engine, executors and sources call these) --------------------------------


def emit_stage_started(stage: str, kind: str) -> None:
    """Report that stage ``stage`` started (a no-op when nothing listens)."""
    hooks = active.on_stage_started
    if hooks:
        event = StageStarted(stage, kind)
        for hook in hooks:
            hook(event)


def emit_stage_stopped(stage: str, kind: str, reason: object) -> None:
    """Report that stage ``stage`` ended with ``reason`` (a no-op when nothing listens)."""
    hooks = active.on_stage_stopped
    if hooks:
        event = StageStopped(stage, kind, reason)
        for hook in hooks:
            hook(event)


def emit_stage_failed(stage: str, kind: str, exception: BaseException) -> None:
    """Report that stage ``stage`` failed with ``exception`` (a no-op when nothing
    listens)."""
    hooks = active.on_stage_failed
    if hooks:
        event = StageFailed(stage, kind, exception)
        for hook in hooks:
            hook(event)


def emit_discarded(stage: str, count: int, reason: str = "buffer_full") -> None:
    """Report that ``stage`` dropped ``count`` events (a no-op when nothing listens
    or ``count`` is not positive). Sources with their own overflow policy call this
    for every drop, with the policy as ``reason``."""
    hooks = active.on_events_discarded
    if hooks and count > 0:
        event = EventsDiscarded(stage, count, reason)
        for hook in hooks:
            hook(event)


def emit_trigger_fired(layer: int, partition: int, info: tuple[str, Any, Any]) -> None:
    """Report that partition ``partition`` of flow layer ``layer`` fired a trigger;
    ``info`` is ``(window_type, window, trigger)`` as ``on_trigger`` receives it (a
    no-op when nothing listens)."""
    hooks = active.on_trigger_fired
    if hooks:
        wtype, window, name = info
        event = TriggerFired(
            f"flow-layer{layer}-stage{partition}", layer, partition, name, wtype, window
        )
        for hook in hooks:
            hook(event)
