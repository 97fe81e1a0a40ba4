"""A real Redis server for the connector tests, and unique names that are cleaned up.

The server is ``redis://127.0.0.1:6379/0`` unless ``FLOWSTAGE_REDIS_URL`` says
otherwise. Without one, the tests that need it skip (or fail, under
``FLOWSTAGE_REQUIRE_SERVICES=1``) saying how to start one.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ..services import missing

#: redis-py's asyncio client needs asyncio: the connector tests run on asyncio, and
#: on uvloop where it is installed.
BACKENDS: list[Any] = [pytest.param("asyncio", id="asyncio")]
if importlib.util.find_spec("uvloop") is not None:
    BACKENDS.append(pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"))


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


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


@dataclass(frozen=True)
class Names:
    """Stream and group names of one test, all under one unique prefix."""

    prefix: str

    @property
    def stream(self) -> str:
        return f"{self.prefix}:events"

    @property
    def group(self) -> str:
        return f"{self.prefix}:group"

    def key(self, what: str) -> str:
        return f"{self.prefix}:{what}"


@pytest.fixture
def names(redis_url: str) -> Iterator[Names]:
    """Unique names for this test; every key under its prefix is deleted at the end."""
    import redis

    found = Names(f"flowstage-test:{uuid.uuid4().hex}")
    yield found
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{found.prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def r(redis_url: str) -> Iterator[Any]:
    """A plain synchronous redis-py client, to set up and inspect the server."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
