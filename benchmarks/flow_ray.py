"""The Ray executor beside the process and local executors, on this machine.

What Ray costs where the process executor would do: both run the same per-partition
programs; the process executor talks over socketpairs, the Ray executor through Ray
actor calls (batched, a bounded window of calls in flight). On one machine the
process executor is the one to use; Ray pays off when a flow needs more cores than one
machine has.

Cases (each checks its result against the expected one):

* word count over the corpus (lines read beforehand), ``stages=2`` in both layers:
  local executor, process executor (2 workers), Ray executor (2 actors);
* a CPU-heavy map (pure Python, its loop sized at start to about 50 µs a call on this
  machine, `--heavy-us`): the same three;
* start-up: from entering ``stream()`` to the first event of a one-event flow, process
  executor (fork server warm) and Ray executor (cluster up, new actors per run);
* starting a local Ray cluster (``ray.init``, once per benchmark run; "already up"
  when the process had one).

Each case runs once per round, the order rotating between rounds; the table shows the
median. Every run includes starting and stopping its workers or actors.

    python benchmarks/flow_ray.py [--repeat K] [--megabytes M] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import _work
import anyio
from _side import heavy_map, word_count
from flow_process import corpus_lines, first_event, timed

from flowstage.executors.process import ProcessExecutor
from flowstage.executors.ray import RayExecutor

ROWS: tuple[str, ...] = (
    "word count, local executor",
    "word count, process executor, 2 workers",
    "word count, Ray executor, 2 actors",
    "CPU-heavy map, local executor",
    "CPU-heavy map, process executor, 2 workers",
    "CPU-heavy map, Ray executor, 2 actors",
    "start-up to the first event, process executor, 2 workers",
    "start-up to the first event, Ray executor, 2 actors",
    "starting a local Ray cluster (ray.init)",
)

#: Ray on one machine, quietly: no usage reports, no auth token, only 127.0.0.1.
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


def start_ray() -> tuple[Any, float | None]:
    """Ray, initialized (started here when it was not: the seconds it took)."""
    for name, value in RAY_ENV.items():
        os.environ.setdefault(name, value)
    import ray
    from ray import cloudpickle as bundled

    # The callbacks' module is not installed: send it by value, so actors need not
    # import it (they may run where benchmarks/ is not on the path).
    bundled.register_pickle_by_value(_work)
    try:
        import cloudpickle
    except ImportError:
        pass
    else:
        cloudpickle.register_pickle_by_value(_work)

    if ray.is_initialized():
        return ray, None
    t = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        logging_level="warning",
        object_store_memory=200 * 1024**2,
    )
    return ray, time.perf_counter() - t


def first(executor: Any) -> tuple[float, Any]:
    return anyio.run(first_event, executor), None


def measure(args: argparse.Namespace) -> list[tuple[str, float, str, str]]:
    ray, init_seconds = start_ray()
    try:
        return _measure(args, init_seconds)
    finally:
        if init_seconds is not None:
            ray.shutdown()


def _measure(
    args: argparse.Namespace, init_seconds: float | None
) -> list[tuple[str, float, str, str]]:
    lines = corpus_lines(args.megabytes)
    words = sum(len(line.split()) for line in lines)
    n_heavy = args.heavy
    work = functools.partial(_work.heavy, loops=args.heavy_loops)
    heavies = range(n_heavy)
    expected_heavy = sum(work(i) for i in heavies)
    process, ray = ProcessExecutor(2), RayExecutor(max_actors=2)
    cases: list[tuple[str, Callable[[], tuple[float, Any]], Any]] = [
        (ROWS[0], lambda: timed(word_count, lines, None, 2), words),
        (ROWS[1], lambda: timed(word_count, lines, process, 2), words),
        (ROWS[2], lambda: timed(word_count, lines, ray, 2), words),
        (ROWS[3], lambda: timed(heavy_map, heavies, None, work), expected_heavy),
        (ROWS[4], lambda: timed(heavy_map, heavies, process, work), expected_heavy),
        (ROWS[5], lambda: timed(heavy_map, heavies, ray, work), expected_heavy),
        (ROWS[6], lambda: first(process), None),
        (ROWS[7], lambda: first(ray), None),
    ]
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    anyio.run(first_event, process)  # start the fork server
    for rep in range(args.repeat):
        order = cases[rep % len(cases) :] + cases[: rep % len(cases)]
        for name, run, expected in order:
            seconds, result = run()
            if result != expected:
                raise AssertionError(f"{name}: got {result}, expected {expected}")
            times[name].append(seconds)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    rows: list[tuple[str, float, str, str]] = []
    for name, _, _ in cases:
        seconds = med[name]
        if name.startswith("word count"):
            rate = f"{words / seconds / 1e6:.2f} M words/s"
            ratio = f"{med[ROWS[0]] / seconds:.2f}x"
        elif name.startswith("CPU-heavy"):
            rate = f"{n_heavy / seconds / 1e3:.1f} k events/s"
            ratio = f"{med[ROWS[3]] / seconds:.2f}x"
        else:
            rate, ratio = "", f"min {min(times[name]):.3f} s"
        rows.append((name, seconds, rate, ratio))
    if init_seconds is None:
        rows.append((ROWS[8], float("nan"), "already up", ""))
    else:
        rows.append((ROWS[8], init_seconds, "once", ""))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=5.0)
    parser.add_argument("--heavy", type=int, default=20_000)
    parser.add_argument("--heavy-us", type=float, default=50.0, help="µs per heavy event")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny inputs, one round")
    args, _ = parser.parse_known_args(argv)
    args.heavy_loops = _work.heavy_loops(args.heavy_us)
    if args.quick:
        args.megabytes, args.heavy, args.repeat = 0.2, 200, 1
    cost = _work.heavy_cost_us(loops=args.heavy_loops)
    print(
        f"## Ray executor: {args.megabytes:g} MiB word count, {args.heavy:,} heavy events "
        f"({cost:.0f} µs each here), median of {args.repeat}\n"
    )
    print("| backend | case | median s | rate | vs local executor |")
    print("|---|---|---:|---:|---:|")
    for name, seconds, rate, ratio in measure(args):
        print(f"| asyncio | {name} | {seconds:.3f} | {rate} | {ratio} |")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
