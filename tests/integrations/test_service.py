"""FlowService without a web server, on every backend (asyncio, trio, uvloop): the
flow runs for the block, feeds get the flow's output, a failure is kept (and
logged) instead of raised, and a shutdown drains the flow into the feeds."""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import anyio
import pytest

from flowstage import Flow, FlowState, Window
from flowstage.integrations import FlowService, ServiceError

from ..conftest import BACKENDS as ALL_BACKENDS

pytestmark = pytest.mark.anyio


@pytest.fixture(params=ALL_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Every backend of the suite, trio included: no web framework here."""
    return request.param


LIMIT = 20


def explode(word: str) -> str:
    if word == "boom":
        raise ValueError("boom was pushed")
    return word.upper()


def upper_service(**options: Any) -> FlowService[str]:
    words, push = Flow.from_push[str](capacity=100)
    return FlowService(words.map(explode), push, **options)


async def test_feeds_get_what_is_pushed_then_end_with_the_shutdown() -> None:
    service = upper_service()
    with anyio.fail_after(LIMIT):
        async with service.run():
            assert service.state is FlowState.RUNNING
            assert service.health()[0] == 200
            with service.subscription() as a, service.subscription() as b:
                assert await service.push_events(["x", "y"]) == 2
                assert [await a.__anext__(), await a.__anext__()] == ["X", "Y"]
                result = await service.shutdown()
                assert result is not None
                assert result.outcome == "drained"
                assert [event async for event in b] == ["X", "Y"]
        assert service.state is FlowState.DONE
        assert service.health() == (
            503,
            {"state": "done", "events_in": 2, "events_out": 2, "subscribers": 0},
        )


async def test_a_failure_is_kept_logged_and_refuses_pushes_and_feeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service = upper_service()
    with anyio.fail_after(LIMIT), caplog.at_level(logging.ERROR, logger="flowstage"):
        async with service.run():
            with service.subscription() as feed:
                await service.push_events(["a", "boom"])
                assert [event async for event in feed] in (["A"], [])
            await service.shutdown()  # returns once the host task recorded it
            assert service.state is FlowState.FAILED
            assert isinstance(service.failure, ValueError)
            status, body = service.health()
            assert (status, body["state"], body["error"]) == (503, "failed", "ValueError")
            with pytest.raises(ServiceError) as caught:
                await service.push_events(["c"])
            assert caught.value.status == 503
            with pytest.raises(ServiceError):
                service.subscription().__enter__()
    # The shutdown may have begun while the failure ended the flow.
    result = service.shutdown_result
    assert result is None or isinstance(result.exception, ValueError)
    assert any(
        record.exc_info and record.exc_info[1] is service.failure for record in caplog.records
    )


async def test_the_shutdown_flushes_open_windows_into_the_feeds() -> None:
    words, push = Flow.from_push[str](capacity=100)
    counts = (
        words.partition(stages=1, window=Window.periodic(1, "hour"))
        .reduce(dict, lambda acc, w: {**acc, w: acc.get(w, 0) + 1})
        .emit("state")
    )
    service = FlowService(counts, push)
    with anyio.fail_after(LIMIT):
        async with service.run():
            with service.subscription() as feed:
                await service.push_events(["a", "b", "a"])
                await service.shutdown()
                windows = [window async for window in feed]
    assert sum((Counter(w) for w in windows), Counter()) == Counter({"a": 2, "b": 1})


async def test_close_feeds_ends_them_and_the_flow_keeps_running() -> None:
    service = upper_service()
    with anyio.fail_after(LIMIT):
        async with service.run():
            with service.subscription() as feed:
                service.close_feeds()
                assert [event async for event in feed] == []
            assert service.shutting_down
            assert await service.push_events(["still"]) == 1
            assert service.state is FlowState.RUNNING


async def test_statistics_json_ends_with_the_flow() -> None:
    service = upper_service()
    with anyio.fail_after(LIMIT):
        async with service.run():
            snapshots = service.statistics_json(interval=3600)
            first = json.loads(await snapshots.__anext__())
            assert first["state"] == "running"
            assert "from_push" in first["layers"][-1]["label"]
            await service.push_events(["s"])
            await service.shutdown()
            rest = [json.loads(text) async for text in snapshots]
    assert [snapshot["state"] for snapshot in rest] == ["done"]
    assert rest[0]["events_out"] == 1


async def test_events_yields_the_output_for_one_client() -> None:
    service = upper_service()
    with anyio.fail_after(LIMIT):
        async with service.run():
            received: list[str] = []
            async with anyio.create_task_group() as tg:

                async def read() -> None:
                    async for event in service.events():
                        received.append(event)

                tg.start_soon(read)
                while service.running.statistics().subscribers < 1:
                    await anyio.lowlevel.checkpoint()
                await service.push_events(["e", "f"])
                await service.shutdown()
    assert received == ["E", "F"]


async def test_a_service_runs_once() -> None:
    service = upper_service()
    async with service.run():
        pass
    with pytest.raises(RuntimeError, match="runs once"):
        async with service.run():
            pass


async def test_a_flow_that_fails_to_start_raises_from_run() -> None:
    class Broken:
        def start(self, **options: Any) -> Any:
            raise OSError("cannot start")

    service = FlowService(Broken())  # type: ignore[arg-type]
    with pytest.raises(OSError, match="cannot start"):
        async with service.run():
            pass


async def test_a_full_reject_buffer_answers_503_with_retry_after_and_takes_none() -> None:
    words, push = Flow.from_push[str](capacity=2, overflow="reject")
    service = FlowService(words, push)
    with anyio.fail_after(LIMIT):
        async with service.run():
            with pytest.raises(ServiceError) as caught:
                await service.push_events(["a", "b", "c"])
            assert caught.value.status == 503
            assert caught.value.headers == {"Retry-After": "1"}
            assert "none of the 3 events was accepted" in caught.value.message
            assert push.statistics().accepted == 0


async def test_push_events_says_how_many_a_drop_newest_buffer_took() -> None:
    words, push = Flow.from_push[str](capacity=2, overflow="drop_newest")
    service = FlowService(words, push)
    with anyio.fail_after(LIMIT):
        async with service.run():
            # The batch is offered at once: two fit, the two newest are dropped.
            assert await service.push_events(["a", "b", "c", "d"]) == 2
            assert push.statistics().dropped == 2


async def test_feeds_beyond_max_feeds_are_refused_until_one_leaves() -> None:
    service = upper_service(max_feeds=2)
    with anyio.fail_after(LIMIT):
        async with service.run():
            with service.subscription(), service.subscription():
                with pytest.raises(ServiceError) as caught:
                    service.subscription().__enter__()
                assert caught.value.status == 503
                assert "serves 2 at once" in caught.value.message
            with service.subscription() as again:
                await service.push_events(["z"])
                assert await again.__anext__() == "Z"
