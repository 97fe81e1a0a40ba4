"""flowstage beside other Python stream libraries, in the same run.

Two workloads, every implementation checked against plain Python:

* **Word count** over the corpus of ``benchmarks/corpus.py`` (20 MB by default, the
  same file as ``flow_wordcount.py``): flowstage's canonical per-word flow
  (``Flow.from_iterable(lines).flat_map(str.split).partition().reduce(dict, add)``),
  its batch-level version, plain eager / lazy loops, a plain asyncio async generator,
  and the natural per-word pipeline of aiostream, pypeln, streamz and reactivex.
  Every result must equal the eager ``Counter``.
* **map(x * 2) -> filter(x % 3 == 0) -> sum** over 2,000,000 integers, same peers.

Cases alternate within each repetition (the order rotates); the table reports
medians and throughput ratios to flowstage's per-word (per-event) flow and to
plain Python. A case whose first (calibration) run predicts more than
``--max-seconds`` for the whole input is timed on a prefix instead; its
``input`` cell says so and its rate is the prefix's (an extrapolation).
Peers that are not installed (``pip install -e '.[bench]'``) get
"not installed" cells. Peers always run on asyncio (or synchronously);
``--backend trio`` adds trio rows for the flowstage cases only.

    python benchmarks/flow_peers.py [--megabytes M] [--events N] [--repeat K]
        [--max-seconds S] [--stages N] [--backend NAME ...] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent

WC_ROWS: tuple[str, ...] = (
    "wc: plain Python, eager (Counter)",
    "wc: plain Python, lazy (generators)",
    "wc: plain asyncio (async gen of lines → Counter)",
    "wc: flowstage, per word (flat_map → partition → reduce)",
    "wc: flowstage, per batch (map_batch Counter → partition → reduce)",
    "wc: aiostream (iterate → flatmap → reduce)",
    "wc: pypeln sync (flat_map → dict loop)",
    "wc: pypeln task (flat_map → async dict loop)",
    "wc: streamz (map split → flatten → accumulate)",
    "wc: reactivex (flat_map → reduce)",
)
MF_ROWS: tuple[str, ...] = (
    "mf: plain Python generator",
    "mf: plain asyncio (async gen)",
    "mf: flowstage, stages=1",
    "mf: flowstage, stages=2",
    "mf: aiostream (iterate → map → filter → reduce)",
    "mf: pypeln sync (map → filter → sum)",
    "mf: pypeln task (map → filter → async sum)",
    "mf: streamz (map → filter → accumulate)",
    "mf: reactivex (map → filter → sum)",
)
ROWS: tuple[str, ...] = WC_ROWS + MF_ROWS

#: Which rows run on flowstage (the only ones repeated on other anyio backends).
FLOWSTAGE_ROWS = frozenset(label for label in ROWS if "flowstage" in label)


def _sibling(stem: str) -> ModuleType:
    """Import ``benchmarks/<stem>.py`` the way ``run.py`` does."""
    name = f"benchmarks_{stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{stem}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load benchmarks/{stem}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# The plain-Python baselines, the flowstage flows and the callbacks every library
# is given are those of the word-count and map/filter/sum benchmarks.
_WC = _sibling("flow_wordcount")
_MF = _sibling("flow_map_filter")

# --------------------------------------------------------------------------- word count

_add = _WC._add
wc_eager = _WC.eager
wc_lazy = _WC.lazy


async def _aiter_lines(lines: list[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def _wc_asyncio(lines: list[str]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    async for line in _aiter_lines(lines):
        counts.update(line.split())
    return dict(counts)


def wc_asyncio(lines: list[str]) -> dict[str, int]:
    return asyncio.run(_wc_asyncio(lines))


def wc_aiostream(lines: list[str]) -> dict[str, int]:
    from aiostream import pipe, stream

    def split(line: str) -> Any:
        return stream.iterate(line.split())

    async def run() -> dict[str, int]:
        xs = stream.iterate(lines) | pipe.flatmap(split) | pipe.reduce(_add, {})
        result: dict[str, int] = await xs
        return result

    return asyncio.run(run())


def wc_pypeln_sync(lines: list[str]) -> dict[str, int]:
    import pypeln as pl

    counts: dict[str, int] = {}
    for w in pl.sync.flat_map(str.split, lines):
        counts[w] = counts.get(w, 0) + 1
    return counts


def wc_pypeln_task(lines: list[str]) -> dict[str, int]:
    import pypeln as pl

    async def run() -> dict[str, int]:
        counts: dict[str, int] = {}
        async for w in pl.task.flat_map(str.split, lines):
            counts[w] = counts.get(w, 0) + 1
        return counts

    return asyncio.run(run())


def wc_streamz(lines: list[str]) -> dict[str, int]:
    from streamz import Stream

    counts: dict[str, int] = {}
    source = Stream()
    # streamz holds downstream nodes weakly: keep the last one alive while emitting.
    node = source.map(str.split).flatten().accumulate(_add, start=counts)
    for line in lines:
        source.emit(line)
    del node
    return counts


def wc_reactivex(lines: list[str]) -> dict[str, int]:
    import reactivex as rx
    from reactivex import operators as ops

    result: dict[str, int] = (
        rx.from_iterable(lines).pipe(ops.flat_map(str.split), ops.reduce(_add, seed={})).run()
    )
    return result


# --------------------------------------------------------------------- map/filter/sum


_double = _MF._double
_multiple_of_3 = _MF._multiple_of_3
mf_plain = _MF.plain


def _add_int(acc: int, x: int) -> int:
    return acc + x


async def _aiter_range(n: int) -> AsyncIterator[int]:
    for x in range(n):
        yield x


async def _mf_asyncio(n: int) -> int:
    total = 0
    async for x in _aiter_range(n):
        y = x * 2
        if y % 3 == 0:
            total += y
    return total


def mf_asyncio(n: int) -> int:
    return asyncio.run(_mf_asyncio(n))


def mf_aiostream(n: int) -> int:
    from aiostream import pipe, stream

    async def run() -> int:
        xs = (
            stream.iterate(range(n))
            | pipe.map(_double)
            | pipe.filter(_multiple_of_3)
            | pipe.reduce(_add_int, 0)
        )
        result: int = await xs
        return result

    return asyncio.run(run())


def mf_pypeln_sync(n: int) -> int:
    import pypeln as pl

    stage = pl.sync.map(_double, range(n))
    stage = pl.sync.filter(_multiple_of_3, stage)
    return sum(stage)


def mf_pypeln_task(n: int) -> int:
    import pypeln as pl

    async def run() -> int:
        stage = pl.task.map(_double, range(n))
        stage = pl.task.filter(_multiple_of_3, stage)
        total = 0
        async for y in stage:
            total += y
        return total

    return asyncio.run(run())


def mf_streamz(n: int) -> int:
    from streamz import Stream

    last = [0]
    source = Stream()
    total = source.map(_double).filter(_multiple_of_3).accumulate(_add_int, start=0)
    total.sink(lambda s: last.__setitem__(0, s))
    for x in range(n):
        source.emit(x)
    del total
    return last[0]


def mf_reactivex(n: int) -> int:
    import reactivex as rx
    from reactivex import operators as ops

    result: int = (
        rx.from_iterable(range(n))
        .pipe(ops.map(_double), ops.filter(_multiple_of_3), ops.sum())
        .run()
    )
    return result


# ------------------------------------------------------------------------- harness


@dataclass
class Case:
    """One row: ``run(size)`` runs the case on the first ``size`` units of input."""

    label: str
    backend: str
    run: Callable[[int], Any]
    needs: str | None = None
    size: int = 0  # units of input actually timed (set by calibration)
    times: list[float] = field(default_factory=list)
    missing: bool = False


@dataclass
class Workload:
    """An input of ``total`` units (lines, integers) and how to check a prefix of it."""

    title: str
    unit: str  # "words" or "events"
    total: int  # lines or integers
    count: Callable[[int], int]  # units (words/events) in the first ``size`` lines/ints
    expected: Callable[[int], Any]
    describe: Callable[[int], str]
    cases: list[Case]
    reference: str  # label of the "vs flowstage" row
    plain: str  # label of the "vs plain" row


def measure(work: Workload, repeat: int, max_seconds: float, quick: bool) -> None:
    """Calibrate every case, then time them in rotating order ``repeat`` times."""
    expected: dict[int, Any] = {}

    def check(case: Case, result: Any) -> None:
        if case.size not in expected:
            expected[case.size] = work.expected(case.size)
        if result != expected[case.size]:
            raise AssertionError(f"{case.label} ({case.backend}): result differs from plain")

    live = [case for case in work.cases if not case.missing]
    for case in live:
        case.size = work.total
        if quick:
            continue
        # Calibration: a 1/50 prefix (not timed in the table) predicts the whole run.
        probe = max(1, work.total // 50)
        start = time.perf_counter()
        case.run(probe)
        rate = work.count(probe) / (time.perf_counter() - start)
        if work.count(work.total) / rate > max_seconds:
            # Time a prefix that should take about a quarter of the budget.
            share = (max_seconds / 4) * rate / work.count(work.total)
            case.size = max(probe, int(work.total * share))
    for rep in range(repeat):
        k = rep % len(live)
        for case in live[k:] + live[:k]:
            start = time.perf_counter()
            result = case.run(case.size)
            case.times.append(time.perf_counter() - start)
            check(case, result)


def table(work: Workload) -> list[str]:
    rates = {
        (c.label, c.backend): work.count(c.size) / statistics.median(c.times)
        for c in work.cases
        if c.times
    }
    out = []
    for case in work.cases:
        ref = rates.get((work.reference, case.backend)) or rates.get((work.reference, "asyncio"))
        plain = rates.get((work.plain, "asyncio"))
        if case.missing:
            cells = ["not installed"] * 4 + ["-", "-"]
        else:
            med = statistics.median(case.times)
            rate = rates[(case.label, case.backend)]
            cells = [
                work.describe(case.size),
                f"{med:.3f}",
                f"{rate / 1e6:.2f} M {work.unit}",
                f"{min(case.times):.3f} - {max(case.times):.3f}",
                f"{rate / ref:.2f}x" if ref else "-",
                f"{rate / plain:.2f}x" if plain else "-",
            ]
        out.append(f"| {case.backend} | {case.label} | " + " | ".join(cells) + " |")
    return out


HEADER = (
    "| backend | case | input | median s | rate /s | fastest - slowest s "
    "| vs flowstage per-word/event | vs plain |\n"
    "|---|---|---|---:|---:|---:|---:|---:|"
)


def build_cases(
    specs: Iterable[tuple[str, str | None, Callable[[int], Any], bool]], backends: list[str]
) -> list[Case]:
    """``specs`` are ``(label, needs, run_for_backend, is_flowstage)``; see callers."""
    cases: list[Case] = []
    for backend in backends:
        for label, needs, run, per_backend in specs:
            if backend != "asyncio" and not per_backend:
                continue
            missing = needs is not None and not _installed(needs)
            cases.append(Case(label, backend, run, needs, missing=missing))
    return cases


def wordcount_workload(lines: list[str], stages: int, backends: list[str]) -> Workload:
    words = [0]
    for line in lines:
        words.append(words[-1] + len(line.split()))
    size_mb = [0.0]
    for line in lines:
        size_mb.append(size_mb[-1] + (len(line) + 1) / 1e6)

    def flow(backend: str, batch: bool) -> Callable[[int], Any]:
        impl = _WC.flow_per_batch if batch else _WC.flow_per_word
        return lambda k: anyio.run(impl, lines[:k], stages, backend=backend)

    specs: list[tuple[str, str | None, Callable[[int], Any], bool]] = []
    funcs: dict[str, Callable[[list[str]], dict[str, int]]] = {
        WC_ROWS[0]: wc_eager,
        WC_ROWS[1]: wc_lazy,
        WC_ROWS[2]: wc_asyncio,
        WC_ROWS[5]: wc_aiostream,
        WC_ROWS[6]: wc_pypeln_sync,
        WC_ROWS[7]: wc_pypeln_task,
        WC_ROWS[8]: wc_streamz,
        WC_ROWS[9]: wc_reactivex,
    }
    needs = {WC_ROWS[5]: "aiostream", WC_ROWS[6]: "pypeln", WC_ROWS[7]: "pypeln"}
    needs |= {WC_ROWS[8]: "streamz", WC_ROWS[9]: "reactivex"}
    cases: list[Case] = []
    for backend in backends:
        specs = []
        for label in WC_ROWS:
            if label == WC_ROWS[3]:
                specs.append((label, None, flow(backend, batch=False), True))
            elif label == WC_ROWS[4]:
                specs.append((label, None, flow(backend, batch=True), True))
            else:
                func = funcs[label]
                specs.append((label, needs.get(label), _prefix(func, lines), False))
        cases += build_cases(specs, [backend])

    def describe(k: int) -> str:
        if k == len(lines):
            return f"{size_mb[k]:.1f} MB" if size_mb[k] >= 1 else f"{size_mb[k]:.3f} MB"
        return f"prefix {size_mb[k]:.2f} MB ({k / len(lines):.0%}), rate extrapolated"

    return Workload(
        title="Word count",
        unit="words",
        total=len(lines),
        count=lambda k: words[k],
        expected=lambda k: wc_eager(lines[:k]),
        describe=describe,
        cases=cases,
        reference=WC_ROWS[3],
        plain=WC_ROWS[0],
    )


def _prefix(
    func: Callable[[list[str]], dict[str, int]], lines: list[str]
) -> Callable[[int], dict[str, int]]:
    return lambda k: func(lines if k == len(lines) else lines[:k])


def map_filter_workload(n: int, backends: list[str]) -> Workload:
    funcs: dict[str, Callable[[int], int]] = {
        MF_ROWS[0]: mf_plain,
        MF_ROWS[1]: mf_asyncio,
        MF_ROWS[4]: mf_aiostream,
        MF_ROWS[5]: mf_pypeln_sync,
        MF_ROWS[6]: mf_pypeln_task,
        MF_ROWS[7]: mf_streamz,
        MF_ROWS[8]: mf_reactivex,
    }
    needs = {MF_ROWS[4]: "aiostream", MF_ROWS[5]: "pypeln", MF_ROWS[6]: "pypeln"}
    needs |= {MF_ROWS[7]: "streamz", MF_ROWS[8]: "reactivex"}

    def flow(backend: str, stages: int) -> Callable[[int], int]:
        return lambda k: anyio.run(_MF.flow_sum, k, stages, backend=backend)

    cases: list[Case] = []
    for backend in backends:
        specs: list[tuple[str, str | None, Callable[[int], Any], bool]] = []
        for label in MF_ROWS:
            if label == MF_ROWS[2]:
                specs.append((label, None, flow(backend, 1), True))
            elif label == MF_ROWS[3]:
                specs.append((label, None, flow(backend, 2), True))
            else:
                specs.append((label, needs.get(label), funcs[label], False))
        cases += build_cases(specs, [backend])

    def describe(k: int) -> str:
        if k == n:
            return f"{n:,} ints"
        return f"prefix {k:,} ints ({k / n:.0%}), rate extrapolated"

    return Workload(
        title="map -> filter -> sum",
        unit="events",
        total=n,
        count=lambda k: k,
        expected=mf_plain,
        describe=describe,
        cases=cases,
        reference=MF_ROWS[2],
        plain=MF_ROWS[0],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="time a case on a prefix when the whole input would take longer than this",
    )
    parser.add_argument("--stages", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--quick", action="store_true", help="tiny input, asyncio only")
    args, _ = parser.parse_known_args(argv)
    backends: list[str] = args.backend or ["asyncio"]
    if "asyncio" not in backends:
        backends.insert(0, "asyncio")  # peers and the plain baselines run on asyncio
    if args.quick:
        lines = ["the quick brown fox jumps over the lazy dog"] * 300
        n, repeat, backends = 3_000, 1, ["asyncio"]
    else:
        lines = _WC.corpus(args.megabytes)
        n, repeat = args.events, args.repeat
    missing = sorted(
        {name for name in ("aiostream", "pypeln", "streamz", "reactivex") if not _installed(name)}
    )
    works = [
        wordcount_workload(lines, args.stages, backends),
        map_filter_workload(n, backends),
    ]
    print(
        f"## Peers: flowstage beside aiostream, pypeln, streamz, reactivex "
        f"(median of {repeat}, stages={args.stages}, max {args.max_seconds:g} s per run)\n"
    )
    if missing:
        print(f"Not installed: {', '.join(missing)} (`pip install -e '.[bench]'`).\n")
    body: list[str] = []
    for work in works:
        measure(work, repeat, args.max_seconds, args.quick)
        print(f"- {work.title}: {work.count(work.total):,} {work.unit}")
        body += table(work)
    print()
    print(HEADER)
    print("\n".join(body))
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
