"""Producers over iterables (GenStage's ``from_enumerable``)."""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import anyio

from ._kinds import Producer
from ._options import (
    DEFAULT_BUFFER_SIZE,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAILBOX_LIMIT,
    check_choice,
)
from ._subscription import INTERNAL_INFO as _INTERNAL_INFO

if TYPE_CHECKING:
    from ._subscription import Subscription
    from .dispatchers import Dispatcher

T = TypeVar("T")

__all__ = ["AsyncIterableProducer", "IterableProducer", "from_async_iterable", "from_iterable"]

OnCancel = Literal["continue", "stop"]


logger = logging.getLogger("flowstage")


def _check_on_cancel(on_cancel: str) -> None:
    check_choice("on_cancel", on_cancel, ("continue", "stop"))


def _cleanup_failed(stage: str, exc: BaseException) -> None:
    logger.error(
        "the source of flowstage stage %r raised while it was being closed",
        stage,
        exc_info=(type(exc), exc, exc.__traceback__),
    )


class IterableProducer(Producer[T]):
    """Emits the items of a synchronous iterable, exactly as many as demanded.

    Each ``handle_demand(n)`` pulls at most ``n`` items (one batch), so a large
    file never holds the event loop for longer than one batch. When the iterable is
    exhausted the producer stops normally after its last events are dispatched.
    A blocking iterator blocks the event loop: wrap blocking sources in a thread.

    ``on_cancel="stop"`` stops the producer when a cancelled subscription leaves it
    with no consumers.

    However the stage ends (it finishes, is stopped, fails, or its scope is
    cancelled), a generator that did not end is closed then (``close()``), so its
    ``finally`` blocks run at once, not whenever the generator is garbage
    collected. Other iterators (an open file, say) belong to the caller and are left
    open.
    """

    def __init__(
        self,
        iterable: Iterable[T],
        *,
        on_cancel: OnCancel = "continue",
        name: str | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        buffer_keep: Literal["first", "last"] = "last",
        dispatcher: Dispatcher[T] | None = None,
        demand: Literal["forward", "accumulate"] = "forward",
        mailbox_limit: int = DEFAULT_MAILBOX_LIMIT,
    ) -> None:
        if not isinstance(iterable, Iterable):
            raise TypeError(f"from_iterable expects an iterable, got: {iterable!r}")
        _check_on_cancel(on_cancel)
        self._iterator: Iterator[T] = iter(iterable)
        # A list is taken in slices (a copy of references) rather than item by item
        # through its iterator; the items and the batches are the same, and so is
        # what a list changed during the run gives (both go by position).
        self._list: list[T] | None = iterable if type(iterable) is list else None
        self._position = 0
        self._exhausted = False
        self._on_cancel = on_cancel
        super().__init__(
            name=name,
            buffer_size=buffer_size,
            buffer_keep=buffer_keep,
            dispatcher=dispatcher,
            demand=demand,
            mailbox_limit=mailbox_limit,
        )

    async def _run(self, until: Callable[[], bool] | None = None) -> None:
        try:
            await super()._run(until)
        except BaseException:
            if self._terminated:
                self._close_generator(quiet=True)
            raise
        if self._terminated:
            self._close_generator(quiet=False)

    def _close_generator(self, quiet: bool) -> None:
        """Close a generator that did not end. An error from its cleanup is raised
        (``quiet=False``, the stage ended normally) or logged (the stage is
        already failing or cancelled)."""
        self._exhausted = True
        if not inspect.isgenerator(self._iterator):
            return
        try:
            self._iterator.close()
        except Exception as exc:
            if not quiet:
                raise
            _cleanup_failed(self.name, exc)

    async def _close_source(self) -> None:
        """Close a generator that did not end, so that its ``finally`` runs now
        (other iterators, such as open files, belong to the caller and are left
        alone)."""
        self._close_generator(quiet=False)

    def handle_demand(self, demand: int) -> list[T] | None:
        if self._exhausted:
            return None
        source = self._list
        if source is None:
            items = list(itertools.islice(self._iterator, demand))
        else:
            start = self._position
            items = source[start : start + demand]
            self._position = start + len(items)
        if len(items) < demand:
            self._exhausted = True
            self.finish()
        return items

    def handle_cancel(self, reason: tuple[str, object], from_: Subscription[Any]) -> None:
        if self._on_cancel == "stop" and not self._consumers:
            self.stop("normal")


class _Pulled:
    """The message a puller sends its producer when items are ready."""

    __slots__ = ()


_PULLED = _Pulled()


class AsyncIterableProducer(Producer[T]):
    """Emits the items of an async iterable as they arrive, never more than demanded.

    A background task owned by the stage pulls items while there is unmet demand,
    and the stage emits whatever has arrived each time it runs: an item never waits
    for the rest of a batch, so a slow or live source (a socket, a queue, a sensor)
    streams with low latency, and a fast one is still emitted in batches. Stops
    normally once the iterable is exhausted and its last events are out; a source
    that raises fails the stage with that exception (from the stage's own loop, so
    consumers in other scopes fail too), after emitting the items that arrived
    before it.

    However the stage ends (it finishes, is stopped, fails, or its scope is
    cancelled), an iterable that did not end and has ``aclose()`` (an async
    generator) is closed then, in a cleanup shielded from the cancellation, so its
    ``finally`` blocks (closing a connection, say) run at once, inside the scope
    that ran the stage, not later from the garbage collector. The cleanup gets
    :attr:`close_timeout` seconds: a source whose ``aclose()`` takes longer is
    cancelled and abandoned with a warning, so it cannot hang shutdown. An error
    raised by the cleanup fails the stage if it was ending normally, and is logged
    if the stage was already failing or cancelled.
    """

    #: Seconds a source's ``aclose()`` may take when the stage ends (subclass to change).
    close_timeout: ClassVar[float] = DEFAULT_CLOSE_TIMEOUT

    def __init__(
        self,
        iterable: AsyncIterable[T],
        *,
        on_cancel: OnCancel = "continue",
        name: str | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        buffer_keep: Literal["first", "last"] = "last",
        dispatcher: Dispatcher[T] | None = None,
        demand: Literal["forward", "accumulate"] = "forward",
        mailbox_limit: int = DEFAULT_MAILBOX_LIMIT,
    ) -> None:
        if not isinstance(iterable, AsyncIterable):
            raise TypeError(f"from_async_iterable expects an async iterable, got: {iterable!r}")
        _check_on_cancel(on_cancel)
        self._iterator: AsyncIterator[T] = aiter(iterable)
        self._exhausted = False
        self._on_cancel = on_cancel
        self._want = 0  # demand not yet met by pulled items
        self._ready: list[T] = []  # pulled, not yet emitted (at most the demand)
        self._notified = False  # a _PULLED message is on its way
        self._more: anyio.Event | None = None  # wakes the puller when demand grows
        self._pausing = False
        self._failure: Exception | None = None  # raised by the iterable, re-raised by the stage
        super().__init__(
            name=name,
            buffer_size=buffer_size,
            buffer_keep=buffer_keep,
            dispatcher=dispatcher,
            demand=demand,
            mailbox_limit=mailbox_limit,
        )

    async def _run(self, until: Callable[[], bool] | None = None) -> None:
        self._pausing = False
        try:
            async with anyio.create_task_group() as tg:
                if not self._exhausted:
                    tg.start_soon(self._pull, name=f"flowstage:{self.name}:pull")
                try:
                    await super()._run(until)
                finally:
                    if self._terminated:
                        tg.cancel_scope.cancel()  # stopping: abandon a pending pull
                    else:
                        # Paused between slices: the puller finishes the item it is
                        # waiting for (if any), then leaves.
                        self._pausing = True
                        self._wake_puller()
        except BaseException:
            # Failing or cancelled: close the source all the same (shielded).
            if self._terminated:
                await self._close_iterator(quiet=True)
            raise
        if self._terminated:
            await self._close_iterator(quiet=False)

    async def _close_iterator(self, quiet: bool) -> None:
        """Close the iterable once the puller is gone, shielded from cancellation and
        bounded by :attr:`close_timeout`. An error from its cleanup is raised
        (``quiet=False``) or logged (the stage is already failing or cancelled)."""
        self._exhausted = True
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is None:
            return
        with anyio.move_on_after(self.close_timeout, shield=True) as scope:
            try:
                await aclose()
            except Exception as exc:
                if not quiet:
                    raise
                _cleanup_failed(self.name, exc)
        if scope.cancelled_caught:
            logger.warning(
                "the source of flowstage stage %r did not close within %s s; abandoned",
                self.name,
                self.close_timeout,
            )

    async def _close_source(self) -> None:
        """Close the iterable (an async generator runs its cleanup now rather than
        whenever it is garbage collected)."""
        await self._close_iterator(quiet=False)

    def _wake_puller(self) -> None:
        more = self._more
        if more is not None:
            self._more = None
            more.set()

    async def _pull(self) -> None:
        iterator = self._iterator
        while not self._pausing:
            want = self._want
            if want <= 0:
                self._more = more = anyio.Event()
                await more.wait()
                continue
            pulled = 0
            try:
                # A pause (the driver's slice ended) stops pulling after the item
                # in flight, which the source may take its time to produce.
                while pulled < want and not self._pausing:
                    item = await anext(iterator)
                    pulled += 1
                    self._ready.append(item)  # re-read: handle_info swaps the list
                    self._notify()
            except StopAsyncIteration:
                self._exhausted = True
            except Exception as exc:
                # The stage raises it from its own loop, so that it fails like any
                # callback (its neighbours hear of the failure, not of a shutdown).
                exc.add_note(self.source_failure_note())
                self._failure = exc
            self._want -= pulled
            if self._exhausted or self._failure is not None:
                self._notify()
                return

    def source_failure_note(self) -> str:
        """The note added to an exception the async iterable raises (override to
        say more about the source)."""
        return f"raised while iterating the async iterable of flowstage stage {self.name!r}"

    def _notify(self) -> None:
        if not self._notified:
            self._notified = True
            self._mailbox.put((_INTERNAL_INFO, _PULLED))

    def handle_demand(self, demand: int) -> None:
        self._want += demand
        self._wake_puller()

    def handle_info(self, message: Any) -> list[T] | None:
        if message is not _PULLED:
            return super().handle_info(message)  # type: ignore[return-value]
        self._notified = False
        ready, self._ready = self._ready, []
        if self._failure is not None:
            self.emit(ready)  # what arrived before the failure still goes out
            raise self._failure
        if self._exhausted:
            self.finish()
        return ready

    def handle_cancel(self, reason: tuple[str, object], from_: Subscription[Any]) -> None:
        if self._on_cancel == "stop" and not self._consumers:
            self.stop("normal")


def from_iterable(iterable: Iterable[T], **options: Any) -> IterableProducer[T]:
    """A producer over ``iterable``; see :class:`IterableProducer` for options."""
    return IterableProducer(iterable, **options)


def from_async_iterable(iterable: AsyncIterable[T], **options: Any) -> AsyncIterableProducer[T]:
    """A producer over an async iterable; see :class:`AsyncIterableProducer`."""
    return AsyncIterableProducer(iterable, **options)
