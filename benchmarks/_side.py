"""The same work in two halves, side by side in two processes, with no exchange.

How much a second core speeds up a benchmark's work on this machine right now: two
processes, started once and kept, each run half of the case on the local executor
(half the corpus's lines, half the integers, half the heavy events) at the same
time, and the time is from sending both halves to having both answers. No
partition crosses between them and nothing starts, so a parallel run of the same
work can hardly beat it: on two idle cores it is about half the local
executor's time, and where another tenant takes a share of the cores, or the two
cores slow each other down, it shows by how much. The process executor's figures
are read against it (``benchmarks/flow_process.py``: "of side by side").

The flows are defined here so that both the benchmark and these processes import
them by name.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

import _work
import anyio

from flowstage import Flow

__all__ = ["SideBySide", "heavy_map", "map_filter_sum", "serve", "word_count"]


async def word_count(lines: list[str], executor: Any, stages: int | None = None) -> int:
    """The canonical per-word word count; the number of words it counted."""
    flow = (
        Flow.from_iterable(lines, stages=stages)
        .flat_map(str.split)
        .partition(stages=stages)
        .reduce(dict, _work.count)
    )
    return sum(n for _, n in await flow.to_list(executor=executor))


async def map_filter_sum(numbers: range, executor: Any) -> int:
    """map -> filter -> sum over ``numbers``, ``stages=2``."""
    flow = (
        Flow.from_iterable(numbers, stages=2)
        .map(_work.double)
        .filter(_work.multiple_of_3)
        .reduce(int, _work.add)
        .emit("state")
    )
    return sum(await flow.to_list(executor=executor))


async def heavy_map(numbers: range, executor: Any, work: Any) -> int:
    """``work`` over ``numbers`` (a CPU-heavy map), summed."""
    flow = Flow.from_iterable(numbers, stages=2).map(work).reduce(int, _work.add)
    return sum(await flow.emit("state").to_list(executor=executor))


def half(numbers: range, index: int) -> range:
    """Half ``index`` (0 or 1) of ``numbers``: its first or its second half."""
    middle = len(numbers) // 2
    return numbers[:middle] if index == 0 else numbers[middle:]


def serve(conn: Connection, lines: list[str]) -> None:
    """A side-by-side process: for each ``(case, index, argument)`` received, run half
    ``index`` of the case on the local executor and answer ``(seconds, result)``;
    stop at ``None``. Cases: ``"word count"`` (every other line, from ``index``),
    ``"map"`` (``argument``: the integers), ``"heavy"`` (``argument``: the integers
    and the work)."""
    mine = {index: lines[index::2] for index in (0, 1)}
    conn.send("ready")
    while (request := conn.recv()) is not None:
        case, index, argument = request
        t = time.perf_counter()
        if case == "word count":
            result = anyio.run(word_count, mine[index], None)
        elif case == "map":
            result = anyio.run(map_filter_sum, half(argument, index), None)
        elif case == "heavy":
            numbers, work = argument
            result = anyio.run(heavy_map, half(numbers, index), None, work)
        else:
            raise ValueError(f"no such case: {case!r}")
        conn.send((time.perf_counter() - t, result))


class SideBySide:
    """The two side-by-side processes (see the module docstring), started from the
    ``forkserver`` context with ``lines`` (the corpus) and kept until :meth:`close`."""

    def __init__(self, lines: list[str]) -> None:
        ctx = multiprocessing.get_context("forkserver")
        self._conns: list[Connection] = []
        self._processes: list[Any] = []
        for _ in range(2):
            mine, theirs = ctx.Pipe()
            process = ctx.Process(target=serve, args=(theirs, lines), daemon=True)
            process.start()
            theirs.close()
            self._conns.append(mine)
            self._processes.append(process)
        for conn in self._conns:
            if conn.recv() != "ready":
                raise RuntimeError("a side-by-side process did not start")

    def run(self, case: str, argument: Any = None) -> tuple[float, Any]:
        """Both halves of ``case`` at once: the seconds until both answered, and the
        sum of their results (the whole case's result)."""
        t = time.perf_counter()
        for index, conn in enumerate(self._conns):
            conn.send((case, index, argument))
        answers = [conn.recv() for conn in self._conns]
        return time.perf_counter() - t, sum(result for _, result in answers)

    def close(self) -> None:
        """Stop both processes (killed if one does not stop within 5 s, or already
        went away)."""
        for conn in self._conns:
            with contextlib.suppress(OSError):  # the process went away
                conn.send(None)
            conn.close()
        for process in self._processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
