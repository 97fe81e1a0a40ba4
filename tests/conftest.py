"""Shared test configuration.

Async tests run on asyncio and on trio (anyio's pytest plugin) and fail if they
leave a stage running or, on asyncio, any task behind.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator

import pytest

from flowstage import _stage


@pytest.fixture(params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def _leak_check(anyio_backend: str) -> AsyncIterator[None]:
    before = set(asyncio.all_tasks()) if anyio_backend == "asyncio" else set()
    _stage.LIVE_STAGES.clear()
    yield
    gc.collect()
    running = [s for s in list(_stage.LIVE_STAGES) if s._running]
    assert not running, f"stages still running after the test: {running}"
    if anyio_backend == "asyncio":
        current = asyncio.current_task()
        leaked = [
            t
            for t in asyncio.all_tasks() - before
            if t is not current and not t.done() and "TestRunner" not in t.get_coro().__qualname__  # type: ignore[union-attr]
        ]
        assert not leaked, f"tasks leaked: {leaked}"


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    if "anyio_backend" in request.fixturenames:
        request.getfixturevalue("_leak_check")
    return
