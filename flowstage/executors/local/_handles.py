"""The handles the local executor gives out: a flow stream and a running flow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._graph import Graph
from ._runtime import Runtime

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from ..._stage import Stage
    from ..._stream import EventSink, EventStream
    from ...plan import Bindings, Plan

__all__ = ["LocalFlowStream", "LocalRunningFlow"]

T = TypeVar("T")


class LocalFlowStream(Generic[T]):
    """``async with`` it to run the flow and iterate over its output.

    The iterator (an :class:`~flowstage.lowlevel.EventSink`) also has
    ``batches()``. The iteration ends when every output stage has finished; leaving
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

    async def __aenter__(self) -> EventSink[T]:
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
        return it

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
