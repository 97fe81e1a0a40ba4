"""The state of a running flow, and what a shutdown did."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

__all__ = ["FlowState", "ShutdownOutcome", "ShutdownResult"]


class FlowState(enum.StrEnum):
    """Where a flow is in its life (``running.state``, ``statistics().state``).

    ``STARTING`` until every stage is started; ``RUNNING``; ``DRAINING`` once a
    :meth:`~flowstage.RunningFlow.shutdown` closed the sources and the flow
    finishes what it holds. Then exactly one of the three ends: ``DONE`` (every
    stage finished: the sources ended and everything was handled), ``STOPPED``
    (stopped or cancelled before that: ``stop()``, a shutdown deadline, the block
    left early) or ``FAILED`` (a stage raised; ``running.exception`` is the error).

    A ``str`` enum: ``state == "running"`` holds, and ``state.value`` is plain
    JSON.
    """

    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        """True for ``DONE``, ``STOPPED`` and ``FAILED``."""
        return self in _ENDED

    def __str__(self) -> str:
        return self.value


_ENDED = frozenset({FlowState.DONE, FlowState.STOPPED, FlowState.FAILED})

#: What :meth:`~flowstage.RunningFlow.shutdown` did.
ShutdownOutcome = Literal["drained", "cancelled", "already_done"]


@dataclass(frozen=True, slots=True)
class ShutdownResult:
    """What :meth:`~flowstage.RunningFlow.shutdown` did.

    ``outcome`` is ``"drained"`` (the flow finished everything it held within the
    deadline), ``"cancelled"`` (the deadline passed and the flow was stopped: events
    still inside it are lost) or ``"already_done"`` (it had ended before the call).
    ``state`` is the flow's state afterwards, ``seconds`` how long the shutdown
    took, ``exception`` the flow's failure if it failed (also while draining).
    """

    outcome: ShutdownOutcome
    state: FlowState
    seconds: float
    exception: BaseException | None = None
