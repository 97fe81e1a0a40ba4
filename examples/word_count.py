"""Word count four ways: eager, lazy, concurrent and parallel (the Flow talk's example).

Usage: python examples/word_count.py [FILE ...]

With no files it counts the words of the Python standard library's own ``.py``
files. For each version it prints the top 10 words and the throughput.

* eager: read every line into a list, then ``collections.Counter`` over
  ``str.split`` of all lines;
* lazy: the same pipeline built from generators, so only one line is in memory;
* concurrent: ``Flow.from_iterable(lines).flat_map(str.split).partition()
  .reduce(dict, count)``: the lines are split by one layer of stages, the words
  are routed by hash so each word is counted by exactly one reducer stage.
* parallel: the same flow on the process executor: each partition runs in a worker
  process, one per core, and words go straight to the worker that counts them.

On the local executor the stages share one event loop, so the concurrent version
pays for hashing and batching without gaining parallelism on this CPU-bound job
(its stages pay off when the work awaits I/O); the process executor runs the same
flow on every core.
"""

from __future__ import annotations

import collections
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import anyio

from flowstage.executors.process import ProcessExecutor
from flowstage.flow import Flow


def stdlib_files() -> list[str]:
    """The ``.py`` files of the running Python's standard library."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(str(p) for p in root.rglob("*.py") if "site-packages" not in p.parts)


def read_lines(path: str) -> Iterator[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        yield from f


def eager(paths: list[str]) -> collections.Counter[str]:
    """Everything in memory at once."""
    lines: list[str] = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines.extend(f.readlines())
    return collections.Counter(word for line in lines for word in line.split())


def lazy(paths: list[str]) -> collections.Counter[str]:
    """Generators: one line at a time."""
    lines = (line for path in paths for line in read_lines(path))
    words = (word for line in lines for word in line.split())
    return collections.Counter(words)


def count(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


async def concurrent(
    paths: list[str], stages: int | None = None, executor: ProcessExecutor | None = None
) -> collections.Counter[str]:
    """Flow: split lines in one layer, count words in a partitioned layer."""
    lines = (line for path in paths for line in read_lines(path))
    flow = Flow.from_iterable(lines, stages=stages).flat_map(str.split)
    pairs = await flow.partition(stages=stages).reduce(dict, count).to_list(executor=executor)
    return collections.Counter(dict(pairs))


async def parallel(paths: list[str], workers: int | None = None) -> collections.Counter[str]:
    """The same flow, each partition in a worker process (one per core)."""
    return await concurrent(paths, stages=workers, executor=ProcessExecutor(workers))


def report(name: str, counts: collections.Counter[str], seconds: float) -> None:
    words = sum(counts.values())
    rate = words / seconds if seconds > 0 else float("inf")
    top = ", ".join(f"{w}:{n}" for w, n in counts.most_common(10))
    print(f"{name:10s} {words:>10,} words in {seconds:6.3f}s = {rate:>12,.0f} words/s")
    print(f"{'':10s} top 10: {top}")


def main(paths: list[str]) -> None:
    """Count the words of ``paths`` (the stdlib's ``.py`` files when empty) four
    ways and print the top 10 words and the throughput of each."""
    if not paths:
        paths = stdlib_files()
        print(f"counting the words of {len(paths)} standard library files")
    t = time.perf_counter()
    first = eager(paths)
    report("eager", first, time.perf_counter() - t)
    t = time.perf_counter()
    second = lazy(paths)
    report("lazy", second, time.perf_counter() - t)
    t = time.perf_counter()
    third = anyio.run(concurrent, paths)
    report("concurrent", third, time.perf_counter() - t)
    print(
        f"{'':10s} (one event loop: the stages take turns on one core, and hashing and "
        "batching cost more than they save on a CPU-bound job)"
    )
    t = time.perf_counter()
    fourth = anyio.run(parallel, paths)
    report("parallel", fourth, time.perf_counter() - t)
    print(f"{'':10s} (the same flow on the process executor: a worker process per core)")
    if not first == second == third == fourth:
        raise SystemExit("the four versions disagree")


if __name__ == "__main__":
    main(sys.argv[1:])
