"""The Ray executor on a real local Ray cluster: actors, failures, clean-up, options.

The end-to-end behaviour every executor shares is the conformance kit
(tests/flow/test_conformance.py runs it on Ray too); this file covers what only
actors have. The cluster is started once per session (the ``ray_cluster`` fixture).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from flowstage import Flow
from flowstage.executors import RayExecutor, resolve
from flowstage.executors import ray as ray_module
from flowstage.executors._hosting import RELAY_WINDOW
from flowstage.executors.ray import FlowNotPortable, RemoteError, WorkerCrashed

from ..conftest import live_ray_actors
from ..services import RAY_ENV

pytestmark = [pytest.mark.anyio, pytest.mark.ray]


@pytest.fixture
def ray(ray_cluster: Any) -> Any:
    return ray_cluster


@contextmanager
def leaves_no_actor(ray: Any) -> Iterator[None]:
    assert not live_ray_actors(ray)
    yield
    left = live_ray_actors(ray)
    assert not left, f"actors left behind: {[(a['ActorID'], a['State']) for a in left]}"


# -- callbacks (module level: they travel by reference) ---------------------------------


def tag(x: int) -> tuple[int, int]:
    return os.getpid(), x


def second(e: tuple[int, int]) -> int:
    return e[1]


def double(x: int) -> int:
    return x * 2


def split(line: str) -> list[str]:
    return line.split()


def count_words(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


class Broken(Exception):
    def __init__(self, what: str, code: int) -> None:
        super().__init__(what, code)
        self.what = what
        self.code = code


def breaks_at_50(x: int) -> int:
    if x == 50:
        raise Broken("fifty", 50)
    return x


class Unpicklable(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("no")


def raises_unpicklable(x: int) -> int:
    raise Unpicklable("cannot travel")


# -- running ---------------------------------------------------------------------------


async def test_partitions_run_in_actors(ray: Any) -> None:
    with leaves_no_actor(ray):
        flow = Flow.from_iterable(range(200), stages=1).partition(stages=2).map(tag)
        out = await flow.to_list(executor=RayExecutor())
    pids = {pid for pid, _ in out}
    assert os.getpid() not in pids
    assert len(pids) == 2  # one actor per partition
    assert sorted(x for _, x in out) == list(range(200))


@pytest.mark.parametrize("max_actors", [1, 2, None])
async def test_word_count_matches_the_input(ray: Any, max_actors: int | None) -> None:
    lines = ["the quick brown fox", "jumps over the lazy dog", "the end"] * 300
    flow = Flow.from_iterable(lines, stages=3).flat_map(split).partition(stages=4)
    with leaves_no_actor(ray):
        out = await flow.reduce(dict, count_words).to_list(
            executor=RayExecutor(max_actors=max_actors)
        )
    assert dict(out) == Counter(w for line in lines for w in line.split())
    assert len(out) == len({w for w, _ in out})


def test_executor_by_name_and_lazy_import() -> None:
    assert isinstance(resolve("ray"), RayExecutor)
    assert RayExecutor is ray_module.RayExecutor
    code = "import flowstage, flowstage.executors.ray, sys; print('ray' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr  # Ray is imported by a run


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"RayExecutor: max_actors must be an integer >= 1"):
        RayExecutor(max_actors=0)
    with pytest.raises(ValueError, match=r"RayExecutor: window must be an integer >= 1"):
        RayExecutor(window=0)
    with pytest.raises(TypeError, match=r"RayExecutor: max_pending_calls must be an integer"):
        RayExecutor(max_pending_calls=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"RayExecutor: address must be a str or None"):
        RayExecutor(address=6379)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"RayExecutor: actor_options must be a dict"):
        RayExecutor(actor_options=[("num_cpus", 1)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"actor_options cannot set 'max_restarts'"):
        RayExecutor(actor_options={"max_restarts": 3})
    with pytest.raises(ValueError, match=r"start_timeout must be a positive number"):
        RayExecutor(start_timeout=0)
    assert repr(RayExecutor(max_actors=3)) == "RayExecutor(address=None, max_actors=3)"


async def test_max_pending_calls_below_what_the_window_needs_fails_at_start(ray: Any) -> None:
    flow = Flow.from_iterable(range(10), stages=2).map(double)
    with (
        leaves_no_actor(ray),
        pytest.raises(
            ValueError,
            match=r"max_pending_calls must be at least window \* actors \+ 4 = 12 "
            r"for this flow \(2 actors\), got: 5",
        ),
    ):
        await flow.to_list(executor=RayExecutor(max_pending_calls=5))


# -- endings ------------------------------------------------------------------------------


async def test_no_actor_is_left_after_a_normal_end_break_and_cancellation(ray: Any) -> None:
    executor = RayExecutor()
    flow = Flow.from_iterable(itertools.count(), stages=2).map(double).partition(stages=2)
    with leaves_no_actor(ray):
        await Flow.from_iterable(range(100), stages=2).map(double).to_list(executor=executor)
    with leaves_no_actor(ray):
        async with flow.map(double).stream(executor=executor) as events:
            async for e in events:
                if e > 1000:
                    break
    with leaves_no_actor(ray):
        with anyio.CancelScope() as scope:
            async with flow.map(double).stream(executor=executor) as events:
                async for e in events:
                    if e > 1000:
                        scope.cancel()
    with leaves_no_actor(ray):
        seen = 0
        async for _ in (
            Flow.from_iterable(itertools.count(), stages=2).map(double).iterate(executor=executor)
        ):
            seen += 1
            if seen == 100:
                break
    with leaves_no_actor(ray):
        async with (
            Flow.from_iterable(itertools.count(), stages=2)
            .map(double)
            .start(executor=executor) as running
        ):
            running.stop()
            await running.wait()


async def test_a_callback_error_comes_back_as_its_own_type_with_the_actors_traceback(
    ray: Any,
) -> None:
    flow = Flow.from_iterable(range(100), stages=2).map(breaks_at_50)
    with leaves_no_actor(ray), pytest.raises(Broken) as info:
        await flow.to_list(executor=RayExecutor())
    exc = info.value
    assert (exc.what, exc.code) == ("fifty", 50)
    notes = exc.__notes__
    assert any(n.startswith("in flow layer 0 (map), partition") for n in notes)
    tb = next(n for n in notes if n.startswith("raised in flowstage Ray actor"))
    assert "breaks_at_50" in tb
    assert 'raise Broken("fifty", 50)' in tb


async def test_an_exception_that_cannot_travel_is_raised_by_name(ray: Any) -> None:
    flow = Flow.from_iterable(range(3), stages=1).map(raises_unpicklable)
    with leaves_no_actor(ray), pytest.raises(RemoteError) as info:
        await flow.to_list(executor=RayExecutor())
    assert info.value.type_name.endswith("Unpicklable")
    assert "cannot travel" in str(info.value)


async def test_a_killed_actor_raises_worker_crashed_and_stops_the_others(ray: Any) -> None:
    flow = (
        Flow.from_iterable(itertools.count(), stages=2, max_demand=10)
        .map(tag)
        .partition(stages=2, key=second, max_demand=10)
    )
    with leaves_no_actor(ray), pytest.raises(WorkerCrashed) as info:
        async with flow.map(tag).stream(executor=RayExecutor()) as events:
            async for pid, _ in events:
                os.kill(pid, signal.SIGKILL)
                async for _ in events:  # the flow fails: the iteration cannot go on
                    pass
    message = str(info.value)
    assert message.startswith("flowstage Ray actor ")
    assert "exited unexpectedly" in message
    assert info.value.partitions
    assert all(p.startswith("layer ") for p in info.value.partitions)


async def test_actors_that_cannot_be_placed_time_out_and_leave_nothing(ray: Any) -> None:
    flow = Flow.from_iterable(range(10), stages=2).map(double)
    executor = RayExecutor(actor_options={"num_cpus": 64}, start_timeout=1)
    with leaves_no_actor(ray), pytest.raises(TimeoutError, match=r"within 1.0 s \(start_timeout\)"):
        await flow.to_list(executor=executor)


# -- portability ----------------------------------------------------------------------------


async def test_lambdas_travel_with_rays_cloudpickle(
    ray: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray_module, "cloudpickle", lambda: None)  # Ray's own is used
    offset = 10
    flow = Flow.from_iterable(range(5), stages=2).map(lambda x: x + offset)
    with leaves_no_actor(ray):
        out = await flow.to_list(executor=RayExecutor())
    assert sorted(out) == [x + 10 for x in range(5)]


async def test_a_flow_that_cannot_be_sent_fails_before_any_actor_starts(ray: Any) -> None:
    import threading

    lock = threading.Lock()
    flow = Flow.from_iterable(range(3)).map(lambda x, lock=lock: x)
    with leaves_no_actor(ray), pytest.raises(FlowNotPortable) as info:
        flow.stream(executor=RayExecutor())
    assert "cannot run on the ray executor" in str(info.value)
    assert "sent to Ray actors" in str(info.value)
    assert info.value.problems


# -- memory ------------------------------------------------------------------------------------


def slow_count(acc: int, x: int) -> int:
    sum(range(2000))  # some work per event, so the source is faster than the reducer
    return acc + 1


async def test_events_in_flight_stay_bounded_on_a_slow_reducer(ray: Any) -> None:
    """The source runs in this process: count what it produced against what came
    out. Demand and the call windows bound the difference, however long the input."""
    produced = 0
    total = 20_000

    def source() -> Iterator[int]:
        nonlocal produced
        for i in range(total):
            produced += 1
            yield i

    flow = (
        Flow.from_iterable(source(), stages=1, max_demand=50)
        .partition(stages=2, max_demand=50)
        .map(double)
    )
    worst = 0
    received = 0
    with leaves_no_actor(ray):
        async with flow.stream(executor=RayExecutor()) as events:
            async for _ in events:
                received += 1
                worst = max(worst, produced - received)
    assert received == total
    # Structural bound: each of the three edges holds at most max_demand plus a
    # relay window of RELAY_WINDOW * max_demand events, each stage buffers at most
    # max_demand, and the calls in flight carry no more than that. Without
    # back-pressure the source would run ahead by thousands.
    assert worst <= 3 * (RELAY_WINDOW + 4) * 50, worst


# -- connecting --------------------------------------------------------------------------------


def run_script(*args: str) -> dict[str, Any]:
    script = Path(__file__).parent / "scripts" / "ray_connect.py"
    env = {**os.environ, **RAY_ENV}
    env.pop("RAY_ADDRESS", None)
    result = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def test_without_an_address_a_local_ray_is_started_for_the_run_and_shut_down(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    pytest.importorskip("ray")
    out = run_script("-", str(tmp_path_factory.mktemp("ray-own")))
    assert out == {"counts": {"a": 2, "b": 3, "c": 2}, "initialized_after": False}


def test_with_an_address_the_run_connects_to_that_cluster(ray: Any) -> None:
    address = ray.get_runtime_context().gcs_address
    out = run_script(address)
    assert out == {"counts": {"a": 2, "b": 3, "c": 2}, "initialized_after": False}
    assert ray.is_initialized()  # the cluster this session runs is still up
    assert not live_ray_actors(ray)


async def test_an_address_while_ray_is_initialized_elsewhere_is_an_error(ray: Any) -> None:
    flow = Flow.from_iterable(range(3)).map(double)
    with pytest.raises(RuntimeError, match=r"Ray is already initialized in this process"):
        await flow.to_list(executor=RayExecutor("ray://elsewhere:10001"))


# -- acknowledged messages -----------------------------------------------------------------


def message_words(m: Any) -> list[str]:
    return str(m.data).split()


async def test_a_flow_over_acknowledged_messages_acknowledges_each_once(ray: Any) -> None:
    from flowstage.messages import MemorySource

    lines = ["a b", "", "b c", "c a b"] * 20
    source = MemorySource(lines)
    flow = (
        Flow.from_messages(source, stages=2)
        .flat_map(message_words)
        .partition(stages=2)
        .reduce(dict, count_words)
    )
    with leaves_no_actor(ray):
        out = await flow.to_list(executor=RayExecutor())
    assert dict(out) == Counter(w for line in lines for w in line.split())
    assert sorted(source.acked, key=int) == [str(i) for i in range(len(lines))]
    assert source.duplicates == 0
