"""Running a flow's partitions away from the parent: the part shared by the process
and Ray executors.

* :class:`HostedGraph` (parent side): the local graph with every layer moved to
  hosts, proxies where a parent-side stage meets a hosted one, timers kept on the
  parent's clock; it talks to the hosts through a :class:`HostPool`.
* :class:`PartitionHost` (host side): the partitions one host runs and the routing of
  their messages, over :class:`Link` objects (a socket channel, an actor handle).
* :class:`~._relay.Relay`: bounded flow control on every edge between hosts.
"""

from __future__ import annotations

from ._errors import FlowNotPortable, RemoteError, WorkerCrashed, remote_error
from ._graph import HostedGraph, HostPool, RemoteTimer
from ._host import RELAY_WINDOW, Link, PartitionHost, error_payload
from ._quiescence import Quiescence, virtual_clock
from ._serialize import cloudpickle, serialize_plan

__all__ = [
    "RELAY_WINDOW",
    "FlowNotPortable",
    "HostPool",
    "HostedGraph",
    "Link",
    "PartitionHost",
    "Quiescence",
    "RemoteError",
    "RemoteTimer",
    "WorkerCrashed",
    "cloudpickle",
    "error_payload",
    "remote_error",
    "serialize_plan",
    "virtual_clock",
]
