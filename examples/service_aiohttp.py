"""An aiohttp service: words pushed over HTTP, counted in windows, streamed out.

Run it (``pip install 'flowstage[aiohttp]'``)::

    python examples/service_aiohttp.py

and feed it::

    curl -X POST localhost:8080/events -H 'content-type: application/json' \\
         -d '["to","be","or","not","to","be"]'
    curl -N localhost:8080/results

The same convention and flow as ``examples/service_fastapi.py``: ``POST /events``
(a JSON array of words), ``GET /results`` (Server-Sent Events, JSON in each
``data:`` line), ``GET /health`` (``{"state": ...}``, 200 while the flow runs),
``GET /ws`` (a WebSocket feed) and the web dashboard at ``GET /flowstage/``.
On Ctrl-C (``on_shutdown``) the push source closes and the flow drains: the
connected clients get the last window, then their streams end and the server
stops.
"""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web
from service_words import counting_service

from flowstage.integrations.aiohttp import (
    FlowService,
    health_handler,
    mount_dashboard,
    push_handler,
    setup,
    sse_handler,
    websocket_handler,
)


def create_app(service: FlowService[Any] | None = None) -> web.Application:
    """The app around ``service`` (by default the word counts of
    :func:`service_words.counting_service`); one service per app: a flow runs once."""
    if service is None:
        service = counting_service(int(os.environ.get("WINDOW_MS", "1000")))
    app = web.Application()
    setup(app, service)
    app.router.add_post("/events", push_handler(service))
    app.router.add_get("/results", sse_handler(service))
    app.router.add_get("/health", health_handler(service))
    app.router.add_get("/ws", websocket_handler(service))
    mount_dashboard(app, service, "/flowstage")
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080, shutdown_timeout=2)
