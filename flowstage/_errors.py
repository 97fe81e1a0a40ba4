"""Exceptions raised by the stage engine."""

from __future__ import annotations

import itertools

_sequence = itertools.count()

__all__ = ["StageExited", "is_normal_reason"]

#: Exit reasons that end a stage without counting as a failure (GenStage's
#: ``:normal``, ``:shutdown`` and ``{:shutdown, _}``).
NORMAL_REASONS = frozenset({"normal", "shutdown"})


def is_normal_reason(reason: object) -> bool:
    """Return True for ``"normal"``, ``"shutdown"`` and ``("shutdown", anything)``."""
    if isinstance(reason, str):
        return reason in NORMAL_REASONS
    return isinstance(reason, tuple) and len(reason) == 2 and reason[0] == "shutdown"


class StageExited(Exception):
    """A stage stopped with an abnormal reason that is not an exception.

    Raised out of the scope that owns the stage (a :class:`~flowstage.StageGroup` or a
    :func:`~flowstage.stream`), for example when a consumer with a ``permanent``
    subscription sees its producer stop with ``"oops"``, or when a stream's producer
    is not running (``reason == "noproc"``).
    """

    def __init__(self, stage: str, reason: object) -> None:
        super().__init__(f"stage {stage} exited with reason {reason!r}")
        self.stage = stage
        self.reason = reason
        #: Creation order: the earliest of several exits with one reason is the root.
        self.sequence = next(_sequence)
