"""Helpers for testing code built on flowstage without sleeping."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from .. import lowlevel
from .._scope import StageGroup
from .._stage import Stage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["wait_quiescent", "wait_until"]


async def wait_quiescent(
    *targets: Stage | StageGroup | Iterable[Stage], rounds: int = 8, give_up_after: float = 30.0
) -> None:
    """Wait until the given stages (or every stage of the given groups) stop moving.

    Quiescent means: no stage handled a message during ``rounds`` consecutive
    scheduler passes, and every mailbox is empty or belongs to a stage parked in an
    ``async`` callback. Use it to drive demand step by step in tests instead of
    sleeping. ``give_up_after`` (seconds) only guards against a pipeline that never goes
    quiet (an infinite producer): it raises ``TimeoutError``; use :func:`wait_until`
    there.
    """
    stages: list[Stage] = []
    for target in targets:
        if isinstance(target, StageGroup):
            stages.extend(target.stages)
        elif isinstance(target, Stage):
            stages.append(target)
        else:
            stages.extend(target)
    stable = 0
    last = [lowlevel.messages_handled(s) for s in stages]
    with anyio.fail_after(give_up_after):
        while stable < rounds:
            await anyio.lowlevel.checkpoint()
            now = [lowlevel.messages_handled(s) for s in stages]
            if now == last:
                stable += 1
            else:
                stable = 0
                last = now


async def wait_until(predicate: Callable[[], object], *, give_up_after: float = 30.0) -> None:
    """Yield to the scheduler until ``predicate()`` is true.

    For pipelines that never go quiet (an infinite producer): each check runs after
    one scheduler pass, so no real time is spent sleeping. ``give_up_after`` (seconds) only
    guards against a hang and raises ``TimeoutError``.
    """
    with anyio.fail_after(give_up_after):
        while not predicate():
            await anyio.lowlevel.checkpoint()
