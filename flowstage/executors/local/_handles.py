"""The handles the local executor gives out: a flow stream and a running flow."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import anyio

from ..._flowstate import FlowState, ShutdownResult
from ._graph import Graph
from ._runtime import Runtime
from ._statistics import snapshot

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from types import TracebackType

    from ..._fanout import FlowSubscription
    from ..._fanout_queue import SlowPolicy
    from ..._stage import Stage
    from ..._stream import EventSink, EventStream
    from ...plan import Bindings, Plan
    from ...statistics import FlowStatistics

__all__ = ["LocalFlowOutput", "LocalFlowStream", "LocalRunningFlow"]

T = TypeVar("T")


class LocalFlowOutput(Generic[T]):
    """The output of a flow run by ``stream()``: ``async for e in events``,
    ``events.batches()``, and ``events.statistics()``.

    ``async for`` iterates the underlying :class:`~flowstage.lowlevel.EventSink`
    directly (no cost per event)."""

    __slots__ = ("_runtime", "_sink")

    def __init__(self, sink: EventSink[T], runtime: Runtime) -> None:
        self._sink = sink
        self._runtime = runtime

    def __aiter__(self) -> EventSink[T]:
        return self._sink

    async def __anext__(self) -> T:
        return await self._sink.__anext__()

    def batches(self) -> AsyncIterator[list[T]]:
        """Yield the events a batch at a time."""
        return self._sink.batches()

    def statistics(self) -> FlowStatistics:
        """A snapshot of the flow's counters, grouped by layer (still readable
        after the block was left)."""
        return snapshot(self._runtime)

    @property
    def state(self) -> FlowState:
        """Where the flow is in its life."""
        return self._runtime.state


class LocalFlowStream(Generic[T]):
    """``async with`` it to run the flow and iterate over its output.

    The iterator (a :class:`LocalFlowOutput`) also has ``batches()`` and
    ``statistics()``. The iteration ends when every output stage has finished; leaving
    the block early stops the flow.
    """

    def __init__(
        self,
        plan: Plan,
        bindings: Bindings,
        graph: Callable[[Plan, Bindings, Runtime], Graph] = Graph,
    ) -> None:
        self._plan = plan
        self._bindings = bindings
        self._graph = graph
        self._runtime: Runtime | None = None
        self._events: EventStream[Any] | None = None

    async def __aenter__(self) -> LocalFlowOutput[T]:
        if self._runtime is not None:
            raise RuntimeError("a flow stream can only be entered once")
        runtime = self._runtime = Runtime(self._plan, self._bindings, graph=self._graph)
        subs = runtime.output_subscriptions()
        await runtime.open()
        try:
            self._events = runtime.open_output(subs)
            it: EventSink[T] = await self._events.__aenter__()
        except BaseException as exc:
            await runtime.close(exc, exc)
            raise
        return LocalFlowOutput(it, runtime)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        runtime = self._runtime
        events = self._events
        assert runtime is not None
        assert events is not None
        leaving = exc
        try:
            if await events.__aexit__(exc_type, exc, tb):
                leaving = None
        except BaseException as new:
            leaving = new
        return await runtime.close(leaving, exc)


class LocalRunningFlow:
    """A flow running in the background (``Flow.start()``, ``Flow.into_stages()``)::

        async with flow.start() as running:
            running.trigger("flush")
            await running.wait()

    Leaving the block stops the flow if it is still running. A failure of any
    stage cancels the block and is raised from the ``async with``.
    """

    def __init__(
        self,
        plan: Plan,
        bindings: Bindings,
        graph: Callable[[Plan, Bindings, Runtime], Graph] = Graph,
    ) -> None:
        self._plan = plan
        self._bindings = bindings
        self._graph = graph
        self._runtime: Runtime | None = None

    async def __aenter__(self) -> LocalRunningFlow:
        if self._runtime is not None:
            raise RuntimeError("a running flow can only be entered once")
        runtime = self._runtime = Runtime(
            self._plan, self._bindings, drain=self._plan.sink != "into_stages", graph=self._graph
        )
        await runtime.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._runtime is not None
        return await self._runtime.close(exc, exc)

    def _rt(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("use 'async with flow.start() as running' first")
        return self._runtime

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages the flow owns (sources first, then each layer's stages)."""
        graph = self._rt().graph
        return (*graph.sources, *(s for layer in graph.layers for s in layer))

    @property
    def output_stages(self) -> tuple[Stage, ...]:
        """The stages whose events are the flow's output."""
        return tuple(self._rt().graph.outputs)

    @property
    def done(self) -> bool:
        """True once the flow has ended in any way: every stage finished, it was
        stopped, it failed, or its block was left."""
        return self._rt().done.is_set()

    @property
    def state(self) -> FlowState:
        """Where the flow is in its life (see :class:`~flowstage.FlowState`). A
        failure shows as ``FAILED`` as soon as the stage raises, before the block
        is cancelled."""
        return self._rt().state

    def statistics(self) -> FlowStatistics:
        """A snapshot of the flow's counters, grouped by layer (never awaits)."""
        return snapshot(self._rt())

    async def shutdown(self, timeout: float = 5.0) -> ShutdownResult:  # noqa: ASYNC109
        """End the flow cooperatively, within ``timeout`` seconds.

        Closes the sources the flow owns (each sends what it already emitted, then
        ends as if its input had ended: push sources stop accepting events; running
        producers given to ``from_stages`` are the caller's and are left alone, so a
        flow fed only by them drains only if they end), lets the flow drain
        (windows flush, everything in flight is handled and output) and, if it has
        not finished after ``timeout`` seconds, stops it. Returns what happened;
        never raises the flow's failure (it is in the result, and still raised from
        the ``async with``).
        """
        if not timeout >= 0:
            raise ValueError(f"shutdown: timeout must be >= 0 seconds, got {timeout!r}")
        runtime = self._rt()
        began = time.monotonic()
        if runtime.done.is_set():
            return ShutdownResult("already_done", runtime.state, 0.0, runtime.failure)
        runtime.close_sources()
        outcome: Literal["drained", "cancelled"] = "drained"
        with anyio.move_on_after(timeout):
            await runtime.done.wait()
        if not runtime.done.is_set():
            outcome = "cancelled"
            runtime.stop()
            with anyio.CancelScope(shield=True):
                await runtime.done.wait()
        return ShutdownResult(outcome, runtime.state, time.monotonic() - began, runtime.failure)

    @property
    def exception(self) -> BaseException | None:
        """The exception the flow failed with (raised from the ``async with``), or
        ``None``."""
        return self._rt().failure

    def trigger(self, name: object) -> None:
        """Fire trigger ``name`` on every open window of every stage of the last
        reducing layer (``on_trigger`` sees ``(window_type, window_id, name)``).

        Raises ``anyio.WouldBlock`` if a stage's mailbox is full.
        """
        self._rt().graph.trigger(name)

    def stop(self) -> None:
        """Stop every stage of the flow now (no error is raised)."""
        self._rt().stop()

    def subscribe(
        self, buffer: int = 1000, slow: SlowPolicy = "drop_oldest"
    ) -> FlowSubscription[Any]:
        """Subscribe to the flow's output (``flow.start(publish=True)``): the
        events it outputs from now on, through a buffer of ``buffer`` events;
        ``slow`` says what happens when this subscriber falls behind
        (``"drop_oldest"`` or ``"disconnect"``). The subscription ends when the flow
        ends. See :class:`flowstage.FlowSubscription`.

        Raises:
            RuntimeError: the flow was not started with ``publish=True``.
        """
        hub = self._rt().hub
        if hub is None:
            raise RuntimeError(
                "subscribe() needs a flow started with publish=True "
                "('async with flow.start(publish=True) as running'): without it the "
                "flow's output is discarded"
            )
        return hub.subscribe(buffer, slow)

    async def wait(self) -> None:
        """Return once the flow has ended.

        If a stage fails, the ``async with`` block is cancelled and the failure is
        raised from it; called after such a block, ``wait()`` raises the failure
        again. After a block left early it returns at once.
        """
        runtime = self._rt()
        await runtime.done.wait()
        if runtime.failure is not None:
            raise runtime.failure
