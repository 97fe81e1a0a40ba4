"""Exceptions raised by the stage engine, and the one rule for what a failed scope raises.

The failure rule
----------------

Every scope that runs stages (a :class:`~flowstage.StageGroup`, a
:func:`~flowstage.stream`, and a flow on any executor: ``stream()``,
``to_list()``, ``run()``, ``start()``, ``into_stages()`` and ``async for``) ends a
failure the same way, with :func:`collapse`:

1. Cancellations are ignored, and an exception object that several tasks raised
   (a failure travels to the stages next to it) counts once.
2. A :class:`StageExited` whose reason is another failure of the scope, or that
   repeats the reason of an earlier :class:`StageExited`, is a consequence, not a
   failure of its own. A :class:`StageExited` next to exactly one other failure is a
   consequence of it too.
3. One failure left: it is raised as it is, the original exception object with its
   traceback and notes (never wrapped in an ``ExceptionGroup``), so
   ``except TypeError:`` works whatever ran the stages.
4. Several independent failures that are all ``Exception``: the one that happened
   first is raised, with a note listing the others (``other stages failed too (suppressed):
   ...``).
5. Otherwise (a ``KeyboardInterrupt`` or another ``BaseException`` among several
   failures) the ``BaseExceptionGroup`` is raised.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from typing import Final

__all__ = ["StageExited", "collapse", "is_normal_reason", "leaves", "mark_failure"]

_sequence = itertools.count()

#: Exit reasons that end a stage without counting as a failure (GenStage's
#: ``:normal``, ``:shutdown`` and ``{:shutdown, _}``).
NORMAL_REASONS = frozenset({"normal", "shutdown"})

#: The attribute that records when a failure happened (see :func:`mark_failure`).
_ORDER: Final = "_flowstage_order"


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
        self.stage: str = stage
        self.reason: object = reason
        #: Creation order: the earliest of several exits with one reason is the root.
        self.sequence: int = next(_sequence)
        setattr(self, _ORDER, self.sequence)


def mark_failure(exc: BaseException) -> None:
    """Record that ``exc`` happened now, unless it was recorded already.

    The stage loop marks every exception a stage fails with, so that
    :func:`collapse` can tell which of several failures came first.
    """
    if getattr(exc, _ORDER, None) is None:
        with contextlib.suppress(AttributeError):  # exceptions with __slots__
            setattr(exc, _ORDER, next(_sequence))


def _order(exc: BaseException) -> float:
    order = getattr(exc, _ORDER, None)
    return math.inf if order is None else order


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc``, nested groups flattened, in group order."""
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for inner in exc.exceptions:
            out.extend(leaves(inner))
        return out
    return [exc]


def _reason_key(reason: object) -> object:
    if isinstance(reason, BaseException):
        return ("exception", id(reason))
    try:
        hash(reason)
    except TypeError:
        return ("object", id(reason))
    return ("value", reason)


def collapse(
    group: BaseExceptionGroup[BaseException],
    cancelled: type[BaseException] | tuple[type[BaseException], ...] = (),
) -> BaseException:
    """The exception a scope raises for the failures in ``group`` (see the module
    docstring for the rule).

    ``cancelled`` is the backend's cancellation exception class
    (``anyio.get_cancelled_exc_class()``), which never counts as a failure.
    """
    found: list[BaseException] = []
    seen: set[int] = set()
    for leaf in leaves(group):
        if (cancelled and isinstance(leaf, cancelled)) or id(leaf) in seen:
            continue
        seen.add(id(leaf))
        found.append(leaf)
    if not found:
        return group
    real = [e for e in found if not isinstance(e, StageExited)]
    if len(real) == 1:
        return real[0]
    exits: dict[object, StageExited] = {}
    for e in found:
        if isinstance(e, StageExited) and id(e.reason) not in seen:
            key = _reason_key(e.reason)
            if key not in exits or e.sequence < exits[key].sequence:
                exits[key] = e
    roots = real + list(exits.values())
    if len(roots) == 1:
        return roots[0]
    if not all(isinstance(e, Exception) for e in roots):
        return group
    roots.sort(key=_order)  # a stable sort: unrecorded failures keep group order
    first, others = roots[0], roots[1:]
    shown = ", ".join(repr(e) for e in others[:3])
    more = f" and {len(others) - 3} more" if len(others) > 3 else ""
    first.add_note(f"other stages failed too (suppressed): {shown}{more}")
    return first
