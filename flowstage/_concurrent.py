"""A consumer that runs one coroutine per event (Elixir's ConsumerSupervisor)."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio

from ._kinds import Consumer

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

    A handler that raises stops the consumer (and its scope) with that exception.
    When the consumer stops, handlers still running are awaited first.
    """

    def __init__(
        self,
        handler: Callable[[T], Awaitable[Any]],
        *,
        name: str | None = None,
        subscribe_to: Iterable[Any] = (),
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be an async callable, got: {handler!r}")
        if not inspect.iscoroutinefunction(handler) and not inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004
        ):
            raise TypeError(f"handler must be an 'async def' function, got: {handler!r}")
        self._handler = handler
        self._tg: TaskGroup | None = None
        self._freed: dict[Subscription[Any], int] = {}
        self._active = 0
        super().__init__(name=name, subscribe_to=subscribe_to)

    @property
    def active(self) -> int:
        """Handlers running now."""
        return self._active

    async def _run(self, until: Callable[[], bool] | None = None) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await super()._run(until)

    def handle_subscribe(
        self, kind: Literal["producer", "consumer"], options: Any, from_: Any
    ) -> Literal["manual"]:
        self._freed[from_] = 0
        from_.ask(from_.max_demand)
        return "manual"

    def handle_cancel(self, reason: tuple[str, object], from_: Any) -> None:
        self._freed.pop(from_, None)

    def handle_events(self, events: list[T], from_: Subscription[T]) -> None:
        tg = self._tg
        assert tg is not None
        for event in events:
            self._active += 1
            tg.start_soon(self._child, event, from_)

    async def _child(self, event: T, sub: Subscription[T]) -> None:
        try:
            await self._handler(event)
        except Exception as exc:
            exc.add_note(f"raised by the handler of flowstage stage {self.name!r} for {event!r}")
            raise
        finally:
            self._active -= 1
        freed = self._freed.get(sub)
        if freed is None:
            return
        freed += 1
        if freed >= max(sub.min_demand, 1):
            self._freed[sub] = 0
            sub.ask(freed)
        else:
            self._freed[sub] = freed
