"""Connecting to Ray for a run.

If Ray is already initialized in this process (the application called ``ray.init``),
a run uses that connection and leaves it alone. Otherwise the first run calls
``ray.init`` (``address`` given: connect to that cluster; none: start a local one),
runs that start together share it, and the last of them to end shuts it down. Calls
block (``ray.init`` takes seconds): the pool makes them in a worker thread.
"""

from __future__ import annotations

import threading
from typing import Any, Final

__all__ = ["DEFAULT_INIT_OPTIONS", "acquire", "import_ray", "release"]

#: ``ray.init`` options used when a run starts or connects to Ray, unless given.
DEFAULT_INIT_OPTIONS: Final[dict[str, Any]] = {
    "include_dashboard": False,
    "logging_level": "warning",
}

_lock = threading.Lock()
_users = 0  # runs using the connection made here
_ours = False  # this module called ray.init (and will shut it down)


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the Ray executor needs Ray: pip install 'flowstage[ray]'") from exc
    return ray


def acquire(address: str | None, init_options: dict[str, Any]) -> bool:
    """Make sure Ray is initialized; True when this run counts as a user of a
    connection made here (call :func:`release` when it ends).

    Raises:
        RuntimeError: ``address`` was given but the application already connected
            Ray elsewhere.
    """
    global _users, _ours
    ray = import_ray()
    with _lock:
        if ray.is_initialized():
            if _ours:
                _users += 1
                return True
            if address is not None:
                raise RuntimeError(
                    "RayExecutor(address=...): Ray is already initialized in this process; "
                    "drop address to run on the cluster it is connected to"
                )
            return False
        options = {**DEFAULT_INIT_OPTIONS, **init_options}
        if address is not None:
            options["address"] = address
        ray.init(**options)
        _ours = True
        _users = 1
        return True


def release() -> None:
    """One run that :func:`acquire` counted ended; the last one shuts Ray down."""
    global _users, _ours
    ray = import_ray()
    with _lock:
        _users -= 1
        if _users == 0 and _ours:
            _ours = False
            ray.shutdown()
