"""What the web dashboard's browser tests (and ``docs/screenshot.py``) run on: a
tiny HTTP server of the page and its feed, and a headless Chromium driven by
Selenium through chromedriver (Debian's ``chromium`` and ``chromium-driver``).

The server runs on the caller's event loop (asyncio, uvloop or trio) and serves the
dashboard the way an integration mounts it: the page at ``/flowstage/`` and the
feed at ``/flowstage/statistics``, one SSE event per feed string. Selenium's calls
block, so the tests make them in a worker thread (``anyio.to_thread.run_sync``)
while the flow and the server go on running.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from flowstage.dashboard.web import CONTENT_SECURITY_POLICY, page

#: What to install when the browser is missing.
HOW_TO_INSTALL = (
    "install Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver) and selenium (pip install -e '.[dev]')"
)

PREFIX = "/flowstage/"
MAX_HEAD = 16 * 1024

Feed = Callable[[], AsyncIterator[str]]


def browser_paths() -> tuple[str, str] | None:
    """``(chromium, chromedriver)`` executables, or ``None`` when one is missing."""
    browser = next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))),
        None,
    )
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def start_browser(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium under Selenium (raises ``RuntimeError`` when missing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = browser_paths()
    if paths is None:
        raise RuntimeError(f"no headless browser: {HOW_TO_INSTALL}")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in containers and CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    # Console messages, CSP violations included, for get_log("browser").
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=paths[1]))


def wait_for(driver: Any, condition: Callable[[Any], Any], timeout: float = 30.0) -> Any:
    """Poll ``condition(driver)`` until it returns something true (bounded by
    ``timeout``; raises selenium's ``TimeoutException`` past it). Blocking: run it
    in a worker thread."""
    from selenium.webdriver.support.wait import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.02).until(condition)


def _response(status: str, content_type: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
        f"Connection: close\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


async def _read_target(stream: anyio.abc.ByteStream) -> str | None:
    """The request's path, or ``None`` for a request that is not a GET."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            return None
        data += await stream.receive()
    method, _, rest = data.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
    return rest.split(" ", 1)[0] if method == "GET" else None


async def _serve_one(feed: Feed, stream: anyio.abc.ByteStream) -> None:
    async with stream:
        try:
            target = await _read_target(stream)
            if target == PREFIX:
                await stream.send(
                    _response(
                        "200 OK",
                        "text/html; charset=utf-8",
                        page().encode("utf-8"),
                        f"Content-Security-Policy: {CONTENT_SECURITY_POLICY}\r\n",
                    )
                )
            elif target == PREFIX + "statistics":
                await stream.send(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Cache-Control: no-store\r\nConnection: close\r\n\r\n"
                )
                async with aclosing(feed()) as lines:
                    async for line in lines:
                        await stream.send(f"data: {line}\n\n".encode())
            else:
                await stream.send(_response("404 Not Found", "text/plain", b"not found"))
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the browser went away


@asynccontextmanager
async def serve(feed: Feed) -> AsyncIterator[str]:
    """Serve the dashboard on 127.0.0.1 (an ephemeral port) while in the block;
    yields the page's URL. ``feed()`` is called once per feed request."""
    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as group,
    ):
        port = listener.extra(SocketAttribute.local_port)

        async def handle(stream: anyio.abc.SocketStream) -> None:
            await _serve_one(feed, stream)

        group.start_soon(listener.serve, handle)
        try:
            yield f"http://127.0.0.1:{port}{PREFIX}"
        finally:
            group.cancel_scope.cancel()
