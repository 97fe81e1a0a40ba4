"""The executor conformance kit (``flowstage.testing``), run on every executor this
suite knows, on asyncio and trio; the cases that assert exact times run under
trio's virtual clock. The Ray executor runs on a real local Ray cluster."""

from __future__ import annotations

from typing import Any

import pytest
from trio.testing import MockClock

from flowstage.executors import Executor, LocalExecutor
from flowstage.executors.process import ProcessExecutor
from flowstage.executors.ray import RayExecutor
from flowstage.testing import ConformanceCase, ConformanceFailure, check_executor, conformance_cases

pytestmark = pytest.mark.anyio

EXECUTORS: dict[str, Any] = {
    "local": LocalExecutor,
    "process-1": lambda: ProcessExecutor(1),
    "process-2": lambda: ProcessExecutor(2),
    "process-4": lambda: ProcessExecutor(4),
    # one actor per partition (tests/executors/test_ray.py runs fewer actors)
    "ray": RayExecutor,
}


@pytest.fixture(
    params=[
        pytest.param(name, marks=[pytest.mark.ray] if name.startswith("ray") else [])
        for name in sorted(EXECUTORS)
    ]
)
def executor(request: pytest.FixtureRequest) -> Executor:
    if str(request.param).startswith("ray"):
        request.getfixturevalue("ray_cluster")
    made: Executor = EXECUTORS[request.param]()
    return made


@pytest.mark.parametrize("case", conformance_cases(), ids=lambda c: c.name)
async def test_conformance(case: ConformanceCase, executor: Executor) -> None:
    await case.run(executor)


class TestVirtualClock:
    @pytest.fixture
    def anyio_backend(self) -> tuple[str, dict[str, Any]]:
        return ("trio", {"clock": MockClock(autojump_threshold=0)})

    @pytest.mark.parametrize("case", conformance_cases(virtual_clock=True), ids=lambda c: c.name)
    async def test_conformance_in_virtual_time(
        self, case: ConformanceCase, executor: Executor
    ) -> None:
        await case.run(executor)


def test_the_kit_has_cases_of_both_kinds() -> None:
    plain = conformance_cases()
    clocked = conformance_cases(virtual_clock=True)
    assert len(plain) > 40
    assert clocked
    assert not {c.name for c in plain} & {c.name for c in clocked}
    assert len(conformance_cases(virtual_clock=None)) == len(plain) + len(clocked)


async def test_check_executor_runs_every_case_and_reports_failures() -> None:
    class Broken(LocalExecutor):
        def open_stream(self, plan: Any, bindings: Any) -> Any:
            raise RuntimeError("no streams here")

    assert await check_executor(LocalExecutor()) == len(conformance_cases())
    with pytest.raises(ConformanceFailure) as info:
        await check_executor(Broken())
    names = [name for name, _ in info.value.failures]
    assert "map_filter_to_list" in names
    assert "start_and_wait_runs_to_completion" not in names  # start() still works
