"""The web dashboard in a real headless Chromium, following running flows: it
shows every layer and stage, its numbers follow the events, it tells when the
flow has ended, and stage names and events carrying markup run nothing."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import flowstage
from flowstage import Flow
from flowstage.dashboard.web import statistics_feed
from flowstage.executors.process import ProcessExecutor

from .harness import serve, wait_for
from .test_web_page import MARKUP, count, in_thread, texts

pytestmark = pytest.mark.anyio

#: Seconds between snapshots: short, so the tests wait little for each update.
INTERVAL = 0.02


def double(n: int) -> int:
    return 2 * n


def values(driver: Any, selector: str) -> list[float]:
    return [
        float(v)
        for v in driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])]"
            ".map(e => e.getAttribute('data-value'))",
            selector,
        )
    ]


async def until(driver: Any, check: Any) -> None:
    """Wait (bounded) until ``check(driver)`` holds on the page."""
    await in_thread(wait_for, driver, check)


def ended(driver: Any) -> bool:
    return texts(driver, "#state") == ["done"] and texts(driver, "#connection") == ["flow ended"]


@pytest.mark.parametrize("executor", ["local", "process"])
async def test_the_page_shows_every_layer_and_its_numbers_follow_the_events(
    browser: Any, executor: str
) -> None:
    """The process executor's workers report their counters about twice a second:
    the page follows them too."""
    send, receive = anyio.create_memory_object_stream[int](100)
    flow = Flow.from_async_iterable(receive).map(double).partition(stages=2).map(str)
    async with (
        flow.start(executor=ProcessExecutor(2) if executor == "process" else None) as running,
        serve(lambda: statistics_feed(running, interval=INTERVAL)) as url,
    ):
        layers = running.statistics().layers
        labels = [layer.label for layer in layers]
        names = [stage.name for layer in layers for stage in layer.stages]
        assert len(labels) == 3  # the source, the mapping layer, the partitioned layer
        await in_thread(browser.get, url)
        await until(browser, lambda d: texts(d, "tr.layer td[data-field=name]") == labels)
        assert texts(browser, "tr.stage td[data-field=name]") == names
        assert texts(browser, "figure .title") == labels
        assert texts(browser, "#state") == ["running"]

        last = f"tr.layer[data-layer='{layers[-1].index}'] td[data-field=events_in]"
        sent = 0
        for size in (50, 100, 150):
            for n in range(sent, sent + size):
                await send.send(n)
            sent += size
            # The page shows every event reaching the last layer and leaving the
            # source, as they flow.
            await until(browser, lambda d, sent=sent: values(d, last) == [sent])
            assert values(browser, "#events-in") == [sent]
        # Each layer's throughput chart has drawn points.
        points = browser.execute_script(
            "return [...document.querySelectorAll('figure polyline')]"
            ".map(e => e.getAttribute('points').split(' ').length)"
        )
        assert len(points) == len(labels)
        assert all(count > 1 for count in points)

        send.close()
        await running.wait()
        await until(browser, ended)
        assert values(browser, last) == [sent]


async def test_markup_in_a_stage_name_and_in_events_runs_nothing(browser: Any) -> None:
    send, receive = anyio.create_memory_object_stream[str](100)
    async with flowstage.StageGroup() as group:
        producer = group.start(flowstage.from_async_iterable(receive, name=MARKUP))
        flow = Flow.from_stages([producer]).map(str.upper)
        async with (
            flow.start() as running,
            serve(lambda: statistics_feed(running, interval=INTERVAL)) as url,
        ):
            await in_thread(browser.get, url)
            await until(browser, lambda d: MARKUP in texts(d, "tr.stage td[data-field=name]"))
            for n in range(20):
                await send.send(f"{MARKUP} {n}")
            source = "tr.layer[data-layer='0'] td[data-field=events_out]"
            await until(browser, lambda d: values(d, source) == [20])
            assert browser.execute_script("return window.__pwned") is None
            assert count(browser, "img, iframe, object, embed") == 0
            assert browser.execute_script("return document.scripts.length") == 1
            send.close()
            await running.wait()
            await until(browser, ended)
            assert browser.execute_script("return window.__pwned") is None


def fail_on_three(n: int) -> int:
    if n == 3:
        raise ValueError("three")
    return n


async def test_the_page_shows_that_a_flow_failed(browser: Any) -> None:
    send, receive = anyio.create_memory_object_stream[int](100)
    flow = Flow.from_async_iterable(receive).map(fail_on_three)
    handles: list[Any] = []
    # The server outlives the flow, whose failure ends the block it runs in.
    async with serve(lambda: statistics_feed(handles[0], interval=INTERVAL)) as url:
        with pytest.raises(ValueError, match="three"):
            async with flow.start() as running:
                handles.append(running)
                await in_thread(browser.get, url)
                await until(browser, lambda d: texts(d, "#state") == ["running"])
                for n in range(5):
                    await send.send(n)
                await running.wait()
        send.close()
        await until(browser, lambda d: texts(d, "#state") == ["failed"])
        assert texts(browser, "#connection") == ["flow ended"]
        assert "state-failed" in browser.find_element("id", "state").get_attribute("class")
