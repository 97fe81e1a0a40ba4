"""Dispatchers: pure state machines that decide which subscription gets which events.

* :class:`DemandDispatcher` (the default) sends each batch to the largest demand.
* :class:`BroadcastDispatcher` sends every event to every subscription.
* :class:`PartitionDispatcher` routes each event to one partition by hash.
"""

from ._base import Dispatcher, SubscriptionRejected
from ._broadcast import BroadcastDispatcher
from ._demand import DemandDispatcher
from ._partition import PartitionDispatcher

__all__ = [
    "BroadcastDispatcher",
    "DemandDispatcher",
    "Dispatcher",
    "PartitionDispatcher",
    "SubscriptionRejected",
]
