"""The integrations' framework-free parts, tested directly: request bodies within a
bound, event parsing, the SSE bytes, the service's options, and the lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from flowstage import Flow
from flowstage.integrations import FlowService, ServiceError
from flowstage.integrations._common import parse_events, read_limited, sse_chunk

from ..conftest import BACKENDS as ALL_BACKENDS


@pytest.fixture(params=ALL_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Every backend of the suite, trio included: no web framework here."""
    return request.param


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.anyio
async def test_read_limited_reads_the_whole_body_up_to_the_limit() -> None:
    assert await read_limited(chunks(b"[1,", b"2]"), 5) == b"[1,2]"
    assert await read_limited(chunks(), 5, "0") == b""


@pytest.mark.anyio
async def test_read_limited_refuses_a_body_over_the_limit_as_it_arrives() -> None:
    seen: list[bytes] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            seen.append(b"x" * 10)
            yield b"x" * 10

    with pytest.raises(ServiceError) as caught:
        await read_limited(endless(), 25)
    assert caught.value.status == 413
    assert "limit of 25 bytes" in caught.value.message
    assert len(seen) == 3  # stopped reading at the first chunk past the limit


@pytest.mark.anyio
@pytest.mark.parametrize(("declared", "status"), [("26", 413), ("many", 400)])
async def test_read_limited_checks_the_declared_length_first(declared: str, status: int) -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""  # pragma: no cover

    with pytest.raises(ServiceError) as caught:
        await read_limited(never(), 25, declared)
    assert caught.value.status == status


def test_parse_events_takes_a_json_array() -> None:
    assert parse_events(b'["a", 1, {"b": null}]') == ["a", 1, {"b": None}]
    assert parse_events(b"[]") == []


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        (b"[1,", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (b'{"a": 1}', 422, "got: dict"),
        (b"3", 422, "got: int"),
    ],
)
def test_parse_events_refuses_what_is_not_an_array(body: bytes, status: int, text: str) -> None:
    with pytest.raises(ServiceError) as caught:
        parse_events(body)
    assert caught.value.status == status
    assert text in caught.value.message


def test_parse_events_converts_every_item_or_refuses_the_whole_body() -> None:
    def positive(item: Any) -> int:
        if not isinstance(item, int):
            raise TypeError(f"not an integer: {item!r}")
        if item <= 0:
            raise ValueError(f"not positive: {item}")
        return item * 10

    assert parse_events(b"[1, 2]", positive) == [10, 20]
    for body, text in (
        (b'[1, "2"]', "event 1 is not accepted: not an integer: '2'"),
        (b"[1, 2, -3]", "event 2 is not accepted: not positive: -3"),
    ):
        with pytest.raises(ServiceError) as caught:
            parse_events(body, positive)
        assert (caught.value.status, caught.value.message) == (422, text)


def test_sse_chunk_writes_one_event_per_string() -> None:
    assert sse_chunk(['{"a":1}', "2"]) == b'data: {"a":1}\n\ndata: 2\n\n'
    # A line break in the data would end the event early: each line is a data line.
    assert sse_chunk(["a\nb\r\nc"]) == b"data: a\ndata: b\ndata: c\n\n"
    assert sse_chunk(["é"]) == "data: é\n\n".encode()


def test_the_default_encoding_is_compact_json() -> None:
    flow, push = Flow.from_push[str](capacity=10)
    service = FlowService(flow, push)
    text = service.encode({"word": "été", "n": [1, 2]})
    assert json.loads(text) == {"word": "été", "n": [1, 2]}
    assert " " not in text


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"buffer": 0}, ValueError, "FlowService: buffer must be an integer >= 1"),
        ({"slow": "block"}, ValueError, "FlowService: slow must be one of"),
        ({"max_body": "1MB"}, TypeError, "FlowService: max_body must be an integer"),
        ({"shutdown_timeout": -1}, ValueError, "FlowService: shutdown_timeout must be"),
        ({"shutdown_timeout": float("nan")}, ValueError, "shutdown_timeout must be"),
        ({"convert": "str"}, TypeError, "FlowService: convert must be a callable"),
        ({"encode": 1}, TypeError, "FlowService: encode must be a callable"),
        ({"ping_interval": 0}, ValueError, "FlowService: ping_interval must be"),
        ({"max_feeds": 0}, ValueError, "FlowService: max_feeds must be an integer >= 1"),
    ],
)
def test_bad_options_name_the_option_and_what_it_takes(
    options: dict[str, Any], error: type[Exception], text: str
) -> None:
    flow, push = Flow.from_push[str](capacity=10)
    with pytest.raises(error, match=text.replace("(", r"\(")):
        FlowService(flow, push, **options)


def test_flow_and_push_are_checked() -> None:
    flow, push = Flow.from_push[str](capacity=10)
    with pytest.raises(TypeError, match="FlowService: flow must be a Flow"):
        FlowService([1, 2], push)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="FlowService: push must be a push handle"):
        FlowService(flow, object())


def test_a_service_that_never_ran_is_starting_and_unhealthy() -> None:
    flow, push = Flow.from_push[str](capacity=10)
    service = FlowService(flow, push)
    assert service.state == "starting"
    assert service.health() == (503, {"state": "starting"})
    with pytest.raises(ServiceError) as caught:
        _ = service.running
    assert caught.value.status == 503


def test_importing_flowstage_imports_no_web_framework() -> None:
    code = (
        "import sys, flowstage, flowstage.integrations, flowstage.flow;"
        "loaded = {'fastapi', 'starlette', 'aiohttp', 'uvicorn'} & set(sys.modules);"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
