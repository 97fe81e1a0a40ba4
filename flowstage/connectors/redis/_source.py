"""RedisStreamSource: an acknowledged source over a Redis stream's consumer group."""

from __future__ import annotations

import logging
import os
import re
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, overload

import anyio

from ..._options import check_callable, check_int, check_positive_int, invalid
from . import _client
from ._entries import Fields, Sorted, dead_letter_entry, decode_fields, describe, sort_entries

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ...messages import Message

__all__ = [
    "DEFAULT_BLOCK_MS",
    "DEFAULT_CLAIM_IDLE_MS",
    "DEFAULT_CLAIM_INTERVAL_MS",
    "DEFAULT_DEAD_LETTER",
    "RedisStreamSource",
    "RedisStreamStatistics",
]

T = TypeVar("T")

_logger = logging.getLogger("flowstage.connectors.redis")

#: How long one ``XREADGROUP`` waits for new entries (``BLOCK``), by default.
DEFAULT_BLOCK_MS: Final = 2_000
#: How long an entry must have been pending with a consumer before another one
#: takes it over (``XAUTOCLAIM`` min-idle-time), by default.
DEFAULT_CLAIM_IDLE_MS: Final = 60_000
#: How often the source looks for entries to take over, by default.
DEFAULT_CLAIM_INTERVAL_MS: Final = 5_000
#: The dead-letter stream, by default: ``{stream}`` is replaced by the stream's name.
DEFAULT_DEAD_LETTER: Final = "{stream}:dead-letter"
#: Seconds a socket read may take beyond ``block_ms`` before the client gives up.
SOCKET_TIMEOUT_MARGIN: Final = 10.0

_START_ID = re.compile(r"\$|0|\d+(-\d+)?")
_CALL = "RedisStreamSource"

#: Deletes this source's consumer from the group only if it has nothing pending
#: (``XGROUP DELCONSUMER`` would drop pending entries), atomically.
_DELETE_IF_IDLE = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
    return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1
"""


@dataclass(frozen=True, slots=True)
class RedisStreamStatistics:
    """A snapshot of a :class:`RedisStreamSource`'s counters (``statistics()``).

    Counters only grow while the source lives (they survive a reopen); ``in_hand``
    is a gauge.
    """

    #: The stream, the consumer group and this source's consumer name.
    stream: str
    group: str
    consumer: str
    #: Messages ``receive`` returned (every delivery, first or not).
    delivered: int
    #: Of those, entries this consumer held before (pending after a restart or an
    #: interrupted read) and read again from its own pending list.
    redelivered: int
    #: Of those, entries taken over with ``XAUTOCLAIM`` (left pending by a consumer
    #: that died, or nacked for another attempt).
    claimed: int
    #: Messages the flow acknowledged (``XACK``).
    acked: int
    #: Messages the flow nacked (a callback failed on them).
    nacked: int
    #: Of those, messages left pending for another attempt (attempt below
    #: ``max_deliveries``, or no dead-letter stream).
    left_pending: int
    #: Entries moved to the dead-letter stream (nacked for good, or undecodable).
    dead_lettered: int
    #: Entries ``decode`` raised on (never delivered to the flow).
    decode_failures: int
    #: Pending entries that had been deleted from the stream (``XDEL``, trimming)
    #: before they could be delivered again: nothing left to deliver.
    deleted: int
    #: Messages delivered and neither acknowledged nor nacked yet.
    in_hand: int


def _check_name(option: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(invalid(option, "a non-empty string", value, _CALL))
    if not value:
        raise ValueError(invalid(option, "a non-empty string", value, _CALL))
    return value


def _check_ms(option: str, value: object) -> int:
    ms = check_int(option, value, _CALL)
    if ms < 0:
        raise ValueError(invalid(option, "an integer >= 0", value, _CALL))
    return ms


def _default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class RedisStreamSource(Generic[T]):
    """An :class:`~flowstage.messages.AckSource` reading ``stream`` through the
    consumer group ``group``, as the consumer ``consumer``.

    What it guarantees:

    * **Demand is COUNT.** ``receive(n)`` returns at most ``n`` messages, waiting
      with blocking reads (``XREADGROUP ... COUNT n BLOCK block_ms``) until there is
      at least one; it never returns ``[]`` (a stream does not end).
    * **Nothing read is lost.** Redis keeps every entry it delivered in the group's
      pending list until ``ack`` (one ``XACK`` per call). On ``open`` the source first
      redelivers its own pending entries (when ``consumer`` is the name it had
      before), then takes over entries other consumers left pending for at least
      ``claim_idle_ms`` (``XAUTOCLAIM``), at open and every ``claim_interval_ms``,
      counting them toward the demand. A ``receive`` that is cancelled or fails after
      Redis delivered entries leaves them pending; the next ``receive`` reads this
      consumer's pending list again and redelivers them. ``Message.attempt`` is
      Redis's delivery count.
    * **Nothing is dropped silently.** An entry ``decode`` raises on is never
      delivered: it is moved to the dead-letter stream (the original fields plus
      ``error``, ``error_type``, ``source_stream``, ``source_id`` and ``attempt``;
      ``XADD`` and ``XACK`` in one ``MULTI``) and counted. A message the flow nacks
      goes the same way once its attempt reached ``max_deliveries``; before that it
      stays pending and is delivered again after ``claim_idle_ms`` (to this consumer
      or another). With ``dead_letter=None`` there is no dead-letter stream:
      failures stay pending (delivered again after ``claim_idle_ms``, forever),
      and each is counted and logged (logger ``flowstage.connectors.redis``).

    Options (checked here, when the source is built):

    * ``consumer``: this consumer's name in the group. Give a stable name (one per
      replica) for a restarted service to redeliver its own pending entries at once;
      by default a unique ``host-pid-random`` name, deleted from the group on
      ``aclose`` when nothing is pending with it.
    * ``decode``: a function of the entry's fields (``dict`` of ``bytes`` to
      ``bytes``) returning ``Message.data``; by default :func:`decode_fields`
      (``dict`` of ``str``).
    * ``block_ms`` (>= 1): how long one read waits for new entries; between reads
      the source looks for entries to take over.
    * ``claim_idle_ms`` (>= 0): how long an entry must have been pending with a
      consumer before another takes it over. It must exceed the longest time a
      message spends in a flow (``max_unacked`` messages in hand, slow callbacks),
      else a live consumer's message is taken over and processed twice; 0 takes over
      everything pending, only right for a consumer that knows the others are dead.
    * ``claim_interval_ms`` (>= 0): how often to look for such entries.
    * ``dead_letter``: the dead-letter stream's name (``{stream}`` stands for the
      stream's name; default ``"{stream}:dead-letter"``), or ``None`` for none.
    * ``max_deliveries`` (>= 1): the attempt at which a nacked message goes to the
      dead-letter stream (1: at its first failure).
    * ``create_group``: create the group when it does not exist (``XGROUP CREATE
      ... MKSTREAM``), starting at ``start_id``: ``"0"`` (the default) for every
      entry already in the stream, ``"$"`` for entries added from now on, or an
      entry id. With ``create_group=False`` the group must exist.
    * ``close_timeout`` (seconds > 0): how long ``aclose`` may take.

    Runs on asyncio (and uvloop), since redis-py's asyncio client needs asyncio; on
    trio, ``open`` raises. Needs Redis 6.2 or later (``XAUTOCLAIM``).
    """

    @overload
    def __init__(
        self: RedisStreamSource[dict[str, str]],
        stream: str,
        group: str,
        consumer: str | None = None,
        *,
        url: str = _client.DEFAULT_URL,
        decode: None = None,
        block_ms: int = DEFAULT_BLOCK_MS,
        claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS,
        claim_interval_ms: int = DEFAULT_CLAIM_INTERVAL_MS,
        dead_letter: str | None = DEFAULT_DEAD_LETTER,
        max_deliveries: int = 1,
        create_group: bool = True,
        start_id: str = "0",
        close_timeout: float = 5.0,
    ) -> None: ...

    @overload
    def __init__(
        self,
        stream: str,
        group: str,
        consumer: str | None = None,
        *,
        url: str = _client.DEFAULT_URL,
        decode: Callable[[Fields], T],
        block_ms: int = DEFAULT_BLOCK_MS,
        claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS,
        claim_interval_ms: int = DEFAULT_CLAIM_INTERVAL_MS,
        dead_letter: str | None = DEFAULT_DEAD_LETTER,
        max_deliveries: int = 1,
        create_group: bool = True,
        start_id: str = "0",
        close_timeout: float = 5.0,
    ) -> None: ...

    def __init__(
        self,
        stream: str,
        group: str,
        consumer: str | None = None,
        *,
        url: str = _client.DEFAULT_URL,
        decode: Callable[[Fields], Any] | None = None,
        block_ms: int = DEFAULT_BLOCK_MS,
        claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS,
        claim_interval_ms: int = DEFAULT_CLAIM_INTERVAL_MS,
        dead_letter: str | None = DEFAULT_DEAD_LETTER,
        max_deliveries: int = 1,
        create_group: bool = True,
        start_id: str = "0",
        close_timeout: float = 5.0,
    ) -> None:
        self._options: dict[str, Any] = {
            "url": url,
            "decode": decode,
            "block_ms": block_ms,
            "claim_idle_ms": claim_idle_ms,
            "claim_interval_ms": claim_interval_ms,
            "dead_letter": dead_letter,
            "max_deliveries": max_deliveries,
            "create_group": create_group,
            "start_id": start_id,
            "close_timeout": close_timeout,
        }
        self.stream: Final = _check_name("stream", stream)
        self.group: Final = _check_name("group", group)
        self._named = consumer is not None
        self.consumer: Final = (
            _default_consumer() if consumer is None else _check_name("consumer", consumer)
        )
        self.url: Final = _client.check_url(url, _CALL)
        self._decode: Callable[[Fields], Any] = (
            decode_fields if decode is None else check_callable("decode", decode, _CALL)
        )
        self.block_ms: Final = check_positive_int("block_ms", block_ms, _CALL)
        self.claim_idle_ms: Final = _check_ms("claim_idle_ms", claim_idle_ms)
        self.claim_interval_ms: Final = _check_ms("claim_interval_ms", claim_interval_ms)
        self.dead_letter: Final = self._check_dead_letter(dead_letter)
        self.max_deliveries: Final = check_positive_int("max_deliveries", max_deliveries, _CALL)
        if not isinstance(create_group, bool):
            raise TypeError(invalid("create_group", "True or False", create_group, _CALL))
        self.create_group: Final = create_group
        if not isinstance(start_id, str) or not _START_ID.fullmatch(start_id):
            raise ValueError(
                invalid(
                    "start_id", "'0', '$' or an entry id such as '1700000000000-0'", start_id, _CALL
                )
            )
        self.start_id: Final = start_id
        self.close_timeout: Final = _client.check_seconds("close_timeout", close_timeout, _CALL)

        self._client: Any = None
        #: Id -> attempt of every message delivered and not acked or nacked yet.
        self._in_hand: dict[str, int] = {}
        #: Where the scan of this consumer's own pending list is (None: not scanning).
        self._pending_from: str | None = None
        self._claim_cursor = "0-0"
        self._claim_at = 0.0
        self._counts = dict.fromkeys(
            (
                "delivered",
                "redelivered",
                "claimed",
                "acked",
                "nacked",
                "left_pending",
                "dead_lettered",
                "decode_failures",
                "deleted",
            ),
            0,
        )

    def _check_dead_letter(self, dead_letter: object) -> str | None:
        if dead_letter is None:
            return None
        if not isinstance(dead_letter, str) or not dead_letter:
            raise TypeError(
                invalid(
                    "dead_letter", "a stream name (a non-empty string) or None", dead_letter, _CALL
                )
            )
        name = dead_letter.replace("{stream}", self.stream)
        if name == self.stream:
            raise ValueError(
                invalid(
                    "dead_letter", "a stream other than the source's stream", dead_letter, _CALL
                )
            )
        return name

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles the configuration only (a copy connects on its own ``open``; a
        generated consumer name is generated anew)."""
        consumer = self.consumer if self._named else None
        return (_rebuild, (type(self), self.stream, self.group, consumer, self._options))

    def __repr__(self) -> str:
        return (
            f"RedisStreamSource(stream={self.stream!r}, group={self.group!r}, "
            f"consumer={self.consumer!r})"
        )

    @property
    def client_name(self) -> str:
        """The name of this source's connections in ``CLIENT LIST``:
        ``flowstage:<stream>:<group>:<consumer>``."""
        return _client.client_name(self.stream, self.group, self.consumer)

    @property
    def name(self) -> str:
        """The stream's name."""
        return self.stream

    def statistics(self) -> RedisStreamStatistics:
        """A snapshot of the counters (no I/O)."""
        return RedisStreamStatistics(
            self.stream, self.group, self.consumer, **self._counts, in_hand=len(self._in_hand)
        )

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create the group if asked (``MKSTREAM``; an existing group is
        kept), and plan the first reads: this consumer's own pending entries, then
        entries to take over, then new entries.

        Raises:
            RuntimeError: not on asyncio's event loop (trio), or already open.
            LookupError: ``create_group=False`` and the group does not exist.
        """
        if self._client is not None:
            raise RuntimeError(f"{_CALL}.open: the source is already open")
        client = _client.connect(
            self.url,
            f"{_CALL}.open",
            socket_timeout=self.block_ms / 1000 + SOCKET_TIMEOUT_MARGIN,
            name=self.client_name,
        )
        try:
            await self._prepare_group(client)
        except BaseException:
            await _client.close(client, self.close_timeout)
            raise
        self._client = client
        self._in_hand.clear()
        self._pending_from = "0"
        self._claim_cursor = "0-0"
        self._claim_at = anyio.current_time()

    async def _prepare_group(self, client: Any) -> None:
        from redis.exceptions import ResponseError

        if self.create_group:
            try:
                await client.xgroup_create(self.stream, self.group, id=self.start_id, mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            return
        try:
            groups = await client.xinfo_groups(self.stream)
        except ResponseError:  # no such stream
            groups = []
        if not any(g["name"] == self.group.encode() for g in groups):
            raise LookupError(
                f"{_CALL}.open: the group {self.group!r} does not exist on the stream "
                f"{self.stream!r} (create it, or pass create_group=True)"
            )

    async def aclose(self) -> None:
        """Disconnect (shielded from cancellation, at most ``close_timeout``).

        Unacknowledged messages stay pending with Redis: a later ``open`` with the same
        consumer name, or another consumer after ``claim_idle_ms``, delivers them again.
        """
        client, self._client = self._client, None
        self._in_hand.clear()
        if client is None:
            return
        half = self.close_timeout / 2
        with anyio.CancelScope(shield=True):
            if not self._named:
                with anyio.move_on_after(half):
                    try:
                        await client.eval(
                            _DELETE_IF_IDLE, 1, self.stream, self.group, self.consumer
                        )
                    except Exception as exc:  # the server went away: nothing to tidy up
                        _logger.debug("%s: consumer not deleted: %s", self, exc)
            await _client.close(client, half)

    def _connected(self, call: str) -> Any:
        client = self._client
        if client is None:
            raise RuntimeError(f"{_CALL}.{call}: the source is not open (await open() first)")
        return client

    # -- receiving ---------------------------------------------------------------

    async def receive(self, max_count: int) -> Sequence[Message[T]]:
        """At most ``max_count`` messages, at least one (waits for them).

        In order: this consumer's own pending entries (after ``open``, or after a
        receive that was interrupted), entries to take over (when a scan is due),
        then new entries (``XREADGROUP ... >``).
        """
        client = self._connected("receive")
        if type(max_count) is not int or max_count < 1:
            check_positive_int("max_count", max_count, f"{_CALL}.receive")
        while True:
            got: list[Message[Any]]
            try:
                if self._pending_from is not None:
                    got = await self._own_pending(client, max_count)
                else:
                    got = await self._claim(client, max_count) if self._claim_due() else []
                    if len(got) < max_count:
                        got += await self._read_new(client, max_count - len(got), not got)
            except BaseException:
                # Whatever this read took is pending with this consumer: read the
                # consumer's pending list again next time.
                self._pending_from = "0"
                raise
            if got:
                in_hand = self._in_hand
                for message in got:
                    in_hand[message.id] = message.attempt
                self._counts["delivered"] += len(got)
                return got

    async def _own_pending(self, client: Any, count: int) -> list[Message[Any]]:
        start = self._pending_from
        assert start is not None
        async with client.pipeline(transaction=True) as pipe:
            pipe.xreadgroup(self.group, self.consumer, {self.stream: start}, count=count)
            pipe.xpending_range(
                self.stream,
                self.group,
                min="-" if start == "0" else f"({start}",
                max="+",
                count=count,
                consumername=self.consumer,
            )
            read, pending = await pipe.execute()
        entries = read[0][1] if read else []
        if not entries:
            self._pending_from = None  # the whole pending list was read
            return []
        attempts = {p["message_id"].decode(): p["times_delivered"] for p in pending}
        batch = sort_entries(
            entries, stream=self.stream, decode=self._decode, attempts=attempts, skip=self._in_hand
        )
        await self._settle(client, batch)
        self._pending_from = batch.last_id
        self._counts["redelivered"] += len(batch.messages)
        return batch.messages

    def _claim_due(self) -> bool:
        return anyio.current_time() >= self._claim_at

    async def _claim(self, client: Any, count: int) -> list[Message[Any]]:
        reply = await client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            self.claim_idle_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        cursor, entries = reply[0].decode(), reply[1]
        gone = [i.decode() for i in reply[2]] if len(reply) > 2 else []
        self._claim_cursor = cursor
        if cursor == "0-0":  # the scan went through the whole pending list
            self._claim_at = anyio.current_time() + self.claim_interval_ms / 1000
        if gone:  # Redis removed them from the pending list itself
            self._counts["deleted"] += len(gone)
            _logger.warning(
                "%s: %d pending entries were deleted from the stream before they were "
                "acknowledged: %s",
                self,
                len(gone),
                gone[:10],
            )
        if not entries:
            return []
        attempts: dict[str, int] = {}
        async with client.pipeline(transaction=False) as pipe:
            for raw_id, _ in entries:
                pipe.xpending_range(self.stream, self.group, raw_id, raw_id, 1, self.consumer)
            for found in await pipe.execute():
                for p in found:
                    attempts[p["message_id"].decode()] = p["times_delivered"]
        batch = sort_entries(
            entries, stream=self.stream, decode=self._decode, attempts=attempts, skip=self._in_hand
        )
        await self._settle(client, batch)
        self._counts["claimed"] += len(batch.messages)
        return batch.messages

    async def _read_new(self, client: Any, count: int, block: bool) -> list[Message[Any]]:
        read = await client.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=count,
            block=self.block_ms if block else None,
        )
        if not read:
            return []
        batch = sort_entries(read[0][1], stream=self.stream, decode=self._decode)
        await self._settle(client, batch)
        return batch.messages

    async def _settle(self, client: Any, batch: Sorted) -> None:
        """Acknowledge deleted entries and move undecodable ones aside."""
        if batch.deleted:
            await client.xack(self.stream, self.group, *batch.deleted)
            self._counts["deleted"] += len(batch.deleted)
            _logger.warning(
                "%s: %d pending entries were deleted from the stream before they were "
                "acknowledged: %s",
                self,
                len(batch.deleted),
                batch.deleted[:10],
            )
        if batch.failures:
            self._counts["decode_failures"] += len(batch.failures)
            await self._fail(client, batch.failures, "could not be decoded")

    # -- acknowledging -----------------------------------------------------------

    async def ack(self, ids: Sequence[str]) -> None:
        """Acknowledge ``ids`` (one ``XACK``): they are never delivered again."""
        if not ids:
            return
        client = self._connected("ack")
        in_hand = self._in_hand
        for mid in ids:
            in_hand.pop(mid, None)
        self._counts["acked"] += len(ids)
        # As bytes: redis-py's encoding of str arguments costs more than the read.
        await client.xack(self.stream, self.group, *[mid.encode() for mid in ids])

    async def nack(self, failures: Sequence[tuple[str, BaseException]]) -> None:
        """The flow failed on these messages: move those whose attempt reached
        ``max_deliveries`` to the dead-letter stream; the others stay pending and are
        delivered again after ``claim_idle_ms``."""
        if not failures:
            return
        client = self._connected("nack")
        self._counts["nacked"] += len(failures)
        final: list[tuple[str, BaseException, int]] = []
        retry: list[tuple[str, BaseException, int]] = []
        for mid, exc in failures:
            attempt = self._in_hand.pop(mid, self.max_deliveries)
            (final if attempt >= self.max_deliveries else retry).append((mid, exc, attempt))
        if retry:
            self._counts["left_pending"] += len(retry)
            for mid, exc, attempt in retry:
                _logger.info(
                    "%s: message %s failed on attempt %d of %d and stays pending: %s",
                    self,
                    mid,
                    attempt,
                    self.max_deliveries,
                    describe(exc),
                )
        if not final:
            return
        fields: list[Fields] = [{}] * len(final)
        if self.dead_letter is not None:  # the original fields, for the dead letters
            async with client.pipeline(transaction=False) as pipe:
                for mid, _, _ in final:
                    pipe.xrange(self.stream, mid, mid, count=1)
                fields = [found[0][1] if found else {} for found in await pipe.execute()]
        await self._fail(
            client,
            [(mid, f, exc, attempt) for (mid, exc, attempt), f in zip(final, fields, strict=True)],
            "failed in the flow",
        )

    async def _fail(
        self, client: Any, failures: Sequence[tuple[str, Fields, BaseException, int]], why: str
    ) -> None:
        """Move ``failures`` to the dead-letter stream (``XADD`` each and ``XACK``
        them in one ``MULTI``), or, without one, leave them pending; log them."""
        if self.dead_letter is None:
            self._counts["left_pending"] += len(failures)
            for mid, _, exc, attempt in failures:
                _logger.error(
                    "%s: entry %s %s (attempt %d) and stays pending (no dead-letter stream): %s",
                    self,
                    mid,
                    why,
                    attempt,
                    describe(exc),
                )
            return
        async with client.pipeline(transaction=True) as pipe:
            for mid, fields, exc, attempt in failures:
                pipe.xadd(
                    self.dead_letter,
                    dead_letter_entry(fields, exc, stream=self.stream, mid=mid, attempt=attempt),
                )
            pipe.xack(self.stream, self.group, *(mid for mid, _, _, _ in failures))
            await pipe.execute()
        self._counts["dead_lettered"] += len(failures)
        for mid, _, exc, attempt in failures:
            _logger.warning(
                "%s: entry %s %s (attempt %d), moved to %s: %s",
                self,
                mid,
                why,
                attempt,
                self.dead_letter,
                describe(exc),
            )


def _rebuild(
    cls: type[RedisStreamSource[Any]],
    stream: str,
    group: str,
    consumer: str | None,
    options: dict[str, Any],
) -> RedisStreamSource[Any]:
    return cls(stream, group, consumer, **options)
