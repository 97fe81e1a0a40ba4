"""Helpers shared by the benchmark modules (not a benchmark itself)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import anyio

__all__ = ["available_backends", "peak_rss_kib", "run_child", "run_on"]


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
