"""A worker process: hosts partitions of a plan and moves their messages.

The parent starts each worker with one socket to itself. Set-up is blocking: the
worker reads one frame (the plan, the nodes it hosts, every edge that touches them,
the backend to run on), then one socket per peer worker, passed as file descriptors
over the parent socket. Then it runs its own event loop (the parent's backend) with:

* one reader and one writer task per channel (parent and peers);
* one processing task that handles received messages one at a time, in order, by
  calling the :class:`~flowstage.program.PartitionNode` they are for, and routes what
  the node's outbox holds: to a node of this worker (appended to the same queue, so
  order is kept per edge, and nothing is pickled), or to the channel of the process
  that hosts the other end of the edge.

Time comes from the parent: the worker reports each node's next deadline and the
parent sends ``("time", node, now)`` when it is due, so windows and timers follow the
parent's clock (a virtual clock in tests included).

A failure of a user callback is sent to the parent (the exception pickled, with the
note naming the layer and partition, and the formatted traceback) and the worker
stops. The worker also stops when the parent says so or when the parent's socket
closes; a peer that goes away is ignored (the parent decides what a crash means).
"""

from __future__ import annotations

import contextlib
import pickle
import socket
import sys
import traceback
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import anyio

from ...plan import Dispatch, Plan, require_version
from ...program import Labels, PartitionNode, adrive, drive
from .._failure import note_partition_failure
from ._channel import Channel, ChannelClosed, read_frame_blocking
from ._relay import Relay

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["worker_main"]

#: Where the other end of an edge lives: ``None`` for this worker, else a channel.
_Here: Final = None

#: An input edge from another process keeps up to this many times its layer's
#: ``max_demand`` events in flight (see :mod:`._relay`).
RELAY_WINDOW: Final = 4


def _loads_plan(data: bytes) -> Plan:
    plan: Plan = pickle.loads(data)  # cloudpickle's output loads with pickle
    return require_version(plan)


def _error_payload(exc: BaseException) -> tuple[bytes | None, str, str, str]:
    """``(pickled exception or None, type name, message, formatted traceback)``."""
    text = "".join(traceback.format_exception(exc))
    data: bytes | None
    try:
        pickled = pickle.dumps(exc, protocol=5)
        pickle.loads(pickled)  # an exception that cannot be rebuilt is sent by name
        data = pickled
    except Exception:
        data = None
    return data, f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc), text


class Worker:
    """The state of one worker process (see the module docstring)."""

    def __init__(self, setup: dict[str, Any], parent: Channel, peers: dict[int, Channel]) -> None:
        plan = _loads_plan(setup["plan"])
        self.index: int = setup["index"]
        self.parent = parent
        self.peers = peers
        self.peer_index = {id(channel): index for index, channel in peers.items()}
        self.nodes: dict[int, PartitionNode] = {}
        self.labels: dict[int, Labels] = {}
        # edge -> node at this end, and where the other end is.
        self.consumer_of: dict[int, PartitionNode] = {}
        self.producer_of: dict[int, PartitionNode] = {}
        self.to_consumer: dict[int, Channel | None] = {}
        self.to_producer: dict[int, Channel | None] = {}
        self.node_id: dict[int, int] = {}  # id(node) -> node id
        self.deadlines: dict[int, float | None] = {}
        #: The input edges from other processes, each with its relay.
        self.relays: dict[int, Relay] = {}
        self.inbox: deque[tuple[Any, ...]] = deque()
        self._wake: anyio.Event | None = None
        self.stopping = False
        # Quiescence reports (only under a virtual clock in the parent): messages
        # received from each sender ("parent" or a worker index), sent to each worker.
        self.track: bool = setup["track"]
        self.received: dict[str | int, int] = {}
        self.sent: dict[int, int] = {}
        self._reported = False
        for node_id, layer_index, partition, output in setup["nodes"]:
            layer = plan.layers[layer_index]
            # output: where the node's dispatch is, (consumer layer, input), or None
            # for the parent (a demand dispatch).
            if output is None:
                node = PartitionNode(layer, partition, Dispatch())
            else:
                consumer = plan.layers[output[0]]
                node = PartitionNode(
                    layer, partition, consumer.inputs[output[1]].dispatch, consumer
                )
            self.nodes[node_id] = node
            self.node_id[id(node)] = node_id
            self.deadlines[node_id] = None
        for edge, producer, consumer, options in setup["edges"]:
            # producer/consumer: ("node", node_id, worker) or ("parent",)
            if producer[0] == "node" and producer[2] == self.index:
                node = self.nodes[producer[1]]
                node.connect_output(edge, options)
                self.producer_of[edge] = node
                self.to_consumer[edge] = self._where(consumer)
            if consumer[0] == "node" and consumer[2] == self.index:
                node = self.nodes[consumer[1]]
                node.connect_input(edge, producer[1] if producer[0] == "node" else ("edge", edge))
                self.consumer_of[edge] = node
                self.to_producer[edge] = where = self._where(producer)
                if where is not _Here:
                    self.relays[edge] = Relay(RELAY_WINDOW * node.layer.max_demand)
        self.start_time: float | None = setup["now"]

    def _where(self, end: tuple[Any, ...]) -> Channel | None:
        if end[0] == "parent":
            return self.parent
        if end[2] == self.index:
            return _Here
        return self.peers[end[2]]

    # -- receiving ------------------------------------------------------------------------

    def receiver(self, source: str | int) -> Callable[[tuple[Any, ...]], None]:
        """The callback of the read loop of ``source``'s channel."""
        if not self.track:
            return self.deliver
        self.received[source] = 0

        def deliver(message: tuple[Any, ...]) -> None:
            self.received[source] += 1
            self.deliver(message)

        return deliver

    def deliver(self, message: tuple[Any, ...]) -> None:
        """Queue ``message`` for the processing task."""
        self.inbox.append(message)
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    async def process(self) -> None:
        """Handle received messages one at a time, in order, until told to stop."""
        for edge, each in self.relays.items():
            self._send_up(edge, each.start())
        for node_id, node in self.nodes.items():
            await self._run(node_id, node, node.start(self.start_time))
        inbox = self.inbox
        relays = self.relays
        while not self.stopping:
            if not inbox:
                if self.track and not self._reported:
                    self._reported = True
                    self.parent.send(("idle", dict(self.received), dict(self.sent)))
                self._wake = wake = anyio.Event()
                await wake.wait()
                continue
            message = inbox.popleft()
            self._reported = False
            kind = message[0]
            if kind == "events":
                edge = message[1]
                relay = relays.get(edge)
                if relay is None:
                    node = self.consumer_of[edge]
                    await self._run(None, node, node.on_events(edge, message[2]))
                else:
                    self._relayed(edge, *relay.on_events(message[2]))
            elif kind == "relayed":
                edge = message[1]
                node = self.consumer_of[edge]
                if message[2] is None:
                    await self._run(None, node, node.on_done(edge))
                else:
                    await self._run(None, node, node.on_events(edge, message[2]))
            elif kind == "ask":
                edge = message[1]
                node = self.producer_of[edge]
                await self._run(None, node, node.on_ask(edge, message[2]))
            elif kind == "done":
                edge = message[1]
                relay = relays.get(edge)
                if relay is None:
                    node = self.consumer_of[edge]
                    await self._run(None, node, node.on_done(edge))
                else:
                    self._relayed(edge, *relay.on_done())
            elif kind == "time":
                node = self.nodes[message[1]]
                self.deadlines[message[1]] = None  # reported again below
                await self._run(message[1], node, node.on_time(message[2]))
            elif kind == "trigger":
                for node_id in message[1]:
                    node = self.nodes[node_id]
                    await self._run(node_id, node, node.on_trigger(message[2]))
            elif kind == "stats":
                self.parent.send(("stats", message[1], self.statistics()))
            elif kind == "stop":
                self.stopping = True

    def _relayed(self, edge: int, pieces: list[list[Any] | None], ask: int) -> None:
        """Queue what a relay released for its node (through the inbox, so the
        pieces of one edge always reach the node in order), and ask upstream."""
        for piece in pieces:
            self.deliver(("relayed", edge, piece))
        if ask:
            self._send_up(edge, ask)

    def _send_up(self, edge: int, n: int) -> None:
        target = self.to_producer[edge]
        assert target is not None
        self._send(target, ("ask", edge, n))

    def _send(self, target: Channel, message: tuple[Any, ...]) -> None:
        target.send(message)
        if self.track and target is not self.parent:
            peer = self.peer_index[id(target)]
            self.sent[peer] = self.sent.get(peer, 0) + 1

    async def _run(self, node_id: int | None, node: PartitionNode, gen: Any) -> None:
        try:
            if node.is_async:
                await adrive(gen)
            else:
                drive(gen)
        except Exception as exc:
            labels = self.labels.get(id(node))
            if labels is None:
                labels = self.labels[id(node)] = Labels(node.layer)
            note_partition_failure(exc, node.layer, node.index, labels)
            raise
        self._route(node)
        if node_id is None:
            node_id = self.node_id[id(node)]
        deadline = node.deadline()
        if deadline != self.deadlines[node_id]:
            self.deadlines[node_id] = deadline
            self.parent.send(("deadline", node_id, deadline))

    def _route(self, node: PartitionNode) -> None:
        outbox = node.outbox
        if not outbox:
            return
        node.outbox = []
        relays = self.relays
        for message in outbox:
            kind, edge = message[0], message[1]
            if kind == "ask":
                relay = relays.get(edge)
                if relay is not None:
                    self._relayed(edge, *relay.on_ask(message[2]))
                    continue
                target = self.to_producer[edge]
            else:
                target = self.to_consumer[edge]
            if target is None:
                self.deliver(message)
            else:
                self._send(target, message)

    def statistics(self) -> list[dict[str, Any]]:
        """The counters of every node this worker hosts."""
        return [
            {
                "node": node_id,
                "layer": node.layer.index,
                "partition": node.index,
                "events_in": node.events_in,
                "events_out": node.events_out,
                "batches_in": node.batches_in,
                "batches_out": node.batches_out,
                "demand_outstanding": node.demand_outstanding,
                "buffered": node.buffered,
            }
            for node_id, node in self.nodes.items()
        ]


async def _flush(channel: Channel) -> None:
    """Write what ``channel`` has queued (used before the worker exits)."""
    with anyio.move_on_after(5):
        await channel.drain()


async def _serve(worker: Worker) -> None:
    async def peer_reader(index: int, channel: Channel) -> None:
        await channel.read_loop(worker.receiver(index))  # a peer that goes away is ignored

    async def peer_writer(channel: Channel) -> None:
        with contextlib.suppress(ChannelClosed):
            await channel.write_loop()

    async with anyio.create_task_group() as tg:
        for index, channel in worker.peers.items():
            tg.start_soon(peer_reader, index, channel)
            tg.start_soon(peer_writer, channel)
        tg.start_soon(peer_writer, worker.parent)

        async def parent_reader() -> None:
            await worker.parent.read_loop(worker.receiver("parent"))
            worker.stopping = True  # the parent is gone: stop
            tg.cancel_scope.cancel()

        tg.start_soon(parent_reader)
        try:
            await worker.process()
        except Exception as exc:  # a user callback failed: tell the parent, then stop
            worker.parent.send(("error", *_error_payload(exc)))
        await _flush(worker.parent)
        tg.cancel_scope.cancel()


def worker_main(index: int, sock: socket.socket) -> None:
    """The entry point of a worker process (started by the parent)."""
    sock.setblocking(True)
    (setup,) = read_frame_blocking(sock)
    peers: dict[int, Channel] = {}
    for _ in range(setup["peers"]):
        data, fds, _flags, _addr = socket.recv_fds(sock, 64, 1)
        peer = int(data.decode("ascii"))
        peers[peer] = Channel(socket.socket(fileno=fds[0]), f"worker {index} -> worker {peer}")
    parent = Channel(sock, f"worker {index} -> parent")
    worker = Worker(setup, parent, peers)
    backend: str = setup["backend"]
    options: dict[str, Any] = {}
    if backend == "asyncio+uvloop":
        backend, options = "asyncio", {"use_uvloop": True}
    try:
        anyio.run(_serve, worker, backend=backend, backend_options=options)
    finally:
        for channel in (parent, *peers.values()):
            channel.close()
    sys.stdout.flush()
    sys.stderr.flush()
