"""RedisStreamSource and RedisStreamSink against a real Redis server.

Each test has its own stream and group (a unique prefix, deleted at the end). No
test sleeps to wait for state: a blocked read is seen in ``CLIENT LIST``, and what
Redis holds is read back with plain commands.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from flowstage.connectors.redis import RedisStreamSink, RedisStreamSource
from flowstage.messages import AckSource, Sink

from .conftest import Names

pytestmark = [pytest.mark.redis, pytest.mark.anyio]


def add(r: Any, stream: str, n: int, start: int = 0) -> list[str]:
    """Append ``n`` entries ``{"i": start..}`` at once (one ``MULTI``); their ids."""
    pipe = r.pipeline(transaction=True)
    for i in range(start, start + n):
        pipe.xadd(stream, {"i": i})
    return [mid.decode() for mid in pipe.execute()]


def pending(r: Any, names: Names) -> dict[str, tuple[str, int]]:
    """The group's pending list: id -> (consumer, delivery count)."""
    return {
        p["message_id"].decode(): (p["consumer"].decode(), p["times_delivered"])
        for p in r.xpending_range(names.stream, names.group, "-", "+", 10_000)
    }


@asynccontextmanager
async def opened(source: RedisStreamSource[Any]) -> AsyncIterator[RedisStreamSource[Any]]:
    await source.open()
    try:
        yield source
    finally:
        await source.aclose()


def make(names: Names, url: str, consumer: str | None = "c1", **options: Any) -> Any:
    return RedisStreamSource(names.stream, names.group, consumer, url=url, **options)


async def until(redis_url: str, check: Callable[[Any], Awaitable[bool]]) -> None:
    """Poll the server until ``check(client)`` is true (bounded: 10 s)."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        with anyio.fail_after(10):
            while not await check(client):
                pass
    finally:
        await client.aclose()


def blocked_in_xreadgroup(name: str) -> Callable[[Any], Awaitable[bool]]:
    async def check(client: Any) -> bool:
        return any(
            c.get("name") == name and c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "")
            for c in await client.client_list()
        )

    return check


def connections_named(name: str) -> Callable[[Any], Awaitable[bool]]:
    async def gone(client: Any) -> bool:
        return not any(c.get("name") == name for c in await client.client_list())

    return gone


class Sends:
    """Counts what redis-py sends to the server (one call per round trip)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from redis.asyncio.connection import AbstractConnection

        self.commands: list[list[str]] = []
        real = AbstractConnection.send_packed_command
        sends = self

        async def counting(self: Any, command: Any, check_health: bool = True) -> None:
            parts = [command] if isinstance(command, bytes | str) else list(command)
            packed = b"".join(p if isinstance(p, bytes) else bytes(p) for p in parts)
            sends.commands.append(
                [
                    line.decode()
                    for line in packed.split(b"\r\n")
                    if line[:1].isalpha() and line.isupper()
                ]
            )
            await real(self, command, check_health)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)


async def test_the_source_and_sink_implement_the_protocols(names: Names, redis_url: str) -> None:
    assert isinstance(make(names, redis_url), AckSource)
    assert isinstance(RedisStreamSink(names.key("out"), url=redis_url), Sink)


async def test_receive_reads_at_most_the_demand(names: Names, r: Any, redis_url: str) -> None:
    ids = add(r, names.stream, 10)
    async with opened(make(names, redis_url)) as source:
        first = await source.receive(3)
        assert [m.id for m in first] == ids[:3]
        assert set(pending(r, names)) == set(ids[:3])  # COUNT 3: nothing more was read
        rest = await source.receive(100)
        assert [m.id for m in rest] == ids[3:]
        assert [m.data for m in first + rest] == [{"i": str(i)} for i in range(10)]
        assert {m.attempt for m in first + rest} == {1}
        assert {m.source for m in first} == {names.stream}
        stats = source.statistics()
        assert (stats.delivered, stats.in_hand, stats.redelivered, stats.claimed) == (10, 10, 0, 0)


async def test_a_blocking_read_wakes_on_xadd(names: Names, r: Any, redis_url: str) -> None:
    got: list[Any] = []
    async with opened(make(names, redis_url, block_ms=60_000)) as source:

        async def read() -> None:
            got.extend(await source.receive(10))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                await until(redis_url, blocked_in_xreadgroup(source.client_name))
                ids = add(r, names.stream, 2)
        assert [m.id for m in got] == ids


async def test_ack_is_one_xack_and_empties_the_pending_list(
    names: Names, r: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = add(r, names.stream, 5)
    async with opened(make(names, redis_url)) as source:
        got = await source.receive(5)
        assert set(pending(r, names)) == set(ids)
        sends = Sends(monkeypatch)
        await source.ack([m.id for m in got])
        assert [c[0] for c in sends.commands] == ["XACK"]
        assert pending(r, names) == {}
        stats = source.statistics()
        assert (stats.acked, stats.in_hand) == (5, 0)
        await source.ack([])  # nothing to send
        assert len(sends.commands) == 1


async def test_own_pending_entries_are_redelivered_after_a_reopen(
    names: Names, r: Any, redis_url: str
) -> None:
    ids = add(r, names.stream, 5)
    async with opened(make(names, redis_url, consumer="worker-1")) as first:
        got = await first.receive(3)
        await first.ack([got[0].id])
    assert set(pending(r, names)) == set(ids[1:3])
    async with opened(make(names, redis_url, consumer="worker-1")) as again:
        redelivered = await again.receive(10)
        assert [(m.id, m.attempt) for m in redelivered] == [(ids[1], 2), (ids[2], 2)]
        new = await again.receive(10)
        assert [(m.id, m.attempt) for m in new] == [(ids[3], 1), (ids[4], 1)]
        assert again.statistics().redelivered == 2
        await again.ack([m.id for m in redelivered + new])
    assert pending(r, names) == {}


async def test_xautoclaim_takes_over_what_a_dead_consumer_left_pending(
    names: Names, r: Any, redis_url: str
) -> None:
    ids = add(r, names.stream, 5)
    r.xgroup_create(names.stream, names.group, id="0")
    r.xreadgroup(names.group, "dead", {names.stream: ">"}, count=3)  # and never acks
    async with opened(make(names, redis_url, consumer="alive", claim_idle_ms=0)) as source:
        claimed = await source.receive(10)
        assert [(m.id, m.attempt) for m in claimed] == [(i, 2) for i in ids[:3]] + [
            (i, 1) for i in ids[3:]
        ]
        assert {c for c, _ in pending(r, names).values()} == {"alive"}
        assert source.statistics().claimed == 3
        await source.ack([m.id for m in claimed])
    assert pending(r, names) == {}


async def test_entries_pending_for_less_than_claim_idle_ms_stay_with_their_consumer(
    names: Names, r: Any, redis_url: str
) -> None:
    ids = add(r, names.stream, 5)
    r.xgroup_create(names.stream, names.group, id="0")
    r.xreadgroup(names.group, "busy", {names.stream: ">"}, count=3)
    async with opened(make(names, redis_url, claim_idle_ms=3_600_000)) as source:
        got = await source.receive(10)
        assert [m.id for m in got] == ids[3:]
        assert {i: c for i, (c, _) in pending(r, names).items()} == {
            **dict.fromkeys(ids[:3], "busy"),
            **dict.fromkeys(ids[3:], "c1"),
        }
        assert source.statistics().claimed == 0


async def test_claims_count_toward_the_demand(names: Names, r: Any, redis_url: str) -> None:
    ids = add(r, names.stream, 6)
    r.xgroup_create(names.stream, names.group, id="0")
    r.xreadgroup(names.group, "dead", {names.stream: ">"}, count=4)
    async with opened(make(names, redis_url, claim_idle_ms=0)) as source:
        assert [m.id for m in await source.receive(2)] == ids[:2]
        assert set(pending(r, names)) == set(ids[:4])  # nothing new read yet
        assert [m.id for m in await source.receive(3)] == [*ids[2:4], ids[4]]
        assert [m.id for m in await source.receive(3)] == ids[5:]


async def test_an_entry_that_cannot_be_decoded_goes_to_the_dead_letter_stream(
    names: Names, r: Any, redis_url: str
) -> None:
    good1 = r.xadd(names.stream, {"data": json.dumps({"n": 1})}).decode()
    bad = r.xadd(names.stream, {"data": "{not json", "error": "a field of the entry"}).decode()
    good2 = r.xadd(names.stream, {"data": json.dumps({"n": 2})}).decode()

    def decode(fields: dict[bytes, bytes]) -> Any:
        return json.loads(fields[b"data"])

    source = make(names, redis_url, decode=decode)
    async with opened(source):
        got = await source.receive(10)
        assert [(m.id, m.data) for m in got] == [(good1, {"n": 1}), (good2, {"n": 2})]
        assert set(pending(r, names)) == {good1, good2}  # the bad one was acknowledged
        stats = source.statistics()
        assert (stats.decode_failures, stats.dead_lettered, stats.delivered) == (1, 1, 2)
    assert source.dead_letter == f"{names.stream}:dead-letter"
    [(_, letter)] = r.xrange(source.dead_letter)
    assert letter[b"data"] == b"{not json"
    assert letter[b"original:error"] == b"a field of the entry"
    assert letter[b"error"].startswith(b"json.decoder.JSONDecodeError: ")
    assert letter[b"error_type"] == b"json.decoder.JSONDecodeError"
    assert (letter[b"source_stream"], letter[b"source_id"]) == (names.stream.encode(), bad.encode())
    assert letter[b"attempt"] == b"1"


async def test_without_a_dead_letter_stream_failures_stay_pending_counted_and_logged(
    names: Names, r: Any, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = r.xadd(names.stream, {"data": b"\xff\xfe"}).decode()  # not UTF-8
    ok = add(r, names.stream, 1)[0]
    source = make(names, redis_url, dead_letter=None)
    with caplog.at_level(logging.ERROR, logger="flowstage.connectors.redis"):
        async with opened(source):
            got = await source.receive(10)
            assert [m.id for m in got] == [ok]
            await source.nack([(ok, KeyError("x"))])
            stats = source.statistics()
            assert (stats.decode_failures, stats.nacked) == (1, 1)
            assert (stats.left_pending, stats.dead_lettered) == (2, 0)
    assert set(pending(r, names)) == {bad, ok}
    assert r.exists(f"{names.stream}:dead-letter") == 0
    logged = [rec.getMessage() for rec in caplog.records]
    assert any(
        bad in m and "could not be decoded" in m and "UnicodeDecodeError" in m for m in logged
    )
    assert any(ok in m and "failed in the flow" in m and "KeyError" in m for m in logged)


async def test_a_nacked_message_goes_to_the_dead_letter_stream_at_max_deliveries(
    names: Names, r: Any, redis_url: str
) -> None:
    ids = add(r, names.stream, 2)
    source = make(names, redis_url, dead_letter=names.key("dead"))
    async with opened(source):
        got = await source.receive(10)
        await source.nack([(got[0].id, ValueError("boom"))])
        await source.ack([got[1].id])
        stats = source.statistics()
        assert (stats.nacked, stats.dead_lettered, stats.acked, stats.in_hand) == (1, 1, 1, 0)
    assert pending(r, names) == {}
    [(_, letter)] = r.xrange(names.key("dead"))
    assert letter[b"i"] == b"0"
    assert letter[b"error"] == b"ValueError: boom"
    assert letter[b"error_type"] == b"builtins.ValueError"
    assert letter[b"source_id"] == ids[0].encode()


async def test_a_nacked_message_stays_pending_until_max_deliveries(
    names: Names, r: Any, redis_url: str
) -> None:
    [mid] = add(r, names.stream, 1)
    source = make(names, redis_url, max_deliveries=3, claim_idle_ms=0, claim_interval_ms=0)
    async with opened(source):
        attempts = []
        for _ in range(3):
            [message] = await source.receive(10)
            assert message.id == mid
            attempts.append(message.attempt)
            await source.nack([(mid, RuntimeError(f"attempt {message.attempt}"))])
            if message.attempt < 3:
                assert pending(r, names) == {mid: ("c1", message.attempt)}
        assert attempts == [1, 2, 3]
        stats = source.statistics()
        assert (stats.nacked, stats.left_pending, stats.dead_lettered) == (3, 2, 1)
        assert stats.claimed == 2
    assert pending(r, names) == {}
    [(_, letter)] = r.xrange(f"{names.stream}:dead-letter")
    assert (letter[b"error"], letter[b"attempt"]) == (b"RuntimeError: attempt 3", b"3")


async def test_a_cancelled_receive_loses_nothing(
    names: Names, r: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = add(r, names.stream, 3)
    source = make(names, redis_url)
    async with opened(source):
        client = source._client
        real = client.xreadgroup
        read = anyio.Event()

        async def read_then_hang(*args: Any, **kwargs: Any) -> Any:
            reply = await real(*args, **kwargs)  # Redis delivered the entries...
            read.set()
            await anyio.sleep_forever()  # ...and the receive is cancelled here
            return reply

        monkeypatch.setattr(client, "xreadgroup", read_then_hang)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(source.receive, 10)
                await read.wait()
                tg.cancel_scope.cancel()
        assert set(pending(r, names)) == set(ids)
        monkeypatch.setattr(client, "xreadgroup", real)
        with anyio.fail_after(10):
            again = await source.receive(10)
        assert [(m.id, m.attempt) for m in again] == [(i, 2) for i in ids]
        assert source.statistics().redelivered == 3


async def test_what_a_cancelled_receive_read_is_taken_over_by_another_consumer(
    names: Names, r: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = add(r, names.stream, 3)
    async with opened(make(names, redis_url, consumer="crashes")) as source:
        client = source._client
        real = client.xreadgroup
        read = anyio.Event()

        async def read_then_hang(*args: Any, **kwargs: Any) -> Any:
            reply = await real(*args, **kwargs)
            read.set()
            await anyio.sleep_forever()
            return reply

        monkeypatch.setattr(client, "xreadgroup", read_then_hang)
        async with anyio.create_task_group() as tg:
            tg.start_soon(source.receive, 10)
            await read.wait()
            tg.cancel_scope.cancel()
    async with opened(make(names, redis_url, consumer="takes-over", claim_idle_ms=0)) as other:
        got = await other.receive(10)
        assert [(m.id, m.attempt) for m in got] == [(i, 2) for i in ids]


async def test_a_receive_cancelled_while_blocked_leaves_the_source_usable(
    names: Names, r: Any, redis_url: str
) -> None:
    async with opened(make(names, redis_url, block_ms=60_000)) as source:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(source.receive, 10)
                await until(redis_url, blocked_in_xreadgroup(source.client_name))
                tg.cancel_scope.cancel()
        ids = add(r, names.stream, 2)
        got = await source.receive(10)
        assert [m.id for m in got] == ids


async def test_aclose_closes_the_connections_even_when_cancelled(
    names: Names, r: Any, redis_url: str
) -> None:
    add(r, names.stream, 1)
    source = make(names, redis_url)
    await source.open()
    await source.receive(1)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await source.aclose()
    await until(redis_url, connections_named(source.client_name))
    with pytest.raises(RuntimeError, match="not open"):
        await source.receive(1)


async def test_a_pending_entry_deleted_from_the_stream_is_counted_not_delivered(
    names: Names, r: Any, redis_url: str
) -> None:
    ids = add(r, names.stream, 3)
    async with opened(make(names, redis_url)) as first:
        await first.receive(3)
    r.xdel(names.stream, ids[1])
    async with opened(make(names, redis_url)) as again:
        got = await again.receive(10)
        assert [m.id for m in got] == [ids[0], ids[2]]
        assert again.statistics().deleted == 1
    assert set(pending(r, names)) == {ids[0], ids[2]}


async def test_a_deleted_entry_a_dead_consumer_left_is_counted_when_claimed(
    names: Names, r: Any, redis_url: str
) -> None:
    ids = add(r, names.stream, 3)
    r.xgroup_create(names.stream, names.group, id="0")
    r.xreadgroup(names.group, "dead", {names.stream: ">"}, count=3)
    r.xdel(names.stream, ids[0])
    async with opened(make(names, redis_url, claim_idle_ms=0)) as source:
        got = await source.receive(10)
        assert [m.id for m in got] == ids[1:]
        assert source.statistics().deleted == 1
    assert set(pending(r, names)) == set(ids[1:])


async def test_start_id_dollar_skips_what_the_stream_held(
    names: Names, r: Any, redis_url: str
) -> None:
    add(r, names.stream, 3)
    async with opened(make(names, redis_url, start_id="$", block_ms=1)) as source:
        new = add(r, names.stream, 1, start=3)
        assert [m.id for m in await source.receive(10)] == new


async def test_an_existing_group_is_kept(names: Names, r: Any, redis_url: str) -> None:
    ids = add(r, names.stream, 2)
    r.xgroup_create(names.stream, names.group, id=ids[0])  # only entries after the first
    async with opened(make(names, redis_url)) as source:
        assert [m.id for m in await source.receive(10)] == ids[1:]


async def test_a_missing_group_is_an_error_without_create_group(
    names: Names, r: Any, redis_url: str
) -> None:
    source = make(names, redis_url, create_group=False)
    with pytest.raises(LookupError, match="does not exist"):
        await source.open()
    r.xgroup_create(names.stream, names.group, id="0", mkstream=True)
    async with opened(source):
        [mid] = add(r, names.stream, 1)
        assert [m.id for m in await source.receive(1)] == [mid]


async def test_a_generated_consumer_leaves_the_group_when_nothing_is_pending(
    names: Names, r: Any, redis_url: str
) -> None:
    add(r, names.stream, 3)

    def consumers() -> set[str]:
        return {c["name"].decode() for c in r.xinfo_consumers(names.stream, names.group)}

    async with opened(make(names, redis_url, consumer=None)) as done:
        await done.ack([m.id for m in await done.receive(1)])
    async with opened(make(names, redis_url, consumer=None)) as unfinished:
        await unfinished.receive(1)
    assert consumers() == {unfinished.consumer}  # it still holds an entry
    async with opened(make(names, redis_url, consumer="named")) as named:
        assert named.consumer == "named"
        await named.ack([m.id for m in await named.receive(1)])
    assert consumers() == {unfinished.consumer, "named"}


async def test_opening_twice_is_an_error(names: Names, redis_url: str) -> None:
    async with opened(make(names, redis_url)) as source:
        with pytest.raises(RuntimeError, match="already open"):
            await source.open()


async def test_a_pickled_source_is_its_configuration(names: Names, redis_url: str) -> None:
    source = make(names, redis_url, block_ms=10, max_deliveries=4)
    copy = pickle.loads(pickle.dumps(source))
    assert (copy.stream, copy.group, copy.consumer, copy.block_ms, copy.max_deliveries) == (
        source.stream,
        source.group,
        "c1",
        10,
        4,
    )
    generated = make(names, redis_url, consumer=None)
    assert pickle.loads(pickle.dumps(generated)).consumer != generated.consumer


async def test_the_sink_writes_a_batch_in_order_in_one_round_trip(
    names: Names, r: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = RedisStreamSink(names.key("out"), url=redis_url)
    await sink.write([{"n": -1}])  # connects
    sends = Sends(monkeypatch)
    await sink.write([{"n": i, "word": f"w{i}"} for i in range(100)])
    assert len(sends.commands) == 1
    assert sends.commands[0][0] == "MULTI"
    assert sends.commands[0].count("XADD") == 100
    await sink.write([])
    assert len(sends.commands) == 1
    await sink.aclose()
    entries = r.xrange(names.key("out"))
    assert [fields for _, fields in entries] == [{b"n": b"-1"}] + [
        {b"n": str(i).encode(), b"word": f"w{i}".encode()} for i in range(100)
    ]
    assert (sink.written, sink.batches) == (101, 2)


def encode(event: int) -> dict[str, Any]:
    if event < 0:
        raise ValueError("negative")
    return {"json": json.dumps(event)}


async def test_the_sink_encodes_every_event_before_sending_any(
    names: Names, r: Any, redis_url: str
) -> None:
    sink = RedisStreamSink(names.key("out"), url=redis_url)
    with pytest.raises(TypeError, match="RedisStreamSink: an event must be a non-empty mapping"):
        await sink.write([{"n": 1}, 2])
    await sink.aclose()
    assert r.xlen(names.key("out")) == 0

    sink = RedisStreamSink(
        names.key("out"), url=redis_url, encode=encode, maxlen=3, approximate=False
    )
    with pytest.raises(ValueError, match="negative"):
        await sink.write([1, -1])
    await sink.write(list(range(5)))
    copy = pickle.loads(pickle.dumps(sink))
    await copy.write([5])
    await copy.aclose()
    await sink.aclose()
    assert [f[b"json"] for _, f in r.xrange(names.key("out"))] == [b"3", b"4", b"5"]
