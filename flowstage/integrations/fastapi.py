"""FastAPI (and Starlette) helpers for a flow running in a service.

``pip install 'flowstage[fastapi]'``. The app stays an ordinary FastAPI app: it
declares its own routes, with its own paths and dependencies (authentication
included), and calls these helpers from them::

    flow, push = Flow.from_push[str](capacity=10_000)
    service = FlowService(counts_of(flow), push)
    app = FastAPI(lifespan=service.lifespan)

    @app.post("/events", status_code=202)
    async def events(request: Request) -> dict[str, int]:
        return {"accepted": await ingest(service, request)}

    @app.get("/results")
    async def results() -> EventSourceResponse:
        return sse_response(service)

    @app.get("/health")
    async def health() -> JSONResponse:
        return health_response(service)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket_feed(service, websocket)

    mount_dashboard(app, service, "/flowstage", dependencies=[Depends(check_token)])

Errors are ``HTTPException`` with a ``detail`` message: 400 (body not JSON), 413
(body over ``max_body``), 422 (not an array, or an item ``convert`` refused), 503
(the flow failed, stopped or finished, or the service is shutting down).

uvicorn waits for open connections (SSE clients included) to close before it runs
the lifespan's shutdown: under ``service.lifespan``, SIGINT and SIGTERM start the
service's graceful shutdown first (the flow drains, the feed clients get the last
results, their streams end), so connected clients never hold the server open. A
program that stops uvicorn otherwise calls ``await service.shutdown()`` first.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter, HTTPException, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse
from starlette.websockets import WebSocketDisconnect

from ._common import FlowService, ServiceError, sse_chunk, websocket_close_code

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from fastapi import FastAPI
    from fastapi.params import Depends

__all__ = (
    "FlowService",
    "ServiceError",
    "health_response",
    "ingest",
    "mount_dashboard",
    "sse_response",
    "statistics_response",
    "websocket_feed",
)


def _http(error: ServiceError) -> HTTPException:
    return HTTPException(error.status, detail=error.message, headers=error.headers or None)


def _check_open(service: FlowService[Any]) -> None:
    if service.shutting_down:
        raise _http(ServiceError(503, "the service is shutting down"))
    try:
        service.running  # noqa: B018 (raises 503 before the flow started)
    except ServiceError as error:
        raise _http(error) from None


async def ingest(service: FlowService[Any], request: Request) -> int:
    """Push the events of ``request`` (a JSON array) and return how many.

    Raises ``HTTPException`` 400/413/422 for a refused body (nothing pushed) and 503
    when the flow takes no events (see :meth:`FlowService.push_events`).
    """
    try:
        return await service.ingest(request.stream(), request.headers.get("content-length"))
    except ServiceError as error:
        raise _http(error) from None


def health_response(service: FlowService[Any]) -> JSONResponse:
    """The health answer: ``{"state": ...}`` with 200 while the flow runs, 503
    otherwise (see :meth:`FlowService.health`)."""
    status, body = service.health()
    return JSONResponse(body, status_code=status)


def sse_response(service: FlowService[Any]) -> EventSourceResponse:
    """A Server-Sent Events response of the flow's output for this client: one
    event per output event, JSON in its ``data:`` line. The stream ends when the
    flow ends or the feeds are closed. Raises ``HTTPException`` 503 when the
    service is shutting down."""
    _check_open(service)

    async def body() -> AsyncIterator[bytes]:
        # Subscribed once the response streams (a closing race ends it empty).
        with contextlib.suppress(ServiceError), service.subscription() as subscription:
            async with contextlib.aclosing(service.sse_body(subscription)) as chunks:
                async for chunk in chunks:
                    yield chunk

    return _event_stream(body())


def _event_stream(body: AsyncIterator[bytes]) -> EventSourceResponse:
    return EventSourceResponse(
        body, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def statistics_response(service: FlowService[Any], interval: float = 1.0) -> EventSourceResponse:
    """A Server-Sent Events response of the flow's statistics
    (``FlowStatistics.to_dict()`` as JSON) every ``interval`` seconds: the feed of
    the web dashboard."""
    _check_open(service)

    async def body() -> AsyncIterator[bytes]:
        async with contextlib.aclosing(service.statistics_json(interval)) as snapshots:
            async for text in snapshots:
                yield sse_chunk([text])

    return _event_stream(body())


async def websocket_feed(service: FlowService[Any], websocket: WebSocket) -> None:
    """Accept ``websocket`` and send it the flow's output, one JSON text message per
    event, until the flow ends (closed with 1000, or 1011 if it failed), the feeds
    are closed (1001) or the client leaves. Messages from the client are read and
    ignored, which is how its departure is noticed. Closes with 1013 (try again
    later) when the service is shutting down."""
    await websocket.accept()
    try:
        scope = service.subscription()
        subscription = scope.__enter__()
    except ServiceError as error:
        await websocket.close(1013, error.message[:120])
        return
    left = False
    try:
        async with anyio.create_task_group() as tg:

            async def receive() -> None:
                nonlocal left
                try:
                    while (await websocket.receive())["type"] != "websocket.disconnect":
                        pass
                except (WebSocketDisconnect, RuntimeError):
                    pass
                left = True  # not when cancelled: the feed ended first
                tg.cancel_scope.cancel()

            tg.start_soon(receive)
            encode = service.encode
            try:
                async for event in subscription:
                    await websocket.send_text(encode(event))
            except (WebSocketDisconnect, RuntimeError, OSError):
                left = True
            tg.cancel_scope.cancel()
    finally:
        scope.__exit__(None, None, None)
    if not left:
        code = websocket_close_code(service)
        with contextlib.suppress(RuntimeError, OSError):  # the client left meanwhile
            await websocket.close(code)


def mount_dashboard(
    app: FastAPI,
    service: FlowService[Any],
    prefix: str = "/flowstage",
    *,
    dependencies: Sequence[Depends] = (),
    interval: float = 1.0,
) -> None:
    """Serve the web dashboard at ``<prefix>/`` and its statistics feed at
    ``<prefix>/statistics`` (nothing else; not in the OpenAPI schema).

    ``dependencies`` run before both, as on any FastAPI route: pass the app's
    authentication there (``[Depends(check_token)]``). Nothing is served unless the
    app calls this.
    """
    from ..dashboard.web import CONTENT_SECURITY_POLICY, page

    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(
            f"mount_dashboard: prefix must start with '/' and not end with it, got: {prefix!r}"
        )
    router = APIRouter(prefix=prefix, dependencies=list(dependencies), include_in_schema=False)
    html = page()
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }

    async def dashboard() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    async def statistics() -> EventSourceResponse:
        return statistics_response(service, interval)

    router.add_api_route("/", dashboard, methods=["GET"])
    router.add_api_route("/statistics", statistics, methods=["GET"])
    app.include_router(router)
