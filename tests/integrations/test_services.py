"""The example services (examples/service_fastapi.py, examples/service_aiohttp.py)
against real servers and real clients: events pushed over HTTP come back over SSE
and WebSockets, health follows the flow's state, bad requests are refused without
losing what was accepted, and a server stops with feed clients connected."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from flowstage import Flow
from flowstage.integrations import FlowService

from ..test_examples import load
from .conftest import FRAMEWORKS, serve

pytestmark = pytest.mark.anyio

words_example = load("service_words")

#: The bound of each test (never reached when the code works; not a timing check).
LIMIT = 20


def word_service(window_ms: int = 20, **options: Any) -> FlowService[Any]:
    """The examples' service, with short windows (20 ms of processing time) unless
    told otherwise."""
    return words_example.counting_service(window_ms, **options)


def explode(word: str) -> str:
    if word == "boom":
        raise ValueError("boom was pushed")
    return word


def failing_service() -> FlowService[Any]:
    """Words straight through, failing on ``"boom"``."""
    words, push = Flow.from_push[str](capacity=100)
    return FlowService(words.map(explode), push)


async def counted(results: AsyncIterator[Any], total: int) -> Counter[str]:
    """Add up the windows' counts until ``total`` words were counted."""
    counts: Counter[str] = Counter()
    async for result in results:
        assert set(result) == {"window", "counts"}
        counts.update(result["counts"])
        if sum(counts.values()) >= total:
            break
    return counts


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_pushed_words_come_back_counted_over_sse(framework: str) -> None:
    words = ["to", "be", "or", "not", "to", "be", "that", "is"] * 25
    with anyio.fail_after(LIMIT):
        async with serve(framework, word_service()) as server:
            assert (await server.get("/health")).status == 200
            async with server.sse() as results:
                await server.wait_subscribers(1)
                for start in range(0, len(words), 50):
                    r = await server.post("/events", words[start : start + 50])
                    assert (r.status, r.body) == (202, {"accepted": 50})
                assert await counted(results, len(words)) == Counter(words)


async def test_every_feed_client_gets_every_result(framework: str) -> None:
    words = [f"w{i % 7}" for i in range(70)]
    with anyio.fail_after(LIMIT):
        async with (
            serve(framework, word_service()) as server,
            server.sse() as a,
            server.sse() as b,
        ):
            await server.wait_subscribers(2)
            assert (await server.post("/events", words)).status == 202
            assert await counted(a, len(words)) == Counter(words)
            assert await counted(b, len(words)) == Counter(words)


async def test_health_says_running_then_failed_and_pushes_are_refused(framework: str) -> None:
    with anyio.fail_after(LIMIT):
        async with serve(framework, failing_service()) as server:
            health = await server.get("/health")
            assert health.status == 200
            assert health.body["state"] == "running"
            async with server.sse() as results:
                await server.wait_subscribers(1)
                assert (await server.post("/events", ["a", "boom"])).status == 202
                seen = [event async for event in results]  # the feed ends with the flow
            assert "boom" not in seen
            health = await server.get("/health")
            assert health.status == 503
            assert health.body["state"] == "failed"
            assert health.body["error"] == "ValueError"
            refused = await server.post("/events", ["a"])
            assert refused.status == 503
            assert "does not take events" in refused.body["detail"]
            assert isinstance(server.service.failure, ValueError)


@pytest.mark.parametrize(
    ("content", "status", "words_in_message"),
    [
        (b'["to", "be"', 400, "not valid JSON"),
        (b'{"words": ["to"]}', 422, "JSON array"),
        (b'["to", 2, "be"]', 422, "event 1"),
        (b'"to"', 422, "JSON array"),
        (json.dumps(["x" * 100] * 20).encode(), 413, "limit of 1000 bytes"),
    ],
)
async def test_bad_requests_are_refused_and_nothing_accepted_is_lost(
    framework: str, content: bytes, status: int, words_in_message: str
) -> None:
    with anyio.fail_after(LIMIT):
        async with (
            serve(framework, word_service(max_body=1000)) as server,
            server.sse() as results,
        ):
            await server.wait_subscribers(1)
            assert (await server.post("/events", ["kept", "too"])).status == 202
            refused = await server.post("/events", content=content)
            assert refused.status == status
            assert words_in_message in refused.body["detail"]
            assert (await server.post("/events", ["after"])).status == 202
            assert await counted(results, 3) == Counter(["kept", "too", "after"])
            assert (await server.get("/health")).body["events_in"] == 3


async def test_the_server_stops_with_feed_clients_connected_and_they_get_the_last_window(
    framework: str,
) -> None:
    """uvicorn waits for open connections before it runs the lifespan's shutdown,
    aiohttp waits for its handlers after ``on_shutdown``: the service's graceful
    shutdown starts first (SIGTERM under the lifespan; ``on_shutdown``), so the
    day-long graceful bound given to the server is never reached. The windows here
    last an hour: the counts reach the clients only because the flow drains on
    shutdown, then their streams end cleanly and the server returns."""
    service = word_service(window_ms=3_600_000)
    words = ["last", "window", "last"]
    received: list[Counter[str]] = []
    with anyio.fail_after(LIMIT):
        async with serve(framework, service, graceful=86_400) as server:

            async def client() -> None:
                counts: Counter[str] = Counter()
                async with server.sse() as results:
                    async for result in results:
                        counts.update(result["counts"])
                received.append(counts)

            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(client)
                await server.wait_subscribers(3)
                assert (await server.post("/events", words)).status == 202
                await server.stop()
            assert received == [Counter(words)] * 3
            assert server.finished.is_set()
            assert service.state == "done"
            assert service.shutdown_result is not None
            assert service.shutdown_result.outcome == "drained"


async def test_close_feeds_ends_the_feeds_and_refuses_new_ones(framework: str) -> None:
    service = word_service(window_ms=3_600_000)
    with anyio.fail_after(LIMIT):
        async with serve(framework, service, graceful=86_400) as server:
            async with server.sse() as results:
                await server.wait_subscribers(1)
                service.close_feeds()
                assert [r async for r in results] == []
            refused = await server.get("/results")
            assert refused.status == 503
            assert "shutting down" in refused.body["detail"]
            assert (await server.post("/events", ["still", "taken"])).status == 202
            await server.stop()
            assert service.shutdown_result is not None
            assert service.shutdown_result.outcome == "drained"


async def test_websocket_feed(framework: str) -> None:
    import aiohttp

    words = ["ws"] * 10 + ["feed"] * 5
    with anyio.fail_after(LIMIT):
        async with (
            serve(framework, word_service()) as server,
            aiohttp.ClientSession() as session,
            session.ws_connect(server.base.replace("http", "ws") + "/ws") as ws,
        ):
            await server.wait_subscribers(1)
            assert (await server.post("/events", words)).status == 202
            counts: Counter[str] = Counter()
            while sum(counts.values()) < len(words):
                message = await ws.receive()
                assert message.type == aiohttp.WSMsgType.TEXT, message
                counts.update(json.loads(message.data)["counts"])
            assert counts == Counter(words)


async def test_websocket_closes_when_the_flow_fails(framework: str) -> None:
    import aiohttp

    with anyio.fail_after(LIMIT):
        async with (
            serve(framework, failing_service()) as server,
            aiohttp.ClientSession() as session,
            session.ws_connect(server.base.replace("http", "ws") + "/ws") as ws,
        ):
            await server.wait_subscribers(1)
            assert (await server.post("/events", ["a", "boom"])).status == 202
            messages = [m async for m in ws]
            assert ws.close_code == 1011
            assert all(m.type == aiohttp.WSMsgType.TEXT for m in messages)


async def test_a_client_that_leaves_is_unsubscribed(framework: str) -> None:
    """Starlette notices a client left at once, aiohttp at the next write: an event
    or the keep-alive ping (every 50 ms here)."""
    with anyio.fail_after(LIMIT):
        async with serve(framework, word_service(ping_interval=0.05)) as server:
            async with server.sse():
                await server.wait_subscribers(1)
            await server.wait_subscribers(0)
