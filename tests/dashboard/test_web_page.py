"""The web dashboard's page in a real headless Chromium, fed by hand-made
snapshots: it renders what it receives as text only, and its policy holds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from .harness import serve, wait_for

pytestmark = pytest.mark.anyio

#: Markup that would run if the page rendered it as HTML.
MARKUP = (
    '<img src=x onerror="window.__pwned=1">'
    "<script>window.__pwned=2</script>"
    '<svg onload="window.__pwned=3"></svg>'
)


def stage(name: str, kind: str, events: int) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "running": True,
        "events_in": events,
        "events_out": events,
        "batches_in": 1,
        "batches_out": 1,
        "demand_outstanding": 10,
        "buffered": 5,
        "buffer_size": 100,
        "discarded": 0,
        "mailbox": 0,
        "producers": 1,
        "consumers": 1,
        "busy_seconds": 0.25,
    }


def snapshot(label: str, name: str, kind: str, state: str, events: int) -> dict[str, Any]:
    stages = [stage(name, kind, events), stage(name + "#2", kind, events)]
    layer = {
        "index": 0,
        "label": label,
        "events_in": 2 * events,
        "events_out": 2 * events,
        "busy_seconds": 0.5,
        "discarded": 0,
        "buffered": 10,
        "buffer_size": 200,
        "demand_outstanding": 20,
        "stages": stages,
    }
    return {
        "state": state,
        "elapsed": 1.0,
        "layers": [layer],
        "events_in": 2 * events,
        "events_out": 2 * events,
        "discarded": 0,
        "subscribers": 0,
        "subscriber_dropped": 0,
        "rate_in": 2.0 * events,
        "rate_out": 2.0 * events,
    }


def fixed_feed(*snapshots: dict[str, Any], encode: Any = json.dumps) -> Any:
    async def feed() -> AsyncIterator[str]:
        for item in snapshots:
            yield encode(item)
        await anyio.sleep_forever()  # a live feed stays open

    return feed


def texts(driver: Any, selector: str) -> list[str]:
    return list(
        driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)",
            selector,
        )
    )


def count(driver: Any, selector: str) -> int:
    return int(
        driver.execute_script("return document.querySelectorAll(arguments[0]).length", selector)
    )


def stage_rows(driver: Any) -> int:
    return int(driver.execute_script("return document.querySelectorAll('tr.stage').length"))


async def in_thread(function: Any, *args: Any) -> Any:
    return await anyio.to_thread.run_sync(function, *args)


async def test_markup_in_every_string_is_shown_as_text_and_never_runs(browser: Any) -> None:
    data = snapshot(label=MARKUP, name=MARKUP, kind=MARKUP, state=MARKUP, events=7)
    async with serve(fixed_feed(data)) as url:
        await in_thread(browser.get, url)
        await in_thread(wait_for, browser, stage_rows)

        assert texts(browser, "tr.layer td[data-field=name]") == [MARKUP]
        assert texts(browser, "tr.stage td[data-field=name]") == [MARKUP, MARKUP + "#2"]
        assert texts(browser, "tr.stage td[data-field=kind]") == [MARKUP, MARKUP]
        assert texts(browser, "#state") == [MARKUP]
        assert texts(browser, "figure .title") == [MARKUP]
        assert browser.execute_script("return window.__pwned") is None
        assert count(browser, "img, iframe, object, embed, main svg svg") == 0
        assert browser.execute_script("return document.scripts.length") == 1


async def test_the_policy_forbids_html_sinks_and_foreign_scripts(browser: Any) -> None:
    data = snapshot(label="layer", name="stage", kind="producer", state="running", events=3)
    async with serve(fixed_feed(data)) as url:
        await in_thread(browser.get, url)
        await in_thread(wait_for, browser, stage_rows)
        # The page's own script ran under its policy (it rendered the rows); nothing
        # was refused.
        refused = [
            entry["message"]
            for entry in browser.get_log("browser")
            if "Content Security Policy" in entry["message"]
        ]
        assert refused == []
        # Trusted Types: a string assigned to innerHTML throws instead of parsing.
        outcome = browser.execute_script(
            "try { document.body.innerHTML = '<b id=injected>x</b>'; return 'assigned' }"
            " catch (e) { return e.name }"
        )
        assert outcome == "TypeError"
        assert browser.execute_script("return document.getElementById('injected')") is None
        # A script or an inline handler added to the DOM does not run: Trusted
        # Types refuse the handler, and the script has no hash the policy allows.
        outcome = browser.execute_script(
            "const s = document.createElement('script');"
            "s.appendChild(document.createTextNode('window.__pwned = 1'));"
            "document.body.appendChild(s);"
            "const b = document.createElement('button');"
            "try { b.setAttribute('onclick', 'window.__pwned = 2') }"
            " catch (e) { return e.name }"
            "return 'assigned'"
        )
        assert outcome == "TypeError"
        assert browser.execute_script("return window.__pwned") is None


async def test_a_feed_encoded_twice_is_read_too(browser: Any) -> None:
    """Some SSE helpers JSON-encode what they are given: the page reads the string."""
    data = snapshot(label="layer", name="stage", kind="producer", state="running", events=3)
    twice = fixed_feed(data, encode=lambda item: json.dumps(json.dumps(item)))
    async with serve(twice) as url:
        await in_thread(browser.get, url)
        await in_thread(wait_for, browser, stage_rows)
        assert texts(browser, "tr.stage td[data-field=name]") == ["stage", "stage#2"]
