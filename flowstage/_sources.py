"""Producers over iterables (GenStage's ``from_enumerable``)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._kinds import Producer

if TYPE_CHECKING:
    from ._subscription import Subscription
    from .dispatchers import Dispatcher

T = TypeVar("T")

__all__ = ["AsyncIterableProducer", "IterableProducer", "from_async_iterable", "from_iterable"]

OnCancel = Literal["continue", "stop"]


def _check_on_cancel(on_cancel: str) -> None:
    if on_cancel not in ("continue", "stop"):
        raise ValueError(f"on_cancel must be 'continue' or 'stop', got: {on_cancel!r}")


class IterableProducer(Producer[T]):
    """Emits the items of a synchronous iterable, exactly as many as demanded.

    Each ``handle_demand(n)`` pulls at most ``n`` items (one batch), so a large
    file never holds the event loop for longer than one batch. When the iterable is
    exhausted the producer stops normally after its last events are dispatched.
    A blocking iterator blocks the event loop: wrap blocking sources in a thread.

    ``on_cancel="stop"`` stops the producer when a cancelled subscription leaves it
    with no consumers.
    """

    def __init__(
        self,
        iterable: Iterable[T],
        *,
        on_cancel: OnCancel = "continue",
        name: str | None = None,
        buffer_size: int = 10_000,
        buffer_keep: Literal["first", "last"] = "last",
        dispatcher: Dispatcher[T] | None = None,
        demand: Literal["forward", "accumulate"] = "forward",
    ) -> None:
        if not isinstance(iterable, Iterable):
            raise TypeError(f"from_iterable expects an iterable, got: {iterable!r}")
        _check_on_cancel(on_cancel)
        self._iterator: Iterator[T] = iter(iterable)
        self._exhausted = False
        self._on_cancel = on_cancel
        super().__init__(
            name=name,
            buffer_size=buffer_size,
            buffer_keep=buffer_keep,
            dispatcher=dispatcher,
            demand=demand,
        )

    def handle_demand(self, demand: int) -> list[T] | None:
        if self._exhausted:
            return None
        items = list(itertools.islice(self._iterator, demand))
        if len(items) < demand:
            self._exhausted = True
            self.finish()
        return items

    def handle_cancel(self, reason: tuple[str, object], from_: Subscription[Any]) -> None:
        if self._on_cancel == "stop" and not self._consumers:
            self.stop("normal")


class AsyncIterableProducer(Producer[T]):
    """Emits the items of an async iterable, pulling at most the demand per call.

    Stops normally once the iterable is exhausted and its last events are out.
    """

    def __init__(
        self,
        iterable: AsyncIterable[T],
        *,
        on_cancel: OnCancel = "continue",
        name: str | None = None,
        buffer_size: int = 10_000,
        buffer_keep: Literal["first", "last"] = "last",
        dispatcher: Dispatcher[T] | None = None,
        demand: Literal["forward", "accumulate"] = "forward",
    ) -> None:
        if not isinstance(iterable, AsyncIterable):
            raise TypeError(f"from_async_iterable expects an async iterable, got: {iterable!r}")
        _check_on_cancel(on_cancel)
        self._iterator: AsyncIterator[T] = aiter(iterable)
        self._exhausted = False
        self._on_cancel = on_cancel
        super().__init__(
            name=name,
            buffer_size=buffer_size,
            buffer_keep=buffer_keep,
            dispatcher=dispatcher,
            demand=demand,
        )

    async def handle_demand(self, demand: int) -> list[T] | None:
        if self._exhausted:
            return None
        items: list[T] = []
        iterator = self._iterator
        try:
            for _ in range(demand):
                items.append(await anext(iterator))
        except StopAsyncIteration:
            self._exhausted = True
            self.finish()
        return items

    def handle_cancel(self, reason: tuple[str, object], from_: Subscription[Any]) -> None:
        if self._on_cancel == "stop" and not self._consumers:
            self.stop("normal")

    async def terminate(self, reason: object) -> None:
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def from_iterable(iterable: Iterable[T], **options: Any) -> IterableProducer[T]:
    """A producer over ``iterable``; see :class:`IterableProducer` for options."""
    return IterableProducer(iterable, **options)


def from_async_iterable(iterable: AsyncIterable[T], **options: Any) -> AsyncIterableProducer[T]:
    """A producer over an async iterable; see :class:`AsyncIterableProducer`."""
    return AsyncIterableProducer(iterable, **options)
