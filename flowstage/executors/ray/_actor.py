"""The actor that hosts partitions on a Ray cluster.

One :class:`HostActor` per host index runs a :class:`~flowstage.executors._hosting.
PartitionHost` on the actor's asyncio loop, the same host a worker process runs:

* ``setup(setup, peers, window)`` builds the host (the plan, its nodes and edges) with
  a :class:`~._batches.BatchSender` to each peer actor (``peer.deliver`` calls);
* ``run()`` starts the host's processing task and the senders (separate from set-up,
  so that no actor sends to a peer that is not set up yet);
* ``deliver(source, seq, batch)`` hands a batch from the parent or a peer to the host,
  in the order the sender numbered them;
* ``poll()`` is the parent's long poll: it returns what the host queued for the
  parent, waiting until there is something (``None`` once the host has stopped);
* a user callback's failure goes to the parent as an ``("error", ...)`` message and
  the host stops; the parent then kills every actor of the run.
"""

from __future__ import annotations

import contextlib
import os
from functools import partial
from typing import Any

import anyio

from .._hosting import PartitionHost, error_payload
from ._batches import BatchSender, Reorder
from ._wait import wait_ref

__all__ = ["HostActor"]


class _ParentLink:
    """What the host sends the parent: queued for the parent's next ``poll``."""

    __slots__ = ("actor",)

    def __init__(self, actor: HostActor) -> None:
        self.actor = actor

    def send(self, message: Any) -> None:
        self.actor.to_parent.append(message)
        self.actor.wake_poll()


async def _run_link(sender: BatchSender) -> None:
    import ray.exceptions

    # A peer that goes away is not this actor's concern: the parent sees the crash.
    with contextlib.suppress(ray.exceptions.RayError):
        await sender.run()


class HostActor:
    """Hosts partitions of a run (see the module docstring). Made a Ray actor class
    with ``ray.remote(HostActor)`` by the parent."""

    def __init__(self) -> None:
        self.host: PartitionHost | None = None
        self.to_parent: list[Any] = []
        self.finished = False
        self._poll_wake: anyio.Event | None = None
        self._receivers: dict[Any, Any] = {}
        self._orders: dict[Any, Reorder] = {}
        self._links: list[BatchSender] = []
        self._tasks: list[Any] = []

    def wake_poll(self) -> None:
        wake = self._poll_wake
        if wake is not None:
            self._poll_wake = None
            wake.set()

    async def setup(self, setup: dict[str, Any], peers: dict[int, Any], window: int) -> int:
        """Build the host; returns this actor's process id."""
        index: int = setup["index"]
        links = {
            peer: BatchSender(partial(handle.deliver.remote, index), window, wait_ref)
            for peer, handle in peers.items()
        }
        host = self.host = PartitionHost(setup, _ParentLink(self), links)
        self._links = list(links.values())
        self._receivers = {"parent": host.receiver("parent")}
        for peer in peers:
            self._receivers[peer] = host.receiver(peer)
        self._orders = {source: Reorder() for source in self._receivers}
        return os.getpid()

    async def run(self) -> None:
        """Start processing (after every actor of the run is set up)."""
        import asyncio

        for link in self._links:
            self._tasks.append(asyncio.ensure_future(_run_link(link)))
        self._tasks.append(asyncio.ensure_future(self._process()))

    async def _process(self) -> None:
        assert self.host is not None
        try:
            await self.host.process()
        except Exception as exc:  # a user callback failed: tell the parent, then stop
            self.to_parent.append(("error", *error_payload(exc)))
        finally:
            self.finished = True
            self.wake_poll()

    async def deliver(self, source: str | int, seq: int, batch: list[Any]) -> None:
        """A numbered batch of messages from the parent (``"parent"``) or a peer."""
        receive = self._receivers[source]
        for ready in self._orders[source].accept(seq, batch):
            for message in ready:
                receive(message)

    async def poll(self) -> list[Any] | None:
        """What the host queued for the parent (waits for something); ``None`` once
        the host has stopped and everything was taken."""
        while not self.to_parent:
            if self.finished:
                return None
            self._poll_wake = wake = anyio.Event()
            await wake.wait()
        out, self.to_parent = self.to_parent, []
        return out

    async def ping(self) -> int:
        """This actor's process id (the parent uses a call to learn it is gone)."""
        return os.getpid()
