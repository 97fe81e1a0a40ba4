"""The web dashboard's page and feed, without a browser."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from contextlib import aclosing
from html.parser import HTMLParser
from typing import Any

import anyio
import pytest

from flowstage import Flow, FlowState
from flowstage.dashboard import web
from flowstage.statistics import FlowStatistics


class Parsed(HTMLParser):
    """Every tag with its attributes, and the text of each script and style."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.bodies: dict[str, list[str]] = {"script": [], "style": []}
        self._inside: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.bodies:
            self._inside = tag
            self.bodies[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.bodies[self._inside][-1] += data


def directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in parts}


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_page_is_one_document_that_reads_the_relative_feed() -> None:
    page = web.page()
    assert page.startswith("<!DOCTYPE html>")
    assert web.page() is page
    assert 'new EventSource("statistics")' in page


def test_the_policy_in_the_page_pins_its_own_script_and_style_by_hash() -> None:
    parsed = Parsed(web.page())
    metas = [a for tag, a in parsed.tags if tag == "meta" and a.get("http-equiv")]
    assert [m["http-equiv"] for m in metas] == ["Content-Security-Policy"]
    assert metas[0]["content"] == web.CONTENT_SECURITY_POLICY
    policy = directives(web.CONTENT_SECURITY_POLICY)
    [script], [style] = parsed.bodies["script"], parsed.bodies["style"]
    assert policy["script-src"] == [sha256(script)]
    assert policy["style-src"] == [sha256(style)]
    assert policy["default-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["require-trusted-types-for"] == ["'script'"]
    assert policy["trusted-types"] == ["'none'"]
    assert not any("unsafe" in value for values in policy.values() for value in values)


def test_the_page_loads_nothing_from_anywhere() -> None:
    page = web.page()
    parsed = Parsed(page)
    linked = [(tag, attrs) for tag, attrs in parsed.tags if {"src", "href"} & attrs.keys()]
    assert linked == []
    assert [tag for tag, _ in parsed.tags if tag in ("link", "iframe", "img", "object")] == []
    for text in (*parsed.bodies["style"], *parsed.bodies["script"]):
        assert "url(" not in text
        assert "@import" not in text
        assert "import(" not in text
    # The only URL in it is SVG's namespace name, which is never fetched.
    assert set(re.findall(r"\w+://[^\s\"'<>]*", page)) == {"http://www.w3.org/2000/svg"}


def test_the_script_renders_values_as_text_only() -> None:
    [script] = Parsed(web.page()).bodies["script"]
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


@pytest.mark.parametrize("interval", [0, -1.0, float("nan"), float("inf"), True, "1", None])
def test_the_feed_rejects_an_interval_that_is_not_a_positive_number(interval: object) -> None:
    with pytest.raises(ValueError, match=r"statistics_feed: interval must be a positive"):
        web.statistics_feed(object(), interval)  # type: ignore[arg-type]


def double(n: int) -> int:
    return 2 * n


def strict(line: str) -> Any:
    """``line`` parsed as strict JSON (``NaN``, ``Infinity`` refused)."""

    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(line, parse_constant=refuse)


@pytest.mark.anyio
async def test_the_feed_is_the_flows_statistics_as_json_lines_until_it_ends() -> None:
    send, receive = anyio.create_memory_object_stream[int](100)
    flow = Flow.from_async_iterable(receive).map(double)
    async with flow.start() as running:
        async with aclosing(web.statistics_feed(running, interval=0.01)) as feed:
            lines = [await anext(feed)]  # at once, while the flow runs
            for n in range(10):
                await send.send(n)
            send.close()
            lines += [line async for line in feed]
        final = running.statistics()
    assert all("\n" not in line and "\r" not in line for line in lines)
    snapshots = [strict(line) for line in lines]
    labels = [layer.label for layer in final.layers]
    assert all([layer["label"] for layer in s["layers"]] == labels for s in snapshots)
    assert all(s["state"] in {state.value for state in FlowState} for s in snapshots)
    assert [s["state"] for s in snapshots].count("done") == 1
    assert snapshots[-1] == json.loads(json.dumps(final.to_dict()))
    assert snapshots[-1]["events_in"] == 10


@pytest.mark.anyio
async def test_the_feed_sends_a_number_json_cannot_hold_as_null() -> None:
    class Source:
        def statistics(self) -> FlowStatistics:
            return FlowStatistics(FlowState.DONE, math.nan, (), 0, 0, 0)

    async with aclosing(web.statistics_feed(Source(), interval=1)) as feed:
        lines = [line async for line in feed]
    assert len(lines) == 1
    assert strict(lines[0])["elapsed"] is None
