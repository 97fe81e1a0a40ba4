"""What the web integrations share: one running flow for an app's lifetime, request
bodies read within a bound, the health answer, and the bytes of the feeds.

Nothing here imports a web framework: the framework modules turn a
:class:`ServiceError` into their own error response and hand the bytes to their own
response types.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import signal
import threading
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast

import anyio

from .._flowstate import FlowState
from .._options import check_callable, check_choice, check_positive_int, invalid

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Iterator
    from types import FrameType

    from anyio.abc import TaskStatus

    from .. import Flow, FlowSubscription, PushHandle, ShutdownResult
    from ..executors import Executor, RunningFlow

__all__ = [
    "FlowService",
    "ServiceError",
    "parse_events",
    "read_limited",
    "sse_chunk",
    "websocket_close_code",
]

T = TypeVar("T")

logger = logging.getLogger("flowstage")

#: Seconds between the comment lines an idle SSE feed sends (proxies close
#: connections that stay silent; FastAPI's own SSE pings every 15 s too).
PING_INTERVAL = 15.0
PING = b": ping\n\n"

SLOW_POLICIES = ("drop_oldest", "disconnect")


class ServiceError(Exception):
    """A request the service cannot take: ``status`` is the HTTP status to answer,
    ``message`` says why (the framework modules send ``{"detail": message}``), and
    ``headers`` are extra response headers (``Retry-After`` on a full buffer)."""

    status: int
    message: str
    headers: dict[str, str]

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _encode_json(event: object) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def sse_chunk(data: list[str]) -> bytes:
    """The ``text/event-stream`` bytes of one event per string in ``data`` (a
    string holding line breaks becomes several ``data:`` lines of one event)."""
    joined = "\n\ndata: ".join(data)
    if "\r" in joined or joined.count("\n") != 2 * (len(data) - 1):
        parts: list[str] = []
        for text in data:
            lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            parts.append("".join(f"data: {line}\n" for line in lines) + "\n")
        return "".join(parts).encode("utf-8")
    return f"data: {joined}\n\n".encode()


async def read_limited(
    chunks: AsyncIterable[bytes], limit: int, content_length: str | None = None
) -> bytes:
    """The whole body from ``chunks``, at most ``limit`` bytes.

    Raises :class:`ServiceError` 413 as soon as the declared ``Content-Length`` or
    the bytes received exceed ``limit``, so an oversized body is never held whole.
    """
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise ServiceError(400, "Content-Length must be an integer") from None
        if declared > limit:
            raise _too_large(limit)
    body = bytearray()
    iterator = aiter(chunks)
    try:
        async for chunk in iterator:
            body += chunk
            if len(body) > limit:
                raise _too_large(limit)
    finally:
        # Left early: close a generator (Starlette's request.stream()) now.
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
    return bytes(body)


def _too_large(limit: int) -> ServiceError:
    return ServiceError(413, f"the request body is larger than the limit of {limit} bytes")


def parse_events(body: bytes, convert: Callable[[Any], Any] | None = None) -> list[Any]:
    """The events of a request body: a JSON array, each item passed through
    ``convert`` when given.

    Raises :class:`ServiceError` 400 for a body that is not JSON, 422 for JSON that is
    not an array or an item ``convert`` refuses (``TypeError`` or ``ValueError``; the
    message names the item's index). Nothing is pushed before the whole body passed.
    """
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, list):
        raise ServiceError(
            422, f"the request body must be a JSON array of events, got: {type(value).__name__}"
        )
    if convert is None:
        return value
    events: list[Any] = []
    for index, item in enumerate(value):
        try:
            events.append(convert(item))
        except (TypeError, ValueError) as exc:
            raise ServiceError(422, f"event {index} is not accepted: {exc}") from None
    return events


class FlowService(Generic[T]):
    """One flow running for a web app's lifetime, and what its endpoints need.

    ``flow`` is started with the app (``async with service.run()``, or the app's
    lifespan/cleanup context the framework modules provide) with its output
    published, so each feed client gets a subscription of its own; ``push`` is the
    handle of the flow's push source (``Flow.from_push``), for the ingest endpoint.

    Guarantees:

    * A failure of the flow does not stop the server: it is logged on the
      ``flowstage`` logger at ERROR, :attr:`state` becomes ``"failed"``, the health
      endpoint answers 503, pushes answer 503 (the push source refuses events once
      the flow has ended) and every feed ends.
    * A graceful shutdown (:meth:`shutdown`; leaving :meth:`run`; SIGINT/SIGTERM
      under :meth:`lifespan`; aiohttp's ``on_shutdown``) runs
      ``running.shutdown(shutdown_timeout)``: the sources are closed (pushes answer
      503), the flow drains for up to ``shutdown_timeout`` seconds (windows flush)
      and is cancelled after that (:attr:`shutdown_result` says which). Feed
      clients receive what the drain outputs, then their streams end; new feed
      requests are refused (503) from the start of the shutdown.
    * Memory is bounded: a request body is read up to ``max_body`` bytes (413
      beyond), and each feed client has a buffer of ``buffer`` events with the
      ``slow`` policy (``"drop_oldest"`` counts the events a slow client missed,
      ``"disconnect"`` ends its feed), so a slow client never slows the flow or
      the other clients.

    Args:
        flow: the flow to run (its output is what the feeds send).
        push: the push handle of the flow's source, when the service takes events
            over HTTP.
        shutdown_timeout: seconds the flow may drain when the app stops.
        buffer: events each feed client's subscription holds.
        slow: what happens to a feed client whose buffer is full.
        max_body: the largest request body accepted, in bytes.
        convert: called on each item of a pushed JSON array; its result is pushed.
            ``TypeError`` or ``ValueError`` refuses the request (422).
        encode: turns an output event into the JSON text of one SSE ``data:`` line
            or WebSocket message (default ``json.dumps``).
        executor: the executor to start the flow on (see ``Flow.start``).
        max_feeds: the most feed clients of the flow's output (SSE, WebSocket) at
            once; more are refused with 503, so clients opening connections cannot
            make the service hold more than ``max_feeds x buffer`` events.
        ping_interval: seconds of silence after which an SSE feed sends a ``: ping``
            comment (proxies close silent connections). A client that left is
            noticed at the next write at the latest (aiohttp; Starlette notices at
            once), so this also bounds how long it keeps its subscription.
        shutdown_on_signals: in :meth:`lifespan`, when the app runs in the main
            thread, SIGINT and SIGTERM start the graceful shutdown before the
            server's own handler runs: uvicorn waits for open connections before it
            runs the lifespan's shutdown, so connected feed clients would otherwise
            hold it open.
    """

    flow: Flow[T]
    push: PushHandle[Any] | None
    shutdown_timeout: float
    buffer: int
    slow: Literal["drop_oldest", "disconnect"]
    max_body: int
    convert: Callable[[Any], Any] | None
    encode: Callable[[T], str]
    shutdown_on_signals: bool
    max_feeds: int
    ping_interval: float
    shutdown_result: ShutdownResult | None
    failure: BaseException | None

    def __init__(
        self,
        flow: Flow[T],
        push: PushHandle[Any] | None = None,
        *,
        shutdown_timeout: float = 5.0,
        buffer: int = 1000,
        slow: Literal["drop_oldest", "disconnect"] = "drop_oldest",
        max_body: int = 1024 * 1024,
        convert: Callable[[Any], Any] | None = None,
        encode: Callable[[T], str] | None = None,
        executor: Executor | str | None = None,
        shutdown_on_signals: bool = True,
        max_feeds: int = 1000,
        ping_interval: float = PING_INTERVAL,
    ) -> None:
        call = "FlowService"
        if not hasattr(flow, "start"):
            raise TypeError(invalid("flow", "a Flow", flow, call))
        if push is not None and not hasattr(push, "push_many"):
            raise TypeError(invalid("push", "a push handle (Flow.from_push)", push, call))
        if (
            isinstance(shutdown_timeout, bool)
            or not isinstance(shutdown_timeout, int | float)
            or not math.isfinite(shutdown_timeout)
            or shutdown_timeout < 0
        ):
            raise ValueError(
                invalid("shutdown_timeout", "a number of seconds >= 0", shutdown_timeout, call)
            )
        if (
            isinstance(ping_interval, bool)
            or not isinstance(ping_interval, int | float)
            or not math.isfinite(ping_interval)
            or ping_interval <= 0
        ):
            raise ValueError(
                invalid("ping_interval", "a number of seconds > 0", ping_interval, call)
            )
        self.ping_interval = float(ping_interval)
        self.flow = flow
        self.push = push
        self.shutdown_timeout = float(shutdown_timeout)
        self.buffer = check_positive_int("buffer", buffer, call)
        self.max_feeds = check_positive_int("max_feeds", max_feeds, call)
        self.slow = check_choice("slow", slow, SLOW_POLICIES, call)
        self.max_body = check_positive_int("max_body", max_body, call)
        self.convert = None if convert is None else check_callable("convert", convert, call)
        self.encode = _encode_json if encode is None else check_callable("encode", encode, call)
        self._executor = executor
        self.shutdown_on_signals = bool(shutdown_on_signals)
        self._running: RunningFlow | None = None
        self._stop = anyio.Event()
        self._ended = anyio.Event()
        self._closing = anyio.Event()
        self._subscriptions: set[FlowSubscription[T]] = set()
        self._started = False
        self.shutdown_result = None
        self.failure = None

    # -- lifetime -------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[FlowService[T]]:
        """Run the flow for the duration of the block (once per service).

        The flow runs in a task of its own, so its failure never cancels the
        block; leaving the block shuts the flow down gracefully (see the class
        docstring) and returns once it has ended. A flow that fails to start
        raises here.
        """
        if self._started:
            raise RuntimeError("a FlowService runs once: create one per app")
        self._started = True
        failed_to_start: list[BaseException] = []
        async with anyio.create_task_group() as tg:
            await tg.start(self._host, failed_to_start)
            if not failed_to_start:
                try:
                    yield self
                finally:
                    self.begin_shutdown()
        if failed_to_start:
            raise failed_to_start[0]

    def lifespan(self, app: object) -> contextlib.AbstractAsyncContextManager[None]:
        """An ASGI lifespan running the flow: ``FastAPI(lifespan=service.lifespan)``
        (or ``Starlette(lifespan=...)``): :meth:`run`, with SIGINT and SIGTERM
        starting the shutdown (``shutdown_on_signals``). To combine it with the
        app's own, ``async with service.lifespan(app):`` inside that lifespan."""
        return self._lifespan()

    @contextlib.asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        async with self.run():
            with _shutdown_on_signals(self) if self.shutdown_on_signals else _nothing():
                yield

    async def _host(
        self, failed_to_start: list[BaseException], *, task_status: TaskStatus[None]
    ) -> None:
        started = False
        try:
            async with self.flow.start(executor=self._executor, publish=True) as running:
                self._running = running
                started = True
                task_status.started()
                await self._stop.wait()
                self.shutdown_result = await running.shutdown(self.shutdown_timeout)
        except Exception as exc:
            if not started:
                # Raised by run() itself, outside its task group (never a group).
                failed_to_start.append(exc)
                task_status.started()
                return
            self.failure = exc
            logger.error(
                "the flow of the web service failed; its health endpoint answers 503",
                exc_info=exc,
            )
        finally:
            # The flow's end ended its subscriptions (they still hand out what
            # they hold); refuse new ones.
            self._closing.set()
            self._ended.set()

    def begin_shutdown(self) -> None:
        """Start the graceful shutdown (see the class docstring) and return at once
        (:meth:`shutdown` waits for it). Idempotent."""
        self._stop.set()

    async def shutdown(self) -> ShutdownResult | None:
        """Shut the flow down gracefully and return once it has ended: what
        ``running.shutdown`` did, or ``None`` if the flow had failed before (or
        never started). Idempotent."""
        self.begin_shutdown()
        if self._started:
            await self._ended.wait()
        return self.shutdown_result

    @property
    def shutting_down(self) -> bool:
        """True from the start of a shutdown (or :meth:`close_feeds`) on."""
        return self._stop.is_set() or self._closing.is_set()

    # -- state ----------------------------------------------------------------------

    @property
    def running(self) -> RunningFlow:
        """The running flow (``ServiceError`` 503 before the app started it)."""
        if self._running is None:
            raise ServiceError(503, "the flow is not running: the app has not started it")
        return self._running

    @property
    def state(self) -> FlowState:
        """The flow's state; ``STARTING`` until the app started it."""
        if self._running is None:
            return FlowState.STARTING
        return self._running.state

    def health(self) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` of the health endpoint: 200 while the flow runs, 503
        otherwise (starting, draining, done, stopped or failed). The body has
        ``state``, the flow's ``events_in``/``events_out`` and ``subscribers``, and
        on failure ``error``: the exception's type name (the traceback is in the
        log, never in a response)."""
        state = self.state
        body: dict[str, Any] = {"state": state.value}
        if self._running is not None:
            stats = self._running.statistics()
            body["events_in"] = stats.events_in
            body["events_out"] = stats.events_out
            body["subscribers"] = stats.subscribers
        failure = self.failure or (self._running.exception if self._running else None)
        if failure is not None:
            body["error"] = type(failure).__name__
        return (200 if state is FlowState.RUNNING else 503), body

    # -- ingest ---------------------------------------------------------------------

    async def ingest(self, chunks: AsyncIterable[bytes], content_length: str | None = None) -> int:
        """Read a request body (a JSON array of events), push its events, and
        return how many were pushed.

        The body is read and checked whole before the first event is pushed, so a
        refused request pushes nothing (:func:`read_limited`, :func:`parse_events`).
        """
        body = await read_limited(chunks, self.max_body, content_length)
        events = parse_events(body, self.convert)
        return await self.push_events(events)

    async def push_events(self, events: list[Any]) -> int:
        """Push ``events`` in one batch and return how many the push source
        accepted (all of them, except with its ``"drop_newest"`` policy when full).

        Raises :class:`ServiceError` 503 when the flow does not take events any more
        (it failed, stopped or finished: ``PushClosed``; events admitted before that
        stay accepted) or, with the ``"reject"`` policy, when they do not all fit
        (``PushRejected``: none was accepted; with ``Retry-After``).
        """
        from .. import PushClosed, PushRejected

        if self.push is None:
            raise ServiceError(503, "this service takes no events: it has no push source")
        if not events:
            return 0
        try:
            return await self.push.push_many(events)
        except PushClosed as exc:
            raise ServiceError(503, f"the flow does not take events any more: {exc}") from exc
        except PushRejected as exc:
            raise ServiceError(
                503,
                f"the flow's input buffer is full, none of the {len(events)} events was "
                f"accepted: {exc}",
                {"Retry-After": "1"},
            ) from exc

    # -- feeds ----------------------------------------------------------------------

    @contextlib.contextmanager
    def subscription(self) -> Iterator[FlowSubscription[T]]:
        """A subscription to the flow's output for one feed client, closed when the
        block is left. Raises :class:`ServiceError` 503 once the service is
        shutting down."""
        if self.shutting_down:
            raise ServiceError(503, "the service is shutting down")
        if len(self._subscriptions) >= self.max_feeds:
            raise ServiceError(
                503,
                f"too many feed clients: this service serves {self.max_feeds} at once",
                {"Retry-After": "5"},
            )
        subscription: FlowSubscription[T] = self.running.subscribe(
            buffer=self.buffer, slow=self.slow
        )
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            subscription.close()

    def close_feeds(self) -> None:
        """End every feed now, and refuse new ones, without waiting for the flow
        (which keeps running, and taking pushes, until it is shut down)."""
        self._closing.set()
        for subscription in list(self._subscriptions):
            subscription.close()

    async def events(self) -> AsyncGenerator[T, None]:
        """The flow's output for one client (its own subscription), until the flow
        ends or the feeds are closed. For an SSE path operation of FastAPI
        (``response_class=EventSourceResponse``) or any other loop."""
        with self.subscription() as subscription:
            async for event in subscription:
                yield event

    async def sse_body(self, subscription: FlowSubscription[T]) -> AsyncGenerator[bytes, None]:
        """The ``text/event-stream`` bytes of ``subscription``: one ``data:`` line
        of JSON (:attr:`encode`) per event, the events already waiting sent in one
        chunk, a ``: ping`` comment after :attr:`ping_interval` seconds
        without events. Ends when the subscription does (the flow ended, or the
        feeds were closed)."""
        iterator = subscription.__aiter__()
        encode = self.encode
        while True:
            event: Any = _NOTHING
            with anyio.move_on_after(self.ping_interval):
                try:
                    event = await iterator.__anext__()
                except StopAsyncIteration:
                    return
            if event is _NOTHING:
                yield PING
                continue
            data = [encode(event)]
            if subscription.buffered:
                # What the subscription already holds (at most its buffer), taken
                # as one batch without waiting, goes out in one write.
                held = cast("AsyncGenerator[list[T], None]", subscription.batches())
                try:
                    data += map(encode, await held.__anext__())
                finally:
                    await held.aclose()
            yield sse_chunk(data)

    async def statistics_json(self, interval: float = 1.0) -> AsyncGenerator[str, None]:
        """The flow's statistics as JSON (``FlowStatistics.to_dict()``) at once,
        then every ``interval`` seconds, and a last time once the flow has ended
        (or the feeds were closed); ends then."""
        running = self.running
        while True:
            ended = running.done or self._closing.is_set()
            yield running.statistics().to_json()
            if ended:
                return
            with anyio.move_on_after(interval):
                await self._closing.wait()


class _Nothing:
    pass


_NOTHING: Any = _Nothing()


def websocket_close_code(service: FlowService[Any]) -> int:
    """The close code of a WebSocket feed that ended: 1001 (going away) when the
    service shuts down, 1011 (internal error) when the flow failed, else 1000."""
    if service.shutting_down:
        return 1001
    return 1011 if service.state is FlowState.FAILED else 1000


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


#: The signals a server stops on.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _shutdown_on_signals(service: FlowService[Any]) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM first schedule
    ``service.begin_shutdown()`` on the event loop, then run the handler installed
    before (the server's). Only in the main thread, and only over a Python handler
    (a server's or Python's own ``KeyboardInterrupt``), never over the default or
    ignored disposition. The previous handler is put back on leaving, unless
    something replaced this one meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        schedule: Callable[[Callable[[], object]], object] = (
            asyncio.get_running_loop().call_soon_threadsafe
        )
    except RuntimeError:  # trio
        import trio

        schedule = trio.lowlevel.current_trio_token().run_sync_soon

    previous: dict[int, Callable[[int, FrameType | None], Any]] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        # A signal handler may run in the middle of the event loop's own code:
        # only schedule (thread-safe and reentrant), then chain.
        schedule(service.begin_shutdown)
        previous[signum](signum, frame)

    for sig in SIGNALS:
        current = signal.getsignal(sig)
        if callable(current):
            previous[sig] = current
            signal.signal(sig, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            if signal.getsignal(number) is handler:
                signal.signal(number, old)
