"""Pure window state machines run by a stage program.

Theory of operation. Every entry point is a *generator* that yields requests
``(fn, *args)`` and receives ``fn(*args)`` back; the program's driver runs them
synchronously, or (for layers with ``async def`` callbacks) awaits the results.
The same window code therefore serves both modes, and the per-event work stays
inside the requested primitives (one request per batch, not per event).

A *core* (see ``_cores.py``) offers three generator methods over an opaque
per-window accumulator: ``new_acc()``, ``reduce(events, acc, wtype, wid) ->
(emitted, acc)`` and ``trigger(acc, info) -> (emitted, acc)``. Windows split the
raw events between accumulators and decide when to trigger:

* global: one accumulator; ``done`` at the end.
* count: cut batches every ``n`` received events; each cut fires
  ``("count", w, "done")``, discards the accumulator and starts window ``w + 1``.
* periodic: processing time; when ``now`` reaches the deadline the window is done
  and the next one starts with deadline ``now + duration``.
* fixed: event time, with the watermark rules of Elixir's Flow (see
  :class:`FixedWindow`).

Time: machines never read a clock. ``next_deadline()`` returns when they need
``time(now)``; ``float("-inf")`` means "call ``time(now)`` as soon as possible"
(used when a deadline must be set relative to the current time, which batch
handlers are not given).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable
from typing import Any, Protocol

from ._labels import labelled

__all__ = [
    "Core",
    "Gen",
    "CountWindow",
    "FixedWindow",
    "GlobalWindow",
    "PeriodicWindow",
    "PunctuationCore",
    "PunctuationResult",
    "Req",
    "WindowMachine",
]

#: What a custom trigger function returns: ``("cont", acc)``,
#: ``("cont", events, acc)`` or ``("trigger", name, pre, pos, acc)``.
PunctuationResult = tuple[Any, ...]

Req = tuple[Any, ...]
Gen = Generator[Req, Any, Any]
_ASAP = float("-inf")


class Core(Protocol):
    def new_acc(self) -> Gen: ...
    def reduce(self, events: list[Any], acc: Any, wtype: str, wid: Any) -> Gen: ...
    def trigger(self, acc: Any, info: tuple[str, Any, Any]) -> Gen: ...


class PunctuationCore:
    """Wraps a core with a custom (punctuation) trigger; acc is ``(pacc, inner)``."""

    def __init__(self, inner: Core, initial: Callable[[], Any], fn: Callable[..., Any]) -> None:
        self.inner = inner
        self.initial = initial
        self.fn = fn

    def new_acc(self) -> Gen:
        pacc = yield (self.initial,)
        iacc = yield from self.inner.new_acc()
        return (pacc, iacc)

    @labelled("window trigger")
    def reduce(self, events: list[Any], acc: Any, wtype: str, wid: Any) -> Gen:
        pacc, iacc = acc
        out: list[Any] = []
        while True:
            res = yield (self.fn, pacc, events)
            if isinstance(res, tuple) and len(res) == 5 and res[0] == "trigger":
                _, name, pre, pos, pacc = res
                emitted, iacc = yield from self.inner.reduce(list(pre), iacc, wtype, wid)
                out += emitted
                emitted, iacc = yield from self.inner.trigger(iacc, (wtype, wid, name))
                out += emitted
                events = list(pos)
                continue
            if isinstance(res, tuple) and len(res) == 3 and res[0] == "cont":
                _, chosen, pacc = res
                chosen = list(chosen)
                if chosen:
                    emitted, iacc = yield from self.inner.reduce(chosen, iacc, wtype, wid)
                    out += emitted
                return out, (pacc, iacc)
            if isinstance(res, tuple) and len(res) == 2 and res[0] == "cont":
                pacc = res[1]
                emitted, iacc = yield from self.inner.reduce(events, iacc, wtype, wid)
                out += emitted
                return out, (pacc, iacc)
            raise TypeError(
                "expected the Window.trigger function to return ('cont', acc), "
                f"('cont', events, acc) or ('trigger', name, pre, pos, acc), got: {res!r}"
            )

    def trigger(self, acc: Any, info: tuple[str, Any, Any]) -> Gen:
        pacc, iacc = acc
        emitted, iacc = yield from self.inner.trigger(iacc, info)
        return emitted, (pacc, iacc)


class WindowMachine:
    """Base class: the interface a program drives. Generators return event lists."""

    def start(self, now: float | None) -> Gen:
        return _nothing()

    def add_producer(self, producer: Hashable) -> None:
        """Register an upstream producer (matters for fixed windows)."""

    def events(self, events: list[Any], producer: Hashable) -> Gen:
        raise NotImplementedError

    def producer_done(self, producer: Hashable) -> Gen:
        return _nothing()

    def trigger(self, name: Any) -> Gen:
        raise NotImplementedError

    def done(self) -> Gen:
        raise NotImplementedError

    def time(self, now: float) -> Gen:
        return _nothing()

    def next_deadline(self) -> float | None:
        return None


class GlobalWindow(WindowMachine):
    """One window, id ``"global"``."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.acc: Any = None

    def start(self, now: float | None) -> Gen:
        self.acc = yield from self.core.new_acc()
        return []

    def events(self, events: list[Any], producer: Hashable) -> Gen:
        emitted, self.acc = yield from self.core.reduce(events, self.acc, "global", "global")
        return emitted

    def trigger(self, name: Any) -> Gen:
        emitted, self.acc = yield from self.core.trigger(self.acc, ("global", "global", name))
        return emitted

    def done(self) -> Gen:
        emitted, _ = yield from self.core.trigger(self.acc, ("global", "global", "done"))
        return emitted


class CountWindow(WindowMachine):
    """Windows of ``n`` received events, ids ``0, 1, ...``."""

    def __init__(self, core: Core, n: int) -> None:
        self.core = core
        self.n = n
        self.wid = 0
        self.remaining = n
        self.acc: Any = None

    def start(self, now: float | None) -> Gen:
        self.acc = yield from self.core.new_acc()
        return []

    def events(self, events: list[Any], producer: Hashable) -> Gen:
        out: list[Any] = []
        while events:
            chunk, events = events[: self.remaining], events[self.remaining :]
            emitted, self.acc = yield from self.core.reduce(chunk, self.acc, "count", self.wid)
            out += emitted
            self.remaining -= len(chunk)
            if self.remaining == 0:
                emitted, _ = yield from self.core.trigger(self.acc, ("count", self.wid, "done"))
                out += emitted
                self.acc = yield from self.core.new_acc()
                self.wid += 1
                self.remaining = self.n
        return out

    def trigger(self, name: Any) -> Gen:
        emitted, self.acc = yield from self.core.trigger(self.acc, ("count", self.wid, name))
        return emitted

    def done(self) -> Gen:
        emitted, _ = yield from self.core.trigger(self.acc, ("count", self.wid, "done"))
        return emitted


class PeriodicWindow(WindowMachine):
    """Processing-time windows of ``duration`` seconds, ids ``0, 1, ...``."""

    def __init__(self, core: Core, duration: float) -> None:
        self.core = core
        self.duration = duration
        self.wid = 0
        self.deadline: float | None = None
        self.finished = False
        self.acc: Any = None

    def start(self, now: float | None) -> Gen:
        self.acc = yield from self.core.new_acc()
        self.deadline = None if now is None else now + self.duration
        return []

    def events(self, events: list[Any], producer: Hashable) -> Gen:
        emitted, self.acc = yield from self.core.reduce(events, self.acc, "periodic", self.wid)
        return emitted

    def time(self, now: float) -> Gen:
        if self.finished:
            return []
        if self.deadline is None:
            self.deadline = now + self.duration
            return []
        if now < self.deadline:
            return []
        emitted, _ = yield from self.core.trigger(self.acc, ("periodic", self.wid, "done"))
        self.acc = yield from self.core.new_acc()
        self.wid += 1
        self.deadline = now + self.duration
        return emitted

    def next_deadline(self) -> float | None:
        if self.finished:
            return None
        return _ASAP if self.deadline is None else self.deadline

    def trigger(self, name: Any) -> Gen:
        emitted, self.acc = yield from self.core.trigger(self.acc, ("periodic", self.wid, name))
        return emitted

    def done(self) -> Gen:
        self.finished = True
        emitted, _ = yield from self.core.trigger(self.acc, ("periodic", self.wid, "done"))
        return emitted


class FixedWindow(WindowMachine):
    """Event-time tumbling windows with watermarks (as in Elixir's Flow).

    Windows are indexed by ``k = by(event) // duration``; the id shown to
    ``on_trigger`` is ``k * duration`` (the start timestamp). The algorithm, per
    batch from producer ``p``:

    1. Split the batch into runs of consecutive events of the same window.
    2. For each run: if ``p`` has no recent window yet, use (or create) the run's
       window; else if the window is open, add to it; else create it only when it
       is not older than ``p``'s most recent window; otherwise drop the run
       silently. ``p``'s most recent window becomes the max seen.
    3. When every registered producer has a recent window, close every window
       from the oldest open one up to (excluding) the minimum of those, gaps
       included: ``(\"fixed\", id, \"done\")`` and drop it, or with lateness
       ``(\"fixed\", id, \"watermark\")`` and keep it open for ``lateness`` seconds
       of processing time (then ``\"done\"``).

    Deviation from Flow: when a producer finishes it stops holding the watermark
    back, and closing is re-evaluated right away.
    """

    def __init__(
        self, core: Core, duration_ms: int, by_all: Callable[..., Any], lateness: float
    ) -> None:
        self.core = core
        self.duration = duration_ms
        self.by_all = by_all
        self.lateness = lateness
        self.current: int | None = None
        self.windows: dict[int, Any] = {}
        self.recent: dict[Hashable, int | None] = {}
        self.late: dict[int, float | None] = {}
        self.finished = False

    def add_producer(self, producer: Hashable) -> None:
        self.recent.setdefault(producer, None)

    def _info(self, k: int, name: Any) -> tuple[str, int, Any]:
        return ("fixed", k * self.duration, name)

    def _acc(self, k: int) -> Gen:
        if k in self.windows:
            return self.windows[k]
        return (yield from self.core.new_acc())

    def events(self, events: list[Any], producer: Hashable) -> Gen:
        self.add_producer(producer)
        stamps = yield (self.by_all, events)
        out: list[Any] = []
        recent = self.recent[producer]
        d = self.duration
        start = 0
        n = len(events)
        while start < n:
            k = _as_int(stamps[start]) // d
            end = start + 1
            while end < n and _as_int(stamps[end]) // d == k:
                end += 1
            run = events[start:end]
            start = end
            if k in self.windows:
                acc = self.windows[k]
                recent = k if recent is None else max(k, recent)
            elif recent is None or k >= recent:
                acc = yield from self.core.new_acc()
                recent = k
            else:
                continue
            emitted, acc = yield from self.core.reduce(run, acc, "fixed", k * d)
            out += emitted
            self.windows[k] = acc
        self.recent[producer] = recent
        out += yield from self._close()
        return out

    def _close(self) -> Gen:
        values = list(self.recent.values())
        if not values or any(v is None for v in values):
            return []
        low = min(v for v in values if v is not None)
        if self.current is None:
            if not self.windows:
                return []
            self.current = min(self.windows)
        out: list[Any] = []
        for k in range(self.current, low):
            acc = yield from self._acc(k)
            if self.lateness <= 0:
                emitted, _ = yield from self.core.trigger(acc, self._info(k, "done"))
                self.windows.pop(k, None)
            else:
                emitted, acc = yield from self.core.trigger(acc, self._info(k, "watermark"))
                self.windows[k] = acc
                self.late[k] = None
            out += emitted
        self.current = max(self.current, low)
        return out

    def producer_done(self, producer: Hashable) -> Gen:
        self.recent.pop(producer, None)
        if self.finished:
            return []
        return (yield from self._close())

    def time(self, now: float) -> Gen:
        out: list[Any] = []
        for k, deadline in sorted(self.late.items(), key=lambda kv: kv[0]):
            if deadline is None:
                self.late[k] = now + self.lateness
            elif now >= deadline:
                del self.late[k]
                if k in self.windows:
                    emitted, _ = yield from self.core.trigger(
                        self.windows.pop(k), self._info(k, "done")
                    )
                    out += emitted
        return out

    def next_deadline(self) -> float | None:
        if self.finished or not self.late:
            return None
        return min(_ASAP if d is None else d for d in self.late.values())

    def _trigger_all(self, name: Any) -> Gen:
        if not self.windows:
            return []
        out: list[Any] = []
        for k in range(min(self.windows), max(self.windows) + 1):
            acc = yield from self._acc(k)
            emitted, acc = yield from self.core.trigger(acc, self._info(k, name))
            self.windows[k] = acc
            out += emitted
        return out

    def trigger(self, name: Any) -> Gen:
        return (yield from self._trigger_all(name))

    def done(self) -> Gen:
        self.finished = True
        out = yield from self._trigger_all("done")
        self.windows.clear()
        self.late.clear()
        return out


def _nothing() -> Gen:
    yield from ()
    return []


@labelled("window by")
def _as_int(x: object) -> int:
    if isinstance(x, int) and not isinstance(x, bool):
        return x
    raise TypeError(
        f"Window.fixed expects the by function to return an integer (milliseconds), got: {x!r}"
    )
