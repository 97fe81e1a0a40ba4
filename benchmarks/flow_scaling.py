"""Word count as the input grows: time, words/s and peak RSS per corpus size.

The canonical flow over lines streamed from the file (never read whole)::

    Flow.from_iterable(open(path)).flat_map(str.split).partition().reduce(dict, add)

Each size runs in its own subprocess, which reports the wall time, the number of
words counted (checked against the input) and its peak RSS (``VmHWM`` on Linux); an idle
subprocess that only imports flowstage and runs an empty event loop gives the
baseline. Time should grow linearly with the size while memory stays flat (the
vocabulary is fixed, so the per-word dicts do not grow). Corpora come from
``benchmarks/corpus.py`` and are kept in ``benchmarks/data/`` (git-ignored).

    python benchmarks/flow_scaling.py [--sizes MiB ...] [--stages N] [--repeat K]
                                      [--backend NAME] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from _common import available_backends, peak_rss_kib, run_child, run_on

from flowstage import Flow

HERE = Path(__file__).resolve().parent
QUICK_SIZES: tuple[float, ...] = (0.1, 0.2)

ROWS: tuple[str, ...] = ("idle interpreter", *(f"word count, {mb:g} MiB" for mb in QUICK_SIZES))


def corpus(megabytes: float) -> Path:
    """The path of the corpus of ``megabytes``, generated on first use."""
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    path = data / f"corpus-{megabytes:g}mb.txt"
    if not path.exists():
        partial = path.with_suffix(".tmp")
        subprocess.run(
            [sys.executable, str(HERE / "corpus.py"), str(partial), str(megabytes)], check=True
        )
        partial.rename(path)
    return path


def _add(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


async def word_count(lines: Iterable[str], stages: int | None) -> int:
    flow = Flow.from_iterable(lines).flat_map(str.split).partition(stages=stages).reduce(dict, _add)
    pairs = await flow.to_list()
    return sum(count for _, count in pairs)


def count_words(path: str) -> int:
    with open(path, encoding="utf-8") as lines:
        return sum(len(line.split()) for line in lines)


async def _idle(lines: Iterable[str], stages: int | None) -> int:
    return 0


def child(path: str, stages: int | None, backend: str) -> dict[str, float]:
    start = time.perf_counter()
    if path == "-":
        words = run_on(backend, _idle, [], stages)
    else:
        with open(path, encoding="utf-8") as lines:  # streamed line by line
            words = run_on(backend, word_count, lines, stages)
    elapsed = time.perf_counter() - start
    rss_kib = peak_rss_kib()
    return {"seconds": elapsed, "words": words, "rss_kib": rss_kib}


def spawn(path: str, stages: int | None, backend: str) -> dict[str, float]:
    return run_child(str(Path(__file__).resolve()), path, str(stages or 0), backend)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[2.0, 20.0, 200.0])
    parser.add_argument("--stages", type=int, default=None, help="reduce stages (default: CPUs)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--quick", action="store_true", help="tiny corpora, asyncio only")
    parser.add_argument(
        "--child", nargs=3, metavar=("PATH", "STAGES", "BACKEND"), help=argparse.SUPPRESS
    )
    args, _ = parser.parse_known_args(argv)
    if args.child:
        path, stages, backend = args.child
        print(json.dumps(child(path, int(stages) or None, backend)))
        return 0
    backends: list[str] = args.backend or available_backends()
    sizes: list[float] = args.sizes
    repeat = args.repeat
    if args.quick:
        sizes, repeat, backends = list(QUICK_SIZES), 1, ["asyncio"]
    paths = {mb: corpus(mb) for mb in sizes}
    words = {mb: count_words(str(path)) for mb, path in paths.items()}
    print(
        "## Word count scaling: flat_map(str.split) → partition → reduce over lines "
        f"streamed from the file, one subprocess per size, median of {repeat}\n"
    )
    print(
        "| backend | case | words | median s | s per MiB | words/s "
        "| peak RSS MiB | RSS - idle MiB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for backend in backends:
        idle = statistics.median(spawn("-", args.stages, backend)["rss_kib"] for _ in range(repeat))
        print(f"| {backend} | idle interpreter | 0 | - | - | - | {idle / 1024:.1f} | 0.0 |")
        for mb, path in paths.items():
            runs = [spawn(str(path), args.stages, backend) for _ in range(repeat)]
            for run in runs:
                if run["words"] != words[mb]:
                    raise AssertionError(f"{mb} MiB: counted {run['words']} != {words[mb]} words")
            secs = statistics.median(r["seconds"] for r in runs)
            rss = statistics.median(r["rss_kib"] for r in runs)
            print(
                f"| {backend} | word count, {mb:g} MiB | {words[mb]:,} | {secs:.2f} | "
                f"{secs / mb:.3f} | {words[mb] / secs / 1e6:.2f} M | {rss / 1024:.1f} | "
                f"{(rss - idle) / 1024:.1f} |"
            )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
