"""Per-stage counters, read as immutable snapshots."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StageStatistics"]


@dataclass(frozen=True, slots=True)
class StageStatistics:
    """A snapshot of one stage's counters (see ``Stage.statistics()``).

    Counters only ever grow, except the gauges ``demand_outstanding``, ``buffered``,
    ``mailbox``, ``producers`` and ``consumers``. Taking a snapshot is cheap (no
    ``await``, no locking): it is safe to poll it from a dashboard.
    """

    #: The stage's name.
    name: str
    #: ``"producer"``, ``"producer_consumer"`` or ``"consumer"``.
    kind: str
    #: Whether the stage's task is running.
    running: bool
    #: Events received from upstream subscriptions.
    events_in: int
    #: Events sent to downstream subscriptions.
    events_out: int
    #: Event batches received from upstream.
    batches_in: int
    #: Event batches sent downstream.
    batches_out: int
    #: Consumer side: events asked for upstream and not yet received.
    #: Producer side: demand received from downstream that is not yet met.
    demand_outstanding: int
    #: Events held in the producer buffer (plus events a dispatcher queues).
    buffered: int
    #: The buffer's capacity (0 for consumers, which have none).
    buffer_size: int
    #: Events dropped because the buffer was full.
    discarded: int
    #: Messages waiting in the stage's mailbox.
    mailbox: int
    #: Subscriptions to upstream producers.
    producers: int
    #: Subscriptions from downstream consumers.
    consumers: int
    #: Seconds spent handling messages, user callbacks included.
    busy_seconds: float
