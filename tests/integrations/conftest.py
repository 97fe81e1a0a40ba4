"""Real servers for the integration tests: uvicorn (FastAPI) and aiohttp, each on
127.0.0.1 with an ephemeral port, each talked to with its own real client (httpx
for uvicorn, aiohttp's ``ClientSession`` for aiohttp; WebSockets through
aiohttp's client for both).

The servers run in the test's event loop (asyncio, and uvloop where it installs:
neither framework runs on trio). Nothing waits by sleeping: a test that needs a
feed client registered polls the health endpoint's ``subscribers`` (each poll is a
round trip to the server), and every test is bounded by ``anyio.fail_after``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from ..conftest import BACKENDS as ALL_BACKENDS
from ..services import missing
from ..test_examples import load

#: Both frameworks need asyncio: the suite's backends but trio.
BACKENDS: list[Any] = [param for param in ALL_BACKENDS if param.id != "trio"]

FRAMEWORKS = ("fastapi", "aiohttp")


@pytest.fixture(autouse=True, scope="session")
def _web_frameworks() -> None:
    """Skip (fail under FLOWSTAGE_REQUIRE_SERVICES=1) without the web frameworks."""
    for module in ("fastapi", "uvicorn", "httpx", "aiohttp"):
        if importlib.util.find_spec(module) is None:
            missing(module, "pip install -e '.[dev]' (or make test, which installs it)")


@functools.cache
def example(framework: str) -> Any:
    """The example app module of ``framework``, loaded once."""
    return load(f"service_{framework}")


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Server:
    """A server running one example app around ``service``."""

    framework: str
    base: str
    service: Any
    finished: anyio.Event
    stop_server: Callable[[], None]
    session: Any = None
    feeds: list[Any] = field(default_factory=list)

    async def stop(self) -> None:
        """Stop the server as a process manager would (uvicorn: SIGTERM; aiohttp: its
        runner's cleanup, what ``run_app`` does on a signal), and wait until it
        returned."""
        self.stop_server()
        await self.finished.wait()

    # -- the framework's own client ----------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        url = self.base + path
        data = content if json_body is None else json.dumps(json_body).encode()
        headers = {"content-type": "application/json", **(headers or {})}
        if self.framework == "fastapi":
            r = await self.session.request(method, url, content=data, headers=headers)
            return Response(r.status_code, _json(r.content), dict(r.headers))
        async with self.session.request(method, url, data=data, headers=headers) as r:
            return Response(
                r.status, _json(await r.read()), {k.lower(): v for k, v in r.headers.items()}
            )

    async def post(self, path: str, body: Any = None, *, content: bytes | None = None) -> Response:
        return await self.request("POST", path, json_body=body, content=content)

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return await self.request("GET", path, headers=headers)

    @contextlib.asynccontextmanager
    async def sse(self, path: str = "/results") -> AsyncIterator[AsyncIterator[Any]]:
        """An SSE connection: iterate over the JSON of each ``data:`` line; the
        iteration ends when the server ends the stream."""
        url = self.base + path
        # Every async generator is closed here, not left to the garbage collector.
        if self.framework == "fastapi":
            async with self.session.stream("GET", url) as r:
                assert r.status_code == 200, await r.aread()
                assert r.headers["content-type"].startswith("text/event-stream")
                async with contextlib.aclosing(_data(r.aiter_lines())) as data:
                    yield data
        else:
            async with self.session.get(url) as r:
                assert r.status == 200, await r.read()
                assert r.headers["content-type"].startswith("text/event-stream")
                async with contextlib.aclosing(_data(_aiohttp_lines(r))) as data:
                    yield data

    async def wait_subscribers(self, n: int) -> None:
        """Return once the flow has ``n`` feed subscribers (polls /health)."""
        while (await self.get("/health")).body.get("subscribers") != n:
            pass


async def _aiohttp_lines(r: Any) -> AsyncIterator[str]:
    async for line in r.content:
        yield line.decode().rstrip("\r\n")


async def _data(lines: Any) -> AsyncIterator[Any]:
    async with contextlib.aclosing(lines):
        async for line in lines:
            if line.startswith("data: "):
                yield json.loads(line[6:])


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content.decode()


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextlib.asynccontextmanager
async def serve(
    framework: str, service: Any, *, graceful: float = 5.0, app: Any = None
) -> AsyncIterator[Server]:
    """Run ``app`` (by default ``framework``'s example app around ``service``)
    until the block ends (or ``server.stop()``); ``graceful`` is uvicorn's
    ``timeout_graceful_shutdown`` and aiohttp's ``shutdown_timeout``."""
    sock = _listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    finished = anyio.Event()
    async with anyio.create_task_group() as tg:
        if framework == "fastapi":
            import httpx
            import uvicorn

            app = app or example("fastapi").create_app(service)
            config = uvicorn.Config(
                app, log_config=None, timeout_graceful_shutdown=graceful, lifespan="on"
            )
            server = uvicorn.Server(config)

            async def run_uvicorn() -> None:
                try:
                    await server.serve([sock])
                finally:
                    finished.set()

            # uvicorn takes SIGINT/SIGTERM while it serves and raises the signal
            # again once it stopped: SIGTERM does nothing here meanwhile.
            restore = signal.signal(signal.SIGTERM, _ignore)
            tg.start_soon(run_uvicorn)

            def stop_uvicorn() -> None:
                """``kill <pid>``, as a process manager stops a server."""
                if not finished.is_set():
                    os.kill(os.getpid(), signal.SIGTERM)
                    server.should_exit = True

            session: Any = httpx.AsyncClient(timeout=30)
            handle = Server(framework, base, service, finished, stop_uvicorn, session)
        else:
            import aiohttp
            from aiohttp import web

            app = app or example("aiohttp").create_app(service)
            runner = web.AppRunner(app, shutdown_timeout=graceful)
            await runner.setup()
            site = web.SockSite(runner, sock)
            await site.start()
            stop_requested = anyio.Event()

            async def run_aiohttp() -> None:
                try:
                    await stop_requested.wait()
                    await runner.cleanup()
                finally:
                    finished.set()

            tg.start_soon(run_aiohttp)
            session = aiohttp.ClientSession()
            handle = Server(framework, base, service, finished, stop_requested.set, session)
        try:
            yield handle
        finally:
            with anyio.CancelScope(shield=True):
                await session.aclose() if framework == "fastapi" else await session.close()
                handle.stop_server()
                with anyio.fail_after(30):
                    await finished.wait()
            sock.close()
            if framework == "fastapi":
                signal.signal(signal.SIGTERM, restore)


def _ignore(signum: int, frame: Any) -> None:
    pass
