"""The stage runtime: one coroutine task per stage, driven by its mailbox.

This module holds what all three stage kinds share: the message loop, the
consumer side (subscriptions to producers and the automatic-demand algorithm) and
the producer side (dispatcher, buffer, demand modes). ``Producer``,
``ProducerConsumer`` and ``Consumer`` in :mod:`flowstage._kinds` are thin
subclasses that pick which sides are active.

Guarantees (GenStage's):

* a consumer never receives more events on a subscription than it asked for;
* automatic demand is re-sent *after* ``handle_events`` returns, for each chunk of
  at most ``max_demand - min_demand`` events;
* a producer serves new demand from its buffer first and calls ``handle_demand``
  only with what is left;
* a producer-consumer handles inbound events only while downstream demand is
  positive, so it holds at most ``max_demand`` unprocessed events per subscription;
* every buffer is bounded (``buffer_size``); discarded events are counted, logged
  and reported to ``format_discarded``;
* instruments (:mod:`flowstage.hooks`) hear when the stage starts, stops or fails
  and when its buffer discards events.
"""

from __future__ import annotations

import inspect
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Final, Literal, TypeAlias, TypeVar

import anyio

from . import hooks
from ._buffer import Buffer
from ._demand import DemandAccount
from ._errors import StageExited, is_normal_reason, mark_failure
from ._mailbox import Mailbox
from ._options import (
    DEFAULT_BUFFER_SIZE,
    DEFAULT_MAILBOX_LIMIT,
    check_choice,
    check_option_names,
    check_positive_int,
    invalid,
)
from ._stats import StageStatistics
from ._subscription import (
    ASK,
    CALL,
    CANCEL_DOWN,
    CANCEL_UP,
    CONNECT,
    DEMAND_MODE,
    EVENTS,
    INFO,
    INTERNAL_INFO,
    MESSAGE,
    REASK,
    STOP,
    SUBSCRIBE,
    SUBSCRIPTION_OPTIONS,
    Subscription,
    SubscriptionOptions,
    validate_subscription,
)
from .dispatchers import DemandDispatcher, Dispatcher, SubscriptionRejected

logger = logging.getLogger("flowstage")

T = TypeVar("T")

__all__ = ["NOREPLY", "Reply", "Stage", "check_subscribe_options"]

StageKind = Literal["producer", "producer_consumer", "consumer"]
R = TypeVar("R")
#: Callbacks may be plain methods or ``async def``: overrides may return either.
MaybeAwaitable: TypeAlias = R | Awaitable[R]
#: What an event-emitting callback returns: events to emit, or None.
Events: TypeAlias = Iterable[Any] | None
DemandMode = Literal["forward", "accumulate"]


class _NoReply:
    __slots__ = ()

    def __repr__(self) -> str:
        return "flowstage.NOREPLY"


#: Return this from ``handle_call`` to reply later with ``from_.reply(value)``.
NOREPLY: Final = _NoReply()

#: Every stage that started and is not yet garbage: lets tests assert nothing leaked.
LIVE_STAGES: weakref.WeakSet[Stage] = weakref.WeakSet()


class _Finish:
    """A permanent buffer entry: stop with ``reason`` once everything before it is out."""

    __slots__ = ("reason",)

    def __init__(self, reason: object) -> None:
        self.reason = reason


class Reply:
    """The caller of ``Stage.call``; ``handle_call`` receives it as ``from_``."""

    __slots__ = ("_done", "_event", "_exc", "_value")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._done = False
        self._value: object = None
        self._exc: BaseException | None = None

    def reply(self, value: object) -> None:
        """Send ``value`` to the caller (only the first reply counts)."""
        if not self._done:
            self._done = True
            self._value = value
            self._event.set()

    def fail(self, exc: BaseException) -> None:
        if not self._done:
            self._done = True
            self._exc = exc
            self._event.set()

    async def wait(self) -> object:
        await self._event.wait()
        if self._exc is not None:
            raise self._exc
        return self._value


def check_subscribe_options(
    producer: Stage, consumer: object, extra: Mapping[str, Any], call: str | None = None
) -> None:
    """Check the options of a subscription beside ``max_demand``, ``min_demand`` and
    ``cancel``: each must be one the producer's dispatcher reads, or one that the
    producer or the consumer declares in ``subscription_options``; the dispatcher
    then checks their values.

    Raises:
        TypeError: an unknown option (with the closest known one), or a bad value.
        ValueError: a bad value.
    """
    dispatcher = producer._dispatcher
    assert dispatcher is not None
    if extra:
        allowed = {
            *SUBSCRIPTION_OPTIONS,
            *dispatcher.subscription_options,
            *producer.subscription_options,
        }
        if isinstance(consumer, Stage):
            allowed.update(consumer.subscription_options)
        check_option_names(extra, allowed, call)
    dispatcher.validate_subscribe(extra)


def _as_list(events: Iterable[Any] | None) -> list[Any]:
    if events is None:
        return []
    if type(events) is list:
        return events
    if isinstance(events, (str, bytes, Mapping)):
        raise TypeError(
            f"callbacks must return a list (or iterable) of events or None, got: {type(events)!r}"
        )
    return list(events)


class Stage:
    """Common runtime of all stages. Subclass ``Producer``, ``ProducerConsumer`` or
    ``Consumer`` instead of this class.

    A stage's state is the object's own attributes. Callbacks may be plain methods
    or ``async def``; while an async callback awaits, the stage handles no other
    message (as a GenStage process would not).
    """

    kind: ClassVar[StageKind]
    _produces: ClassVar[bool]
    _consumes: ClassVar[bool]

    #: Subscription options this stage's ``handle_subscribe`` reads, beside
    #: ``max_demand``, ``min_demand``, ``cancel`` and the producer dispatcher's own
    #: (``partition``, ``selector``). Any other option given to ``subscribe`` (on
    #: either side of the subscription) raises ``TypeError``, so a misspelled
    #: option is never silently ignored.
    subscription_options: ClassVar[frozenset[str]] = frozenset()

    #: A producer whose ``handle_demand`` may return a ``range`` and whose consumers
    #: take it as a batch (only executors set this, for consumers that send the
    #: batch to another process: a slice of a ``range`` travels as three integers).
    #: Every other non-list result is turned into a list.
    _range_batches: ClassVar[bool] = False

    def __init__(
        self,
        *,
        name: str | None = None,
        subscribe_to: Iterable[Any] = (),
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        buffer_keep: Literal["first", "last"] = "last",
        dispatcher: Dispatcher[Any] | None = None,
        demand: DemandMode = "forward",
        mailbox_limit: int = DEFAULT_MAILBOX_LIMIT,
    ) -> None:
        self.name: str = name or f"{type(self).__name__}@{id(self):x}"
        self._mailbox = Mailbox(check_positive_int("mailbox_limit", mailbox_limit))
        self._started = False
        self._booted = False
        self._running = False
        self._terminated = False
        self._stop_reason: object = None
        self._stopping = False
        # Consumer side.
        self._producers: dict[Subscription[Any], None] = {}
        self._initial_subscriptions: list[tuple[Stage, SubscriptionOptions]] = []
        # Producer side.
        self._consumers: dict[Subscription[Any], None] = {}
        self._buffer: Buffer[Any] | None = None
        self._dispatcher: Dispatcher[Any] | None = None
        self._demand_mode: DemandMode = "forward"  # the mode the stage works in
        self._requested_mode: DemandMode = "forward"  # the mode last asked for
        self._accumulated: list[tuple[str, Any]] = []
        self._accumulated_events = 0
        self._unmet = 0
        # Producer-consumer side: downstream demand not yet met, and inbound queue.
        self._pc_counter = 0
        self._pc_queue: deque[tuple[Any, ...]] = deque()
        # Counters.
        self._events_in = 0
        self._events_out = 0
        self._batches_in = 0
        self._batches_out = 0
        self._discarded = 0
        self._busy = 0.0
        self._messages = 0
        self._pending_replies: set[Reply] = set()

        if self._produces:
            check_choice("buffer_keep", buffer_keep, ("first", "last"))
            check_choice("demand", demand, ("forward", "accumulate"))
            self._buffer = Buffer(buffer_size, buffer_keep)
            if dispatcher is None:
                dispatcher = DemandDispatcher()
            elif not isinstance(dispatcher, Dispatcher):
                raise TypeError(
                    "dispatcher must be a flowstage.dispatchers.Dispatcher instance "
                    "(DemandDispatcher, BroadcastDispatcher or PartitionDispatcher), "
                    f"got: {dispatcher!r}"
                )
            self._dispatcher = dispatcher
            self._demand_mode = self._requested_mode = demand
        if self._consumes:
            if isinstance(subscribe_to, Stage | str | bytes | Mapping):
                raise TypeError(
                    invalid(
                        "subscribe_to",
                        "a list of producers or (producer, options) pairs",
                        subscribe_to,
                        type(self).__name__,
                    )
                )
            for entry in subscribe_to:
                self._initial_subscriptions.append(self._subscribe_entry(entry))
        elif subscribe_to:
            raise TypeError(f"{self.kind} stages cannot subscribe to other stages")

        # A producer-consumer may implement handle_demand to emit from its own state.
        self._pc_demand_hook = self.kind == "producer_consumer" and callable(
            getattr(self, "handle_demand", None)
        )
        # Which callbacks are coroutine functions: decided once, not per call.
        self._async: dict[str, bool] = {
            cb: inspect.iscoroutinefunction(getattr(self, cb, None))
            for cb in (
                "handle_demand",
                "handle_events",
                "handle_subscribe",
                "handle_cancel",
                "handle_info",
                "handle_call",
                "terminate",
            )
        }

    # ------------------------------------------------------------------ callbacks

    def handle_subscribe(
        self, kind: Literal["producer", "consumer"], options: Mapping[str, Any], from_: Any
    ) -> MaybeAwaitable[Literal["automatic", "manual"] | None]:
        """A subscription starts. ``kind`` is ``"producer"`` on the consumer side
        (return ``"manual"`` to control demand with ``from_.ask(n)``) and
        ``"consumer"`` on the producer side (which must stay automatic)."""
        return "automatic"

    def handle_cancel(self, reason: tuple[str, object], from_: Any) -> MaybeAwaitable[Events]:
        """A subscription ended: ``reason`` is ``("cancel", r)`` or ``("down", r)``."""
        return None

    def handle_info(self, message: Any) -> MaybeAwaitable[Events]:
        """A message sent with ``send`` or ``async_info``."""
        logger.warning("stage %s received an unhandled message: %r", self.name, message)
        return None

    def handle_call(self, request: Any, from_: Reply) -> Any:
        """A request made with ``await stage.call(request)``; return the reply, or
        :data:`NOREPLY` and reply later with ``from_.reply(value)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement handle_call")

    def format_discarded(self, discarded: int) -> bool:
        """Called when the buffer discards events; return False to skip the warning."""
        return True

    def terminate(self, reason: object) -> Any:
        """Called once when the stage stops by ``stop``/``finish`` or a cancelled
        subscription (not when a callback raises or its scope cancels it).

        May be ``async def``.
        """
        return None

    # ------------------------------------------------------------------ public API

    def emit(self, events: Iterable[Any]) -> None:
        """Emit events from any callback of a producer or producer-consumer.

        They are dispatched at once (or buffered, or held in accumulate mode).
        """
        if not self._produces:
            raise TypeError(f"{self.kind} stage {self.name} cannot emit events")
        self._emit(_as_list(events))

    def stop(self, reason: object = "normal") -> None:
        """Stop the stage after the current callback (or the current message).

        ``"normal"``, ``"shutdown"`` and ``("shutdown", x)`` are normal reasons;
        any other reason makes the owning scope raise :class:`StageExited`.
        """
        if self._stopping or self._terminated:
            return
        self._stopping = True
        self._stop_reason = reason
        self._mailbox.put((STOP,))

    def send(self, message: Any) -> None:
        """Deliver ``message`` to ``handle_info`` (raises ``anyio.WouldBlock`` when
        the mailbox's external limit is reached)."""
        self._mailbox.put_external_nowait((MESSAGE, message))

    async def send_wait(self, message: Any) -> None:
        """As :meth:`send`, but waits for room in the mailbox instead of raising."""
        await self._mailbox.put_external((MESSAGE, message))

    def async_info(self, message: Any) -> None:
        """Deliver ``message`` to ``handle_info`` only after every event buffered
        before it has been dispatched (GenStage's ``async_info``)."""
        self._mailbox.put_external_nowait((INFO, message))

    async def sync_info(self, message: Any) -> None:
        """As :meth:`async_info`, but waits for room in the mailbox."""
        await self._mailbox.put_external((INFO, message))

    async def call(self, request: Any) -> Any:
        """Send ``request`` to ``handle_call`` and wait for the reply.

        Events the callback emits are dispatched before the reply is sent.
        Raises :class:`StageExited` if the stage stops before replying.
        """
        if self._terminated:
            raise StageExited(self.name, "noproc")
        reply = Reply()
        await self._mailbox.put_external((CALL, request, reply))
        return await reply.wait()

    def finish(self, reason: object = "normal") -> None:
        """Stop once every event emitted so far has been dispatched.

        Events still in the buffer wait for demand as usual, so a finishing stage
        loses nothing (use :meth:`stop` to stop at once).
        """
        self._mailbox.put((INFO, _Finish(reason)))

    @property
    def demand_mode(self) -> DemandMode:
        """``"forward"`` or ``"accumulate"`` (producers only): the mode last set,
        by the constructor or by :meth:`set_demand` (already the new mode right
        after ``set_demand`` returns, while the stage may not have switched yet, as
        GenStage's ``demand/1``, a call, sees every earlier ``demand/2``)."""
        return self._requested_mode

    def set_demand(self, mode: DemandMode) -> None:
        """Switch a producer between ``"forward"`` and ``"accumulate"``.

        ``"accumulate"`` holds incoming demand *and* emitted events, in order;
        ``"forward"`` replays them. Use it to let every consumer subscribe before
        events start flowing.
        """
        check_choice("demand", mode, ("forward", "accumulate"))
        if self.kind != "producer":
            raise TypeError("set_demand applies to producers only")
        self._mailbox.put_external_nowait((DEMAND_MODE, mode))
        self._requested_mode = mode

    def estimate_buffered_count(self) -> int:
        """Events held in the buffer (info messages are not counted)."""
        return len(self._buffer) if self._buffer is not None else 0

    @property
    def running(self) -> bool:
        return self._running

    def statistics(self) -> StageStatistics:
        """An immutable snapshot of the stage's counters."""
        if self._consumes:
            outstanding = sum(
                s.account.demand if s.account is not None else 0 for s in self._producers
            )
        else:
            outstanding = self._unmet
        buffered = 0
        size = 0
        if self._buffer is not None and self._dispatcher is not None:
            buffered = len(self._buffer) + self._dispatcher.queued() + self._accumulated_events
            size = self._buffer.size
        return StageStatistics(
            name=self.name,
            kind=self.kind,
            running=self._running,
            events_in=self._events_in,
            events_out=self._events_out,
            batches_in=self._batches_in,
            batches_out=self._batches_out,
            demand_outstanding=outstanding,
            buffered=buffered,
            buffer_size=size,
            discarded=self._discarded,
            mailbox=len(self._mailbox.queue),
            producers=len(self._producers),
            consumers=len(self._consumers),
            busy_seconds=self._busy,
        )

    def subscribe(
        self,
        producer: Stage,
        *,
        max_demand: int | None = None,
        min_demand: int | None = None,
        cancel: str = "permanent",
        **options: Any,
    ) -> Subscription[Any]:
        """Subscribe this consumer to ``producer`` (GenStage's ``sync_subscribe``).

        Options are checked now: bad ones raise ``ValueError``/``TypeError``. The
        subscription starts when this stage handles it; with automatic demand the
        consumer then asks for ``max_demand`` events. Extra keyword options (for
        example ``partition=`` or ``selector=``) go to the producer's dispatcher.
        """
        opts = self._check_subscription(producer, max_demand, min_demand, cancel, options)
        return self._connect(producer, opts)

    def _check_subscription(
        self,
        producer: object,
        max_demand: object,
        min_demand: object,
        cancel: object,
        options: Mapping[str, Any],
    ) -> SubscriptionOptions:
        """Every check of a subscription of this stage to ``producer``."""
        if not self._consumes:
            raise TypeError(f"{self.name} is a producer and cannot subscribe to other stages")
        if not isinstance(producer, Stage) or not producer._produces:
            raise TypeError(
                f"can only subscribe to a producer or producer_consumer, got: {producer!r}"
            )
        if producer is self:
            raise ValueError(
                invalid("producer", "another stage (a stage cannot subscribe to itself)", producer)
            )
        opts = validate_subscription(max_demand, min_demand, cancel, options)  # type: ignore[arg-type]
        check_subscribe_options(producer, self, opts.extra)
        return opts

    def _subscribe_entry(self, entry: object) -> tuple[Stage, SubscriptionOptions]:
        """One entry of ``subscribe_to``, checked now (as ``subscribe`` would)."""
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], Mapping):
            producer, given = entry
            given = dict(given)
        elif isinstance(entry, tuple):
            raise TypeError(
                invalid(
                    "subscribe_to",
                    "a list of producers or (producer, options) pairs with a dict of options",
                    entry,
                    type(self).__name__,
                )
            )
        else:
            producer, given = entry, {}
        opts = self._check_subscription(
            producer,
            given.pop("max_demand", None),
            given.pop("min_demand", None),
            given.pop("cancel", "permanent"),
            given,
        )
        return producer, opts

    def _connect(self, producer: Stage, opts: SubscriptionOptions) -> Subscription[Any]:
        sub: Subscription[Any] = Subscription(producer, self, self._mailbox, self.name, opts)
        self._mailbox.put((CONNECT, sub))
        return sub

    def resubscribe(
        self,
        subscription: Subscription[Any],
        reason: object,
        producer: Stage,
        **options: Any,
    ) -> Subscription[Any]:
        """Cancel ``subscription`` with ``reason``, then subscribe to ``producer``
        (GenStage's ``sync_resubscribe``). Returns the new subscription."""
        new = self.subscribe(producer, **options)
        subscription.cancel(reason)
        return new

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # ------------------------------------------------------------------ the loop

    def _wake(self) -> None:
        """Wake the stage so that a ``_run(until=...)`` slice notices its condition."""
        self._mailbox.put((STOP,))

    def _claim(self) -> None:
        """Mark the stage as started by a scope (called before its task is spawned)."""
        if self._started:
            raise RuntimeError(f"stage {self.name} was already started")
        self._started = True
        self._running = True

    async def _run(self, until: Callable[[], bool] | None = None) -> None:
        """The stage's task. Returns on a normal stop; raises on failure.

        With ``until``, the loop also returns (without stopping the stage) as soon
        as ``until()`` is true at a message boundary; calling ``_run`` again resumes
        it. This lets a driver run stages in slices inside its own task group (see
        :meth:`_wake`), so that no task exists between slices.
        """
        if not self._started:
            self._claim()
        LIVE_STAGES.add(self)
        self._running = True
        mailbox = self._mailbox
        queue = mailbox.queue
        try:
            if not self._booted:
                self._booted = True
                if hooks.active.on_stage_started:
                    hooks.emit_stage_started(self.name, self.kind)
                for producer, opts in self._initial_subscriptions:
                    self._connect(producer, opts)
            handled = 0
            clock = time.perf_counter
            while not self._stopping:
                if until is not None and until():
                    self._running = False
                    return
                if not queue or handled >= 64:
                    handled = 0
                    await mailbox.wait()
                    continue
                msg = queue.popleft()
                handled += 1
                self._messages += 1
                t0 = clock()
                await self._handle(msg)
                self._busy += clock() - t0
            await self._terminate(self._stop_reason)
            if hooks.active.on_stage_stopped:
                hooks.emit_stage_stopped(self.name, self.kind, self._stop_reason)
        except BaseException as exc:
            self._running = False
            self._terminated = True
            # Neighbours in other scopes must hear of it, as of any exit: a failure
            # travels as its exception, a cancellation by the owning scope as
            # "shutdown".
            down: object = exc if isinstance(exc, Exception) else "shutdown"
            self._notify_neighbours(down)
            self._close(down)
            if isinstance(exc, Exception):
                mark_failure(exc)
                if not getattr(exc, "_flowstage_noted", False):
                    exc.add_note(f"raised in flowstage stage {self.name!r}")
                    exc._flowstage_noted = True  # type: ignore[attr-defined]
                if hooks.active.on_stage_failed:
                    hooks.emit_stage_failed(self.name, self.kind, exc)
            elif hooks.active.on_stage_stopped:
                hooks.emit_stage_stopped(self.name, self.kind, "shutdown")
            raise
        reason = self._stop_reason
        if isinstance(reason, BaseException):
            mark_failure(reason)
            raise reason
        if not is_normal_reason(reason):
            raise StageExited(self.name, reason)

    async def _invoke(self, name: str, *args: Any) -> Any:
        result = getattr(self, name)(*args)
        if self._async[name]:
            result = await result
        return result

    async def _handle(self, msg: tuple[Any, ...]) -> None:
        code = msg[0]
        if code == EVENTS:
            await self._on_events(msg[1], msg[2])
        elif code == ASK:
            sub = msg[1]
            n = sub.take_pending_ask()
            if sub not in self._consumers:
                sub.consumer_mailbox.put((CANCEL_DOWN, sub, "cancel", "unknown_subscription"))
            elif n:
                await self._on_ask(n, sub)
        elif code == REASK:
            if msg[1] in self._consumers:
                await self._on_ask(msg[2], msg[1])
        elif code == CONNECT:
            await self._on_connect(msg[1])
        elif code == SUBSCRIBE:
            await self._on_subscribe(msg[1])
        elif code == CANCEL_UP:
            await self._on_cancel_up(msg[1], msg[2])
        elif code == CANCEL_DOWN:
            if self.kind == "producer_consumer" and self._pc_queue:
                self._pc_queue.append(msg)
            else:
                await self._on_cancel_down(msg[1], msg[2], msg[3])
        elif code == INTERNAL_INFO:
            await self._deliver_info(msg[1])
        else:
            if code != STOP and not (code == INFO and isinstance(msg[1], _Finish)):
                self._mailbox.external_done()
            if code == MESSAGE:
                self._emit(_as_list(await self._invoke("handle_info", msg[1])))
            elif code == INFO:
                await self._on_info(msg[1])
            elif code == CALL:
                await self._on_call(msg[1], msg[2])
            elif code == DEMAND_MODE:
                await self._on_demand_mode(msg[1])

    # ------------------------------------------------------------------ consumer side

    async def _on_connect(self, sub: Subscription[Any]) -> None:
        producer = sub.producer
        self._producers[sub] = None
        if producer._terminated or sub.producer_mailbox.closed:
            logger.error(
                "stage %s was not able to subscribe to %s because it is not running",
                self.name,
                producer.name,
            )
            await self._on_cancel_down(sub, "down", "noproc")
            return
        # The producer hears of the subscription before any ask the callback makes.
        sub.connect()
        mode = await self._invoke("handle_subscribe", "producer", sub.options.extra, sub)
        if mode is None or mode == "automatic":
            sub.manual = False
        elif mode == "manual":
            sub.manual = True
        else:
            raise TypeError(
                f"handle_subscribe must return 'automatic', 'manual' or None, got: {mode!r}"
            )
        if not sub.manual:
            sub.account = DemandAccount(sub.options.max_demand, sub.options.min_demand)
            sub._ask(sub.options.max_demand)

    async def _on_events(self, sub: Subscription[Any], batch: list[Any]) -> None:
        if sub not in self._producers:
            sub.producer_mailbox.put((CANCEL_UP, sub, "unknown_subscription"))
            return
        self._events_in += len(batch)
        self._batches_in += 1
        account = sub.account
        if self.kind == "consumer":
            if account is None:
                await self._consume(batch, sub)
                return
            for chunk, ask in account.split(batch):
                await self._consume(chunk, sub)
                if ask:
                    sub._ask(ask)
                if self._stopping:
                    return
        else:
            # One queue entry per incoming message: once its first chunk is
            # handled, the rest follow (as GenStage's consumer_dispatch does).
            chunks = [(batch, 0)] if account is None else account.split(batch)
            queue = self._pc_queue
            if not queue and self._pc_counter > 0 and not self._async["handle_events"]:
                # What _take_pc_events would do at once, without the queue.
                self._handle_chunks(sub, chunks)
                return
            queue.append((EVENTS, sub, chunks))
            await self._take_pc_events()

    async def _consume(self, events: list[Any], sub: Subscription[Any]) -> None:
        result = self.handle_events(events, sub)  # type: ignore[attr-defined]
        if self._async["handle_events"]:
            result = await result
        if result:
            logger.error(
                "consumer %s cannot dispatch events (handle_events must return None or [])",
                self.name,
            )

    async def _take_pc_events(self) -> None:
        queue = self._pc_queue
        while queue and self._pc_counter > 0 and not self._stopping:
            item = queue.popleft()
            code = item[0]
            if code == EVENTS:
                sub = item[1]
                if not self._async["handle_events"]:
                    self._handle_chunks(sub, item[2])
                    continue
                for chunk, ask in item[2]:
                    if sub not in self._producers or self._stopping:
                        break
                    result = await self.handle_events(chunk, sub)  # type: ignore[attr-defined]
                    if result:
                        self._emit(result if type(result) is list else _as_list(result))
                    if ask:
                        sub._ask(ask)
            elif code == CANCEL_DOWN:
                await self._on_cancel_down(item[1], item[2], item[3])
            else:  # a queued info
                self._emit(_as_list(await self._invoke("handle_info", item[1])))

    def _handle_chunks(self, sub: Subscription[Any], chunks: list[tuple[list[Any], int]]) -> None:
        """Hand one message's chunks to a synchronous ``handle_events``, asking
        upstream after each (a producer_consumer's inbound path)."""
        handle = self.handle_events  # type: ignore[attr-defined]
        for chunk, ask in chunks:
            if sub not in self._producers or self._stopping:
                break
            result = handle(chunk, sub)
            if result:
                self._emit(result if type(result) is list else _as_list(result))
            if ask:
                sub._ask(ask)

    async def _on_cancel_down(self, sub: Subscription[Any], kind: str, reason: object) -> None:
        if sub not in self._producers:
            return
        del self._producers[sub]
        self._emit_from(await self._invoke("handle_cancel", (kind, reason), sub))
        mode = sub.options.cancel
        if reason == "already_subscribed" or mode == "temporary":
            return
        if mode == "permanent" or not is_normal_reason(reason):
            if self._produces and is_normal_reason(reason):
                # Ending normally: deliver what is already buffered first.
                await self._on_info(_Finish(reason))
            else:
                self.stop(reason)

    # ------------------------------------------------------------------ producer side

    async def _on_subscribe(self, sub: Subscription[Any]) -> None:
        mode = await self._invoke("handle_subscribe", "consumer", sub.options.extra, sub)
        if mode not in (None, "automatic"):
            raise TypeError(
                f"handle_subscribe on a producer must return 'automatic' or None, got: {mode!r}"
            )
        dispatcher = self._dispatcher
        assert dispatcher is not None
        try:
            demand = dispatcher.subscribe(sub, sub.owner, sub.options.extra)
        except SubscriptionRejected as rejected:
            logger.error("stage %s refused a subscription: %s", self.name, rejected)
            sub.consumer_mailbox.put((CANCEL_DOWN, sub, "cancel", rejected.reason))
            return
        self._consumers[sub] = None
        self._flush_dispatcher()
        if demand:
            await self._serve(demand)

    async def _on_cancel_up(self, sub: Subscription[Any], reason: object) -> None:
        if sub not in self._consumers:
            sub.consumer_mailbox.put((CANCEL_DOWN, sub, "cancel", reason))
            return
        del self._consumers[sub]
        self._emit_from(await self._invoke("handle_cancel", ("cancel", reason), sub))
        dispatcher = self._dispatcher
        assert dispatcher is not None
        demand = dispatcher.cancel(sub)
        self._flush_dispatcher()
        sub.consumer_mailbox.put((CANCEL_DOWN, sub, "cancel", reason))
        if demand:
            await self._serve(demand)

    async def _on_ask(self, n: int, sub: Subscription[Any]) -> None:
        dispatcher = self._dispatcher
        assert dispatcher is not None
        demand = dispatcher.ask(n, sub)
        if dispatcher.deliveries or dispatcher.ready_infos or dispatcher.reasks:
            self._flush_dispatcher()
        if demand:
            await self._serve(demand)

    async def _serve(self, demand: int) -> None:
        """Meet ``demand``: from the buffer first, then ``handle_demand``.

        In accumulate mode what the buffer cannot meet is recorded (each demand on
        its own, never summed) and replayed by :meth:`_produce` on ``forward``.
        """
        buffer = self._buffer
        assert buffer is not None
        if len(buffer) or buffer.infos:
            demand = await self._take_from_buffer(demand)
        if self._demand_mode == "accumulate":
            if demand > 0:
                self._accumulated.append(("demand", demand))
            return
        await self._produce(demand)

    async def _produce(self, demand: int) -> None:
        if self.kind == "producer":
            if demand > 0:
                self._unmet += demand
                result = self.handle_demand(demand)  # type: ignore[attr-defined]
                if self._async["handle_demand"]:
                    result = await result
                if result:
                    if type(result) is not list and not (
                        type(result) is range and self._range_batches
                    ):
                        result = _as_list(result)
                    self._emit(result)
        else:
            self._pc_counter += demand
            if demand > 0 and self._pc_demand_hook:
                result = await self._invoke("handle_demand", demand)
                if result:
                    self._emit(_as_list(result))
            await self._take_pc_events()

    async def _take_from_buffer(self, counter: int) -> int:
        buffer = self._buffer
        assert buffer is not None
        while True:
            events, infos, left = buffer.take(counter)
            if not events and not infos:
                return counter
            if events:
                self._dispatch(events)
            for info in infos:
                self._dispatch_info(info)
            counter = left
            if self._stopping:
                return counter

    def _emit_from(self, result: Any) -> None:
        if result:
            if not self._produces:
                logger.error(
                    "consumer %s cannot dispatch events (callbacks must return None or [])",
                    self.name,
                )
                return
            self._emit(_as_list(result))

    def _emit(self, events: list[Any]) -> None:
        if not events:
            return
        if not self._produces:
            logger.error("consumer %s cannot dispatch events", self.name)
            return
        if self._unmet:
            # Whatever callback emitted them (handle_demand, handle_info, ...).
            self._unmet = max(self._unmet - len(events), 0)
        if self._demand_mode == "accumulate":
            buffer = self._buffer
            assert buffer is not None
            room = buffer.size - self._accumulated_events
            if len(events) > room:
                self._record_discard(len(events) - max(room, 0))
                events = events[: max(room, 0)]
                if not events:
                    return
            self._accumulated_events += len(events)
            self._accumulated.append(("events", events))
            return
        self._dispatch(events)

    def _dispatch(self, events: list[Any]) -> None:
        dispatcher = self._dispatcher
        assert dispatcher is not None
        leftover = dispatcher.dispatch(events)
        if self.kind == "producer_consumer":
            # Downstream demand shrinks by what was actually handed out.
            self._pc_counter = max(self._pc_counter - (len(events) - len(leftover)), 0)
        self._flush_dispatcher()
        if leftover:
            buffer = self._buffer
            assert buffer is not None
            if type(leftover) is not list:  # a range batch (see _range_batches)
                leftover = list(leftover)
            discarded, released = buffer.store(leftover)
            if discarded:
                self._record_discard(discarded)
            for info in released:
                self._dispatch_info(info)

    def _record_discard(self, count: int) -> None:
        self._discarded += count
        if hooks.active.on_events_discarded:
            hooks.emit_discarded(self.name, count)
        if self.format_discarded(count):
            logger.warning(
                "flowstage producer %s has discarded %d events from buffer", self.name, count
            )

    def _flush_dispatcher(self) -> None:
        dispatcher = self._dispatcher
        assert dispatcher is not None
        deliveries = dispatcher.deliveries
        if deliveries:
            dispatcher.deliveries = []
            for sub, batch in deliveries:
                self._events_out += len(batch)
                self._batches_out += 1
                sub.consumer_mailbox.put((EVENTS, sub, batch))  # type: ignore[attr-defined]
        if dispatcher.ready_infos:
            infos = dispatcher.ready_infos
            dispatcher.ready_infos = []
            for info in infos:
                self._mailbox.put((INTERNAL_INFO, info))
        if dispatcher.reasks:
            reasks = dispatcher.reasks
            dispatcher.reasks = []
            for sub, n in reasks:
                self._mailbox.put((REASK, sub, n))

    def _dispatch_info(self, info: object) -> None:
        dispatcher = self._dispatcher
        assert dispatcher is not None
        dispatcher.info(info)
        self._flush_dispatcher()

    async def _on_info(self, message: object) -> None:
        if self.kind == "consumer":
            await self._deliver_info(message)
        elif self.kind == "producer_consumer" and self._pc_queue:
            self._pc_queue.append((INFO, message))
        else:
            buffer = self._buffer
            assert buffer is not None
            if self._demand_mode == "accumulate" and self._accumulated:
                self._accumulated.append(("info", message))
            elif not buffer.store_info(message):
                self._dispatch_info(message)

    async def _deliver_info(self, message: object) -> None:
        if isinstance(message, _Finish):
            self.stop(message.reason)
            return
        self._emit(_as_list(await self._invoke("handle_info", message)))

    async def _on_call(self, request: object, reply: Reply) -> None:
        self._pending_replies.add(reply)
        try:
            value = await self._invoke("handle_call", request, reply)
        except BaseException as exc:
            reply.fail(StageExited(self.name, exc))
            raise
        if value is not NOREPLY:
            reply.reply(value)
        if reply._done:
            self._pending_replies.discard(reply)

    async def _on_demand_mode(self, mode: DemandMode) -> None:
        if mode == "accumulate":
            self._demand_mode = "accumulate"
            return
        self._demand_mode = "forward"
        while self._accumulated and self._demand_mode == "forward" and not self._stopping:
            what, value = self._accumulated.pop(0)
            if what == "demand":
                await self._produce(value)
            elif what == "events":
                self._accumulated_events -= len(value)
                self._dispatch(value)
            else:
                await self._on_info(value)

    # ------------------------------------------------------------------ termination

    async def _terminate(self, reason: object) -> None:
        self._running = False
        self._terminated = True
        self._notify_neighbours(reason)
        self._close(reason)
        await self._invoke("terminate", reason)

    def _notify_neighbours(self, reason: object) -> None:
        for sub in list(self._consumers):
            sub.consumer_mailbox.put((CANCEL_DOWN, sub, "down", reason))
        self._consumers.clear()
        for sub in list(self._producers):
            sub.producer_mailbox.put((CANCEL_UP, sub, reason))
        self._producers.clear()

    def _close(self, reason: object) -> None:
        """Close the mailbox. Callers waiting for a reply fail with ``noproc``, and a
        consumer whose subscription was still queued hears that this producer went
        down with ``reason`` (as a GenStage consumer monitoring its producer from
        the moment it subscribed would), so it never waits for a producer that is
        gone."""
        for msg in self._mailbox.close():
            code = msg[0]
            if code == CALL:
                msg[2].fail(StageExited(self.name, "noproc"))
            elif code == SUBSCRIBE:
                sub = msg[1]
                sub.consumer_mailbox.put((CANCEL_DOWN, sub, "down", reason))
        for reply in self._pending_replies:
            reply.fail(StageExited(self.name, self._stop_reason or "noproc"))
        self._pending_replies.clear()
