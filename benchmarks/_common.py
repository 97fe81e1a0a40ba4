"""Helpers shared by the benchmark modules (not a benchmark itself)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import anyio

__all__ = [
    "available_backends",
    "peak_rss_kib",
    "run_child",
    "run_on",
    "workers_import_elsewhere",
]


def available_backends() -> list[str]:
    """asyncio, plus asyncio+uvloop and trio when they are installed."""
    found = ["asyncio"]
    for module, name in (("uvloop", "asyncio+uvloop"), ("trio", "trio")):
        if importlib.util.find_spec(module) is not None:
            found.append(name)
    return found


def run_on(backend: str, func: Callable[..., Any], *args: Any) -> Any:
    """``anyio.run(func, *args)`` on ``asyncio``, ``asyncio+uvloop`` or ``trio``."""
    if backend == "asyncio+uvloop":
        return anyio.run(func, *args, backend="asyncio", backend_options={"use_uvloop": True})
    return anyio.run(func, *args, backend=backend)


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB, since it started its program.

    On Linux this is ``VmHWM`` from ``/proc/self/status``: ``ru_maxrss`` is not
    reset by ``exec``, so a child spawned by a large parent would report the
    parent's size. Elsewhere, ``ru_maxrss`` (bytes on macOS, KiB otherwise).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def run_child(script: str, *args: str) -> dict[str, float]:
    """Run ``script --child ARGS`` in a fresh interpreter; return its last JSON line."""
    out = subprocess.run(
        [sys.executable, script, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def workers_import_elsewhere() -> str | None:
    """Why worker processes would run another copy of flowstage than this process,
    or ``None``.

    On Python 3.11 the fork server imports what it preloads (flowstage among it)
    from its working directory first, whatever this process's ``sys.path``
    (CPython gh-117378, fixed in 3.12): comparing two checkouts with ``PYTHONPATH``
    from inside one of them runs that one's workers in both.
    """
    import flowstage

    if sys.version_info >= (3, 12):
        return None
    local = os.path.realpath(os.path.join(os.getcwd(), "flowstage"))
    mine = os.path.realpath(os.path.dirname(flowstage.__file__))
    if os.path.isfile(os.path.join(local, "__init__.py")) and local != mine:
        return (
            f"worker processes will import flowstage from {local}, not {mine} "
            "(the fork server looks in its working directory first on Python 3.11): "
            "run from another directory"
        )
    return None
