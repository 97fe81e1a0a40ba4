"""Hosting partitions outside the parent: the part of a worker that does not depend on
how messages travel.

A :class:`PartitionHost` is set up from one frame sent by the parent (the plan, the
nodes it hosts, every edge that touches them) and keeps:

* one :class:`~flowstage.program.PartitionNode` per hosted partition;
* queues of received messages, one per hosted layer, handled one at a time by
  :meth:`process`, the later layer's first and each queue in order, so every node
  gets its own messages in order; it calls the node each message is for and routes
  what the node's outbox holds: to a node of this host (queued the same way, so
  order is kept per edge and nothing is serialized), or to the link of the process
  (or actor) that hosts the other end of the edge;
* a :class:`~._relay.Relay` on every input edge that comes from elsewhere, its
  window sized to about :data:`RELAY_SECONDS` of its consumer's work, at most
  :data:`RELAY_WINDOW` (on an edge from the parent: the set-up's
  ``parent_window``, by default the same) times the consumer's ``max_demand``
  events (and :data:`RELAY_BYTES` where the transport reports sizes), at least one
  event.

Time comes from the parent: the host reports each node's next deadline and the parent
sends ``("time", node, now)`` when it is due, so windows and timers follow the
parent's clock (a virtual clock in tests included). Under a virtual clock the host
also reports when it is idle, with how many messages it received from and sent to
each peer, so that the parent can hold the clock while anything is in flight.

A failure of a user callback propagates out of :meth:`process` with the note naming
the layer and partition; the transport sends :func:`error_payload` to the parent.
"""

from __future__ import annotations

import pickle
import traceback
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio
import anyio.lowlevel

from ...plan import Dispatch, Plan, require_version
from ...program import Labels, PartitionNode, adrive, drive
from .._failure import note_partition_failure
from ._relay import Relay

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["RELAY_SECONDS", "RELAY_WINDOW", "Link", "PartitionHost", "error_payload"]

#: Where the other end of an edge lives: ``None`` for this host, else a link.
_Here: Final = None

#: An input edge from another process starts with this many times its layer's
#: ``max_demand`` events in flight (see :mod:`._relay`)...
RELAY_START: Final = 4
#: ... and, once the host has timed its consumer (the time spent in calls into it
#: per event it received), keeps about :data:`RELAY_SECONDS` of the consumer's work
#: in flight, at most :data:`RELAY_WINDOW` times ``max_demand`` events (the set-up's
#: ``parent_window`` on an edge from the parent), at least one event.
#: Expensive events held in one process would keep it busy after the others are
#: done (the consumer then gets smaller batches, which costs little beside the
#: work); cheap ones need a deep window to hide the round trip between processes.
RELAY_WINDOW: Final = 16
RELAY_SECONDS: Final = 0.01
#: Where the transport tells the size of what arrives (the process executor's
#: frames), an edge also keeps at most about this many bytes in flight (but at least
#: one event), however cheap its events are to handle.
RELAY_BYTES: Final = 8 << 20
#: While it has messages to handle, a host lets its writers send what it queued for
#: other processes at most this often (seconds).
SEND_EVERY: Final = 0.001
#: With a pump (see :attr:`PartitionHost.pump`), a busy host still yields to the event
#: loop at least this often (seconds).
YIELD_EVERY: Final = 0.005


class Link(Protocol):
    """How a host reaches another process: queue ``message`` for it, without
    blocking."""

    def send(self, message: Any) -> None: ...


def _loads_plan(data: bytes) -> Plan:
    plan: Plan = pickle.loads(data)  # cloudpickle's output loads with pickle
    return require_version(plan)


def error_payload(exc: BaseException) -> tuple[bytes | None, str, str, str]:
    """``(pickled exception or None, type name, message, formatted traceback)``: how a
    failure travels to the parent (an exception that cannot be rebuilt goes by name)."""
    text = "".join(traceback.format_exception(exc))
    data: bytes | None
    try:
        pickled = pickle.dumps(exc, protocol=5)
        pickle.loads(pickled)
        data = pickled
    except Exception:
        data = None
    return data, f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc), text


class PartitionHost:
    """The partitions one worker hosts, and the routing of their messages (see the
    module docstring). ``parent`` and ``peers`` are links: anything with
    ``send(message)``."""

    def __init__(self, setup: dict[str, Any], parent: Link, peers: Mapping[int, Link]) -> None:
        plan = _loads_plan(setup["plan"])
        self.index: int = setup["index"]
        self.parent = parent
        self.peers = peers
        self.peer_index = {id(link): index for index, link in peers.items()}
        self.nodes: dict[int, PartitionNode] = {}
        self.labels: dict[int, Labels] = {}
        # edge -> node at this end, and where the other end is.
        self.consumer_of: dict[int, PartitionNode] = {}
        self.producer_of: dict[int, PartitionNode] = {}
        self.to_consumer: dict[int, Link | None] = {}
        self.to_producer: dict[int, Link | None] = {}
        self.node_id: dict[int, int] = {}  # id(node) -> node id
        self.deadlines: dict[int, float | None] = {}
        #: The input edges from other processes, each with its relay.
        self.relays: dict[int, Relay] = {}
        # Per relayed edge: its consumer's busy seconds and events received when
        # the relay's window was last sized.
        self._timing: dict[int, list[Any]] = {}
        #: Per relayed edge: the bytes per event of the latest batch whose size the
        #: transport reported (0.0: none yet).
        self._sizes: dict[int, float] = {}
        #: Per relayed edge: the most events its window may hold.
        self._ceilings: dict[int, int] = {}
        #: Received messages, one queue per hosted layer, the last layer's first
        #: (see :meth:`deliver`); control messages have a queue of their own, first.
        self.queues: list[deque[tuple[Any, ...]]] = []
        self._control: deque[tuple[Any, ...]] = deque()
        self._consumer_queue: dict[int, deque[tuple[Any, ...]]] = {}
        self._producer_queue: dict[int, deque[tuple[Any, ...]]] = {}
        self._node_queue: dict[int, deque[tuple[Any, ...]]] = {}
        self._wake: anyio.Event | None = None
        #: Something was queued for another process since the last pause.
        self._sent_out = False
        self._paused = 0.0
        self._yielded = 0.0
        #: Set by the transport: write what was queued for other processes and take
        #: what has arrived from them, without waiting (called between messages
        #: instead of most turns of the event loop, and before waiting for more).
        self.pump: Callable[[], None] | None = None
        self.stopping = False
        #: Seconds each node spent in its program (busy time, for statistics).
        self.busy: dict[int, float] = {}
        self._final_stats: set[int] = set()  # nodes whose last counters were sent
        # Quiescence reports (only under a virtual clock in the parent): messages
        # received from each sender ("parent" or a worker index), sent to each worker.
        self.track: bool = setup["track"]
        parent_window: int = setup.get("parent_window", RELAY_WINDOW)
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
                    self.relays[edge] = Relay(RELAY_START * node.layer.max_demand)
                    widest = parent_window if where is self.parent else RELAY_WINDOW
                    self._ceilings[edge] = widest * node.layer.max_demand
                    self._timing[edge] = [0.0, 0]
                    self._sizes[edge] = 0.0
        self.start_time: float | None = setup["now"]
        by_layer: dict[int, deque[tuple[Any, ...]]] = {}
        for node_id, node in self.nodes.items():
            self._node_queue[node_id] = by_layer.setdefault(node.layer.index, deque())
        self.queues = [self._control] + [by_layer[k] for k in sorted(by_layer, reverse=True)]
        for edge, node in self.consumer_of.items():
            self._consumer_queue[edge] = by_layer[node.layer.index]
        for edge, node in self.producer_of.items():
            self._producer_queue[edge] = by_layer[node.layer.index]

    def _where(self, end: tuple[Any, ...]) -> Link | None:
        if end[0] == "parent":
            return self.parent
        if end[2] == self.index:
            return _Here
        return self.peers[end[2]]

    # -- receiving ------------------------------------------------------------------------

    def receiver(self, source: str | int) -> Callable[[tuple[Any, ...]], None]:
        """What to call with each message that arrives from ``source`` (the parent or a
        peer's index)."""
        if not self.track:
            return self.deliver
        self.received[source] = 0

        def deliver(message: tuple[Any, ...]) -> None:
            self.received[source] += 1
            self.deliver(message)

        return deliver

    def deliver(self, message: tuple[Any, ...]) -> None:
        """Queue ``message`` for the processing task.

        Messages for the nodes of a later layer are handled first (each node's own
        messages stay in order): where a host runs both a layer and the one that
        consumes it, its CPU goes to draining what it holds before it takes more
        input, so the source's demand goes to the hosts that have time for it.
        """
        kind = message[0]
        if kind == "events" or kind == "relayed" or kind == "done":
            self._consumer_queue[message[1]].append(message)
        elif kind == "ask":
            self._producer_queue[message[1]].append(message)
        elif kind == "time":
            self._node_queue[message[1]].append(message)
        else:
            self._control.append(message)
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
        queues = self.queues
        relays = self.relays
        while not self.stopping:
            for queue in queues:
                if queue:
                    message = queue.popleft()
                    break
            else:
                if self.track and not self._reported:
                    self._reported = True
                    self.parent.send(("idle", dict(self.received), dict(self.sent)))
                pump = self.pump
                if pump is not None:
                    pump()
                    if any(queues):
                        continue
                self._wake = wake = anyio.Event()
                await wake.wait()
                continue
            self._reported = False
            kind = message[0]
            if kind == "events":
                edge = message[1]
                batch = message[2]
                # A slice of a range source, sent as such, stays a range (the relay
                # slices it for free) when the program makes a list of it anyway.
                if type(batch) is range and not self.consumer_of[edge].iterates_input:
                    batch = list(batch)
                relay = relays.get(edge)
                if relay is None:
                    node = self.consumer_of[edge]
                    await self._run(None, node, node.on_events(edge, batch))
                else:
                    if len(message) > 3 and batch:  # the size of the batch, in bytes
                        self._sizes[edge] = message[3] / len(batch)
                    self._relayed(edge, *relay.on_events(batch))
            elif kind == "relayed":
                edge = message[1]
                node = self.consumer_of[edge]
                if message[2] is None:
                    await self._run(None, node, node.on_done(edge))
                else:
                    await self._run(None, node, node.on_events(edge, message[2]))
                    self._size_window(edge, node)
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
                self._send(self.parent, ("stats", message[1], self.statistics()))
            elif kind == "stop":
                self.stopping = True
            if self._sent_out:
                # Let the writers send it now, and the readers take what arrived,
                # rather than when the inbox runs dry: a peer waiting for these
                # events or asks would sit idle until then. At most once per
                # SEND_EVERY: each time costs a frame and a turn of the event loop
                # (with a pump, a turn only every YIELD_EVERY).
                now = perf_counter()
                if now - self._paused >= SEND_EVERY:
                    self._sent_out = False
                    self._paused = now
                    pump = self.pump
                    if pump is not None:
                        pump()
                    if pump is None or now - self._yielded >= YIELD_EVERY:
                        self._yielded = now
                        await anyio.lowlevel.checkpoint()

    def _size_window(self, edge: int, node: PartitionNode) -> None:
        """Size ``edge``'s relay window to about :data:`RELAY_SECONDS` of its
        consumer's work, once per ``max_demand`` events the consumer received.

        What an event costs is the consumer's busy time (every call into it: a
        node whose output waits for demand handles what it received later, in the
        calls that bring the demand) over the events it received on all its inputs
        since the window was last sized."""
        timing = self._timing[edge]
        events = node.events_in - timing[1]
        if events < node.layer.max_demand:
            return
        busy = self.busy.get(self.node_id[id(node)], 0.0)
        per_event = (busy - timing[0]) / events
        timing[0], timing[1] = busy, node.events_in
        ceiling = self._ceilings[edge]
        size = self._sizes[edge]
        if size > 0:
            ceiling = min(ceiling, int(RELAY_BYTES / size))
        window = ceiling if per_event <= 0 else int(RELAY_SECONDS / per_event)
        self.relays[edge].resize(max(min(window, ceiling), 1))

    def _relayed(self, edge: int, pieces: list[list[Any] | None], ask: int) -> None:
        """Queue what a relay released for its node (through its queue, so the
        pieces of one edge always reach the node in order), and ask upstream."""
        for piece in pieces:
            self.deliver(("relayed", edge, piece))
        if ask:
            self._send_up(edge, ask)

    def _send_up(self, edge: int, n: int) -> None:
        target = self.to_producer[edge]
        assert target is not None
        # No single ask above the relay's first: a producer's DemandDispatcher takes
        # the first ask as the largest to expect and warns of any larger one.
        step = self.relays[edge].max_ask
        while n > step:
            self._send(target, ("ask", edge, step))
            n -= step
        self._send(target, ("ask", edge, n))

    def _send(self, target: Link, message: tuple[Any, ...]) -> None:
        target.send(message)
        self._sent_out = True
        if self.track and target is not self.parent:
            peer = self.peer_index[id(target)]
            self.sent[peer] = self.sent.get(peer, 0) + 1

    async def _run(self, node_id: int | None, node: PartitionNode, gen: Any) -> None:
        t0 = perf_counter()
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
        if node_id is None:
            node_id = self.node_id[id(node)]
        busy = self.busy
        busy[node_id] = busy.get(node_id, 0.0) + perf_counter() - t0
        if node.finished and node_id not in self._final_stats:
            # Its last counters go before its last events and "done", so the
            # parent has them by the time the flow ends.
            self._final_stats.add(node_id)
            self._send(self.parent, ("stats", -1, self.statistics([node_id])))
        self._route(node)
        deadline = node.deadline()
        if deadline != self.deadlines[node_id]:
            self.deadlines[node_id] = deadline
            self._send(self.parent, ("deadline", node_id, deadline))

    def _route(self, node: PartitionNode) -> None:
        outbox = node.outbox
        if not outbox:
            return
        node.outbox = []
        # A node's asks on one edge are added up into one (demand is additive, and
        # a node only asks on its input edges, where it sends nothing else): one
        # message, and one piece from a relay, for the chunks of a call.
        asks: dict[int, int] | None = None
        for message in outbox:
            edge = message[1]
            if message[0] == "ask":
                if asks is None:
                    asks = {edge: message[2]}
                else:
                    asks[edge] = asks.get(edge, 0) + message[2]
                continue
            target = self.to_consumer[edge]
            if target is None:
                self.deliver(message)
            else:
                self._send(target, message)
        if asks is None:
            return
        relays = self.relays
        for edge, n in asks.items():
            relay = relays.get(edge)
            if relay is not None:
                self._relayed(edge, *relay.on_ask(n))
                continue
            target = self.to_producer[edge]
            if target is None:
                self.deliver(("ask", edge, n))
            else:
                self._send(target, ("ask", edge, n))

    def statistics(self, nodes: list[int] | None = None) -> list[dict[str, Any]]:
        """The counters of the nodes this worker hosts (``nodes``, or all)."""
        hosted = self.nodes
        ids = list(hosted) if nodes is None else nodes
        busy = self.busy
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
                "finished": node.finished,
                "busy_seconds": busy.get(node_id, 0.0),
            }
            for node_id, node in ((i, hosted[i]) for i in ids)
        ]
