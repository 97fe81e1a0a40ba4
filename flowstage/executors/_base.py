"""The executor seam: what every way of running a plan provides.

An executor takes a compiled :class:`~flowstage.plan.Plan` and its
:class:`~flowstage.plan.Bindings` (the live objects the plan refers to) and runs
it. Three entry points, one per way of consuming a flow:

* :meth:`Executor.open_stream` -- ``async with`` it to get a :class:`FlowIterator`
  over the output (``Flow.stream()``, ``to_list()``, ``run()``);
* :meth:`Executor.start` -- ``async with`` it to get a :class:`RunningFlow`
  (``Flow.start()``, ``Flow.into_stages()``);
* :meth:`Executor.iterate` -- a plain async iterator for ``async for e in flow``,
  which must leave nothing running when the loop is left at any point.

Every executor ends failures the same way (see :mod:`flowstage.executors._failure`),
and leaves no task, process or actor behind after any ending.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager

    from .._fanout import FlowSubscription
    from .._fanout_queue import SlowPolicy
    from .._flowstate import FlowState, ShutdownResult
    from ..plan import Bindings, Plan
    from ..statistics import FlowStatistics

__all__ = ["AsyncForIterator", "Executor", "FlowIterator", "RunningFlow"]

T = TypeVar("T")


@runtime_checkable
class FlowIterator(Protocol[T]):
    """The output of a running flow: events one by one, or a batch at a time."""

    def __aiter__(self) -> AsyncIterator[T]: ...

    async def __anext__(self) -> T: ...

    def batches(self) -> AsyncIterator[list[T]]:
        """Yield the events a batch at a time (each batch a new list)."""
        ...

    def statistics(self) -> FlowStatistics:
        """A snapshot of the flow's counters, grouped by layer."""
        ...


@runtime_checkable
class AsyncForIterator(Protocol[T]):
    """The iterator behind ``async for e in flow`` (``Flow.iterate()``): it runs the
    flow only while it is iterated. ``aclose()`` (as ``contextlib.aclosing`` calls
    it) closes the flow's sources at once when the loop is left early."""

    def __aiter__(self) -> AsyncForIterator[T]: ...

    async def __anext__(self) -> T: ...

    async def aclose(self) -> None:
        """End the iteration and close the sources that did not end."""
        ...

    def statistics(self) -> FlowStatistics:
        """A snapshot of the flow's counters, grouped by layer."""
        ...


@runtime_checkable
class RunningFlow(Protocol):
    """A flow running in the background (``async with flow.start() as running``)."""

    @property
    def done(self) -> bool:
        """True once the flow has ended in any way."""
        ...

    @property
    def exception(self) -> BaseException | None:
        """The exception the flow failed with, or ``None``."""
        ...

    @property
    def state(self) -> FlowState:
        """Where the flow is in its life (see :class:`~flowstage.FlowState`)."""
        ...

    def statistics(self) -> FlowStatistics:
        """A snapshot of the flow's counters, grouped by layer."""
        ...

    async def shutdown(self, timeout: float = 5.0) -> ShutdownResult:  # noqa: ASYNC109
        """Close the sources, let the flow drain for up to ``timeout`` seconds,
        then stop it; return what happened."""
        ...

    def trigger(self, name: object) -> None:
        """Fire trigger ``name`` on every open window of the last reducing layer."""

    def stop(self) -> None:
        """Stop the flow now (no error is raised)."""

    def subscribe(
        self, buffer: int = 1000, slow: SlowPolicy = "drop_oldest"
    ) -> FlowSubscription[Any]:
        """Subscribe to the flow's output (only for ``flow.start(publish=True)``)."""
        ...

    async def wait(self) -> None:
        """Return once the flow has ended (raise its failure, if it failed)."""


@runtime_checkable
class Executor(Protocol):
    """Runs plans. Pass one as ``executor=`` to any way of running a flow.

    ``name`` is what :func:`~flowstage.executors.resolve` knows it by
    (``"local"``, ``"process"``, ...).
    """

    name: ClassVar[str]

    def open_stream(
        self, plan: Plan, bindings: Bindings
    ) -> AbstractAsyncContextManager[FlowIterator[object]]:
        """Run ``plan``; the context manager gives the iterator over its output and
        stops the flow when left."""
        ...

    def start(self, plan: Plan, bindings: Bindings) -> AbstractAsyncContextManager[RunningFlow]:
        """Run ``plan`` (sink ``"run"`` or ``"into_stages"``) in the background."""
        ...

    def iterate(self, plan: Plan, bindings: Bindings) -> AsyncForIterator[object]:
        """An iterator for ``async for``: runs the flow only while it is iterated,
        and leaves nothing running when the loop is left."""
        ...
