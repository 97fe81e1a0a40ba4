"""A dispatcher that routes each event to one partition, each with its own consumer."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from .._hash import KeyHash
from ._base import Dispatcher, SubscriptionRejected

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["PartitionDispatcher"]

T = TypeVar("T")


class _Partition:
    """One partition: its subscription (if any), demand, and queued events.

    Queued events are a deque of chunks (lists) plus an offset into the first chunk,
    so queueing a batch is one append and taking ``n`` events is a few slices.
    ``pushed``/``popped`` count events ever queued/unqueued; an info marker
    ``(p, info_id)`` is passed once ``popped >= p``.
    """

    __slots__ = (
        "chunks",
        "demand",
        "markers",
        "name",
        "offset",
        "owner",
        "popped",
        "pushed",
        "queued",
        "sub",
    )

    def __init__(self, name: Hashable) -> None:
        self.name = name
        self.sub: Hashable | None = None
        self.owner: Hashable | None = None
        self.demand = 0  # outstanding demand; always 0 while events are queued
        self.chunks: deque[list[Any]] = deque()
        self.offset = 0
        self.queued = 0
        self.pushed = 0
        self.popped = 0
        self.markers: deque[tuple[int, int]] = deque()

    def push(self, events: list[Any]) -> None:
        self.chunks.append(events)
        self.queued += len(events)
        self.pushed += len(events)

    def take(self, k: int) -> list[Any]:
        """Remove and return the ``k`` oldest queued events (``0 < k <= queued``)."""
        chunks = self.chunks
        first = chunks[0]
        offset = self.offset
        avail = len(first) - offset
        if k < avail:
            out = first[offset : offset + k]
            self.offset = offset + k
        else:
            out = first[offset:] if offset else first
            chunks.popleft()
            self.offset = 0
            rest = k - avail
            while rest:
                chunk = chunks[0]
                if len(chunk) <= rest:
                    out.extend(chunk)
                    chunks.popleft()
                    rest -= len(chunk)
                else:
                    out.extend(islice(chunk, rest))
                    self.offset = rest
                    rest = 0
        self.queued -= k
        self.popped += k
        return out

    def clear(self) -> int:
        """Drop every queued event; return how many there were."""
        n = self.queued
        self.chunks.clear()
        self.offset = 0
        self.queued = 0
        self.popped += n
        return n


class PartitionDispatcher(Dispatcher[T]):
    """Route each event to exactly one partition (GenStage's ``PartitionDispatcher``).

    Args:
        partitions: an integer ``N`` (partitions named ``0 .. N-1``) or an iterable of
            distinct, hashable partition names.
        hash: ``event -> (event, partition)`` or ``None``. The returned event replaces
            the original (it may be rewritten); ``None`` discards the event without
            consuming demand. Defaults to
            ``(event, flowstage._hash.partition_of(event, N))``, which is stable across
            processes and runs. Required when the partition names are not ``0 .. N-1``.

    Each partition accepts at most one subscription, chosen with the subscription
    option ``partition``.

    Guarantees:

    * An event goes to at most one partition: the one its hash names. With the
      default hash, equal events always land in the same partition.
    * The demand sent upstream is the sum of the partitions' asks (minus events
      already requested for cancelled subscriptions, as in the demand dispatcher).
      :meth:`dispatch` hashes at most ``waiting`` (total outstanding demand) events
      and returns the rest, unhashed, as leftovers.
    * Each partition receives up to its own demand; **its excess is queued inside the
      dispatcher**, in order, also for partitions that have no subscription yet
      (they keep their events until one subscribes and asks). A later ask is served
      from the queue first. This assumes keys spread evenly: a hot partition's queue
      grows, because the other partitions' demand keeps pulling events.
    * Cancelling a partition's subscription drops its queued events and returns their
      count as new demand, so the producer replaces them.
    * :meth:`info` releases the message once every partition that had queued events
      at that moment has delivered (or dropped) them; infos are released in FIFO order.
    * If the hash raises or returns something invalid, :meth:`dispatch` raises and the
      dispatcher state is unchanged.
    """

    subscription_options: ClassVar[frozenset[str]] = frozenset({"partition"})

    __slots__ = (
        "_by_sub",
        "_hash",
        "_info_seq",
        "_infos",
        "_key_hash",
        "_names",
        "_parts",
        "_pending",
        "_queued",
        "_waiting",
    )

    def __init__(
        self,
        partitions: int | Iterable[Hashable],
        hash: Callable[[T], tuple[T, Hashable] | None] | None = None,
    ) -> None:
        super().__init__()
        if partitions is None:
            raise TypeError(
                "partitions is required: pass the number of partitions (an integer >= 1) "
                "or an iterable of partition names"
            )
        if hash is not None and not callable(hash):
            raise TypeError(
                f"hash must be a callable returning (event, partition) or None, got: {hash!r}"
            )
        names: list[Hashable]
        if isinstance(partitions, bool):
            raise TypeError(
                "partitions must be an integer >= 1 or an iterable of partition names, "
                f"got: {partitions!r}"
            )
        if isinstance(partitions, int):
            if partitions < 1:
                raise ValueError(f"partitions must be an integer >= 1, got: {partitions!r}")
            names = list(range(partitions))
        elif isinstance(partitions, (str, bytes)) or not isinstance(partitions, Iterable):
            raise TypeError(
                "partitions must be an integer >= 1 or an iterable of partition names, "
                f"got: {partitions!r}"
            )
        else:
            names = list(partitions)
            if not names:
                raise ValueError("partitions must name at least one partition, got: []")
            try:
                distinct = len(set(names))
            except TypeError:
                raise TypeError(f"partition names must be hashable, got: {names!r}") from None
            if distinct != len(names):
                raise ValueError(f"partition names must be distinct, got: {names!r}")
            if hash is None:
                if not all(type(name) is int for name in names):
                    raise ValueError(
                        "when partitions contains partitions that are not integers, "
                        "you have to pass the hash option as well"
                    )
                if set(names) != set(range(len(names))):
                    raise ValueError(
                        f"without the hash option, partitions must be 0 .. {len(names) - 1} "
                        f"(the default hash computes those), got: {names!r}"
                    )
        self._names = names
        self._parts: dict[Hashable, _Partition] = {name: _Partition(name) for name in names}
        if hash is None:
            hash = cast("Callable[[T], tuple[T, Hashable] | None]", KeyHash(len(names)))
        if isinstance(hash, KeyHash):
            if hash.n != len(names) or set(names) != set(range(len(names))):
                raise ValueError(
                    f"a KeyHash over {hash.n} partitions needs partitions 0 .. {hash.n - 1}, "
                    f"got: {names!r}"
                )
            self._key_hash: KeyHash | None = hash
        else:
            self._key_hash = None
        self._hash = hash
        self._by_sub: dict[Hashable, _Partition] = {}
        self._waiting = 0
        self._pending = 0
        self._queued = 0
        self._info_seq = 0
        self._infos: dict[int, list[Any]] = {}  # info id -> [msg, partitions to pass]

    def __repr__(self) -> str:
        return (
            f"<PartitionDispatcher partitions={self._names!r} waiting={self._waiting} "
            f"pending={self._pending} queued={self._queued}>"
        )

    @property
    def partitions(self) -> list[Hashable]:
        """The partition names (a copy)."""
        return list(self._names)

    @property
    def waiting(self) -> int:
        """Events asked upstream and not yet received (the total outstanding demand)."""
        return self._waiting

    @property
    def pending(self) -> int:
        """Events requested upstream for subscriptions that have since been cancelled."""
        return self._pending

    def queued(self) -> int:
        """How many events the partitions' queues hold in total."""
        return self._queued

    def queued_in(self, partition: Hashable) -> int:
        """How many events partition ``partition`` has queued."""
        return self._parts[partition].queued

    def demand_of(self, partition: Hashable) -> int:
        """The outstanding demand of partition ``partition``."""
        return self._parts[partition].demand

    def _partition_option(self, opts: Mapping[str, object]) -> _Partition:
        partition = opts.get("partition")
        if partition is None:
            raise ValueError(
                "the partition option is required when subscribing to a producer "
                "with partition dispatcher"
            )
        part = None
        if not isinstance(partition, bool) or any(type(n) is bool for n in self._names):
            try:
                part = self._parts.get(partition)
            except TypeError:  # unhashable
                part = None
        if part is None:
            raise ValueError(f"partition must be one of {self._names!r}, got: {partition!r}")
        return part

    def validate_subscribe(self, opts: Mapping[str, object]) -> None:
        """Check the ``partition`` option.

        Raises:
            ValueError: ``partition`` is missing or not one of the partition names.
        """
        self._partition_option(opts)

    def subscribe(self, sub: Hashable, owner: Hashable, opts: Mapping[str, object]) -> int:
        """Attach ``sub`` to the partition named by ``opts["partition"]``. Returns 0.

        Events already queued for that partition wait for the subscription's first ask.

        Raises:
            ValueError: a missing or unknown ``partition`` option.
            SubscriptionRejected: the partition already has a subscription
                (reason ``"partition_taken"``).
        """
        part = self._partition_option(opts)
        if part.sub is not None:
            raise SubscriptionRejected(
                "partition_taken",
                f"the partition {part.name!r} is already taken by {part.owner!r}",
            )
        if sub in self._by_sub:
            raise ValueError(f"subscription {sub!r} is already registered")
        part.sub = sub
        part.owner = owner
        self._by_sub[sub] = part
        return 0

    def cancel(self, sub: Hashable) -> int:
        """Detach ``sub`` from its partition.

        Outstanding demand becomes pending (returns 0). If the partition had queued
        events instead, they are dropped and their count is returned as new demand;
        infos waiting on them are released. Cancelling an unknown subscription does
        nothing.
        """
        part = self._by_sub.pop(sub, None)
        if part is None:
            return 0
        part.sub = None
        part.owner = None
        if part.queued:
            dropped = part.clear()
            self._queued -= dropped
            self._pass_markers(part)
            self._waiting += dropped
            return dropped
        self._pending += part.demand
        part.demand = 0
        return 0

    def ask(self, n: int, sub: Hashable) -> int:
        """Add ``n`` to ``sub``'s partition demand, serving its queue first.

        Returns what must now be asked upstream: ``n`` minus what is already pending.

        Raises:
            KeyError: ``sub`` is not subscribed.
        """
        part = self._by_sub[sub]
        if part.queued:
            k = n if n < part.queued else part.queued
            self.deliveries.append((sub, part.take(k)))
            self._queued -= k
            if part.markers:
                self._pass_markers(part)
            if not part.queued:
                part.demand = n - k
        else:
            part.demand += n
        pending = self._pending
        if pending:
            already = n if n < pending else pending
            self._pending = pending - already
            n -= already
        self._waiting += n
        return n

    def _pass_markers(self, part: _Partition) -> None:
        markers = part.markers
        popped = part.popped
        infos = self._infos
        released = False
        while markers and markers[0][0] <= popped:
            entry = infos[markers.popleft()[1]]
            entry[1] -= 1
            if entry[1] == 0:
                released = True
        if released:
            # Release, in FIFO order, every leading info no partition waits on.
            ready = self.ready_infos
            for info_id in list(infos):
                entry = infos[info_id]
                if entry[1]:
                    break
                ready.append(entry[0])
                del infos[info_id]

    def dispatch(self, events: list[T]) -> list[T]:
        """Route up to ``waiting`` events to their partitions; return the rest.

        Raises:
            RuntimeError: the hash returned an unknown partition or a value that is not
                ``(event, partition)`` or ``None``. The state is then unchanged.
            TypeError: the default hash cannot hash an event (see
                :func:`flowstage._hash.stable_hash`).
        """
        waiting = self._waiting
        if waiting == 0 or not events:
            return events
        n = len(events)
        limit = n if n <= waiting else waiting
        buckets: dict[Hashable, list[Any]]
        key_hash = self._key_hash
        if key_hash is not None:
            # Names are exactly 0 .. N-1 here, and every event is accepted: hash and
            # bucket the whole batch in one tight loop.
            taken = events if limit == n else events[:limit]
            buckets = {i: lst for i, lst in enumerate(key_hash.buckets(taken)) if lst}
            accepted = limit
            stop = limit
        else:
            buckets, accepted, stop = self._hash_events(events, limit)
        self._waiting = waiting - accepted
        deliveries = self.deliveries
        parts = self._parts
        for name, batch in buckets.items():
            part = parts[name]
            if part.queued:
                part.push(batch)
                self._queued += len(batch)
                continue
            demand = part.demand
            size = len(batch)
            if size <= demand:
                deliveries.append((part.sub, batch))
                part.demand = demand - size
            else:
                if demand:
                    deliveries.append((part.sub, batch[:demand]))
                    batch = batch[demand:]
                    part.demand = 0
                part.push(batch)
                self._queued += len(batch)
        return events[stop:] if stop < n else []

    def _hash_events(
        self, events: list[T], limit: int
    ) -> tuple[dict[Hashable, list[Any]], int, int]:
        hash_fn = self._hash
        assert hash_fn is not None
        parts = self._parts
        buckets: dict[Hashable, list[Any]] = {}
        accepted = 0
        index = 0
        for index, event in enumerate(events):
            result = hash_fn(event)
            if result is None:
                continue
            if type(result) is not tuple or len(result) != 2:
                raise RuntimeError(
                    f"the hash function should return (event, partition) or None, got: {result!r}"
                )
            new_event, partition = result
            try:
                bucket = buckets.get(partition)
                known = bucket is not None or partition in parts
            except TypeError:  # unhashable
                known = False
            if not known:
                raise RuntimeError(
                    f"unknown partition {partition!r} computed for event {event!r}. "
                    f"The known partitions are {self._names!r}. See the partitions "
                    "option to set your own."
                )
            if bucket is None:
                bucket = buckets[partition] = []
            bucket.append(new_event)
            accepted += 1
            if accepted == limit:
                return buckets, accepted, index + 1
        return buckets, accepted, index + 1

    def info(self, msg: object) -> None:
        """Release ``msg`` once every partition with queued events has delivered them."""
        waiting_on = [part for part in self._parts.values() if part.queued]
        if not waiting_on:
            self.ready_infos.append(msg)
            return
        info_id = self._info_seq
        self._info_seq = info_id + 1
        self._infos[info_id] = [msg, len(waiting_on)]
        for part in waiting_on:
            part.markers.append((part.pushed, info_id))
