"""A worker process: a :class:`~flowstage.executors._hosting.PartitionHost` over sockets.

The parent starts each worker with one socket to itself. Set-up is blocking: the
worker reads one frame (the plan, the nodes it hosts, every edge that touches them,
the backend to run on), then one socket per peer worker, passed as file descriptors
over the parent socket. Then it runs its own event loop (the parent's backend) with
one reader and one writer task per channel (parent and peers) and the host's
processing task. A busy host writes what it queued and reads what has arrived
itself, between messages (its pump, at most every ``SEND_EVERY``), and yields to the
event loop only every ``YIELD_EVERY`` or when it runs out of messages: a turn of the
loop for each reader and writer task cost a worker about as much as its frames.

A failure of a user callback is sent to the parent (the exception pickled, with the
note naming the layer and partition, and the formatted traceback) and the worker
stops. The worker also stops when the parent says so or when the parent's socket
closes; a peer that goes away is ignored (the parent decides what a crash means).
"""

from __future__ import annotations

import contextlib
import socket
import sys
from typing import TYPE_CHECKING, Any

import anyio

from .._hosting import PartitionHost, error_payload
from ._allocator import keep_freed_memory
from ._channel import Channel, ChannelClosed, read_frame_blocking
from ._text import piece_cache

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["worker_main"]


async def _flush(channel: Channel) -> None:
    """Write what ``channel`` has queued (used before the worker exits)."""
    with anyio.move_on_after(5):
        await channel.drain()


async def _serve(worker: PartitionHost, parent: Channel, peers: dict[int, Channel]) -> None:
    # One handler per sender, shared by its reader task and the host's pump.
    readers = [(parent, worker.receiver("parent"))]
    readers += [(channel, worker.receiver(index)) for index, channel in peers.items()]
    channels = [parent, *peers.values()]

    def pump() -> None:
        # Between messages, a busy host writes what it queued and reads what has
        # arrived itself, without a turn of the event loop for each reader and
        # writer task (those still run whenever the host waits or yields).
        for channel in channels:
            channel.flush()
        for channel, handle in readers:
            channel.poll(handle)

    for channel in channels:
        channel.held = True
    worker.pump = pump

    async def peer_reader(channel: Channel, handle: Callable[[Any], None]) -> None:
        await channel.read_loop(handle)  # a peer that goes away is ignored

    async def peer_writer(channel: Channel) -> None:
        with contextlib.suppress(ChannelClosed):
            await channel.write_loop()

    async with anyio.create_task_group() as tg:
        for channel, handle in readers[1:]:
            tg.start_soon(peer_reader, channel, handle)
        for channel in channels:
            tg.start_soon(peer_writer, channel)

        async def parent_reader() -> None:
            await parent.read_loop(readers[0][1])
            worker.stopping = True  # the parent is gone: stop
            tg.cancel_scope.cancel()

        tg.start_soon(parent_reader)
        try:
            await worker.process()
        except Exception as exc:  # a user callback failed: tell the parent, then stop
            parent.send(("error", *error_payload(exc)))
        await _flush(parent)
        tg.cancel_scope.cancel()


def worker_main(index: int, sock: socket.socket) -> None:
    """The entry point of a worker process (started by the parent)."""
    keep_freed_memory()
    sock.setblocking(True)
    (setup,) = read_frame_blocking(sock)
    peers: dict[int, Channel] = {}
    merge = not setup["track"]  # counted messages must arrive one by one
    pieces = piece_cache()  # one for every channel of this worker
    for _ in range(setup["peers"]):
        data, fds, _flags, _addr = socket.recv_fds(sock, 64, 1)
        peer = int(data.decode("ascii"))
        peers[peer] = Channel(
            socket.socket(fileno=fds[0]),
            f"worker {index} -> worker {peer}",
            merge=merge,
            pieces=pieces,
        )
    parent = Channel(sock, f"worker {index} -> parent", merge=merge, pieces=pieces)
    worker = PartitionHost(setup, parent, peers)
    backend: str = setup["backend"]
    options: dict[str, Any] = {}
    if backend == "asyncio+uvloop":
        backend, options = "asyncio", {"use_uvloop": True}
    try:
        anyio.run(_serve, worker, parent, peers, backend=backend, backend_options=options)
    finally:
        for channel in (parent, *peers.values()):
            channel.close()
    sys.stdout.flush()
    sys.stderr.flush()
