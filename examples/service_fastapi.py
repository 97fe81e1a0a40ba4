"""A FastAPI service: words pushed over HTTP, counted in windows, streamed out.

Run it (``pip install 'flowstage[fastapi]'``, then from the repository's root)::

    uvicorn service_fastapi:app --app-dir examples --timeout-graceful-shutdown 2

or ``python examples/service_fastapi.py``, and feed it::

    curl -X POST localhost:8000/events -H 'content-type: application/json' \\
         -d '["to","be","or","not","to","be"]'
    curl -N localhost:8000/results

* ``POST /events``: a JSON array of words, pushed into the flow (202
  ``{"accepted": n}``; 400/413/422 for a bad body, 503 once the flow has failed or
  stopped);
* ``GET /results``: Server-Sent Events, one per window and partition:
  ``{"window": 7, "counts": {"be": 2, "to": 2}}`` (JSON in each ``data:`` line);
* ``GET /health``: ``{"state": "running", ...}``, 200 while the flow runs, 503 after;
* ``GET /ws``: the same results over a WebSocket;
* ``GET /flowstage/``: the web dashboard (put it behind the app's authentication in
  a real service: ``mount_dashboard(..., dependencies=[Depends(check)])``).

The words are counted in windows of processing time (``Window.periodic``, one
second by default) over two partitions; each window that saw words emits its counts
when it closes, and the last one when the service stops (uvicorn stops it on
Ctrl-C: the push source closes, the flow drains, the connected clients get the
last window, then their streams end and uvicorn stops).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse
from service_words import counting_service

from flowstage.integrations.fastapi import (
    FlowService,
    health_response,
    ingest,
    mount_dashboard,
    sse_response,
    websocket_feed,
)


def create_app(service: FlowService[Any] | None = None) -> FastAPI:
    """The app around ``service`` (by default the word counts of
    :func:`service_words.counting_service`); one service per app: a flow runs once."""
    if service is None:
        service = counting_service(int(os.environ.get("WINDOW_MS", "1000")))
    app = FastAPI(lifespan=service.lifespan)
    app.state.service = service

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

    mount_dashboard(app, service, "/flowstage")
    return app


app = create_app()


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000, timeout_graceful_shutdown=2)
