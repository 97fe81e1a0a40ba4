"""What the fork server imports before it forks workers.

A worker forked from a server that has already imported a module does not import it
again: flowstage, the event loop backend of the first run, the standard-library
modules every worker needs to start, and the standard-library modules the parent's
code uses (each worker runs the main script again, as ``multiprocessing`` does, and
then imports the modules of the plan's callbacks, which import theirs).

Only standard-library modules the parent has imported, loaded from the standard
library's own directory, are preloaded for the parent's code: a package from
elsewhere may start a thread when imported, which a fork server must not have. A few
standard-library modules are left out too: those that do something visible when
imported (:data:`NOT_PRELOADED`, and any ``__main__`` module, which runs a program)
and those that warn (:data:`WARN_ON_IMPORT`).

The fork server starts once per parent process, with the list of its first run.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading
import types
import weakref
from collections import deque
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "NOT_PRELOADED",
    "WALK_LIMIT",
    "WARN_ON_IMPORT",
    "main_script_modules",
    "preload_modules",
]

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

#: Standard-library modules never preloaded for the parent's code: importing them
#: does something visible (prints, opens a browser, sets up the terminal for line
#: editing, starts a program or exits when a piece is missing).
NOT_PRELOADED: Final = frozenset(
    {
        "antigravity",
        "this",
        "__hello__",
        "__phello__",
        "readline",
        "rlcompleter",
        "idlelib",
        "turtledemo",
    }
)

#: Standard-library modules that warn when imported (deprecated, or removed in a
#: later Python): the fork server imports its preloads with only ``ImportError``
#: caught, so under ``-W error`` (or ``PYTHONWARNINGS``, which it inherits) one of
#: them would stop it, and under ``-W default`` print at its start.
WARN_ON_IMPORT: Final = frozenset(
    {
        "aifc",
        "asynchat",
        "asyncore",
        "audioop",
        "cgi",
        "cgitb",
        "chunk",
        "crypt",
        "distutils",
        "imghdr",
        "imp",
        "lib2to3",
        "mailcap",
        "msilib",
        "nis",
        "nntplib",
        "ossaudiodev",
        "pipes",
        "smtpd",
        "sndhdr",
        "spwd",
        "sre_compile",
        "sre_constants",
        "sre_parse",
        "sunau",
        "telnetlib",
        "tkinter.tix",
        "uu",
        "xdrlib",
    }
)

#: How many modules :func:`main_script_modules` looks into, at most: the main module
#: first, then the modules outside the standard library it leads to, breadth first.
WALK_LIMIT: Final = 200

_lock = threading.Lock()
#: The last walk: the main module it started from, its limit and what it found.
_walked: tuple[weakref.ref[types.ModuleType], int, list[str]] | None = None


def preload_modules(backend: str | None) -> list[str]:
    """Every module the fork server should import for a run on ``backend``."""
    modules = ["flowstage.executors.process._worker", *_START_MODULES]
    modules += _BACKEND_MODULES.get(backend or "", ())
    modules += main_script_modules()
    return modules


def main_script_modules(limit: int = WALK_LIMIT) -> list[str]:
    """The standard-library modules the main script uses, itself or through the
    modules it imports, as far as their globals tell.

    From the main module, breadth first through at most ``limit`` modules (the main
    module included): each module's globals that are modules, and the modules of
    its globals that are functions or classes. A module counts as the standard
    library's when its name is one and it was loaded from the standard library's
    own directory (or is built in or frozen): a local ``calendar.py`` that shadows
    the real one is the script's own. Those are kept (but none of
    :data:`NOT_PRELOADED` or :data:`WARN_ON_IMPORT`, no ``__main__`` module and no
    private one); any other is looked into in turn, each once. Only real module
    objects this process has imported are considered: a lazily loaded module is
    neither looked into nor loaded by the walk. Imports inside functions are not
    seen.

    Best effort, and it never raises: a global that cannot be inspected is passed
    over. The result for one main module (and limit) is computed once,
    under a lock: the fork server only uses it when it starts."""
    global _walked
    main = sys.modules.get("__main__")
    if type(main) is not types.ModuleType:
        return []
    with _lock:
        walked = _walked
        if walked is None or walked[0]() is not main or walked[1] != limit:
            walked = _walked = (weakref.ref(main), limit, _walk(main, limit))
        return list(walked[2])


def _walk(main: types.ModuleType, limit: int) -> list[str]:
    stdlib_names = sys.stdlib_module_names
    modules = sys.modules
    homes = _stdlib_homes()
    found: set[str] = set()
    seen: set[int] = {id(main)}
    queue: deque[types.ModuleType] = deque([main])
    looked = 0
    while queue and looked < limit:
        module = queue.popleft()
        looked += 1
        for value in list(module.__dict__.values()):
            try:
                target = _module_of(value, modules)
                if target is None or id(target) in seen:
                    continue
                name = target.__dict__.get("__name__")
                if not isinstance(name, str):
                    continue
                if name.partition(".")[0] in stdlib_names and _is_stdlib(target, homes):
                    if _preloadable(name) and modules.get(name) is target:
                        found.add(name)
                    continue
                seen.add(id(target))
                queue.append(target)
            except Exception:  # an odd object: pass it over
                continue
    return sorted(found)


def _module_of(value: object, modules: Mapping[str, object]) -> types.ModuleType | None:
    """``value`` if it is a module, the module of a function or class, else None
    (never through ``value``'s own ``__class__``, which a proxy may compute)."""
    kind = type(value)
    if kind is types.ModuleType:
        return value  # type: ignore[return-value]
    if kind is types.FunctionType or kind is types.BuiltinFunctionType or issubclass(kind, type):
        name = getattr(value, "__module__", None)
        if isinstance(name, str):
            module = modules.get(name)
            if type(module) is types.ModuleType:
                return module
    return None


def _stdlib_homes() -> tuple[str, ...]:
    """The directories the standard library is loaded from (the base interpreter's,
    also in a virtual environment), each ending with a separator."""
    base = {
        "base": sys.base_prefix,
        "platbase": sys.base_exec_prefix,
        "installed_base": sys.base_prefix,
        "installed_platbase": sys.base_exec_prefix,
    }
    paths = sysconfig.get_paths(vars=base)
    homes = {os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib")}
    return tuple(os.path.join(home, "") for home in sorted(homes))


def _is_stdlib(module: types.ModuleType, homes: tuple[str, ...]) -> bool:
    """Whether ``module`` was loaded from the standard library (built in, frozen,
    or a file in its directory but not in a ``site-packages`` under it)."""
    spec = module.__dict__.get("__spec__")
    origin = getattr(spec, "origin", None) if spec is not None else None
    if origin in ("built-in", "frozen"):
        return True
    if not isinstance(origin, str):
        origin = module.__dict__.get("__file__")
        if not isinstance(origin, str):
            return False
    path = os.path.realpath(origin)
    for home in homes:
        if path.startswith(home):
            first = path[len(home) :].split(os.sep, 1)[0]
            return first not in ("site-packages", "dist-packages")
    return False


def _preloadable(name: str) -> bool:
    top = name.partition(".")[0]
    return (
        top not in NOT_PRELOADED
        and top not in WARN_ON_IMPORT
        and name not in WARN_ON_IMPORT
        and not top.startswith("_")
        and name.rpartition(".")[2] != "__main__"
    )
