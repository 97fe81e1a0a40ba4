"""Push sources: a handle to push events into a running flow (``Flow.from_push``).

:class:`PushHandle` is what application code holds (an HTTP endpoint, a callback,
a worker thread); :class:`~flowstage._push_producer.PushProducer` is the stage that
hands its events to the flow. Between them sits one bounded
:class:`~flowstage._push_buffer.PushBuffer`.

Guarantees:

* at most ``capacity`` events are held; what happens to one that does not fit is
  the ``overflow`` policy (``"block"``: the pusher waits, which is back-pressure;
  ``"drop_oldest"``/``"drop_newest"``: counted, logged on the ``flowstage`` logger at
  most every few seconds, and counted in the source stage's ``discarded``
  statistic; ``"reject"``: :class:`PushRejected`);
* the producer hands out what is buffered in batches, as much as the flow's demand
  allows, with no ``await`` per event;
* ``close()`` ends the input normally: what was accepted still goes through, then
  the source finishes (windows flush, the flow ends);
* once the handle was closed or its run ended (finished, stopped, failed), every
  push raises :class:`PushClosed` at once, naming the cause (``__cause__`` is the
  flow's failure), and pushers waiting for room are woken with it: nothing is
  accepted that would go nowhere;
* a handle feeds one run: a second run (or a flow that uses the same push source
  twice) raises ``RuntimeError`` when it starts.

Every method except :meth:`PushHandle.push_threadsafe` must be called from the
event loop the flow runs in.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import anyio
import anyio.lowlevel

from . import hooks
from ._mailbox import _current_backend
from ._options import check_choice, check_positive_int, invalid
from ._push_buffer import OVERFLOWS, DropLog, Overflow, PushBuffer, PushResult

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._push_producer import PushProducer

__all__ = ["PushClosed", "PushHandle", "PushRejected", "PushStatistics"]

T = TypeVar("T")

logger = logging.getLogger("flowstage")

#: Seconds between two log lines about drops of one push source.
DROP_LOG_INTERVAL = 5.0


class PushClosed(Exception):
    """Pushing to a push source that no longer takes events: its handle was closed,
    or the flow it feeds has ended. ``reason`` is ``"closed"``, ``"failed"`` (then
    ``__cause__`` is the flow's failure) or ``"ended"`` (the flow finished or was
    stopped)."""

    def __init__(self, message: str, reason: Literal["closed", "failed", "ended"]) -> None:
        super().__init__(message)
        self.reason: Literal["closed", "failed", "ended"] = reason


class PushRejected(Exception):
    """A push source with ``overflow="reject"`` is full: the event (or, for
    ``push_many``, every event of the call) was not accepted."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        #: How many events were refused.
        self.count: int = count


@dataclass(frozen=True, slots=True)
class PushStatistics:
    """A snapshot of a push source's counters (``PushHandle.statistics()``)."""

    #: Events handed in: accepted, dropped by ``"drop_newest"``, rejected, or
    #: waiting for room.
    pushed: int
    #: Events that entered the buffer.
    accepted: int
    #: Events dropped by the overflow policy (old ones for ``"drop_oldest"``, new
    #: ones for ``"drop_newest"``).
    dropped: int
    #: Events refused (``"reject"``, or ``push_nowait`` on a full ``"block"``
    #: source).
    rejected: int
    #: Events in the buffer, not yet handed to the flow.
    buffered: int
    #: The buffer's capacity.
    capacity: int
    #: Events whose pushers wait for room (``"block"``).
    waiting: int = 0


class _AsyncWake:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()

    def wake(self, handle: PushHandle[Any], done: bool) -> None:
        self.event.set()


class _ThreadWake:
    __slots__ = ("future",)

    def __init__(self, future: concurrent.futures.Future[PushResult]) -> None:
        self.future = future

    def wake(self, handle: PushHandle[Any], done: bool) -> None:
        if done:
            self.future.set_result("accepted")
        else:
            self.future.set_exception(handle._closed_error())


def _loop_caller() -> Callable[..., object] | None:
    """How another thread schedules a callback in the running event loop."""
    backend = _current_backend()
    if backend == "asyncio":
        return asyncio.get_running_loop().call_soon_threadsafe
    if backend == "trio":
        token = sys.modules["trio"].lowlevel.current_trio_token()
        run_sync_soon: Callable[..., object] = token.run_sync_soon
        return run_sync_soon
    return None


class PushHandle(Generic[T]):
    """Pushes events into the flow made with it (``Flow.from_push``)::

        flow, push = Flow.from_push[str](capacity=1000)
        async with flow.map(str.upper).start() as running:
            await push("event")          # waits while the buffer is full
            push.close()                 # no more input: the flow finishes
            await running.wait()

    Made by ``Flow.from_push``, which validates ``capacity`` and ``overflow``
    (``"block"``, ``"drop_oldest"``, ``"drop_newest"`` or ``"reject"``). Guarantees:
    at most ``capacity`` events are held; every drop and refusal is counted
    (:meth:`statistics`); once the handle was closed or its run ended, every push
    raises :class:`PushClosed`, naming the flow's failure if it failed; a handle
    feeds one run. Every method but :meth:`push_threadsafe` belongs to the event
    loop the flow runs in.
    """

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_call_soon",
        "_closed_by_user",
        "_drops",
        "_ended",
        "_failure",
        "_loop_thread",
        "_producer",
        "_used",
        "capacity",
        "name",
        "overflow",
    )

    def __init__(
        self,
        capacity: int = 1000,
        overflow: Overflow = "block",
        *,
        name: str | None = None,
    ) -> None:
        call = "PushHandle"
        self.capacity: int = check_positive_int("capacity", capacity, call)
        self.overflow: Overflow = check_choice("overflow", overflow, OVERFLOWS, call)
        if name is not None and not isinstance(name, str):
            raise TypeError(invalid("name", "a string or None", name, call))
        #: The name of the source stage (and of this source in messages).
        self.name: str | None = name
        self._buffer: PushBuffer[T] = PushBuffer(self.capacity, self.overflow)
        self._producer: PushProducer[T] | None = None
        self._used = False
        self._failure: Callable[[], BaseException | None] | None = None
        self._closed_by_user = False
        self._ended = False
        self._call_soon: Callable[..., object] | None = None
        self._loop_thread: int | None = None
        self._drops = DropLog(DROP_LOG_INTERVAL)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"<PushHandle {self._label} {state} capacity={self.capacity} "
            f"overflow={self.overflow!r} buffered={len(self._buffer)}>"
        )

    @property
    def _label(self) -> str:
        return f"push source {self.name!r}" if self.name else "the push source"

    # -- state ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called or the run this handle feeds ended."""
        return self._closed_by_user or self._ended

    def statistics(self) -> PushStatistics:
        """A snapshot of the counters (cheap, no ``await``)."""
        b = self._buffer
        return PushStatistics(
            pushed=b.pushed,
            accepted=b.accepted,
            dropped=b.dropped,
            rejected=b.rejected,
            buffered=len(b),
            capacity=b.capacity,
            waiting=b.waiting,
        )

    def _closed_error(self) -> PushClosed:
        failure = self._failure() if self._failure is not None else None
        if failure is not None:
            err = PushClosed(
                f"cannot push to {self._label}: the flow it feeds failed "
                f"({type(failure).__name__}: {failure})",
                "failed",
            )
            err.__cause__ = failure
            return err
        if self._closed_by_user:
            return PushClosed(f"cannot push to {self._label}: it was closed", "closed")
        return PushClosed(
            f"cannot push to {self._label}: the flow it feeds has ended (it finished or "
            "was stopped)",
            "ended",
        )

    def _check_open(self) -> None:
        if self._closed_by_user or self._ended:
            raise self._closed_error()

    # -- pushing -----------------------------------------------------------------------

    def push_nowait(self, event: T) -> PushResult:
        """Push ``event`` without waiting; returns what happened to it:
        ``"accepted"``, ``"dropped_oldest"`` (accepted, the oldest held event was
        dropped), ``"dropped_newest"`` (this event was dropped) or ``"rejected"``
        (``"reject"``, or a full ``"block"`` source: this call cannot wait).

        Raises:
            PushClosed: the handle was closed or the flow ended.
        """
        self._check_open()
        result = self._buffer.offer(event, can_wait=False)
        assert result is not None  # only a caller that can wait is asked to
        self._after(result, 1)
        return result

    async def push(self, event: T) -> PushResult:
        """Push ``event``; with ``"block"``, wait while the buffer is full. Returns
        what happened to it (see :meth:`push_nowait`; never ``"rejected"``).

        A pusher cancelled while it waits withdraws its event (one admitted at
        that very moment stays accepted; the cancellation is raised all the same).

        Raises:
            PushRejected: ``"reject"`` and the buffer is full.
            PushClosed: the handle was closed or the flow ended (also while waiting).
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        result = self._buffer.offer(event, can_wait=True)
        if result is None:
            await self._wait([event])
            return "accepted"
        self._after(result, 1)
        if result == "rejected":
            raise self._rejected(1)
        await anyio.lowlevel.cancel_shielded_checkpoint()
        return result

    __call__ = push

    async def push_many(self, events: Iterable[T]) -> int:
        """Push a batch of events, in order; returns how many of them were
        accepted. ``"block"`` waits for room as often as needed (the events are
        admitted in order as the flow takes earlier ones); ``"drop_oldest"`` keeps
        the newest; ``"drop_newest"`` takes what fits; ``"reject"`` takes all of
        them or none.

        Raises:
            PushRejected: ``"reject"`` and they do not all fit (none was accepted).
            PushClosed: the handle was closed or the flow ended (also while waiting;
                the events admitted before stay accepted).
        """
        batch = list(events)
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        b = self._buffer
        accepted, dropped, rejected = b.accepted, b.dropped, b.rejected
        room = b.room
        rest = b.offer_many(batch, can_wait=True)
        if b.dropped > dropped:
            self._note_drops(b.dropped - dropped)
        if b.rejected > rejected:
            raise self._rejected(len(batch), room)
        if b.accepted > accepted:
            self._wake_producer()
        taken = b.accepted - accepted
        if rest:
            await self._wait(rest)
            return len(batch)
        await anyio.lowlevel.cancel_shielded_checkpoint()
        return taken

    def push_threadsafe(self, event: T) -> PushResult:
        """Push ``event`` from another thread (a worker thread, a callback of a
        library that runs its own threads), as ``await push(event)`` does: with
        ``"block"`` the calling thread waits for room.

        Raises:
            PushRejected: ``"reject"`` and the buffer is full.
            PushClosed: the handle was closed or the flow ended.
            RuntimeError: the flow has not started yet, or this is the event loop's
                own thread (use ``await push(...)`` or ``push_nowait`` there).
        """
        self._check_open()
        call_soon = self._call_soon
        if call_soon is None:
            raise RuntimeError(
                f"push_threadsafe: {self._label} is not running yet (start the flow "
                "first; events pushed from the event loop before it starts are buffered)"
            )
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError(
                "push_threadsafe was called from the event loop's own thread, where "
                "waiting would block the loop: use 'await push(event)' or "
                "push_nowait(event) there"
            )
        future: concurrent.futures.Future[PushResult] = concurrent.futures.Future()
        try:
            call_soon(self._push_from_thread, event, future)
        except RuntimeError as exc:  # the event loop is gone
            raise PushClosed(
                f"cannot push to {self._label}: its event loop is no longer running", "ended"
            ) from exc
        return future.result()

    def _push_from_thread(self, event: T, future: concurrent.futures.Future[PushResult]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            self._check_open()
            result = self._buffer.offer(event, can_wait=True)
            if result is None:
                waiter = self._buffer.wait([event], _ThreadWake(future))
                if waiter.done:  # pragma: no cover - wait() only queues when full
                    future.set_result("accepted")
                return
            self._after(result, 1)
            if result == "rejected":
                raise self._rejected(1)
            future.set_result(result)
        except Exception as exc:
            future.set_exception(exc)

    def close(self) -> None:
        """End the input: no more pushes (they raise :class:`PushClosed`), pushers
        waiting for room are woken with :class:`PushClosed`, and the source
        finishes once every accepted event went into the flow. Idempotent."""
        if self._closed_by_user:
            return
        self._closed_by_user = True
        self._release_waiters()
        self._wake_producer(closing=True)

    # -- internals -----------------------------------------------------------------------

    def _after(self, result: PushResult, n: int) -> None:
        if result == "accepted":
            self._wake_producer()
        elif result == "dropped_oldest":
            self._wake_producer()
            self._note_drops(n)
        elif result == "dropped_newest":
            self._note_drops(n)

    def _rejected(self, n: int, room: int | None = None) -> PushRejected:
        if n == 1:
            return PushRejected(
                f"{self._label} is full ({self.capacity} events buffered, "
                "overflow='reject'): the event was not accepted",
                1,
            )
        return PushRejected(
            f"{n} events do not fit in {self._label} ({room} free of {self.capacity}, "
            "overflow='reject'): none was accepted",
            n,
        )

    def _note_drops(self, n: int) -> None:
        if hooks.active.on_events_discarded:
            producer = self._producer
            stage = producer.name if producer is not None else (self.name or "push-source")
            hooks.emit_discarded(stage, n, self.overflow)
        count = self._drops.note(n, time.monotonic())
        if count:
            logger.warning(
                "flowstage %s dropped %d events (overflow=%r, capacity %d); drops are "
                "logged at most every %g s and counted in its statistics",
                self._label,
                count,
                self.overflow,
                self.capacity,
                self._drops.interval,
            )

    async def _wait(self, events: list[T]) -> None:
        wake = _AsyncWake()
        waiter = self._buffer.wait(events, wake)
        if waiter.admitted:  # pragma: no cover - wait() only queues when full
            self._wake_producer()
        if waiter.done:  # pragma: no cover
            return
        try:
            await wake.event.wait()
        except BaseException:
            self._buffer.withdraw(waiter)
            raise
        if not waiter.done:
            raise self._closed_error()

    def _release_waiters(self) -> None:
        for waiter in self._buffer.clear_waiters():
            wake: _AsyncWake | _ThreadWake = waiter.token  # type: ignore[assignment]
            wake.wake(self, False)

    def _wake_producer(self, closing: bool = False) -> None:
        producer = self._producer
        if producer is not None:
            producer._pushed(closing)

    def _attach(
        self, producer: PushProducer[T], failure: Callable[[], BaseException | None] | None
    ) -> None:
        if self._used:
            raise RuntimeError(
                f"{self._label} already feeds a run: a push handle feeds one run of one "
                "flow (call Flow.from_push() again for another run, and use the flow it "
                "returns once in a flow)"
            )
        self._used = True
        self._producer = producer
        self._failure = failure
        self._bind_loop()

    def _bind_loop(self) -> None:
        """Remember the running event loop, for :meth:`push_threadsafe` (a no-op
        outside of one, or once known)."""
        if self._call_soon is None:
            self._call_soon = _loop_caller()
            if self._call_soon is not None:
                self._loop_thread = threading.get_ident()

    def _take(self, n: int) -> list[T]:
        items, woken = self._buffer.take(n)
        for waiter in woken:
            wake: _AsyncWake | _ThreadWake = waiter.token  # type: ignore[assignment]
            wake.wake(self, True)
        return items

    def _drained(self) -> bool:
        return self._closed_by_user and not len(self._buffer)

    def _end(self) -> None:
        """The run this handle feeds is over: refuse every push from now on."""
        if self._ended:
            return
        self._ended = True
        self._buffer.clear()
        self._release_waiters()
