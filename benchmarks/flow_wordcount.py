"""Word count: plain Python beside flowstage's Flow, in the same run.

Cases (each verifies the total and the per-word counts against the eager loop):

* plain Python, eager: ``collections.Counter`` fed by ``str.split`` of every line.
* plain Python, lazy: the same through generators, counting in a Python loop.
* plain Python, same reducer: ``functools.reduce(add, words, {})``, calling the
  reducer the flow is given once per word, so the ratio to it is what the flow's
  machinery (partition hash included) costs.
* plain Python, the flow's per-word work without stages: batches of 500 lines
  flattened into words, bucketed by the flow's own partition hash
  (``KeyHash(stages).buckets``) and folded with the same reducer per partition. The
  ratio of the per-word flow to it is what the stages themselves (tasks, demand,
  messages) cost.
* flow, per word: the canonical flow, one event per word::

      Flow.from_iterable(lines).flat_map(str.split).partition().reduce(dict, add)

* flow, per batch: each batch of lines is counted with ``Counter`` inside the
  stage (``map_batch``), and the partial counts are partitioned by word and summed.
* flow, per batch with a local combiner: each stage folds its batches of lines into
  one ``Counter`` (``Counter.update`` counts in C), and ``departition`` merges the
  stages' counters at the end; the best batch-level flowstage version.

The corpus is the deterministic Zipf-like text of ``benchmarks/corpus.py``
(20 MB by default, generated once into ``benchmarks/data/``).

    python benchmarks/flow_wordcount.py [--megabytes M] [--repeat K] [--stages N] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import anyio

from flowstage import Flow, KeyHash

HERE = Path(__file__).resolve().parent

ROWS: tuple[str, ...] = (
    "plain Python, eager (Counter)",
    "plain Python, lazy (generators)",
    "plain Python, same reducer (functools.reduce(add))",
    "plain Python, the flow's per-word work without stages",
    "flow, per word (flat_map → partition → reduce)",
    "flow, per batch (map_batch Counter → partition → reduce)",
    "flow, per batch, local combiner (reduce Counter → departition)",
)


def corpus(megabytes: float) -> list[str]:
    """The lines of the benchmark corpus, generated on first use."""
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    path = data / f"corpus-{megabytes:g}mb.txt"
    if not path.exists():
        subprocess.run(
            [sys.executable, str(HERE / "corpus.py"), str(path), str(megabytes)], check=True
        )
    return path.read_text(encoding="utf-8").splitlines()


def eager(lines: list[str]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for line in lines:
        counts.update(line.split())
    return dict(counts)


def lazy(lines: list[str]) -> dict[str, int]:
    words = (w for line in lines for w in line.split())
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    return counts


def _add(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


def same_reducer(lines: list[str]) -> dict[str, int]:
    return functools.reduce(_add, (w for line in lines for w in line.split()), {})


def _add_pair(acc: dict[str, int], pair: tuple[str, int]) -> dict[str, int]:
    word, n = pair
    acc[word] = acc.get(word, 0) + n
    return acc


def _count_batch(lines: list[str]) -> list[tuple[str, int]]:
    return list(Counter(" ".join(lines).split()).items())


def without_stages(lines: list[str], stages: int) -> dict[str, int]:
    hasher = KeyHash(stages)
    accs: list[dict[str, int]] = [{} for _ in range(stages)]
    for start in range(0, len(lines), 500):
        words = list(itertools.chain.from_iterable(map(str.split, lines[start : start + 500])))
        for i, bucket in enumerate(hasher.buckets(words)):
            accs[i] = functools.reduce(_add, bucket, accs[i])
    counts: dict[str, int] = {}
    for acc in accs:
        counts.update(acc)
    return counts


async def flow_per_word(lines: list[str], stages: int) -> dict[str, int]:
    flow = Flow.from_iterable(lines).flat_map(str.split).partition(stages=stages).reduce(dict, _add)
    return dict(await flow.to_list())


async def flow_per_batch(lines: list[str], stages: int) -> dict[str, int]:
    flow = (
        Flow.from_iterable(lines, stages=stages)
        .map_batch(_count_batch)
        .partition(stages=stages, key=("elem", 0))
        .reduce(dict, _add_pair)
    )
    return dict(await flow.to_list())


def _join_batch(lines: list[str]) -> list[str]:
    return [" ".join(lines)]


def _count_text(acc: Counter[str], text: str) -> Counter[str]:
    acc.update(text.split())
    return acc


def _merge_counts(acc: Counter[str], counts: Counter[str]) -> Counter[str]:
    acc.update(counts)
    return acc


async def flow_combiner(lines: list[str], stages: int) -> dict[str, int]:
    flow = (
        Flow.from_iterable(lines, stages=stages)
        .map_batch(_join_batch)
        .reduce(Counter, _count_text)
        .departition(Counter, _merge_counts, dict)
    )
    [counts] = await flow.to_list()
    result: dict[str, int] = counts
    return result


def _timed(func: Callable[[], dict[str, int]]) -> tuple[float, dict[str, int]]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def measure(
    lines: list[str], repeat: int, stages: int, backend: str
) -> list[tuple[str, float, float, float]]:
    """Return ``(case, median seconds, fastest, slowest)`` per case, alternating runs."""
    words = sum(len(line.split()) for line in lines)
    expected = eager(lines)
    cases: list[tuple[str, Callable[[], dict[str, int]]]] = [
        (ROWS[0], lambda: eager(lines)),
        (ROWS[1], lambda: lazy(lines)),
        (ROWS[2], lambda: same_reducer(lines)),
        (ROWS[3], lambda: without_stages(lines, stages)),
        (ROWS[4], lambda: anyio.run(flow_per_word, lines, stages, backend=backend)),
        (ROWS[5], lambda: anyio.run(flow_per_batch, lines, stages, backend=backend)),
        (ROWS[6], lambda: anyio.run(flow_combiner, lines, stages, backend=backend)),
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for rep in range(repeat):
        order = cases[rep % len(cases) :] + cases[: rep % len(cases)]
        for name, func in order:
            elapsed, result = _timed(func)
            if result != expected:
                raise AssertionError(f"{name}: counts differ from the eager loop")
            times[name].append(elapsed)
    del words
    return [(name, statistics.median(ts), min(ts), max(ts)) for name, ts in times.items()]


def format_table(backend: str, rows: Iterable[tuple[str, float, float, float]], words: int) -> str:
    rows = list(rows)
    eager_s, lazy_s, same_s = rows[0][1], rows[1][1], rows[2][1]
    out = [
        "| backend | case | median s | words/s | fastest - slowest s "
        "| vs eager | vs lazy loop | vs same reducer |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, med, fast, slow in rows:
        out.append(
            f"| {backend} | {name} | {med:.3f} | {words / med / 1e6:.2f} M | "
            f"{fast:.3f} - {slow:.3f} | {eager_s / med:.2f}x | {lazy_s / med:.2f}x "
            f"| {same_s / med:.2f}x |"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stages", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--quick", action="store_true", help="tiny input, asyncio only")
    args, _ = parser.parse_known_args(argv)
    backends: list[str] = args.backend or ["asyncio", "trio"]
    if args.quick:
        lines = ["the quick brown fox jumps over the lazy dog"] * 2000
        backends, repeat = ["asyncio"], 1
    else:
        lines = corpus(args.megabytes)
        repeat = args.repeat
    words = sum(len(line.split()) for line in lines)
    size = sum(len(line) + 1 for line in lines)
    print(
        f"## Word count: {size / 1e6:.1f} MB, {words:,} words, stages={args.stages}, "
        f"median of {repeat}\n"
    )
    for i, backend in enumerate(backends):
        table = format_table(backend, measure(lines, repeat, args.stages, backend), words)
        print(table if i == 0 else "\n".join(table.splitlines()[2:]))
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
