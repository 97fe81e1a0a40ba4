"""Compare two checkouts of flowstage on the same workloads, alternately, in one run.

The machine is shared and noisy, so a change is measured against the code before
it by running both in the same session, one after the other, round after round,
each run in a fresh interpreter that imports flowstage from its own tree, and
reporting the median of the per-round time ratios (new / old).

Workloads (the same code for both trees; only APIs both versions have):

* ``wordcount``: the canonical per-word flow over the 20 MB corpus, lines read
  beforehand: ``Flow.from_iterable(lines).flat_map(str.split).partition()
  .reduce(dict, add)``, collected with ``to_list()``.
* ``mapfilter``: ``Flow.from_iterable(range(2_000_000), stages=2).map(double)
  .filter(multiple_of_3).reduce(int, operator.add).emit("state")``.
* ``engine``: 5,000,000 integers producer -> consumer with ``max_demand=1000``
  in a ``StageGroup``.

Usage::

    python benchmarks/compare.py OLD_TREE [NEW_TREE] [--rounds N] [--only NAME ...]

``NEW_TREE`` defaults to this checkout. Make the old tree with, for example,
``git worktree add ../flowstage-old <commit>``. Every result is checked.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS: tuple[str, ...] = ("wordcount", "mapfilter", "engine")

_CHILD = r"""
import json, operator, sys, time
sys.path.insert(0, sys.argv[1])
import anyio
import flowstage
from flowstage import Flow

name, corpus = sys.argv[2], sys.argv[3]

def add(acc, word):
    acc[word] = acc.get(word, 0) + 1
    return acc

def double(x):
    return x * 2

def multiple_of_3(x):
    return x % 3 == 0

class Numbers(flowstage.Producer):
    def __init__(self, n):
        super().__init__()
        self.next, self.n = 0, n
    def handle_demand(self, demand):
        end = min(self.next + demand, self.n)
        out, self.next = list(range(self.next, end)), end
        if end == self.n:
            self.finish()
        return out

class Summer(flowstage.Consumer):
    total = 0
    def handle_events(self, events, from_):
        self.total += sum(events)

async def wordcount(lines):
    flow = Flow.from_iterable(lines).flat_map(str.split).partition().reduce(dict, add)
    return sum(count for _, count in await flow.to_list())

async def mapfilter(n):
    flow = (Flow.from_iterable(range(n), stages=2).map(double).filter(multiple_of_3)
            .reduce(int, operator.add).emit("state"))
    return sum(await flow.to_list())

async def engine(n):
    async with flowstage.StageGroup() as group:
        p = group.start(Numbers(n))
        c = group.start(Summer(subscribe_to=[(p, {"max_demand": 1000})]))
        await group.wait()
    return c.total

if name == "wordcount":
    with open(corpus, encoding="utf-8") as f:
        lines = f.readlines()
    run, arg = wordcount, lines
    expected = sum(len(line.split()) for line in lines)
elif name == "mapfilter":
    run, arg = mapfilter, 2_000_000
    expected = sum(y for x in range(arg) if (y := x * 2) % 3 == 0)
else:
    run, arg = engine, 5_000_000
    expected = arg * (arg - 1) // 2
anyio.run(run, arg)  # warm-up
t0 = time.perf_counter()
result = anyio.run(run, arg)
elapsed = time.perf_counter() - t0
assert result == expected, (result, expected)
print(json.dumps({"seconds": elapsed, "module": flowstage.__file__}))
"""


def corpus_path(megabytes: float = 20.0) -> Path:
    """The deterministic corpus of ``benchmarks/corpus.py`` (generated once)."""
    path = HERE / "data" / f"corpus-{megabytes:g}mb.txt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, str(HERE / "corpus.py"), str(path), str(megabytes)], check=True
        )
    return path


def run_once(tree: Path, workload: str, corpus: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tree), workload, str(corpus)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if not str(result["module"]).startswith(str(tree)):
        raise RuntimeError(f"{tree} imported flowstage from {result['module']}")
    return float(result["seconds"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path, nargs="?", default=HERE.parent)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", action="append", choices=WORKLOADS, default=None)
    args = parser.parse_args(argv)
    old, new = args.old.resolve(), args.new.resolve()
    corpus = corpus_path()
    print(f"## {new.name} against {old.name}: {args.rounds} alternating rounds\n")
    print("| workload | old median s | new median s | new/old per round: median (min - max) |")
    print("|---|---:|---:|---:|")
    for workload in args.only or WORKLOADS:
        olds: list[float] = []
        news: list[float] = []
        ratios: list[float] = []
        for r in range(args.rounds):
            # Alternate which tree runs first, so drift favours neither.
            pair = [(old, olds), (new, news)]
            for tree, times in pair if r % 2 == 0 else reversed(pair):
                times.append(run_once(tree, workload, corpus))
            ratios.append(news[-1] / olds[-1])
        print(
            f"| {workload} | {statistics.median(olds):.3f} | {statistics.median(news):.3f} | "
            f"{statistics.median(ratios):.3f} ({min(ratios):.3f} - {max(ratios):.3f}) |"
        )
        sys.stdout.flush()
    print()
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    status = main()
    print(f"({time.perf_counter() - t0:.0f} s)")
    raise SystemExit(status)
