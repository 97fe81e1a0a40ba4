"""The low-level API: run stages inside your own task groups.

:class:`~flowstage.StageGroup` and :func:`~flowstage.stream` are the scopes most
code needs. This module is for code that builds its own: flow executors, and
drivers that run stages in slices. Everything the package's executors do with
stages goes through these functions, so a third-party executor can do the same.

Running a stage::

    lowlevel.claim(stage)                     # exactly once, before its task starts
    task_group.start_soon(lowlevel.run, stage)

``run(stage, until)`` returns (without stopping the stage) once ``until()`` is true
at a message boundary, and a later ``run`` resumes it; :func:`wake` makes a waiting
stage check ``until`` again. Between two slices no task of the stage exists.

Failures: :func:`collapse` turns the ``ExceptionGroup`` of a task group into the one
exception to raise, by the rule every scope of the package follows (see
:mod:`flowstage._errors`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import leaves
from ._public import fixup_module_metadata as _fixup_module_metadata
from ._scope import OwningScope
from ._scope import collapse_failures as collapse
from ._sources import AsyncIterableProducer, IterableProducer
from ._stream import EventSink
from ._subscription import INTERNAL_INFO

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._stage import Stage

__all__ = (
    "EventSink",
    "OwningScope",
    "claim",
    "close_source",
    "collapse",
    "is_started",
    "is_terminated",
    "leaves",
    "messages_handled",
    "post",
    "run",
    "wake",
)


def claim(stage: Stage) -> None:
    """Mark ``stage`` as started by the caller, who must then :func:`run` it.

    Raises:
        RuntimeError: the stage was already started (by a scope or another claim).
    """
    stage._claim()


async def run(stage: Stage, until: Callable[[], bool] | None = None) -> None:
    """The stage's task: returns when the stage stops normally, raises on failure.

    With ``until``, also returns (the stage stays alive) as soon as ``until()`` is
    true at a message boundary; calling ``run`` again resumes it.
    """
    await stage._run(until)


def is_started(stage: Stage) -> bool:
    """True once the stage was claimed or started by a scope."""
    return stage._started


def is_terminated(stage: Stage) -> bool:
    """True once the stage has stopped (normally or not)."""
    return stage._terminated


def wake(stage: Stage) -> None:
    """Wake ``stage`` so that a :func:`run` slice checks its ``until`` condition."""
    stage._wake()


def post(stage: Stage, message: object) -> None:
    """Deliver ``message`` to ``stage.handle_info`` from outside the stage's task.

    Unlike :meth:`Stage.send` it never raises ``WouldBlock`` and does not count
    against ``mailbox_limit``, so the caller must bound how many messages it posts
    (for example one wake-up at a time, coalescing what it has to say). Messages to
    a stopped stage are dropped.
    """
    stage._mailbox.put((INTERNAL_INFO, message))


def messages_handled(stage: Stage) -> int:
    """How many messages the stage has handled so far (a quiescence counter)."""
    return stage._messages


async def close_source(stage: Stage, *, quiet: bool = False) -> None:
    """Close the iterable a source producer reads from, if it did not end.

    An async generator (``from_async_iterable``) runs its cleanup now instead of
    whenever it is garbage collected, shielded from cancellation and bounded by the
    stage's ``close_timeout``; a generator (``from_iterable``) is closed with
    ``close()``. Other stages are left alone. Call it only when no task of the
    stage is running. An exception the cleanup raises propagates, or is logged on
    the ``flowstage`` logger with ``quiet=True`` (when another failure is already
    on its way).
    """
    if isinstance(stage, AsyncIterableProducer):
        await stage._close_iterator(quiet=quiet)
    elif isinstance(stage, IterableProducer):
        stage._close_generator(quiet=quiet)


_fixup_module_metadata(__name__, __all__)
