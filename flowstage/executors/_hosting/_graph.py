"""Wiring a plan across hosts (worker processes, or actors of a cluster).

:class:`HostedGraph` is the local executor's graph with every layer moved out: the
parent builds the sources (and any running stage the flow uses) exactly as the local
executor does, but each partition of each layer becomes a node on a host
(:class:`~flowstage.program.PartitionNode` inside a
:class:`~._host.PartitionHost`), and proxies take its place where a parent-side stage
meets it (see :mod:`._proxies`). How the parent reaches the hosts is a
:class:`HostPool`: worker processes over sockets, or actors.

Placement: partition ``i`` of every layer lives on host ``i % hosts``, so a
partitioned layer and the layer that feeds it share hosts partition by partition
and only the keys that change partition cross between hosts. Edges between nodes of
one host stay inside it; edges between hosts go host to host; nothing flows through
the parent after the sources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import anyio

from ..._stats import StageStatistics
from ...dispatchers import DemandDispatcher
from ..local._graph import Graph
from ..local._sources import FlowRangeProducer
from ._host import RELAY_BYTES, RELAY_START, RELAY_WINDOW
from ._proxies import InputProxy, OutputProxy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ..._stage import Stage
    from ...dispatchers import Dispatcher
    from ...plan import Bindings, LayerInput, LayerPlan, Plan
    from ..local._map_reducer import Scheduler

__all__ = ["HostPool", "HostedGraph", "RemoteTimer"]

#: Seconds between two requests for the hosts' counters while the flow runs.
STATISTICS_INTERVAL = 0.5

#: One end of an edge: ``("node", node_id, worker)`` or ``("parent",)``.
End = tuple[Any, ...]
_PARENT: End = ("parent",)


class HostPool(Protocol):
    """The hosts of one run, as the parent sees them.

    ``partitions[i]`` names what host ``i`` runs (for error messages); ``stopping``
    is true once the run is ending (a host that goes away then is not a crash).
    """

    size: int
    partitions: list[list[str]]
    stopping: bool

    def send(self, host: int, message: Any) -> None:
        """Queue ``message`` for ``host`` without blocking."""

    async def start(self, setups: list[dict[str, Any]]) -> None:
        """Start the hosts, each with its set-up frame."""

    async def serve(self, handle: Callable[[int, Any], None]) -> None:
        """Call ``handle(host, message)`` for every message until the hosts are done;
        raise the first failure (a remote error, a crashed host)."""

    def release(self) -> None:
        """Every node of every host has finished and everything they sent has
        arrived: the hosts may end now, while the parent hands out what it holds
        (:meth:`aclose` still waits for them)."""

    async def aclose(self) -> None:
        """Stop every host and wait for them (idempotent)."""

    def abort(self) -> None:
        """Stop every host now, without waiting (from a finalizer)."""


class RemoteTimer:
    """A partition's timer, kept by the parent: when the partition's deadline comes
    (on the parent's clock), the parent sends the worker ``("time", node, now)``."""

    __slots__ = ("armed", "node", "pool", "worker")

    def __init__(self, pool: HostPool, worker: int, node: int) -> None:
        self.pool = pool
        self.worker = worker
        self.node = node
        self.armed: float | None = None

    def fire(self, deadline: float) -> bool:
        if self.armed != deadline or self.pool.stopping:
            return True
        self.armed = None
        self.pool.send(self.worker, ("time", self.node, anyio.current_time()))
        return True

    def rearm(self, deadline: float) -> None:
        self.armed = deadline


class HostedGraph(Graph):
    """The graph of a plan whose layers run on hosts (see the module docstring).

    ``make_pool(n)`` makes the pool of ``n`` hosts: ``n`` is ``hosts``, or fewer when
    no layer has that many partitions. ``parent_window``: how deep (times
    ``max_demand``) a host may keep an edge from the parent (see
    :data:`~._host.RELAY_WINDOW`, the default)."""

    def __init__(
        self,
        plan: Plan,
        bindings: Bindings,
        scheduler: Scheduler,
        *,
        hosts: int,
        make_pool: Callable[[int], HostPool],
        plan_bytes: bytes,
        backend: str,
        parent_window: int = RELAY_WINDOW,
    ) -> None:
        widest = max((layer.stages for layer in plan.layers), default=0)
        # Where each layer's output dispatch is in the plan: (consumer layer, input).
        self.dispatch_ref: dict[int, tuple[int, int]] = {}
        for consumer in plan.layers:
            for k, inp in enumerate(consumer.inputs):
                if isinstance(inp.source, int):
                    self.dispatch_ref[inp.source] = (consumer.index, k)
        self.pool = make_pool(min(hosts, widest))
        self.plan_bytes = plan_bytes
        self.backend = backend
        #: How deep (times ``max_demand``) a host may keep an edge from the parent.
        self.parent_window = parent_window
        #: node id -> (layer index, partition, worker)
        self.nodes: list[tuple[int, int, int]] = []
        self.layer_nodes: list[list[int]] = []
        #: (edge, producer end, consumer end, subscription options)
        self.edges: list[tuple[int, End, End, dict[str, Any]]] = []
        self.input_proxies: dict[int, InputProxy] = {}
        self.output_proxies: dict[int, OutputProxy] = {}
        self._proxy_of_node: dict[int, OutputProxy] = {}
        self.timers: dict[int, RemoteTimer] = {}
        #: The last counters each host reported, per node id.
        self.reported: dict[int, dict[str, Any]] = {}
        #: Output edges whose "done" arrived, and nodes that reported finishing.
        self._outputs_done = 0
        self._nodes_finished = 0
        self._counts: list[tuple[int, int]] | None = None
        self._scheduler = scheduler
        super().__init__(plan, bindings, scheduler)

    # -- building ---------------------------------------------------------------------------

    def _edge(self, producer: End, consumer: End, options: dict[str, Any]) -> int:
        edge = len(self.edges)
        self.edges.append((edge, producer, consumer, options))
        return edge

    def _end(self, node: int) -> End:
        return ("node", node, self.nodes[node][2])

    def _build_layer(self, layer: LayerPlan) -> None:
        ids: list[int] = []
        for i in range(layer.stages):
            node = len(self.nodes)
            worker = i % self.pool.size
            self.nodes.append((layer.index, i, worker))
            self.pool.partitions[worker].append(f"layer {layer.index} partition {i}")
            self.timers[node] = RemoteTimer(self.pool, worker, node)
            ids.append(node)
        for inp in layer.inputs:
            partitioned = inp.dispatch.kind == "partition"
            if isinstance(inp.source, int):
                for i, consumer in enumerate(ids):
                    options = {"partition": i} if partitioned else {}
                    for producer in self.layer_nodes[inp.source]:
                        self._edge(self._end(producer), self._end(consumer), options)
                continue
            producers = self.producers_of(inp, layer)
            for i, consumer in enumerate(ids):
                extra = {"partition": i} if partitioned else {}
                worker = self.nodes[consumer][2]
                for p in producers:
                    edge = self._edge(_PARENT, self._end(consumer), {})
                    # A user's stage keeps its own dispatcher: never ask it more at
                    # once than the relay's first ask (the sources built here take
                    # the relay's widest window, see source_dispatcher).
                    limit = RELAY_START * layer.max_demand if p in self.foreign else None
                    proxy = InputProxy(edge, self._sender(worker), f"flow-input{edge}", limit)
                    proxy.subscription = self.subscribe(proxy, p, cancel="transient", **extra)
                    self.input_proxies[edge] = proxy
                    self.tracked.append(proxy)
        self.layers.append([])
        self.layer_nodes.append(ids)

    def source_dispatcher(self, inp: LayerInput, consumer: LayerPlan | None) -> Dispatcher[Any]:
        if consumer is not None and inp.dispatch.kind == "demand":
            # Hosts ask through their relays, whose windows grow past the first ask.
            return DemandDispatcher(max_demand=self.parent_window * consumer.max_demand)
        return super().source_dispatcher(inp, consumer)

    def iterable_producer(
        self,
        iterable: Iterable[Any],
        dispatcher: Dispatcher[Any],
        name: str,
        consumer: LayerPlan | None,
    ) -> Stage:
        # A range feeding a layer goes to its hosts in slices (three integers each),
        # when its dispatcher hands out batches whole or sliced (demand).
        if (
            type(iterable) is range
            and consumer is not None
            and type(dispatcher) is DemandDispatcher
        ):
            return FlowRangeProducer(iterable, self._scheduler, dispatcher, name)
        return super().iterable_producer(iterable, dispatcher, name, consumer)

    def _sender(self, worker: int) -> Any:
        pool = self.pool

        def send(message: Any) -> None:
            pool.send(worker, message)

        return send

    def producers_of(self, inp: LayerInput, consumer: LayerPlan | None) -> list[Stage]:
        if isinstance(inp.source, int):
            return [self._output_proxy(node) for node in self.layer_nodes[inp.source]]
        return super().producers_of(inp, consumer)

    def _output_proxy(self, node: int) -> OutputProxy:
        proxy = self._proxy_of_node.get(node)
        if proxy is None:
            edge = self._edge(self._end(node), _PARENT, {})
            layer_index, _, worker = self.nodes[node]
            # Ask ahead of the consumers, as a host's relay does on an edge from the
            # parent (bounded in events, and in bytes where the transport tells).
            window = self.parent_window * self.plan.layers[layer_index].max_demand
            proxy = OutputProxy(
                edge,
                self._sender(worker),
                self._scheduler,
                f"flow-output{edge}",
                window=window,
                max_bytes=RELAY_BYTES,
            )
            self._proxy_of_node[node] = proxy
            self.output_proxies[edge] = proxy
            self.tracked.append(proxy)
            self.owned.add(proxy)
        return proxy

    def setups(self, now: float) -> list[dict[str, Any]]:
        """The set-up frame of each worker."""
        out = []
        for worker in range(self.pool.size):
            nodes = [
                (node, layer, partition, self.dispatch_ref.get(layer))
                for node, (layer, partition, w) in enumerate(self.nodes)
                if w == worker
            ]
            edges = [
                e
                for e in self.edges
                if (e[1][0] == "node" and e[1][2] == worker)
                or (e[2][0] == "node" and e[2][2] == worker)
            ]
            out.append(
                {
                    "index": worker,
                    "plan": self.plan_bytes,
                    "nodes": nodes,
                    "edges": edges,
                    "peers": self.pool.size - 1,
                    "backend": self.backend,
                    "now": now,
                    "parent_window": self.parent_window,
                }
            )
        return out

    # -- running ------------------------------------------------------------------------------

    async def prepare(self) -> None:
        await super().prepare()
        if self.pool.size:
            await self.pool.start(self.setups(anyio.current_time()))

    async def serve(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(super().serve)
            if self.pool.size:
                tg.start_soon(self._poll_statistics)
                await self.pool.serve(self._handle)
                tg.cancel_scope.cancel()

    async def _poll_statistics(self) -> None:
        """Ask every host for its counters twice a second (each host also sends a
        node's last counters when the node finishes)."""
        while True:
            await anyio.sleep(STATISTICS_INTERVAL)
            if self.pool.stopping:
                return
            for host in range(self.pool.size):
                self.pool.send(host, ("stats", 0))

    def _edge_counts(self) -> list[tuple[int, int]]:
        """Input and output edges of each node (counted once)."""
        counts = self._counts
        if counts is None:
            ins = [0] * len(self.nodes)
            outs = [0] * len(self.nodes)
            for _, producer, consumer, _ in self.edges:
                if producer[0] == "node":
                    outs[producer[1]] += 1
                if consumer[0] == "node":
                    ins[consumer[1]] += 1
            counts = self._counts = list(zip(ins, outs, strict=True))
        return counts

    def layer_statistics(self, index: int) -> tuple[StageStatistics, ...]:
        out = []
        counts = self._edge_counts()
        for node in self.layer_nodes[index]:
            layer, partition, _worker = self.nodes[node]
            row = self.reported.get(node, {})
            finished = row.get("finished", False)
            # Gauges, as a stage's: no subscriptions once the node has finished.
            inputs, outputs = (0, 0) if finished else counts[node]
            out.append(
                StageStatistics(
                    name=f"flow-layer{layer}-stage{partition}",
                    kind="producer_consumer",
                    running=not finished,
                    events_in=row.get("events_in", 0),
                    events_out=row.get("events_out", 0),
                    batches_in=row.get("batches_in", 0),
                    batches_out=row.get("batches_out", 0),
                    demand_outstanding=row.get("demand_outstanding", 0),
                    buffered=row.get("buffered", 0),
                    buffer_size=0,
                    discarded=0,
                    mailbox=0,
                    producers=inputs,
                    consumers=outputs,
                    busy_seconds=row.get("busy_seconds", 0.0),
                )
            )
        return tuple(out)

    async def aclose(self) -> None:
        try:
            await self.pool.aclose()
        finally:
            await super().aclose()

    def abort(self) -> None:
        self.pool.abort()

    def _handle(self, worker: int, message: Any) -> None:
        kind = message[0]
        if kind == "events":
            # With the bytes the batch took, where the transport tells.
            size = message[3] if len(message) > 3 else None
            self.output_proxies[message[1]].receive(message[2], size)
        elif kind == "ask":
            self.input_proxies[message[1]].ask(message[2])
        elif kind == "done":
            self.output_proxies[message[1]].receive_done()
            self._outputs_done += 1
            self._release_when_done()
        elif kind == "deadline":
            self._arm(message[1], message[2])
        elif kind == "stats":
            reported = self.reported
            for row in message[2]:
                previous = reported.get(row["node"])
                if row["finished"] and not (previous and previous["finished"]):
                    self._nodes_finished += 1
                reported[row["node"]] = row
            self._release_when_done()

    def _release_when_done(self) -> None:
        """Let the hosts end once every node finished and every output edge's
        ``done`` (which follows its events) arrived: nothing is left for them to
        do or send, and they exit while the parent hands out the last events."""
        if (
            self._outputs_done == len(self.output_proxies)
            and self._nodes_finished == len(self.nodes)
            and not self.pool.stopping
        ):
            self.pool.release()

    def _arm(self, node: int, deadline: float | None) -> None:
        timer = self.timers[node]
        if deadline is None:
            timer.armed = None
        elif deadline == float("-inf"):
            timer.armed = None
            self.pool.send(timer.worker, ("time", node, anyio.current_time()))
        elif deadline != timer.armed:
            timer.armed = deadline
            self._scheduler.schedule(deadline, timer)

    def trigger(self, name: object) -> None:
        by_worker: dict[int, list[int]] = {}
        for layer in self.trigger_layers():
            for node in self.layer_nodes[layer]:
                by_worker.setdefault(self.nodes[node][2], []).append(node)
        for worker, nodes in by_worker.items():
            self.pool.send(worker, ("trigger", nodes, name))
