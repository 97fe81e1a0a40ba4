"""The Redis connector without a server: option checks, trio, lazy import, and the
pure functions that turn entries into messages and dead letters."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from typing import Any

import pytest

from flowstage.connectors.redis import (
    DEAD_LETTER_FIELDS,
    RedisStreamSink,
    RedisStreamSource,
    decode_fields,
)
from flowstage.connectors.redis._client import client_name
from flowstage.connectors.redis._entries import dead_letter_entry, event_fields, sort_entries

SOURCE_ERRORS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"stream": ""}, ValueError, "RedisStreamSource: stream must be a non-empty string, got: ''"),
    ({"stream": 3}, TypeError, "RedisStreamSource: stream must be a non-empty string, got: 3"),
    ({"group": None}, TypeError, "RedisStreamSource: group must be a non-empty string, got: None"),
    ({"consumer": ""}, ValueError, "consumer must be a non-empty string, got: ''"),
    ({"url": "http://x"}, ValueError, "url must be a URL starting with redis://, rediss:// or "),
    ({"url": None}, TypeError, "url must be a Redis URL (redis://host:port/db), got: None"),
    ({"decode": "json"}, TypeError, "RedisStreamSource: decode must be a callable, got: 'json'"),
    ({"block_ms": 0}, ValueError, "RedisStreamSource: block_ms must be an integer >= 1, got: 0"),
    ({"block_ms": 1.5}, TypeError, "block_ms must be an integer >= 1, got: 1.5"),
    ({"claim_idle_ms": -1}, ValueError, "claim_idle_ms must be an integer >= 0, got: -1"),
    ({"claim_interval_ms": "5"}, TypeError, "claim_interval_ms must be an integer, got: '5'"),
    ({"max_deliveries": 0}, ValueError, "max_deliveries must be an integer >= 1, got: 0"),
    ({"max_deliveries": True}, TypeError, "max_deliveries must be an integer >= 1, got: True"),
    ({"dead_letter": ""}, TypeError, "dead_letter must be a stream name (a non-empty string) or"),
    ({"dead_letter": "{stream}"}, ValueError, "dead_letter must be a stream other than the"),
    ({"dead_letter": "events"}, ValueError, "got: 'events'"),
    ({"create_group": 1}, TypeError, "create_group must be True or False, got: 1"),
    ({"start_id": ">"}, ValueError, "start_id must be '0', '$' or an entry id such as"),
    ({"start_id": 0}, ValueError, "start_id must be '0', '$' or an entry id"),
    ({"close_timeout": 0}, ValueError, "close_timeout must be a number of seconds > 0, got: 0"),
    ({"close_timeout": "1"}, TypeError, "close_timeout must be a number of seconds > 0, got: '1'"),
]


@pytest.mark.parametrize(("options", "kind", "message"), SOURCE_ERRORS)
def test_source_options_are_checked_when_it_is_built(
    options: dict[str, Any], kind: type[Exception], message: str
) -> None:
    args = {"stream": "events", "group": "g", **options}
    with pytest.raises(kind) as info:
        RedisStreamSource(**args)
    assert message in str(info.value)


SINK_ERRORS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"stream": ""}, ValueError, "RedisStreamSink: stream must be a non-empty string, got: ''"),
    ({"stream": b"x"}, TypeError, "RedisStreamSink: stream must be a non-empty string, got: b'x'"),
    ({"url": "localhost"}, ValueError, "RedisStreamSink: url must be a URL starting with"),
    ({"encode": 1}, TypeError, "RedisStreamSink: encode must be a callable, got: 1"),
    ({"maxlen": 0}, ValueError, "RedisStreamSink: maxlen must be an integer >= 1 or None, got: 0"),
    ({"maxlen": 2.0}, TypeError, "RedisStreamSink: maxlen must be an integer, got: 2.0"),
    ({"approximate": None}, TypeError, "approximate must be True or False, got: None"),
    ({"close_timeout": -1}, ValueError, "close_timeout must be a number of seconds > 0"),
]


@pytest.mark.parametrize(("options", "kind", "message"), SINK_ERRORS)
def test_sink_options_are_checked_when_it_is_built(
    options: dict[str, Any], kind: type[Exception], message: str
) -> None:
    args = {"stream": "out", **options}
    with pytest.raises(kind) as info:
        RedisStreamSink(**args)
    assert message in str(info.value)


def test_the_defaults() -> None:
    source = RedisStreamSource("events", "g")
    assert source.dead_letter == "events:dead-letter"
    assert RedisStreamSource("events", "g", dead_letter="dlq:{stream}").dead_letter == "dlq:events"
    assert RedisStreamSource("events", "g", dead_letter=None).dead_letter is None
    assert (source.max_deliveries, source.start_id, source.create_group) == (1, "0", True)
    assert source.url == "redis://127.0.0.1:6379/0"
    assert source.name == "events"
    other = RedisStreamSource("events", "g")
    assert source.consumer != other.consumer  # a unique name each
    stats = source.statistics()
    assert (stats.stream, stats.group, stats.consumer) == ("events", "g", source.consumer)
    assert (stats.delivered, stats.in_hand) == (0, 0)


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_trio_is_refused_when_the_source_opens_or_the_sink_writes() -> None:
    source = RedisStreamSource("events", "g")
    with pytest.raises(RuntimeError, match=r"event loop must be asyncio's .* got: 'trio'"):
        await source.open()
    with pytest.raises(RuntimeError, match="not open"):
        await source.receive(1)
    await source.aclose()  # nothing to close
    sink = RedisStreamSink("out")
    with pytest.raises(RuntimeError, match=r"RedisStreamSink.write: the event loop must be"):
        await sink.write([{"a": 1}])
    await sink.aclose()


def test_importing_flowstage_or_the_connector_does_not_import_redis() -> None:
    code = (
        "import sys, flowstage, flowstage.messages, flowstage.connectors.redis\n"
        "assert 'redis' not in sys.modules, sorted(m for m in sys.modules if 'redis' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sort_entries_decodes_in_order_and_sets_the_failures_aside() -> None:
    entries: list[Any] = [
        (b"1-0", {b"data": b'{"n": 1}'}),
        (b"2-0", {b"data": b"nope"}),
        (b"3-0", None),  # deleted while pending
        (b"4-0", {b"data": b'{"n": 4}'}),
        (b"5-0", {b"data": b'{"n": 5}'}),
    ]
    batch = sort_entries(
        entries,
        stream="s",
        decode=lambda fields: json.loads(fields[b"data"]),
        attempts={"4-0": 3},
        skip={"5-0"},
    )
    assert [(m.id, m.data, m.attempt, m.source) for m in batch.messages] == [
        ("1-0", {"n": 1}, 1, "s"),
        ("4-0", {"n": 4}, 3, "s"),
    ]
    [(mid, fields, exc, attempt)] = batch.failures
    assert (mid, fields, type(exc), attempt) == ("2-0", {b"data": b"nope"}, json.JSONDecodeError, 1)
    assert batch.deleted == ["3-0"]
    assert batch.skipped == 1
    assert pickle.loads(pickle.dumps(batch.messages)) == batch.messages  # they travel
    assert batch.last_id == "5-0"
    assert sort_entries([], stream="s", decode=decode_fields).last_id is None


def test_decode_fields_is_strict_utf8() -> None:
    assert decode_fields({b"a": "é".encode()}) == {"a": "é"}
    with pytest.raises(UnicodeDecodeError):
        decode_fields({b"a": b"\xff"})


def test_a_dead_letter_keeps_the_fields_and_says_why() -> None:
    letter = dead_letter_entry(
        {b"data": b"x", b"attempt": b"original"}, KeyError("k"), stream="s", mid="7-1", attempt=2
    )
    assert letter == {
        b"data": b"x",
        b"original:attempt": b"original",
        b"error": "KeyError: 'k'",
        b"error_type": "builtins.KeyError",
        b"source_stream": "s",
        b"source_id": "7-1",
        b"attempt": 2,
    }
    assert [k.decode() for k in letter if not k.startswith((b"data", b"original:"))] == list(
        DEAD_LETTER_FIELDS
    )
    assert dead_letter_entry(None, ValueError(), stream="s", mid="1-0", attempt=1)[b"error"] == (
        "ValueError"
    )


def test_the_sink_takes_mappings_by_default() -> None:
    assert event_fields({"a": 1}) == {"a": 1}
    for bad in ({}, [("a", 1)], "a=1"):
        with pytest.raises(TypeError, match="must be a non-empty mapping"):
            event_fields(bad)


def test_connection_names_are_what_redis_accepts() -> None:
    assert client_name("events", "g", "worker 1", "é") == "flowstage:events:g:worker_1:_"
