"""Dispatchers: pure state machines that decide which subscription gets which events.

* :class:`DemandDispatcher` (the default) sends each batch to the largest demand.
* :class:`BroadcastDispatcher` sends every event to every subscription.
* :class:`PartitionDispatcher` routes each event to one partition by hash.
"""

from .._public import fixup_module_metadata as _fixup_module_metadata
from ._base import Dispatcher as Dispatcher
from ._base import SubscriptionRejected as SubscriptionRejected
from ._broadcast import BroadcastDispatcher as BroadcastDispatcher
from ._demand import DemandDispatcher as DemandDispatcher
from ._partition import PartitionDispatcher as PartitionDispatcher

__all__ = (
    "BroadcastDispatcher",
    "DemandDispatcher",
    "Dispatcher",
    "PartitionDispatcher",
    "SubscriptionRejected",
)

_fixup_module_metadata(__name__, __all__)
