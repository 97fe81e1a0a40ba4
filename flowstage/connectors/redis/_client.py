"""Connecting to Redis with redis-py's asyncio client, and closing it.

redis-py is imported here, lazily: importing flowstage (or this connector) never
imports it. Its asyncio client needs asyncio's event loop (or uvloop): on trio the
connector says so when it connects.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Final

import anyio

from ..._options import invalid

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "COMMAND_TIMEOUT",
    "DEFAULT_URL",
    "SCHEMES",
    "check_seconds",
    "check_url",
    "client_name",
    "close",
    "connect",
    "require_asyncio",
]

#: The Redis server used when no ``url`` is given.
DEFAULT_URL: Final = "redis://127.0.0.1:6379/0"
#: The URL schemes redis-py accepts.
SCHEMES: Final = ("redis://", "rediss://", "unix://")
#: Seconds a command that does not block may take before the client gives up.
COMMAND_TIMEOUT: Final = 30.0


def check_url(url: object, call: str) -> str:
    """``url`` if it is a Redis URL, else a ``TypeError``/``ValueError``."""
    if not isinstance(url, str):
        raise TypeError(invalid("url", "a Redis URL (redis://host:port/db)", url, call))
    if not url.startswith(SCHEMES):
        raise ValueError(
            invalid("url", "a URL starting with redis://, rediss:// or unix://", url, call)
        )
    return url


def check_seconds(option: str, value: object, call: str) -> float:
    """``value`` as a ``float`` if it is a number of seconds > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(invalid(option, "a number of seconds > 0", value, call))
    if not value > 0:
        raise ValueError(invalid(option, "a number of seconds > 0", value, call))
    return float(value)


def _library() -> str:
    try:
        import sniffio

        return sniffio.current_async_library()
    except Exception:  # no sniffio, or a library it does not know
        return "an event loop other than asyncio's"


def require_asyncio(call: str) -> None:
    """Raise ``RuntimeError`` unless running on asyncio's event loop (or uvloop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"{call}: the event loop must be asyncio's (or uvloop): redis-py's asyncio "
            "client does not run on trio; run the flow with "
            f"anyio.run(..., backend='asyncio'), got: {_library()!r}"
        ) from None


def client_name(*parts: str) -> str:
    """A connection name for ``CLIENT LIST``: ``flowstage:<parts>``, with ``_`` for
    every character Redis refuses in a name (spaces, anything but printable ASCII)."""
    return re.sub(r"[^!-~]", "_", ":".join(("flowstage", *parts)))


def connect(url: str, call: str, *, socket_timeout: float | None, name: str) -> Redis:
    """A client for ``url`` whose connections are named ``name`` (no connection is
    made until its first command)."""
    require_asyncio(call)
    try:
        from redis.asyncio import Redis
    except ImportError as exc:
        raise ImportError(
            f"{call} needs redis-py: pip install 'flowstage[redis]' (or redis>=5)"
        ) from exc
    client: Redis = Redis.from_url(
        url,
        decode_responses=False,
        protocol=2,  # the reply shapes the connector reads, in every redis-py >= 5
        socket_timeout=socket_timeout,
        socket_connect_timeout=10.0,
        health_check_interval=0,
        client_name=name,
    )
    return client


async def close(client: Any, seconds: float) -> None:
    """Close ``client`` and its connection pool, even when the caller is cancelled
    (shielded), waiting at most ``seconds``."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(seconds):
        await client.aclose()
