"""map(x * 2) -> filter(x % 3 == 0) -> sum over integers: plain Python beside Flow.

Cases (each checks the sum):

* plain generator, inlined: ``sum(y for x in range(n) if (y := x * 2) % 3 == 0)``;
  the arithmetic is inlined, no function is called per event.
* plain generator, same functions: ``sum(y for x in range(n) if
  multiple_of_3(y := double(x)))``; the two Python functions the flow is given,
  called per event, so the ratio to it is what the flow's machinery costs.
* flow, stages=1 and stages=2: ``Flow.from_iterable(range(n), stages=s)
  .map(double).filter(multiple_of_3).reduce(int, operator.add).emit("state")``,
  one partial sum per stage, added up at the end.

    python benchmarks/flow_map_filter.py [--events N] [--repeat K] [--quick]
"""

from __future__ import annotations

import argparse
import operator
import statistics
import time
from collections.abc import Callable, Sequence

import anyio

from flowstage import Flow

ROWS: tuple[str, ...] = (
    "plain generator, inlined",
    "plain generator, same functions",
    "flow, stages=1",
    "flow, stages=2",
)


def plain(n: int) -> int:
    return sum(y for x in range(n) if (y := x * 2) % 3 == 0)


def same_functions(n: int) -> int:
    return sum(y for x in range(n) if _multiple_of_3(y := _double(x)))


def _double(x: int) -> int:
    return x * 2


def _multiple_of_3(x: int) -> bool:
    return x % 3 == 0


async def flow_sum(n: int, stages: int) -> int:
    flow = (
        Flow.from_iterable(range(n), stages=stages)
        .map(_double)
        .filter(_multiple_of_3)
        .reduce(int, operator.add)
        .emit("state")
    )
    return sum(await flow.to_list())


def measure(n: int, repeat: int, backend: str) -> list[tuple[str, float, float, float]]:
    expected = plain(n)
    cases: list[tuple[str, Callable[[], int]]] = [
        (ROWS[0], lambda: plain(n)),
        (ROWS[1], lambda: same_functions(n)),
        (ROWS[2], lambda: anyio.run(flow_sum, n, 1, backend=backend)),
        (ROWS[3], lambda: anyio.run(flow_sum, n, 2, backend=backend)),
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for rep in range(repeat):
        order = cases[rep % len(cases) :] + cases[: rep % len(cases)]
        for name, func in order:
            start = time.perf_counter()
            result = func()
            times[name].append(time.perf_counter() - start)
            if result != expected:
                raise AssertionError(f"{name}: sum {result} != {expected}")
    return [(name, statistics.median(ts), min(ts), max(ts)) for name, ts in times.items()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--quick", action="store_true", help="tiny input, asyncio only")
    args, _ = parser.parse_known_args(argv)
    backends: list[str] = args.backend or ["asyncio", "trio"]
    n, repeat = args.events, args.repeat
    if args.quick:
        n, repeat, backends = 20_000, 1, ["asyncio"]
    print(f"## map -> filter -> sum: {n:,} integers, median of {repeat}\n")
    print(
        "| backend | case | median s | events/s | fastest - slowest s "
        "| vs inlined | vs same functions |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for backend in backends:
        rows = measure(n, repeat, backend)
        inlined, same = rows[0][1], rows[1][1]
        for name, med, fast, slow in rows:
            print(
                f"| {backend} | {name} | {med:.3f} | {n / med / 1e6:.2f} M | "
                f"{fast:.3f} - {slow:.3f} | {inlined / med:.2f}x | {same / med:.2f}x |"
            )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
