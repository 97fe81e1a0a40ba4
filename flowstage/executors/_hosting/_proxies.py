"""The parent's stand-ins for partitions that run in worker processes.

Everything that is not portable stays in the parent and runs on the local engine:
the sources, ``from_stages``/``through_stages`` stages, the consumers of
``into_stages`` and the flow's output. Where such a stage meets a partition hosted
by a worker, a proxy stage takes the partition's place:

* :class:`InputProxy` -- a consumer subscribed to a parent-side producer on behalf of
  one partition. It asks only what the partition asks for (manual demand, relayed
  from the worker), and forwards every batch it receives, then ``"done"``.
* :class:`OutputProxy` -- a producer standing for one partition towards parent-side
  consumers: a :class:`~._relay.Relay` in the parent's process, it keeps up to a
  window of events asked of the partition ahead of its consumers' demand (a round
  trip to the worker per ask would leave the consumers waiting), emits what its
  consumers ask for from what it holds, then finishes after the partition did.

So GenStage demand runs end to end through the proxies: a slow consumer in a worker
slows the parent's sources, and a slow consumer in the parent slows the workers.
"""

from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING, Any, Final, Literal

from ... import lowlevel
from ..._errors import is_normal_reason
from ..._kinds import Consumer, Producer
from ._relay import Relay

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ..._subscription import Subscription
    from ..local._sources import SubscriptionCounter

__all__ = ["InputProxy", "OutputProxy"]


class _Wake:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<output proxy wake-up>"


_WAKE: Final = _Wake()


class InputProxy(Consumer[Any]):
    """Feeds one partition in a worker from a producer of the parent (see the
    module docstring).

    With ``max_outstanding``, no more than that many events are asked of the
    producer and not yet received (the rest of the partition's demand waits for
    events to arrive): a user's producer whose DemandDispatcher took the first ask
    as the largest to expect then never sees a larger one (asks pending on a
    subscription add up)."""

    def __init__(
        self,
        edge: int,
        send: Callable[[Any], None],
        name: str,
        max_outstanding: int | None = None,
    ) -> None:
        super().__init__(name=name)
        self.edge = edge
        self._send = send
        self.subscription: Subscription[Any] | None = None
        self._limit = max_outstanding
        self._outstanding = 0  # asked of the producer, not received
        self._held = 0  # asked by the partition, not yet asked of the producer

    def ask(self, n: int) -> None:
        """The partition asked for ``n`` more events."""
        if self.subscription is None or n <= 0:
            return
        if self._limit is None:
            self.subscription.ask(n)
            return
        self._held += n
        self._forward()

    def _forward(self) -> None:
        assert self._limit is not None
        n = min(self._limit - self._outstanding, self._held)
        if n > 0 and self.subscription is not None:
            self._held -= n
            self._outstanding += n
            self.subscription.ask(n)

    def handle_subscribe(
        self, kind: Literal["producer", "consumer"], options: Mapping[str, Any], from_: Any
    ) -> Literal["manual"]:
        return "manual"  # the partition's own demand account decides

    def handle_events(self, events: list[Any], from_: Any) -> None:
        self._send(("events", self.edge, events))
        if self._limit is not None:
            self._outstanding -= len(events)
            self._forward()

    def handle_cancel(self, reason: tuple[str, object], from_: Any) -> None:
        if is_normal_reason(reason[1]):
            self._send(("done", self.edge))
            self.stop("normal")
        # An abnormal end stops this stage with the same reason (the flow fails).


class OutputProxy(Producer[Any]):
    """Stands for one partition in a worker towards consumers of the parent (see
    the module docstring).

    It asks the partition for ``window`` events when its consumers first ask, and
    asks again as they take events, so at most ``window`` events are asked of the
    partition and not yet taken by consumers (held here or in flight); where
    :meth:`receive` is told the bytes a batch took, the window also keeps to about
    ``max_bytes`` (at least one event). Consumers never get more than they asked
    for."""

    def __init__(
        self,
        edge: int,
        send: Callable[[Any], None],
        counter: SubscriptionCounter,
        name: str,
        window: int = 1,
        max_bytes: int | None = None,
    ) -> None:
        super().__init__(name=name)
        self.edge = edge
        self._send = send
        self._counter = counter
        self._relay = Relay(window)
        self._widest = window
        self._max_bytes = max_bytes
        self._relay_started = False
        self._ready: list[list[Any]] = []
        self._woken = False
        self._ended = False

    @property
    def held(self) -> int:
        """Events received from the partition and not yet emitted."""
        return self._relay.buffered

    def receive(self, batch: list[Any], size: float | None = None) -> None:
        """The partition sent ``batch`` (never more than was asked for), which took
        ``size`` bytes on the way (``None``: not known)."""
        if size is not None and batch and self._max_bytes is not None:
            per_event = size / len(batch)
            fit = int(self._max_bytes / per_event) if per_event > 0 else self._widest
            self._relay.resize(max(min(self._widest, fit), 1))
        self._ready.append(batch)
        self._wake()

    def receive_done(self) -> None:
        """The partition finished after sending everything."""
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if not self._woken:
            self._woken = True
            lowlevel.post(self, _WAKE)

    def handle_subscribe(
        self, kind: Literal["producer", "consumer"], options: Mapping[str, Any], from_: Any
    ) -> Literal["automatic"]:
        if kind == "consumer":
            self._counter.subscribed()
        return "automatic"

    def handle_demand(self, demand: int) -> list[Any] | None:
        relay = self._relay
        if not self._relay_started:
            self._relay_started = True
            self._ask_partition(relay.start())
        pieces, ask = relay.on_ask(demand)
        self._ask_partition(ask)
        return self._hand_out(pieces)

    def handle_info(self, message: Any) -> list[Any] | None:
        if message is not _WAKE:
            return super().handle_info(message)  # type: ignore[return-value]
        self._woken = False
        ready, self._ready = self._ready, []
        relay = self._relay
        pieces: list[list[Any] | None] = []
        for batch in ready:
            out, ask = relay.on_events(batch)
            pieces += out
            self._ask_partition(ask)
        if self._ended:
            out, _ = relay.on_done()
            pieces += out
        return self._hand_out(pieces)

    def _ask_partition(self, n: int) -> None:
        if n > 0:
            self._send(("ask", self.edge, n))

    def _hand_out(self, pieces: list[list[Any] | None]) -> list[Any] | None:
        if not pieces:
            return None
        if pieces[-1] is None:  # the partition finished and everything was handed out
            pieces.pop()
            self.finish()  # after what is emitted below has been dispatched
        if not pieces:
            return None
        if len(pieces) == 1:
            return pieces[0]
        return list(chain.from_iterable(pieces))  # type: ignore[arg-type]  # no None left
