"""flowstage: demand-driven stages and parallel flows for async Python.

A port of Elixir's GenStage (producers, producer-consumers and consumers
exchanging events under back-pressure) and Flow onto anyio, so it runs on asyncio,
uvloop and trio.
"""

from __future__ import annotations

import logging

from ._concurrent import ConcurrentConsumer
from ._errors import StageExited, is_normal_reason
from ._hash import KeyHash, partition_of, stable_hash
from ._kinds import Consumer, Producer, ProducerConsumer
from ._scope import StageGroup
from ._sources import AsyncIterableProducer, IterableProducer, from_async_iterable, from_iterable
from ._stage import NOREPLY, Reply, Stage
from ._stats import StageStatistics
from ._stream import EventStream, stream
from ._subscription import Subscription
from .dispatchers import (
    BroadcastDispatcher,
    DemandDispatcher,
    Dispatcher,
    PartitionDispatcher,
    SubscriptionRejected,
)
from .flow import Flow, Window

logging.getLogger("flowstage").addHandler(logging.NullHandler())

__version__ = "0.1.0.dev0"

__all__ = [
    "NOREPLY",
    "AsyncIterableProducer",
    "BroadcastDispatcher",
    "ConcurrentConsumer",
    "Consumer",
    "DemandDispatcher",
    "Dispatcher",
    "EventStream",
    "Flow",
    "IterableProducer",
    "KeyHash",
    "PartitionDispatcher",
    "Producer",
    "ProducerConsumer",
    "Reply",
    "Stage",
    "StageExited",
    "StageGroup",
    "StageStatistics",
    "Subscription",
    "SubscriptionRejected",
    "Window",
    "from_async_iterable",
    "from_iterable",
    "is_normal_reason",
    "partition_of",
    "stable_hash",
    "stream",
]
