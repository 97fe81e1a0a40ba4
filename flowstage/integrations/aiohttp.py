"""aiohttp helpers for a flow running in a service.

``pip install 'flowstage[aiohttp]'``. The app stays an ordinary
``aiohttp.web.Application``: it chooses the paths and puts the handlers behind its
own middleware (authentication included)::

    flow, push = Flow.from_push[str](capacity=10_000)
    service = FlowService(counts_of(flow), push)
    app = web.Application()
    setup(app, service)             # runs the flow in app.cleanup_ctx
    app.router.add_post("/events", push_handler(service))
    app.router.add_get("/results", sse_handler(service))
    app.router.add_get("/health", health_handler(service))
    app.router.add_get("/ws", websocket_handler(service))
    mount_dashboard(app, service, "/flowstage", middlewares=[require_token])

Errors are JSON ``{"detail": message}`` with 400 (body not JSON), 413 (body over
``max_body``), 422 (not an array, or an item ``convert`` refused) or 503 (the flow
failed, stopped or finished, or the service is shutting down).

On shutdown aiohttp runs ``on_shutdown`` before it waits for the open requests:
:func:`setup` shuts the flow down gracefully there (its sources closed, drained),
so the feed clients get the last results and their streams end; connected clients
never hold the server open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import anyio
from aiohttp import WSMsgType, web

from ._common import FlowService, ServiceError, sse_chunk, websocket_close_code

__all__ = (
    "FlowService",
    "ServiceError",
    "cleanup_ctx",
    "health_handler",
    "mount_dashboard",
    "push_handler",
    "setup",
    "sse_handler",
    "statistics_handler",
    "websocket_handler",
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def _error(error: ServiceError) -> web.Response:
    return web.json_response({"detail": error.message}, status=error.status, headers=error.headers)


def cleanup_ctx(
    service: FlowService[Any],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context (``app.cleanup_ctx.append(...)``) running the flow for the
    app's lifetime, in a task of its own: its startup fails if the flow does not
    start, its cleanup shuts the flow down (``FlowService.run``)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        stop = asyncio.Event()

        async def host() -> None:
            try:
                async with service.run():
                    started.set_result(None)
                    await stop.wait()
            except BaseException as exc:
                if started.done():
                    raise
                started.set_exception(exc)

        task = asyncio.create_task(host(), name="flowstage service")
        try:
            await started
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        try:
            yield
        finally:
            stop.set()
            await task

    return context


def setup(app: web.Application, service: FlowService[Any]) -> None:
    """Run ``service``'s flow with ``app``: :func:`cleanup_ctx`, and an
    ``on_shutdown`` handler that shuts the flow down gracefully
    (``await service.shutdown()``), so the feeds get what the drain outputs and
    end before aiohttp waits for its handlers."""

    async def shutdown(app: web.Application) -> None:
        await service.shutdown()

    app.cleanup_ctx.append(cleanup_ctx(service))
    app.on_shutdown.append(shutdown)


def push_handler(service: FlowService[Any]) -> Handler:
    """A handler pushing the events of a request (a JSON array) into the flow;
    answers 202 ``{"accepted": n}`` (see :meth:`FlowService.ingest` for the
    errors)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            accepted = await service.ingest(
                request.content.iter_any(), request.headers.get("Content-Length")
            )
        except ServiceError as error:
            return _error(error)
        return web.json_response({"accepted": accepted}, status=202)

    return handler


def health_handler(service: FlowService[Any]) -> Handler:
    """A handler answering ``{"state": ...}``: 200 while the flow runs, 503
    otherwise (see :meth:`FlowService.health`)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        status, body = service.health()
        return web.json_response(body, status=status)

    return handler


async def _stream(request: web.Request, chunks: AsyncGenerator[bytes, None]) -> web.StreamResponse:
    response = web.StreamResponse(headers=_SSE_HEADERS)
    await response.prepare(request)
    async with contextlib.aclosing(chunks):
        try:
            async for chunk in chunks:
                await response.write(chunk)
        except OSError:  # the client left
            pass
    return response


def _refused(service: FlowService[Any]) -> web.Response | None:
    if service.shutting_down:
        return _error(ServiceError(503, "the service is shutting down"))
    try:
        service.running  # noqa: B018 (raises 503 before the flow started)
    except ServiceError as error:
        return _error(error)
    return None


def sse_handler(service: FlowService[Any]) -> Handler:
    """A handler streaming the flow's output to one client as Server-Sent Events
    (JSON in each ``data:`` line); ends when the flow ends, the feeds are closed or
    the client leaves."""

    async def handler(request: web.Request) -> web.StreamResponse:
        refused = _refused(service)
        if refused is not None:
            return refused
        try:
            with service.subscription() as subscription:
                return await _stream(request, service.sse_body(subscription))
        except ServiceError as error:
            return _error(error)

    return handler


def statistics_handler(service: FlowService[Any], interval: float = 1.0) -> Handler:
    """A handler streaming the flow's statistics (``FlowStatistics.to_dict()`` as
    JSON) every ``interval`` seconds as Server-Sent Events: the dashboard's feed."""

    async def handler(request: web.Request) -> web.StreamResponse:
        refused = _refused(service)
        if refused is not None:
            return refused

        async def chunks() -> AsyncGenerator[bytes, None]:
            async with contextlib.aclosing(service.statistics_json(interval)) as snapshots:
                async for text in snapshots:
                    yield sse_chunk([text])

        return await _stream(request, chunks())

    return handler


def websocket_handler(service: FlowService[Any]) -> Handler:
    """A handler sending the flow's output over a WebSocket, one JSON text message
    per event, until the flow ends (closed with 1000, or 1011 if it failed), the
    feeds are closed (1001) or the client leaves. Messages from the client are read
    and ignored. Closes with 1013 (try again later) when the service is shutting
    down."""

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        try:
            scope = service.subscription()
            subscription = scope.__enter__()
        except ServiceError as error:
            await ws.close(code=1013, message=error.message[:120].encode())
            return ws
        try:
            async with anyio.create_task_group() as tg:

                async def receive() -> None:
                    try:
                        async for message in ws:
                            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                                break
                    finally:
                        tg.cancel_scope.cancel()

                tg.start_soon(receive)
                encode = service.encode
                try:
                    async for event in subscription:
                        await ws.send_str(encode(event))
                except OSError:  # the client left
                    pass
                tg.cancel_scope.cancel()
        finally:
            scope.__exit__(None, None, None)
        if not ws.closed:
            code = websocket_close_code(service)
            await ws.close(code=code)
        return ws

    return handler


def mount_dashboard(
    app: web.Application,
    service: FlowService[Any],
    prefix: str = "/flowstage",
    *,
    middlewares: Sequence[Any] = (),
    interval: float = 1.0,
) -> web.Application:
    """Serve the web dashboard at ``<prefix>/`` and its statistics feed at
    ``<prefix>/statistics`` (nothing else), from a sub-application whose
    ``middlewares`` run before both: pass the app's authentication there. Nothing is
    served unless the app calls this. Returns the sub-application."""
    from ..dashboard.web import CONTENT_SECURITY_POLICY, page

    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(
            f"mount_dashboard: prefix must start with '/' and not end with it, got: {prefix!r}"
        )
    html = page()
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }

    async def dashboard(request: web.Request) -> web.StreamResponse:
        return web.Response(text=html, content_type="text/html", headers=headers)

    sub = web.Application(middlewares=list(middlewares))
    sub.router.add_get("/", dashboard)
    sub.router.add_get("/statistics", statistics_handler(service, interval))
    app.add_subapp(prefix, sub)
    return sub
