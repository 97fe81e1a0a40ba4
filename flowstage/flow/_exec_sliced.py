"""``async for e in flow``: running a flow without keeping a task alive between events.

An ``async for`` loop can be left at any point (``break``, ``return``, an
exception), and nothing then closes what the loop was iterating over. So an
iterator must not hold a task group open between two ``__anext__`` calls: the
group would be closed later, by the garbage collector, in another task (anyio and
trio forbid that, PEP 789 describes the hazard).

:class:`SlicedFlowIterator` therefore runs the flow in *slices*: each
``__anext__`` that needs more events opens a task group, runs every stage of the
flow (``Stage._run(until=...)``) until the next chunk of output is available,
pauses them at a message boundary and closes the group before returning. Between
two calls no task exists, so leaving the loop leaves nothing running: the stages
are plain objects that are simply dropped. Events inside a chunk are returned
without any task switch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from .._sources import AsyncIterableProducer
from .._stream import _StreamIterator
from .._subscription import validate_subscription
from ._executor import _Runtime, collapse_flow_exception

if TYPE_CHECKING:
    from .._stage import Stage
    from ._plan import Plan

T = TypeVar("T")

__all__ = ["SlicedFlowIterator"]


class SlicedFlowIterator(Generic[T]):
    """The iterator behind ``async for e in flow`` (see the module docstring)."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._runtime: _Runtime | None = None
        self._sink: _StreamIterator[T] | None = None
        self._stages: list[Stage] = []
        self._pausing = False
        self._chunk: list[T] = []
        self._index = 0
        self._finished = False

    def __aiter__(self) -> SlicedFlowIterator[T]:
        return self

    async def __anext__(self) -> T:
        index = self._index
        chunk = self._chunk
        if index < len(chunk):
            self._index = index + 1
            return chunk[index]
        if self._finished:
            raise StopAsyncIteration
        if self._runtime is None:
            self._setup()
        if not await self._slice():
            self._finished = True
            raise StopAsyncIteration
        sink = self._sink
        assert sink is not None
        self._chunk = sink._chunk
        self._index = 1
        return self._chunk[0]

    async def aclose(self) -> None:
        """End the iteration (for ``contextlib.aclosing``). Nothing is running
        between two events, so there is nothing to stop; async sources that did
        not end are closed, so that their cleanup runs now."""
        self._finished = True
        self._chunk = []
        self._index = 0
        for stage in self._stages:
            if isinstance(stage, AsyncIterableProducer) and not stage._terminated:
                await stage._close_source()

    def _setup(self) -> None:
        runtime = self._runtime = _Runtime(self._plan)
        subs = runtime.output_subscriptions()
        runtime._pending = runtime.graph.expected
        sink: _StreamIterator[T] = _StreamIterator(self)  # type: ignore[arg-type]
        for producer, opts in subs:
            opts = dict(opts)
            options = validate_subscription(
                opts.pop("max_demand", None),
                opts.pop("min_demand", None),
                opts.pop("cancel", "transient"),
                opts,
            )
            sink._subscribe(producer, options)
        self._sink = sink
        stages = [s for s in runtime.graph.foreign if not s._started]
        stages += [s for s in runtime.graph.tracked if s not in stages]
        for stage in stages:
            stage._claim()
        self._stages = stages

    def _paused(self) -> bool:
        return self._pausing

    async def _slice(self) -> bool:
        """Run the stages until the sink has a chunk; False once the flow is over."""
        runtime = self._runtime
        sink = self._sink
        assert runtime is not None
        assert sink is not None
        live = [s for s in self._stages if not s._terminated]
        self._pausing = False
        result = False
        try:
            async with anyio.create_task_group() as tg:
                runtime._inner = tg
                timer = runtime._timer
                if timer is not None:
                    tg.start_soon(timer.run, name="flowstage:flow-timer")
                left = len(live)
                all_paused = anyio.Event()

                async def run(stage: Stage) -> None:
                    nonlocal left
                    try:
                        await stage._run(self._paused)
                    finally:
                        left -= 1
                        if left == 0:
                            all_paused.set()

                for stage in live:
                    tg.start_soon(run, stage, name=f"flowstage:{stage.name}")
                if runtime._pending <= 0:
                    runtime._release()
                try:
                    result = await sink._next_chunk()
                finally:
                    self._pausing = True
                    for stage in live:
                        stage._wake()
                if live:
                    await all_paused.wait()
                tg.cancel_scope.cancel()  # the timer, if any
        except BaseExceptionGroup as group:
            self._finished = True
            raise collapse_flow_exception(group, runtime._first_failure) from None
        finally:
            runtime._inner = None
        return result


def iterate(plan: Plan) -> SlicedFlowIterator[Any]:
    """The iterator for ``async for e in flow``."""
    return SlicedFlowIterator(plan)
