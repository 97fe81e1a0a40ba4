"""What the fork server imports before it forks workers.

A worker forked from a server that has already imported a module does not import it
again: flowstage, the event loop backend of the first run, the standard-library
modules every worker needs to start, and the standard-library modules the parent's
code uses (each worker runs the main script again, as ``multiprocessing`` does, and
then imports the modules of the plan's callbacks, which import theirs).

Only standard-library modules the parent has imported are preloaded for the parent's
code: a package from elsewhere may start a thread when imported, which a fork server
must not have, and a few standard-library modules do something visible when imported
(:data:`NOT_PRELOADED`, and any ``__main__`` module, which runs a program).

The fork server starts once per parent process, with the list of its first run.
"""

from __future__ import annotations

import sys
import types
from collections import deque
from typing import Final

__all__ = ["NOT_PRELOADED", "WALK_LIMIT", "main_script_modules", "preload_modules"]

#: What the fork server imports for workers that run on each backend (on top of
#: flowstage): anyio imports its backend on the first ``anyio.run``, which took a
#: worker as long as everything else in its start-up.
_BACKEND_MODULES: Final = {
    "asyncio": ("anyio._backends._asyncio",),
    "asyncio+uvloop": ("anyio._backends._asyncio", "uvloop"),
    "trio": ("anyio._backends._trio",),
}

#: Standard-library modules every worker imports while it starts (multiprocessing
#: runs the parent's main script through runpy, which imports pkgutil; ctypes tunes
#: the allocator, see :mod:`._allocator`): about 1.7 ms of a worker's start-up when
#: the fork server has not imported them, and 8 ms more for ctypes.
_START_MODULES: Final = ("runpy", "pkgutil", "multiprocessing.popen_forkserver", "ctypes")

#: Standard-library modules never preloaded: importing them does something visible
#: (prints, opens a browser, or sets up the terminal for line editing).
NOT_PRELOADED: Final = frozenset(
    {"antigravity", "this", "__hello__", "__phello__", "readline", "rlcompleter"}
)

#: How many modules outside the standard library :func:`main_script_modules` looks
#: into, at most (the main script first, then what it imports, breadth first).
WALK_LIMIT: Final = 200

#: The last walk: the main module it started from, its limit and what it found.
_walked: tuple[types.ModuleType, int, list[str]] | None = None


def preload_modules(backend: str | None) -> list[str]:
    """Every module the fork server should import for a run on ``backend``."""
    modules = ["flowstage.executors.process._worker", *_START_MODULES]
    modules += _BACKEND_MODULES.get(backend or "", ())
    modules += main_script_modules()
    return modules


def main_script_modules(limit: int = WALK_LIMIT) -> list[str]:
    """The standard-library modules the main script uses, directly or through the
    modules it imports, as far as their globals tell.

    From the main module, breadth first through at most ``limit`` modules outside
    the standard library: each module's globals that are modules, and the modules
    of its globals that are functions or classes; a standard-library one is kept,
    any other is looked into in turn. Only modules this process has imported are
    considered. ``argparse``, ``statistics`` and ``pathlib`` took a worker about
    6 ms to import; a helper module's own imports cost each worker as much at every
    run. The result for one main module is computed once (the fork server uses it
    when it starts)."""
    global _walked
    main = sys.modules.get("__main__")
    if not isinstance(main, types.ModuleType):
        return []
    walked = _walked
    if walked is None or walked[0] is not main or walked[1] != limit:
        walked = _walked = (main, limit, _walk(main, limit))
    return list(walked[2])


def _walk(main: types.ModuleType, limit: int) -> list[str]:
    stdlib = sys.stdlib_module_names
    modules = sys.modules
    found: set[str] = set()
    seen: set[str] = {"__main__", main.__name__}
    queue: deque[types.ModuleType] = deque([main])
    looked = 0
    while queue and looked < limit:
        module = queue.popleft()
        looked += 1
        for key, value in list(vars(module).items()):
            if key.startswith("__"):
                continue
            name: object
            if isinstance(value, types.ModuleType):
                name = value.__name__
            elif isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
                name = getattr(value, "__module__", None)
            else:
                continue
            if not isinstance(name, str):
                continue
            target = modules.get(name)
            if not isinstance(target, types.ModuleType):
                continue
            top = name.partition(".")[0]
            if top in stdlib:
                if _preloadable(name, top):
                    found.add(name)
            elif name not in seen:
                seen.add(name)
                queue.append(target)
    return sorted(found)


def _preloadable(name: str, top: str) -> bool:
    return (
        top not in NOT_PRELOADED
        and not top.startswith("_")
        and name.rpartition(".")[2] != "__main__"
    )
