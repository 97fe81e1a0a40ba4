"""flowstage: demand-driven stages and parallel flows for async Python.

A port of Elixir's GenStage (producers, producer-consumers and consumers
exchanging events under back-pressure) and Flow onto anyio, so it runs on asyncio,
uvloop and trio.

Layers, each importing only those before it: the stage engine (this package's
private modules, :mod:`flowstage.dispatchers`, :mod:`flowstage.lowlevel`),
:mod:`flowstage.plan`, :mod:`flowstage.program`, :mod:`flowstage.executors`,
:mod:`flowstage.flow`.
"""

from __future__ import annotations

import logging

from ._concurrent import ConcurrentConsumer as ConcurrentConsumer
from ._errors import StageExited as StageExited
from ._errors import is_normal_reason as is_normal_reason
from ._fanout import FlowSubscription as FlowSubscription
from ._flowstate import FlowState as FlowState
from ._flowstate import ShutdownResult as ShutdownResult
from ._hash import KeyHash as KeyHash
from ._hash import partition_of as partition_of
from ._hash import stable_hash as stable_hash
from ._kinds import Consumer as Consumer
from ._kinds import Producer as Producer
from ._kinds import ProducerConsumer as ProducerConsumer
from ._public import fixup_module_metadata as _fixup_module_metadata
from ._push import PushClosed as PushClosed
from ._push import PushHandle as PushHandle
from ._push import PushRejected as PushRejected
from ._push import PushStatistics as PushStatistics
from ._push_buffer import PushResult as PushResult
from ._scope import StageGroup as StageGroup
from ._sources import AsyncIterableProducer as AsyncIterableProducer
from ._sources import IterableProducer as IterableProducer
from ._sources import from_async_iterable as from_async_iterable
from ._sources import from_iterable as from_iterable
from ._stage import NOREPLY as NOREPLY
from ._stage import Reply as Reply
from ._stage import Stage as Stage
from ._stats import StageStatistics as StageStatistics
from ._stream import EventSink as EventSink
from ._stream import EventStream as EventStream
from ._stream import stream as stream
from ._subscription import Subscription as Subscription
from .dispatchers import BroadcastDispatcher as BroadcastDispatcher
from .dispatchers import DemandDispatcher as DemandDispatcher
from .dispatchers import Dispatcher as Dispatcher
from .dispatchers import PartitionDispatcher as PartitionDispatcher
from .dispatchers import SubscriptionRejected as SubscriptionRejected
from .executors import AsyncForIterator as AsyncForIterator
from .executors import Executor as Executor
from .executors import FlowIterator as FlowIterator
from .executors import LocalExecutor as LocalExecutor
from .executors import RunningFlow as RunningFlow
from .flow import Flow as Flow
from .flow import Window as Window
from .statistics import FlowStatistics as FlowStatistics
from .statistics import LayerStatistics as LayerStatistics
from .statistics import watch_statistics as watch_statistics

logging.getLogger("flowstage").addHandler(logging.NullHandler())

__version__ = "0.1.0.dev0"

__all__ = (
    "NOREPLY",
    "AsyncForIterator",
    "AsyncIterableProducer",
    "BroadcastDispatcher",
    "ConcurrentConsumer",
    "Consumer",
    "DemandDispatcher",
    "Dispatcher",
    "EventSink",
    "EventStream",
    "Executor",
    "Flow",
    "FlowIterator",
    "FlowState",
    "FlowStatistics",
    "FlowSubscription",
    "IterableProducer",
    "KeyHash",
    "LayerStatistics",
    "LocalExecutor",
    "PartitionDispatcher",
    "Producer",
    "ProducerConsumer",
    "PushClosed",
    "PushHandle",
    "PushRejected",
    "PushResult",
    "PushStatistics",
    "Reply",
    "RunningFlow",
    "ShutdownResult",
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
    "watch_statistics",
)


_fixup_module_metadata(__name__, __all__, claim=True)
