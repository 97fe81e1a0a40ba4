"""Run every benchmark module in ``benchmarks/`` (``make bench``).

A benchmark module is ``benchmarks/engine.py`` or any ``benchmarks/flow_*.py``. Each
exposes ``main(argv) -> int`` that parses its own options (at least ``--quick``),
prints a Markdown section with its results table and returns an exit status, and
``ROWS``, the row labels its ``--quick`` table has (the smoke test checks them).

Usage::

    python benchmarks/run.py [--only NAME ...] [--list] [OPTIONS FOR EVERY MODULE]

Options this script does not know (``--quick``, ``--events N``, ``--repeat K``,
``--backend NAME``, ...) are passed to every module.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent

#: Which files in ``benchmarks/`` are benchmark modules, in running order.
PATTERNS: tuple[str, ...] = ("engine.py", "flow_*.py")


def discover(directory: Path = HERE) -> list[Path]:
    """The benchmark modules in ``directory``, in :data:`PATTERNS` order."""
    found: list[Path] = []
    for pattern in PATTERNS:
        for path in sorted(directory.glob(pattern)):
            if path not in found:
                found.append(path)
    return found


def load(path: Path) -> ModuleType:
    """Import the benchmark module at ``path`` (as ``benchmarks_<stem>``)."""
    name = f"benchmarks_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # modules import their sibling _common
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load benchmark module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the body runs
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    if not callable(getattr(module, "main", None)):
        raise TypeError(f"benchmark module {path} does not define main(argv)")
    return module


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Run every benchmark module; unknown options go to each module.",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this module (file name without .py; repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    args, rest = parser.parse_known_args(argv)
    paths = discover()
    if args.only:
        unknown = set(args.only) - {p.stem for p in paths}
        if unknown:
            parser.error(f"no benchmark module named {', '.join(sorted(unknown))}")
        paths = [p for p in paths if p.stem in args.only]
    if args.list:
        for path in paths:
            print(path.stem)
        return 0
    status = 0
    for path in paths:
        started = time.perf_counter()
        code = load(path).main(list(rest))
        print(f"\n_{path.stem} took {time.perf_counter() - started:.1f} s_\n", flush=True)
        status = status or int(code or 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
