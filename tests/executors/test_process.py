"""The process executor: workers, failures, portability and clean-up.

The end-to-end behaviour every executor shares is the conformance kit
(tests/flow/test_conformance.py runs it on 1, 2 and 4 workers); this file covers
what only worker processes have.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from flowstage import Flow
from flowstage.executors import process as process_module
from flowstage.executors import resolve
from flowstage.executors.process import FlowNotPortable, ProcessExecutor, WorkerCrashed
from flowstage.testing import wait_until

pytestmark = pytest.mark.anyio


# -- helpers -----------------------------------------------------------------------------


def descendants() -> set[int]:
    """Every process below this one, read from /proc (workers are started by the
    fork server, so they are grandchildren)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents[int(entry.name)] = ppid
    me = os.getpid()
    found: set[int] = set()
    frontier = [me]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def workers_running() -> set[int]:
    """The descendants that are worker processes (not the fork server or the
    resource tracker multiprocessing keeps for the whole test session)."""
    out = set()
    for pid in descendants():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        # Workers are forked from the fork server: they have its command line, but
        # the fork server's parent is this process and a worker's is the server.
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        infrastructure = ppid == os.getpid() and (
            b"forkserver" in cmdline or b"resource_tracker" in cmdline
        )
        if not infrastructure:
            out.add(pid)
    return out


@contextlib.contextmanager
def leaves_no_worker() -> Iterator[None]:
    before = workers_running()
    yield
    left = workers_running() - before
    assert not left, f"worker processes left behind: {left}"


def tag(x: Any) -> tuple[int, Any]:
    return os.getpid(), x


def second(e: tuple[int, int]) -> int:
    return e[1]


def double(x: int) -> int:
    return x * 2


def add(acc: int, x: int) -> int:
    return acc + x


def count_words(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


def split(line: str) -> list[str]:
    return line.split()


class Broken(Exception):
    def __init__(self, what: str, code: int) -> None:
        super().__init__(what, code)
        self.what = what
        self.code = code


def breaks_at_50(x: int) -> int:
    if x == 50:
        raise Broken("fifty", 50)
    return x


def exits_at_50(x: int) -> int:
    if x == 50:
        os._exit(3)
    return x


class Unpicklable(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("no")


def raises_unpicklable(x: int) -> int:
    raise Unpicklable("cannot travel")


# -- running -------------------------------------------------------------------------------


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"ProcessExecutor: workers must be an integer >= 1"):
        ProcessExecutor(0)
    with pytest.raises(TypeError, match="workers must be an integer >= 1"):
        ProcessExecutor(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start_method must be one of 'forkserver', 'spawn'"):
        ProcessExecutor(2, start_method="fork")
    assert isinstance(resolve("process"), ProcessExecutor)
    assert ProcessExecutor().workers >= 1


async def test_partitions_run_in_their_own_processes() -> None:
    with leaves_no_worker():
        flow = Flow.from_iterable(range(200), stages=1).partition(stages=2).map(tag)
        out = await flow.to_list(executor=ProcessExecutor(2))
    pids = {pid for pid, _ in out}
    assert os.getpid() not in pids
    assert len(pids) == 2  # one process per partition
    assert sorted(x for _, x in out) == list(range(200))


async def test_more_workers_than_cores() -> None:
    lines = ["the quick brown fox", "jumps over the lazy dog", "the end"] * 300
    flow = Flow.from_iterable(lines, stages=8).flat_map(split).partition(stages=8)
    with leaves_no_worker():
        out = await flow.reduce(dict, count_words).to_list(executor=ProcessExecutor(8))
    assert dict(out) == Counter(w for line in lines for w in line.split())
    assert len(out) == len({w for w, _ in out})


async def test_spawn_start_method() -> None:
    with leaves_no_worker():
        out = (
            await Flow.from_iterable(range(10), stages=2)
            .map(double)
            .to_list(executor=ProcessExecutor(2, start_method="spawn"))
        )
    assert sorted(out) == [x * 2 for x in range(10)]


# -- endings ----------------------------------------------------------------------------------


async def test_no_worker_is_left_after_a_normal_end_break_and_cancellation() -> None:
    executor = ProcessExecutor(2)
    flow = Flow.from_iterable(itertools.count(), stages=2).map(double).partition(stages=2)
    with leaves_no_worker():
        await Flow.from_iterable(range(100), stages=2).map(double).to_list(executor=executor)
    with leaves_no_worker():
        async with flow.map(double).stream(executor=executor) as events:
            async for e in events:
                if e > 1000:
                    break
    with leaves_no_worker():
        with anyio.move_on_after(0.05):
            await (
                Flow.from_iterable(itertools.count(), stages=2)
                .map(double)
                .to_list(executor=executor)
            )
    with leaves_no_worker():
        seen = 0
        async for _ in (
            Flow.from_iterable(itertools.count(), stages=2).map(double).iterate(executor=executor)
        ):
            seen += 1
            if seen == 100:
                break
    with leaves_no_worker():
        async with (
            Flow.from_iterable(itertools.count(), stages=2)
            .map(double)
            .start(executor=executor) as running
        ):
            running.stop()
            await running.wait()


async def test_workers_end_once_everything_arrived_before_the_consumer_takes_it() -> None:
    # The 2,000 results fit the output window: they and every "done" arrive while
    # the consumer holds the first one, and the workers, with nothing left to do,
    # exit then; the consumer still gets everything, and statistics stay whole.
    before = workers_running()
    flow = Flow.from_iterable(range(2000), stages=2).partition(stages=2).map(double)
    async with flow.stream(executor=ProcessExecutor(2)) as events:
        got = [await events.__anext__()]
        await wait_until(lambda: not workers_running() - before)
        got += [e async for e in events]
        stats = events.statistics()
    assert sorted(got) == [x * 2 for x in range(2000)]
    assert sum(stage.events_in for stage in stats.layers[-1].stages) == 2000
    assert not any(stage.running for stage in stats.layers[-1].stages)


def stuck(marker: str, x: int) -> int:
    Path(marker).touch()
    time.sleep(600)  # never returns in the test: the worker must be killed
    return x


async def test_a_worker_stuck_in_a_callback_is_killed_when_the_flow_is_cancelled(
    tmp_path: Path,
) -> None:
    # The worker cannot notice that its parent socket closed: after the exit
    # deadline it is killed, and nothing is left.
    marker = tmp_path / "entered"
    flow = Flow.from_iterable(range(10), stages=2).map(functools.partial(stuck, str(marker)))
    with leaves_no_worker():
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(flow.to_list, executor=ProcessExecutor(2)))
            await wait_until(marker.exists)
            tg.cancel_scope.cancel()


async def test_a_callback_error_comes_back_as_its_own_type_with_the_workers_traceback() -> None:
    flow = Flow.from_iterable(range(100), stages=2).map(breaks_at_50)
    with leaves_no_worker(), pytest.raises(Broken) as info:
        await flow.to_list(executor=ProcessExecutor(2))
    exc = info.value
    assert (exc.what, exc.code) == ("fifty", 50)
    notes = exc.__notes__
    assert any(n.startswith("in flow layer 0 (map), partition") for n in notes)
    tb = next(n for n in notes if n.startswith("raised in flowstage worker process"))
    assert "breaks_at_50" in tb
    assert 'raise Broken("fifty", 50)' in tb


async def test_an_exception_that_cannot_travel_is_raised_by_name() -> None:
    flow = Flow.from_iterable(range(3), stages=1).map(raises_unpicklable)
    with leaves_no_worker(), pytest.raises(process_module.RemoteError) as info:
        await flow.to_list(executor=ProcessExecutor(1))
    assert info.value.type_name.endswith("Unpicklable")
    assert "cannot travel" in str(info.value)


async def test_a_worker_that_exits_raises_worker_crashed_with_its_code() -> None:
    flow = Flow.from_iterable(range(100), stages=2).map(exits_at_50)
    with leaves_no_worker(), pytest.raises(WorkerCrashed) as info:
        await flow.to_list(executor=ProcessExecutor(2))
    assert info.value.exitcode == 3
    assert "exited unexpectedly with code 3" in str(info.value)
    assert "layer 0 partition" in str(info.value)


async def test_a_killed_worker_raises_worker_crashed_and_stops_the_others() -> None:
    flow = (
        Flow.from_iterable(itertools.count(), stages=2, max_demand=10)
        .map(tag)
        .partition(stages=2, key=second, max_demand=10)
    )
    with leaves_no_worker(), pytest.raises(WorkerCrashed) as info:
        async with flow.map(tag).stream(executor=ProcessExecutor(2)) as events:
            async for pid, _ in events:
                os.kill(pid, signal.SIGKILL)
                async for _ in events:  # the flow fails: the iteration cannot go on
                    pass
    assert info.value.exitcode == -signal.SIGKILL
    assert info.value.partitions


# -- portability ------------------------------------------------------------------------------


async def test_a_flow_that_cannot_be_sent_fails_before_any_worker_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process_module, "cloudpickle", lambda: None)
    flow = Flow.from_iterable(range(3)).map(lambda x: x + 1)
    before = workers_running()
    with pytest.raises(FlowNotPortable) as info:
        flow.stream(executor=ProcessExecutor(2))
    assert workers_running() == before
    (problem,) = info.value.problems
    assert problem.startswith("layers[0].ops.mappers[0].fn: <lambda> cannot be pickled")
    assert "install cloudpickle" in problem
    assert "cannot run on the process executor" in str(info.value)


async def test_lambdas_travel_when_cloudpickle_is_installed() -> None:
    pytest.importorskip("cloudpickle", reason="install the 'process' extra (cloudpickle)")
    offset = 10
    flow = Flow.from_iterable(range(5), stages=2).map(lambda x: x + offset)
    out = await flow.to_list(executor=ProcessExecutor(2))
    assert sorted(out) == [x + 10 for x in range(5)]
