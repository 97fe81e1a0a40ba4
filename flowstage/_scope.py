"""Owning scopes: every stage runs inside a task group that outlives none of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from ._errors import StageExited
from ._stage import Stage

if TYPE_CHECKING:
    from types import TracebackType

    from anyio.abc import TaskGroup

__all__ = ["StageGroup", "collapse_exception_group"]


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for inner in exc.exceptions:
            out.extend(_leaves(inner))
        return out
    return [exc]


def collapse_exception_group(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """Return the single real failure inside ``group``, or ``group`` itself.

    Cancellations are ignored, so a stage failure that cancelled its siblings comes
    out as the original exception rather than wrapped in an ``ExceptionGroup``.
    """
    cancelled = anyio.get_cancelled_exc_class()
    leaves: list[BaseException] = []
    for exc in _leaves(group):
        if not isinstance(exc, cancelled) and not any(exc is seen for seen in leaves):
            leaves.append(exc)
    # One abnormal exit travels down a chain of stages (each consumer stops with its
    # producer's reason): keep only the root of each reason.
    roots: dict[int, StageExited] = {}
    others: list[BaseException] = []
    for exc in leaves:
        if isinstance(exc, StageExited):
            if any(exc.reason is other for other in leaves):
                continue
            key = id(exc.reason) if isinstance(exc.reason, BaseException) else hash_key(exc.reason)
            if key not in roots or exc.sequence < roots[key].sequence:
                roots[key] = exc
        else:
            others.append(exc)
    kept = others + sorted(roots.values(), key=lambda e: e.sequence)
    if len(kept) == 1:
        return kept[0]
    return group


def hash_key(reason: object) -> int:
    try:
        return hash(("reason", reason))
    except TypeError:
        return id(reason)


class StageGroup:
    """A scope that owns running stages::

        async with flowstage.StageGroup() as group:
            producer = group.start(Counter())
            consumer = group.start(Printer(subscribe_to=[producer]))
            await group.wait()          # until every stage has stopped

    Guarantees: leaving the block stops every stage still running (they are
    cancelled); nothing outlives the block. If a stage fails, the others are
    cancelled and the original exception is raised from the ``async with``, with a
    note naming the stage (several failures come out as an ``ExceptionGroup``).
    """

    def __init__(self) -> None:
        self._tg: TaskGroup | None = None
        self._stages: list[Stage] = []
        self._live = 0
        self._all_done: anyio.Event | None = None

    async def __aenter__(self) -> StageGroup:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        assert tg is not None
        tg.cancel_scope.cancel()
        try:
            return await tg.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            raise collapse_exception_group(group) from None

    def start(self, stage: Stage) -> Stage:
        """Start ``stage`` as a task of this group and return it."""
        if self._tg is None:
            raise RuntimeError("StageGroup.start() must be called inside 'async with'")
        if not isinstance(stage, Stage):
            raise TypeError(f"expected a stage, got: {stage!r}")
        stage._claim()
        self._stages.append(stage)
        self._live += 1
        self._tg.start_soon(self._run_stage, stage, name=f"flowstage:{stage.name}")
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
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
