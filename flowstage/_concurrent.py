"""A consumer that runs one coroutine per event (Elixir's ConsumerSupervisor)."""

from __future__ import annotations

import inspect
from collections import deque
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio

from ._kinds import Consumer
from ._options import DEFAULT_MAILBOX_LIMIT, check_positive_int

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from anyio.abc import TaskGroup

    from ._subscription import Subscription

T = TypeVar("T")

__all__ = ["ConcurrentConsumer"]


class ConcurrentConsumer(Consumer[T]):
    """Runs ``await handler(event)`` for every event, many at once.

    Concurrency is bounded by demand: on subscribing it asks for ``max_demand``
    events, so at most ``max_demand`` handlers run per producer. When at least
    ``min_demand`` handlers have finished (at least one when ``min_demand`` is 0) it
    asks for that many more, as ConsumerSupervisor does. Use it for I/O-bound
    work::

        ConcurrentConsumer(fetch, subscribe_to=[(urls, {"max_demand": 100})])

    ``concurrency`` caps the handlers running at once independently of demand.
    Asking for more than that keeps events waiting, so a handler that finishes
    starts the next event at once instead of waiting for the round trip of a new
    ask (the events received and not yet started stay bounded by the demand). A
    small ``min_demand`` re-asks early, before the waiting events run out::

        ConcurrentConsumer(fetch, concurrency=100,
                           subscribe_to=[(urls, {"max_demand": 200, "min_demand": 25})])

    Handlers run on long-lived worker tasks (at most ``concurrency``, or the demand
    in flight, started as needed and reused), not on one new task per event. A
    handler that raises stops the consumer (and its scope) with that exception. When
    the consumer stops, the events it already received are still handled, and it
    waits for them.

    Raises:
        TypeError: ``handler`` is not an ``async def`` callable.
        TypeError: ``concurrency`` is not an integer (or ``None``).
        ValueError: ``concurrency`` is below 1.
    """

    def __init__(
        self,
        handler: Callable[[T], Awaitable[Any]],
        *,
        name: str | None = None,
        subscribe_to: Iterable[Any] = (),
        mailbox_limit: int = DEFAULT_MAILBOX_LIMIT,
        concurrency: int | None = None,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be an async callable, got: {handler!r}")
        if not inspect.iscoroutinefunction(handler) and not inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004
        ):
            raise TypeError(f"handler must be an 'async def' function, got: {handler!r}")
        self._handler = handler
        self._concurrency = (
            None if concurrency is None else check_positive_int("concurrency", concurrency)
        )
        self._tg: TaskGroup | None = None
        self._freed: dict[Subscription[Any], int] = {}
        self._active = 0
        # Events received and not yet started: at most the demand asked for.
        self._queue: deque[tuple[T, Subscription[T]]] = deque()
        self._idle: deque[anyio.Event] = deque()
        self._workers = 0
        self._limit = 0
        self._closing = False
        super().__init__(name=name, subscribe_to=subscribe_to, mailbox_limit=mailbox_limit)

    @property
    def active(self) -> int:
        """Handlers running now."""
        return self._active

    async def _run(self, until: Callable[[], bool] | None = None) -> None:
        self._closing = False
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                try:
                    await super()._run(until)
                finally:
                    # Workers finish what is queued, then leave.
                    self._closing = True
                    self._wake_idle(len(self._idle))
        finally:
            self._tg = None
            self._workers = 0

    def handle_subscribe(
        self, kind: Literal["producer", "consumer"], options: Any, from_: Any
    ) -> Literal["manual"]:
        self._freed[from_] = 0
        self._limit += from_.max_demand
        from_.ask(from_.max_demand)
        return "manual"

    def handle_cancel(self, reason: tuple[str, object], from_: Any) -> None:
        if self._freed.pop(from_, None) is not None:
            self._limit -= from_.max_demand

    def handle_events(self, events: list[T], from_: Subscription[T]) -> None:
        tg = self._tg
        assert tg is not None
        queue = self._queue
        for event in events:
            queue.append((event, from_))
        # Wake idle workers first; start new ones only up to the demand in flight.
        missing = len(events) - self._wake_idle(len(events))
        cap = self._concurrency or max(self._limit, 1)
        while missing > 0 and self._workers < cap:
            self._workers += 1
            missing -= 1
            tg.start_soon(self._worker, name=f"flowstage:{self.name}:worker")

    def _wake_idle(self, n: int) -> int:
        woken = 0
        idle = self._idle
        while idle and woken < n:
            idle.popleft().set()
            woken += 1
        return woken

    async def _worker(self) -> None:
        """A long-lived worker: runs queued events one after the other, then waits."""
        queue = self._queue
        handler = self._handler
        try:
            while True:
                while queue:
                    event, sub = queue.popleft()
                    self._active += 1
                    try:
                        await handler(event)
                    except Exception as exc:
                        exc.add_note(
                            f"raised by the handler of flowstage stage {self.name!r} for {event!r}"
                        )
                        raise
                    finally:
                        self._active -= 1
                    self._done(sub)
                if self._closing:
                    return
                wake = anyio.Event()
                self._idle.append(wake)
                await wake.wait()
        finally:
            self._workers -= 1

    def _done(self, sub: Subscription[T]) -> None:
        freed = self._freed.get(sub)
        if freed is None:
            return
        freed += 1
        if freed >= max(sub.min_demand, 1):
            self._freed[sub] = 0
            sub.ask(freed)
        else:
            self._freed[sub] = freed
