"""A real Redis server for the connector tests, and unique names that are cleaned up.

The server comes from the ``redis_url`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ..conftest import BACKENDS as ALL_BACKENDS

#: redis-py's asyncio client needs asyncio: the connector tests run on asyncio, and
#: on uvloop where it is installed (the suite's backends but trio).
BACKENDS: list[Any] = [param for param in ALL_BACKENDS if param.id != "trio"]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


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
