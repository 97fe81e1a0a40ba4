"""The process executor beside the local executor, in the same run.

Cases (each checks its result against the local executor's):

* machine: how much of two cores this machine gives two busy processes right now
  (``2 x`` one busy loop's time / two loops' time in parallel; 2.00 means two idle
  cores). Every other figure depends on it: on a shared machine another tenant's
  load takes cores away from the workers.
* word count, the canonical per-word flow over the 20 MiB corpus (lines read
  beforehand): ``Flow.from_iterable(lines).flat_map(str.split).partition()
  .reduce(dict, count)``, on the local executor, on 1, 2 and 4 workers, and the plain
  Python dict loop (both layers have one partition per CPU, 2 on a 2-core machine;
  the executor starts at most one worker per partition, so the 4-worker case runs
  the same flow with ``stages=4`` on both layers);
* map -> filter -> sum over 2,000,000 integers, ``stages=2``;
* a CPU-heavy map (pure Python, its loop sized at start to about 50 µs a call on this
  machine, `--heavy-us`; 20,000 events);
* start-up: from entering ``stream()`` to the first event of a one-event flow on 2
  workers (the fork server preloads flowstage after the first run);
* side by side, for each family: two processes (started once, kept) each run half
  the work on the local executor at the same time (see ``_side.py``), the fastest a
  2-core run of that work can be on this machine at that moment, with no partition
  crossing and nothing to start. Its ratio to the local executor is what a second
  core gives right now; each process-executor row's "of side by side" is the median
  of the rounds' own ratios of the side-by-side time to its time (1.00: as fast as
  two independent halves).

Each case runs once per round. A round runs the cases one family after the other
(word count, map -> filter -> sum, CPU-heavy map), each family's cases back to
back, the order rotating between rounds both across and within families; the table
shows the median time, and the median of the rounds' own ratios to the local
executor (each ratio compares two runs of the same round taken seconds apart, so a
slow spell of a shared machine weighs on both). A process-executor run includes
starting and stopping its workers.

    python benchmarks/flow_process.py [--repeat K] [--megabytes M] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import _work
import anyio
from _common import workers_import_elsewhere
from _side import SideBySide, heavy_map, map_filter_sum, word_count

from flowstage import Flow
from flowstage.executors.process import ProcessExecutor

HERE = Path(__file__).resolve().parent

ROWS: tuple[str, ...] = (
    "machine: cores free for two busy processes",
    "word count, plain Python dict loop",
    "word count, local executor",
    "word count, two halves side by side, local executor",
    "word count, process executor, 1 worker",
    "word count, process executor, 2 workers",
    "word count, process executor, 4 workers (4 partitions)",
    "map -> filter -> sum, local executor",
    "map -> filter -> sum, two halves side by side, local executor",
    "map -> filter -> sum, process executor, 2 workers",
    "CPU-heavy map, local executor",
    "CPU-heavy map, two halves side by side, local executor",
    "CPU-heavy map, process executor, 2 workers",
    "start-up to the first event, 2 workers",
)


def corpus_lines(megabytes: float) -> list[str]:
    path = HERE / "data" / f"corpus-{megabytes:g}mb.txt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, str(HERE / "corpus.py"), str(path), str(megabytes)], check=True
        )
    with open(path, encoding="utf-8") as f:
        return f.readlines()


def capacity(n: int) -> float:
    """Cores this machine gives two busy processes now (2.0: two idle cores)."""
    one = _work.burn(n)
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(2) as pool:
        t = time.perf_counter()
        pool.map(_work.burn, [n, n])
        two = time.perf_counter() - t
    return 2 * one / two


def plain(lines: list[str]) -> int:
    counts: dict[str, int] = {}
    for line in lines:
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    return sum(counts.values())


async def first_event(executor: Any) -> float:
    t = time.perf_counter()
    async with (
        Flow.from_iterable([1], stages=2).map(_work.double).stream(executor=executor) as events
    ):
        async for _ in events:
            elapsed = time.perf_counter() - t
    return elapsed


def timed_plain(lines: list[str]) -> tuple[float, int]:
    t = time.perf_counter()
    result = plain(lines)
    return time.perf_counter() - t, result


def timed(func: Callable[..., Awaitable[Any]], *args: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    result = anyio.run(func, *args)
    return time.perf_counter() - t, result


def round_order(cases: list[Any], rep: int) -> list[Any]:
    """Round ``rep``'s order: families in turn, each family's cases back to back,
    both rotated by ``rep``."""
    families: list[list[Any]] = []
    for case in cases:
        family = case[0].split(",")[0]
        if families and families[-1][0][0].split(",")[0] == family:
            families[-1].append(case)
        else:
            families.append([case])
    families = families[rep % len(families) :] + families[: rep % len(families)]
    return [
        case
        for family in families
        for case in family[rep % len(family) :] + family[: rep % len(family)]
    ]


def measure(args: argparse.Namespace) -> list[tuple[str, float, str, str, str]]:
    lines = corpus_lines(args.megabytes)
    words = sum(len(line.split()) for line in lines)
    n_ints = args.events
    n_heavy = args.heavy
    expected_sum = sum(y for x in range(n_ints) if (y := x * 2) % 3 == 0)
    work = functools.partial(_work.heavy, loops=args.heavy_loops)
    expected_heavy = sum(work(i) for i in range(n_heavy))
    ints = range(n_ints)
    heavies = range(n_heavy)
    # Start the fork server (with flowstage preloaded) before anything else does.
    anyio.run(first_event, ProcessExecutor(2))
    side = SideBySide(lines)
    cases: list[tuple[str, Callable[[], tuple[float, Any]], Any]] = [
        (ROWS[1], lambda: timed_plain(lines), words),
        (ROWS[2], lambda: timed(word_count, lines, None), words),
        (ROWS[3], lambda: side.run("word count"), words),
        (ROWS[4], lambda: timed(word_count, lines, ProcessExecutor(1)), words),
        (ROWS[5], lambda: timed(word_count, lines, ProcessExecutor(2)), words),
        (ROWS[6], lambda: timed(word_count, lines, ProcessExecutor(4), 4), words),
        (ROWS[7], lambda: timed(map_filter_sum, ints, None), expected_sum),
        (ROWS[8], lambda: side.run("map", ints), expected_sum),
        (ROWS[9], lambda: timed(map_filter_sum, ints, ProcessExecutor(2)), expected_sum),
        (ROWS[10], lambda: timed(heavy_map, heavies, None, work), expected_heavy),
        (ROWS[11], lambda: side.run("heavy", (heavies, work)), expected_heavy),
        (ROWS[12], lambda: timed(heavy_map, heavies, ProcessExecutor(2), work), expected_heavy),
    ]
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    capacities: list[float] = []
    startups: list[float] = []
    try:
        for rep in range(args.repeat):
            capacities.append(capacity(args.burn))
            for name, run, expected in round_order(cases, rep):
                seconds, result = run()
                if result != expected:
                    raise AssertionError(f"{name}: got {result}, expected {expected}")
                times[name].append(seconds)
            startups.append(anyio.run(first_event, ProcessExecutor(2)))
    finally:
        side.close()
    med = {name: statistics.median(ts) for name, ts in times.items()}
    rows: list[tuple[str, float, str, str, str]] = []
    cap = statistics.median(capacities)
    rows.append((ROWS[0], cap, f"{cap:.2f} of 2", f"min {min(capacities):.2f}", ""))
    for name, _, _ in cases:
        seconds = med[name]
        if name.startswith("word count"):
            rate = f"{words / seconds / 1e6:.2f} M words/s"
            base, ceiling = ROWS[2], ROWS[3]
        elif name.startswith("map"):
            rate = f"{n_ints / seconds / 1e6:.2f} M events/s"
            base, ceiling = ROWS[7], ROWS[8]
        else:
            rate = f"{n_heavy / seconds / 1e3:.1f} k events/s"
            base, ceiling = ROWS[10], ROWS[11]
        # The median of the rounds' own ratios: both cases ran in the same round,
        # so a slow spell of the machine weighs on both.
        ratio = statistics.median(b / t for b, t in zip(times[base], times[name], strict=True))
        of_side = ""
        if "process executor" in name:
            share = statistics.median(
                c / t for c, t in zip(times[ceiling], times[name], strict=True)
            )
            of_side = f"{share:.2f}"
        rows.append((name, seconds, rate, f"{ratio:.2f}x", of_side))
    rows.append((ROWS[13], statistics.median(startups), "", f"min {min(startups):.3f} s", ""))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--heavy", type=int, default=20_000)
    parser.add_argument("--heavy-us", type=float, default=50.0, help="µs per heavy event")
    parser.add_argument("--burn", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny inputs, one round")
    args, _ = parser.parse_known_args(argv)
    elsewhere = workers_import_elsewhere()
    if elsewhere is not None:
        print(f"warning: {elsewhere}", file=sys.stderr)
    args.heavy_loops = _work.heavy_loops(args.heavy_us)
    if args.quick:
        args.megabytes, args.events, args.heavy = 0.2, 20_000, 200
        args.burn, args.repeat = 100_000, 1
    cost = _work.heavy_cost_us(loops=args.heavy_loops)
    print(
        f"## Process executor: {args.megabytes:g} MiB word count, {args.events:,} integers, "
        f"{args.heavy:,} heavy events ({cost:.0f} µs each here), "
        f"median of {args.repeat}\n"
    )
    print("| backend | case | median s | rate | vs local executor | of side by side |")
    print("|---|---|---:|---:|---:|---:|")
    for name, seconds, rate, ratio, of_side in measure(args):
        print(f"| asyncio | {name} | {seconds:.3f} | {rate} | {ratio} | {of_side} |")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
