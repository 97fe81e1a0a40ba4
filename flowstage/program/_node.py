"""``PartitionNode``: one stage of a plan layer as a pure machine, for hosts without stages.

The local executor runs each stage of a layer as an engine ``ProducerConsumer``
(a task with a mailbox). An executor that runs stages in other processes or actors
hosts them as :class:`PartitionNode` objects instead: the same
:class:`~flowstage.program.StageProgram`, and the same GenStage rules, as plain data
and method calls, with no task, no clock and no I/O. The host moves messages between
nodes (in one process, or over sockets) and calls the node's methods; the node says
what to send next in :attr:`PartitionNode.outbox`.

Edges. Every input and output of a node is an *edge*, named by an integer the host
chooses (unique within a run). Messages on an edge:

* ``("events", edge, batch)`` producer -> consumer: never more than the consumer
  asked for on that edge;
* ``("ask", edge, n)`` consumer -> producer: demand, exactly GenStage's automatic
  demand (the consumer asks ``max_demand`` when the edge connects, then after each
  handled chunk of at most ``max_demand - min_demand`` events, as
  :class:`~flowstage._demand.DemandAccount` computes);
* ``("done", edge)`` producer -> consumer: the producer finished normally after
  delivering everything.

The rules (those of ``ProducerConsumer`` and the local ``MapReducer``):

* Received batches are cut into chunks; each chunk is handed to the program only
  while downstream demand is positive, and its ask is sent after it was handled, so
  a slow consumer slows its producers and a node holds at most ``max_demand``
  unhandled events per input edge.
* Output goes out through a dispatcher (demand or partition, the next layer's
  ``Dispatch``) up to the demand it has; what it cannot place yet waits in order and
  goes out as demand arrives. Output waits only while a handled chunk expanded into
  more events than were asked for, so it stays bounded by one chunk's output.
* When every input edge is done, the program's final triggers run and, once all
  output has been delivered, every output edge gets ``"done"``.

Every entry point is a generator of program calls (``(callable, *args)`` requests,
as in :mod:`flowstage.program._windows`): :func:`drive` runs it for programs with
plain callbacks, :func:`adrive` awaits the calls of programs with ``async def``
callbacks.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Generator, Hashable
from typing import TYPE_CHECKING, Any, Final

from .._demand import DemandAccount
from ..dispatchers import DemandDispatcher, Dispatcher, PartitionDispatcher
from ._labels import add_flow_note, routing_note
from ._program import StageProgram, make_program

if TYPE_CHECKING:
    from ..plan import Dispatch, LayerPlan

__all__ = ["ASK", "DONE", "EVENTS", "NodeGen", "PartitionNode", "adrive", "drive"]

#: Message kinds on an edge (the first element of an outbox entry).
EVENTS: Final = "events"
ASK: Final = "ask"
DONE: Final = "done"

#: A node entry point: yields ``(callable, *args)`` program calls, returns None.
NodeGen = Generator[tuple[Any, ...], Any, None]


def drive(gen: NodeGen) -> None:
    """Run ``gen``'s program calls synchronously (outside its frame, so a callback
    raising ``StopIteration`` fails instead of ending the generator)."""
    r: Any = None
    while True:
        try:
            req = gen.send(r)
        except StopIteration:
            return
        r = req[0](*req[1:])


async def adrive(gen: NodeGen) -> None:
    """As :func:`drive`, awaiting the calls that return awaitables."""
    r: Any = None
    while True:
        try:
            req = gen.send(r)
        except StopIteration:
            return
        r = req[0](*req[1:])
        if inspect.isawaitable(r):
            r = await r


def make_dispatcher(dispatch: Dispatch) -> Dispatcher[Any]:
    """The dispatcher a node uses towards consumers reached through ``dispatch``."""
    if dispatch.kind == "partition":
        return PartitionDispatcher(dispatch.partitions, hash=dispatch.hash)
    return DemandDispatcher()


class PartitionNode:
    """Stage ``index`` of ``layer``, hosted without a task (see the module docstring).

    ``output`` is how the node feeds its consumers (the dispatch of the layer that
    consumes it, ``consumer``; a demand dispatch for the flow's output). A failure of
    its partition function gets the note the local executor's dispatchers add. The host must
    :meth:`connect_input` every input edge and :meth:`connect_output` every output
    edge before the first message, call :meth:`start` once, then feed messages and
    send what :attr:`outbox` holds after every call (and clear it).
    """

    def __init__(
        self, layer: LayerPlan, index: int, output: Dispatch, consumer: LayerPlan | None = None
    ) -> None:
        self.layer = layer
        self.index = index
        self.program: StageProgram = make_program(layer, index, layer.stages)
        self.dispatcher: Dispatcher[Any] = make_dispatcher(output)
        self._routing = (
            routing_note(consumer, output.partitions) if output.kind == "partition" else None
        )
        #: What the host must send, in order: ``(kind, edge, payload)``.
        self.outbox: list[tuple[str, int, Any]] = []
        self._accounts: dict[int, DemandAccount] = {}
        self._producers: dict[int, Hashable] = {}
        self._outputs: list[int] = []
        self._inbox: deque[tuple[int, list[Any] | None, int]] = deque()
        self._live_inputs = 0
        self._demand = 0  # downstream demand not yet met
        self._waiting: deque[list[Any]] = deque()  # output not yet placed
        self._offset = 0  # events of _waiting[0] already placed
        self._finishing = False
        self.finished: bool = False
        p = self.program
        if p.is_async:
            self._p_start: Callable[..., Any] = p.astart
            self._p_events: Callable[..., Any] = p.ahandle_events
            self._p_time: Callable[..., Any] = p.ahandle_time
            self._p_trigger: Callable[..., Any] = p.ahandle_trigger
            self._p_input_done: Callable[..., Any] = p.ahandle_producer_done
            self._p_done: Callable[..., Any] = p.ahandle_done
        else:
            self._p_start = p.start
            self._p_events = p.handle_events
            self._p_time = p.handle_time
            self._p_trigger = p.handle_trigger
            self._p_input_done = p.handle_producer_done
            self._p_done = p.handle_done
        #: Counters, as in :class:`~flowstage.StageStatistics`.
        self.events_in: int = 0
        self.events_out: int = 0
        self.batches_in: int = 0
        self.batches_out: int = 0

    def __repr__(self) -> str:
        return f"<PartitionNode layer {self.layer.index} partition {self.index}>"

    @property
    def is_async(self) -> bool:
        """Whether the host must use :func:`adrive`."""
        return self.program.is_async

    @property
    def iterates_input(self) -> bool:
        """Whether :meth:`on_events` may be given any sequence that iterates, slices
        and has a length (a ``range``), not only a list (see
        :attr:`StageProgram.iterates_input`)."""
        return self.program.iterates_input

    @property
    def demand_outstanding(self) -> int:
        """Events asked for on the input edges and not yet received."""
        return sum(a.demand for a in self._accounts.values())

    @property
    def buffered(self) -> int:
        """Events the node holds: received and not handled, or output not placed."""
        waiting = sum(len(b) for b in self._waiting) - self._offset
        unhandled = sum(len(b) for _, b, _ in self._inbox if b is not None)
        return waiting + unhandled + self.dispatcher.queued()

    # -- wiring ------------------------------------------------------------------------

    def connect_input(self, edge: int, producer: Hashable) -> None:
        """An input edge from ``producer`` (an id the program sees, for watermarks):
        asks for ``max_demand`` events on it."""
        account = DemandAccount(self.layer.max_demand, self.layer.min_demand, name=edge)
        self._accounts[edge] = account
        self._live_inputs += 1
        self.program.add_producer(producer)
        self._producers[edge] = producer
        self.outbox.append((ASK, edge, account.max_demand))

    def connect_output(self, edge: int, options: dict[str, object] | None = None) -> None:
        """An output edge (``options`` as a subscription's, e.g. ``{"partition": 2}``)."""
        self._outputs.append(edge)
        self.dispatcher.subscribe(edge, edge, options or {})

    # -- entry points (generators of program calls) -----------------------------------------

    def start(self, now: float | None) -> NodeGen:
        """Start the program at time ``now`` (the host's clock)."""
        yield (self._p_start, now)

    def on_events(self, edge: int, batch: list[Any]) -> NodeGen:
        """A batch arrived on input ``edge`` (a list; or, when
        :attr:`iterates_input`, any sequence that slices, such as a ``range``)."""
        account = self._accounts[edge]
        self.events_in += len(batch)
        self.batches_in += 1
        for chunk, ask in account.split(batch):
            self._inbox.append((edge, chunk, ask))
        yield from self._pump()

    def on_done(self, edge: int) -> NodeGen:
        """Input ``edge`` ended normally (after everything sent on it)."""
        self._inbox.append((edge, None, 0))
        yield from self._pump()

    def on_ask(self, edge: int, n: int) -> NodeGen:
        """Output ``edge`` asked for ``n`` more events."""
        demand = self.dispatcher.ask(n, edge)
        self._deliver()
        self._demand += demand
        self._place_waiting()
        self._maybe_finish()
        yield from self._pump()

    def on_trigger(self, name: object) -> NodeGen:
        """Fire trigger ``name`` on every open window."""
        out = yield (self._p_trigger, name)
        self._emit(out)

    def on_time(self, now: float) -> NodeGen:
        """The host's clock reached :meth:`deadline`."""
        out = yield (self._p_time, now)
        self._emit(out)
        self._maybe_finish()

    def deadline(self) -> float | None:
        """When :meth:`on_time` must next be called (``float("-inf")``: now)."""
        return self.program.next_deadline()

    # -- the machine --------------------------------------------------------------------------

    def _pump(self) -> NodeGen:
        inbox = self._inbox
        while inbox and self._demand > 0:
            edge, chunk, ask = inbox.popleft()
            if chunk is None:
                yield from self._input_done(edge)
                continue
            out = yield (self._p_events, chunk, self._producers[edge])
            if out:
                self._emit(out)
            if ask:
                self.outbox.append((ASK, edge, ask))

    def _input_done(self, edge: int) -> NodeGen:
        self._live_inputs -= 1
        out = yield (self._p_input_done, self._producers[edge])
        if self._live_inputs <= 0 and not self._finishing:
            self._finishing = True
            out = out + (yield (self._p_done,))
        self._emit(out)
        self._maybe_finish()

    def _emit(self, out: list[Any]) -> None:
        if not out:
            return
        self._waiting.append(out)
        self._place_waiting()

    def _place_waiting(self) -> None:
        """Dispatch waiting output, oldest first, up to the demand.

        Only what the demand allows is offered to the dispatcher (a slice of at
        most that many events); the rest stays where it is, behind an offset, so a
        large output placed piece by piece as demand arrives is copied once, not
        once per piece."""
        waiting = self._waiting
        dispatcher = self.dispatcher
        while waiting and self._demand > 0:
            head = waiting[0]
            offset = self._offset
            size = len(head) - offset
            limit = self._demand
            if offset == 0 and size <= limit:
                piece = head
            else:
                piece = head[offset : offset + limit]
            try:
                leftover = dispatcher.dispatch(piece)
            except Exception as exc:
                if self._routing is not None:
                    add_flow_note(exc, self._routing)
                raise
            placed = len(piece) - len(leftover)
            self._demand = max(self._demand - placed, 0)
            self._deliver()
            if placed == size:
                waiting.popleft()
                self._offset = 0
            else:
                self._offset = offset + placed
            if leftover:
                break

    def _deliver(self) -> None:
        dispatcher = self.dispatcher
        deliveries = dispatcher.deliveries
        if deliveries:
            dispatcher.deliveries = []
            outbox = self.outbox
            for edge, batch in deliveries:
                self.events_out += len(batch)
                self.batches_out += 1
                outbox.append((EVENTS, edge, batch))  # type: ignore[arg-type]

    def _maybe_finish(self) -> None:
        if (
            self._finishing
            and not self.finished
            and not self._waiting
            and not self.dispatcher.queued()
        ):
            self.finished = True
            self.outbox.extend((DONE, edge, None) for edge in self._outputs)
