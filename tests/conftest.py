"""Shared test configuration.

Async tests run on asyncio and trio (anyio's pytest plugin), and on uvloop where it
installs (not on Windows), and fail if they leave a stage running or, on the asyncio
loops, any task behind.

uvloop runs every async test except the slow repetitions of the executors whose work
happens in other processes whatever the parent's loop: the Ray executor's tests and
conformance runs, the process executor's property test against the local executor,
and its conformance runs with 1 and 4 workers (the kit runs on uvloop with the local
executor and the process executor with 2 workers). What differs on uvloop is the
parent's event loop (the mailbox's futures, pipes, subprocesses), which the runs
kept cover; the full matrix on uvloop would add about half to the suite's time (the
Ray runs dominate it) for no code path of its own.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from flowstage import _stage

from .services import RAY_ENV, missing

for _name, _value in RAY_ENV.items():  # before anything imports Ray
    os.environ.setdefault(_name, _value)
os.environ.pop("RAY_ADDRESS", None)


#: The backends every async test runs on.
BACKENDS: list[Any] = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param("trio", id="trio"),
]
if importlib.util.find_spec("uvloop") is not None:
    BACKENDS.append(pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"))


#: Tests not repeated on uvloop (see the module docstring): node id fragments.
NOT_ON_UVLOOP = (
    "tests/executors/test_process_props.py::",
    "-process-1-",
    "-process-4-",
    "tests/executors/test_ray.py::",
    "-ray-",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    dropped = [
        item
        for item in items
        if "[uvloop" in item.nodeid and any(fragment in item.nodeid for fragment in NOT_ON_UVLOOP)
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        ids = {id(item) for item in dropped}
        items[:] = [item for item in items if id(item) not in ids]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


def backend_name(anyio_backend: Any) -> str:
    """``"asyncio"`` or ``"trio"`` (uvloop is an asyncio event loop)."""
    return str(anyio_backend[0] if isinstance(anyio_backend, tuple) else anyio_backend)


@pytest.fixture
async def _leak_check(anyio_backend: Any) -> AsyncIterator[None]:
    on_asyncio = backend_name(anyio_backend) == "asyncio"
    before = set(asyncio.all_tasks()) if on_asyncio else set()
    _stage.LIVE_STAGES.clear()
    yield
    gc.collect()
    running = [s for s in list(_stage.LIVE_STAGES) if s._running]
    assert not running, f"stages still running after the test: {running}"
    if on_asyncio:
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


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local Ray cluster for the session (2 CPUs, on 127.0.0.1); the Ray executor
    runs on it and leaves it up between tests."""
    try:
        import ray
    except ImportError:
        missing("Ray", "pip install 'flowstage[ray]' (or make test, which installs it)")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        logging_level="warning",
        object_store_memory=200 * 1024**2,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a Redis server that answers."""
    url = os.environ.get("FLOWSTAGE_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        import redis
    except ImportError:
        missing("redis-py", "pip install 'flowstage[redis]' (or make test, which installs it)")
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        missing(
            f"Redis at {url}",
            "start one with `redis-server --port 6379` or set FLOWSTAGE_REDIS_URL",
        )
    finally:
        client.close()
    return url


def live_ray_actors(ray: Any) -> list[dict[str, Any]]:
    """The actors of this driver's job that Ray does not report dead."""
    job = ray.get_runtime_context().get_job_id()
    return [
        actor
        for actor in ray._private.state.actors().values()
        if actor["JobID"] == job and actor["State"] != "DEAD"
    ]
