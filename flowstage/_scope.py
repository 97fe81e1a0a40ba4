"""Owning scopes: every stage runs inside a task group that outlives none of them.

:class:`OwningScope` is the one way the package enters and leaves such a task
group: :class:`StageGroup`, :func:`~flowstage.stream` and every flow executor use
it, so they all end the same way: leaving the scope cancels what still runs, waits
for it, and raises a failure by the rule of :mod:`flowstage._errors`
(:func:`~flowstage._errors.collapse`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import anyio

from ._errors import collapse
from ._stage import Stage

if TYPE_CHECKING:
    from types import TracebackType

    from anyio.abc import TaskGroup

__all__ = ["OwningScope", "StageGroup", "collapse_failures"]

S = TypeVar("S", bound=Stage)


def collapse_failures(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """:func:`~flowstage._errors.collapse` with the running backend's cancellation
    class (call it inside the event loop)."""
    return collapse(group, anyio.get_cancelled_exc_class())


class OwningScope:
    """A task group entered and left by hand, with the package's failure rule.

    ``await scope.enter()`` opens it and returns the task group;
    ``await scope.exit(exc)`` cancels everything still running in it, waits for it,
    and raises what :func:`~flowstage._errors.collapse` says (never an
    ``ExceptionGroup`` with a single failure). ``exit`` returns True when the
    exception ``exc`` passed in was suppressed by the group.
    """

    __slots__ = ("_tg",)

    def __init__(self) -> None:
        self._tg: TaskGroup | None = None

    @property
    def task_group(self) -> TaskGroup:
        tg = self._tg
        if tg is None:
            raise RuntimeError("the scope is not open")
        return tg

    async def enter(self) -> TaskGroup:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return tg

    def cancel(self) -> None:
        """Cancel everything running in the scope."""
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    async def exit(self, exc: BaseException | None = None) -> bool:
        tg = self.task_group
        tg.cancel_scope.cancel()
        try:
            if exc is None:
                return bool(await tg.__aexit__(None, None, None))
            return bool(await tg.__aexit__(type(exc), exc, exc.__traceback__))
        except BaseExceptionGroup as group:
            raise collapse_failures(group) from None

    def start(self, stage: Stage) -> None:
        """Claim ``stage`` and run it as a task of the scope."""
        stage._claim()
        self.task_group.start_soon(stage._run, name=f"flowstage:{stage.name}")


class StageGroup:
    """A scope that owns running stages::

        async with flowstage.StageGroup() as group:
            producer = group.start(Counter())
            consumer = group.start(Printer(subscribe_to=[producer]))
            await group.wait()          # until every stage has stopped

    Guarantees: leaving the block stops every stage still running (they are
    cancelled); nothing outlives the block. If a stage fails, the others are
    cancelled and the original exception is raised from the ``async with``, with a
    note naming the stage; when several stages fail independently, the first
    failure is raised with a note listing the others (the rule of
    :mod:`flowstage._errors`, the same for every scope).
    """

    def __init__(self) -> None:
        self._scope = OwningScope()
        self._open = False
        self._stages: list[Stage] = []
        self._live = 0
        self._all_done: anyio.Event | None = None

    async def __aenter__(self) -> StageGroup:
        await self._scope.enter()
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._open = False
        return await self._scope.exit(exc)

    def start(self, stage: S) -> S:
        """Start ``stage`` as a task of this group and return it."""
        if not self._open:
            raise RuntimeError("StageGroup.start() must be called inside 'async with'")
        if not isinstance(stage, Stage):
            raise TypeError(f"expected a stage, got: {stage!r}")
        stage._claim()
        self._stages.append(stage)
        self._live += 1
        self._scope.task_group.start_soon(self._run_stage, stage, name=f"flowstage:{stage.name}")
        return stage

    async def _run_stage(self, stage: Stage) -> None:
        try:
            await stage._run()
        finally:
            self._live -= 1
            if self._live == 0 and self._all_done is not None:
                self._all_done.set()
                self._all_done = None

    @property
    def stages(self) -> tuple[Stage, ...]:
        """Every stage started in this group."""
        return tuple(self._stages)

    async def wait(self) -> None:
        """Return once every stage started so far has stopped."""
        while self._live > 0:
            if self._all_done is None:
                self._all_done = anyio.Event()
            await self._all_done.wait()

    def cancel(self) -> None:
        """Cancel every stage now (the ``async with`` block is cancelled too)."""
        self._scope.cancel()
