"""Consume running producers as an async iterator (GenStage's ``stream``)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ._demand import DemandAccount
from ._errors import StageExited, is_normal_reason
from ._mailbox import Mailbox
from ._options import check_choice
from ._scope import OwningScope
from ._stage import Stage, check_subscribe_options
from ._subscription import CANCEL_DOWN, EVENTS, Subscription, validate_subscription

if TYPE_CHECKING:
    from types import TracebackType

T = TypeVar("T")

__all__ = ["EventSink", "EventStream", "stream"]


def stream(
    subscriptions: Sequence[Stage | tuple[Stage, Mapping[str, Any]]],
    *,
    demand: Literal["forward", "accumulate"] = "forward",
    producers: Iterable[Stage] | None = None,
) -> EventStream[Any]:
    """Consume one or more producers as an async iterator, inside a scope::

        async with flowstage.stream([producer]) as events:
            async for event in events:
                ...

    ``subscriptions`` lists producers, or ``(producer, options)`` pairs with the
    usual ``max_demand`` (default 1000), ``min_demand`` and ``cancel`` (default
    ``"permanent"``). Options are checked here, so bad ones raise at once.

    Stages that are not running yet are started inside the stream's own scope and
    stopped when the block exits. On entry the stream subscribes, asks for
    ``max_demand``, then sets the demand mode of ``producers`` (default: the
    subscribed producers) to ``demand``.

    The iteration ends when every subscription has ended normally (a ``permanent``
    subscription ending normally ends the whole stream). A producer that stops with
    an abnormal reason raises :class:`StageExited` (or its exception) unless its
    subscription is ``temporary``. Leaving the block early (``break``, an
    exception, cancellation) cancels every subscription and stops the stages the
    stream owns; no task is left behind.
    """
    if isinstance(subscriptions, (str, bytes, Mapping)) or not isinstance(subscriptions, Sequence):
        raise TypeError(f"stream expects a list of producers, got: {subscriptions!r}")
    return EventStream(subscriptions, demand, producers)


class EventStream(Generic[T]):
    """The scope returned by :func:`stream`; ``async with`` it to get the iterator."""

    def __init__(
        self,
        subscriptions: Sequence[Stage | tuple[Stage, Mapping[str, Any]]],
        demand: Literal["forward", "accumulate"],
        producers: Iterable[Stage] | None,
    ) -> None:
        check_choice("demand", demand, ("forward", "accumulate"))
        self._entries: list[tuple[Stage, Any]] = []
        for entry in subscriptions:
            if isinstance(entry, tuple):
                producer, opts = entry
                opts = dict(opts)
            else:
                producer, opts = entry, {}
            if not isinstance(producer, Stage) or not producer._produces:
                raise TypeError(f"stream expects producers, got: {producer!r}")
            try:
                options = validate_subscription(
                    opts.pop("max_demand", None),
                    opts.pop("min_demand", None),
                    opts.pop("cancel", "permanent"),
                    opts,
                )
                check_subscribe_options(producer, None, options.extra)
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"invalid options for {producer.name} producer ({exc})") from None
            self._entries.append((producer, options))
        self._demand = demand
        self._producers = list(producers) if producers is not None else None
        self._scope = OwningScope()
        self._iterator: EventSink[T] | None = None

    async def __aenter__(self) -> EventSink[T]:
        await self._scope.enter()
        try:
            to_start: list[Stage] = []
            for producer, _ in self._entries:
                if not producer._started and producer not in to_start:
                    to_start.append(producer)
            for stage in self._producers or ():
                if not stage._started and stage not in to_start:
                    to_start.append(stage)
            for stage in to_start:
                self._scope.start(stage)
            iterator: EventSink[T] = EventSink(self)
            for producer, options in self._entries:
                iterator._subscribe(producer, options)
            for stage in (
                self._producers if self._producers is not None else [p for p, _ in self._entries]
            ):
                if stage.kind == "producer" and not stage._terminated:
                    stage.set_demand(self._demand)
            self._iterator = iterator
            return iterator
        except BaseException:
            await self._scope.exit()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._iterator is not None:
            self._iterator._close()
        return await self._scope.exit(exc)


class EventSink(Generic[T]):
    """A consumer without a task: the iterator of :func:`stream`.

    It subscribes to producers and receives their events only while it is awaited
    (``async for``, :meth:`batches`, :meth:`next_batch`), so whoever iterates it
    drives its demand: the ask for a chunk is sent when the next chunk is
    requested, after the previous one was handled, so a slow loop body slows the
    producers. Executors use it directly (see :mod:`flowstage.lowlevel`) to
    consume a flow's output inside their own scope.
    """

    def __init__(self, owner: object = None) -> None:
        self._owner = self if owner is None else owner
        self._mailbox = Mailbox()
        self._subs: dict[Subscription[Any], None] = {}
        self._chunks: deque[tuple[Subscription[Any], list[T], int]] = deque()
        self._chunk: list[T] = []
        self._index = 0
        self._ask_sub: Subscription[Any] | None = None
        self._ask = 0
        self._ended = False

    def subscribe(
        self,
        producer: Stage,
        *,
        max_demand: int | None = None,
        min_demand: int | None = None,
        cancel: str = "permanent",
        **options: Any,
    ) -> None:
        """Subscribe to ``producer`` and ask for ``max_demand`` events at once.

        Options are checked as by :meth:`Stage.subscribe`. A producer that is not
        running raises :class:`StageExited` (``"noproc"``) unless ``cancel`` is
        ``"temporary"``.
        """
        if not isinstance(producer, Stage) or not producer._produces:
            raise TypeError(
                f"can only subscribe to a producer or producer_consumer, got: {producer!r}"
            )
        opts = validate_subscription(max_demand, min_demand, cancel, options)
        check_subscribe_options(producer, None, opts.extra, "subscribe")
        self._subscribe(producer, opts)

    def _subscribe(self, producer: Stage, options: Any) -> None:
        sub: Subscription[Any] = Subscription(
            producer, self._owner, self._mailbox, "stream", options
        )
        if producer._terminated or sub.producer_mailbox.closed:
            if options.cancel != "temporary":
                raise StageExited(producer.name, "noproc")
            return
        self._subs[sub] = None
        sub.account = DemandAccount(options.max_demand, options.min_demand)
        sub.connect()
        sub._ask(options.max_demand)

    def close(self) -> None:
        """Cancel every subscription; the iteration ends."""
        self._close()

    def _close(self) -> None:
        if self._ended and not self._subs:
            self._mailbox.close()
            return
        self._ended = True
        for sub in list(self._subs):
            sub.cancel("normal")
        self._subs.clear()
        self._mailbox.close()

    def __aiter__(self) -> EventSink[T]:
        return self

    async def __anext__(self) -> T:
        index = self._index
        chunk = self._chunk
        if index < len(chunk):
            self._index = index + 1
            return chunk[index]
        if not await self._next_chunk():
            raise StopAsyncIteration
        self._index = 1
        return self._chunk[0]

    async def batches(self) -> AsyncIterator[list[T]]:
        """Yield the events a chunk (at most ``max_demand - min_demand``) at a time."""
        if self._index < len(self._chunk):
            rest = self._chunk[self._index :]
            self._index = len(self._chunk)
            yield rest
        while await self._next_chunk():
            self._index = len(self._chunk)
            yield self._chunk

    async def next_batch(self) -> list[T] | None:
        """The next chunk of events (what is left of the current one first), or
        ``None`` once every subscription has ended."""
        if self._index < len(self._chunk):
            rest = self._chunk[self._index :]
            self._index = len(self._chunk)
            return rest
        if not await self._next_chunk():
            return None
        self._index = len(self._chunk)
        return self._chunk

    async def _next_chunk(self) -> bool:
        """Load the next non-empty chunk, sending the finished chunk's ask first."""
        if self._ask:
            assert self._ask_sub is not None
            if self._ask_sub in self._subs:
                self._ask_sub._ask(self._ask)
            self._ask = 0
        mailbox = self._mailbox
        queue = mailbox.queue
        while True:
            if self._chunks:
                sub, chunk, ask = self._chunks.popleft()
                self._chunk = chunk
                self._ask_sub = sub
                self._ask = ask
                return True
            if self._ended or not self._subs:
                self._ended = True
                return False
            if not queue:
                await mailbox.wait()
                continue
            msg = queue.popleft()
            code = msg[0]
            if code == EVENTS:
                sub = msg[1]
                if sub in self._subs:
                    assert sub.account is not None
                    for piece, ask in sub.account.split(msg[2]):
                        self._chunks.append((sub, piece, ask))
            elif code == CANCEL_DOWN:
                self._on_cancel(msg[1], msg[3])

    def _on_cancel(self, sub: Subscription[Any], reason: object) -> None:
        if sub not in self._subs:
            return
        del self._subs[sub]
        mode = sub.options.cancel
        if mode == "temporary":
            return
        if not is_normal_reason(reason):
            self._close()
            if isinstance(reason, BaseException):
                raise reason
            raise StageExited(sub.producer.name, reason)
        if mode == "permanent":
            self._close()
