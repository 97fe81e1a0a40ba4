"""Window and trigger builders (``Window``): immutable, validated descriptions.

A window splits the events a stage receives into groups, each with its own
accumulator; triggers say when a window's accumulator is handed to ``on_trigger``
(or emitted). The state machines that run them live in ``_program_window.py``.

Window types (``on_trigger`` sees ``trigger = (window_type, window_id, name)``):

* ``Window.global_()`` -- one window, id ``"global"``, done when every upstream
  producer is done.
* ``Window.count(n)`` -- ids ``0, 1, 2, ...`` per stage; a window is done after
  ``n`` events *received by the stage* (before the layer's mappers).
* ``Window.periodic(n, unit)`` -- processing-time windows, ids ``0, 1, ...`` per
  stage; each window lasts ``n unit`` from its creation.
* ``Window.fixed(n, unit, by)`` -- event-time tumbling windows: ``by(event)``
  returns an ``int`` timestamp in milliseconds and the window id is its start,
  ``by(e) // duration * duration``. Windows close on the watermark (the smallest
  "most recent window" over every upstream producer).

Triggers: ``trigger_every(n)`` (name ``("every", n)``),
``trigger_periodically(n, unit)`` (name ``("periodically", n, unit)``), and custom
punctuation triggers ``trigger(initial, f)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from .._options import check_callable, check_initial, check_positive_int, to_ms

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["EveryTrigger", "Punctuation", "PunctuationResult", "Window", "WindowType"]

WindowType = Literal["global", "count", "periodic", "fixed"]

#: What a custom trigger function returns: ``("cont", acc)``,
#: ``("cont", events, acc)`` or ``("trigger", name, pre, pos, acc)``.
PunctuationResult: TypeAlias = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Punctuation:
    """A custom (punctuation) trigger: ``initial()`` per window, ``fn(acc, events)``."""

    initial: Callable[[], Any]
    fn: Callable[[Any, list[Any]], Any]


@dataclass(frozen=True, slots=True)
class EveryTrigger:
    """``trigger_every(n)``: fire ``("every", n)`` after every ``n`` received events."""

    n: int


@dataclass(frozen=True, slots=True)
class Window:
    """An immutable window description. Build it with the class methods.

    Attributes:
        type: ``"global"``, ``"count"``, ``"periodic"`` or ``"fixed"``.
        size: events per window (count windows).
        duration_ms: window length in milliseconds (periodic and fixed windows).
        by: the event-time function of fixed windows (``int`` milliseconds).
        lateness_ms: allowed lateness (fixed windows only), 0 for none.
        punctuation: the custom (:class:`Punctuation`) or ``trigger_every``
            (:class:`EveryTrigger`) trigger, at most one.
        periodically: ``(interval_ms, name)`` processing-time triggers, in the
            order they were added.
    """

    type: WindowType = "global"
    size: int = 0
    duration_ms: int = 0
    by: Callable[[Any], Any] | None = None
    lateness_ms: int = 0
    punctuation: Punctuation | EveryTrigger | None = None
    periodically: tuple[tuple[int, tuple[str, int, str]], ...] = ()

    @property
    def timers(self) -> tuple[str, ...]:
        """What in this window runs on processing-time timers (``"Window.periodic"``,
        ``"trigger_periodically"``, ``"allowed_lateness"``); empty for none."""
        found: list[str] = []
        if self.type == "periodic":
            found.append("Window.periodic")
        if self.periodically:
            found.append("trigger_periodically")
        if self.lateness_ms:
            found.append("allowed_lateness")
        return tuple(found)

    # -- constructors ------------------------------------------------------------

    @classmethod
    def global_(cls) -> Window:
        """The default window: everything a stage receives, done at the end."""
        return cls()

    @classmethod
    def count(cls, n: int) -> Window:
        """Windows of ``n`` received events each (``n`` >= 1), numbered per stage."""
        return cls(type="count", size=check_positive_int("n", n, "Window.count"))

    @classmethod
    def periodic(cls, n: int, unit: str) -> Window:
        """Processing-time windows of ``n`` ``unit`` each."""
        return cls(type="periodic", duration_ms=to_ms(n, unit, "Window.periodic"))

    @classmethod
    def fixed(cls, n: int, unit: str, by: Callable[[Any], int]) -> Window:
        """Event-time tumbling windows of ``n`` ``unit``; ``by(event)`` must return
        an ``int`` timestamp in milliseconds (checked per event; ``TypeError``)."""
        duration = to_ms(n, unit, "Window.fixed")
        return cls(type="fixed", duration_ms=duration, by=check_callable("by", by, "Window.fixed"))

    # -- modifiers ---------------------------------------------------------------

    def allowed_lateness(self, n: int, unit: str) -> Window:
        """Keep a fixed window open ``n unit`` of processing time after its
        watermark: closing emits ``(\"fixed\", id, \"watermark\")`` first and
        ``(\"fixed\", id, \"done\")`` later. Fixed windows only."""
        if self.type != "fixed":
            raise ValueError(
                f"allowed_lateness is only supported by fixed windows "
                f"(Window.fixed), got a {self.type} window"
            )
        return replace(self, lateness_ms=to_ms(n, unit, "Window.allowed_lateness"))

    def trigger(self, initial: Callable[[], Any], fn: Callable[[Any, list[Any]], Any]) -> Window:
        """Add a custom punctuation trigger.

        ``initial()`` creates the trigger accumulator at the start of every
        window; ``fn(acc, events)`` sees each raw batch (after ``map_batch``, before
        the layer's mappers) and returns ``("cont", acc)`` (reduce the whole batch),
        ``("cont", events, acc)`` (reduce only ``events``) or
        ``("trigger", name, pre, pos, acc)`` (reduce ``pre``, fire trigger ``name``,
        then feed ``pos`` back to ``fn``). Only one per window.
        """
        self._check_one_trigger()
        init = check_initial(initial, "Window.trigger")
        return replace(
            self, punctuation=Punctuation(init, check_callable("fn", fn, "Window.trigger"))
        )

    def _check_one_trigger(self) -> None:
        if self.punctuation is not None:
            raise ValueError(
                "Window.trigger or Window.trigger_every can only be called once per window"
            )

    def trigger_every(self, n: int) -> Window:
        """Fire trigger ``("every", n)`` after every ``n`` received events
        (counted before the layer's mappers), splitting batches as needed."""
        n = check_positive_int("n", n, "Window.trigger_every")
        self._check_one_trigger()
        return replace(self, punctuation=EveryTrigger(n))

    def trigger_periodically(self, n: int, unit: str) -> Window:
        """Fire ``("periodically", n, unit)`` every ``n unit`` of processing time on
        every open window of each stage. Several may be added."""
        ms = to_ms(n, unit, "Window.trigger_periodically")
        return replace(self, periodically=(*self.periodically, (ms, ("periodically", n, unit))))
