"""The failure policy every executor follows: which exception the caller gets,
with which notes.

1. A scope that fails raises by the package's one rule
   (:func:`~flowstage.lowlevel.collapse`, documented in :mod:`flowstage._errors`):
   the original exception object, never an ``ExceptionGroup`` for one failure;
   the first of several independent failures, with a note listing the others.
2. An exception raised by a user callback carries one note naming where it
   happened: ``in flow layer 1 (map), partition 0 of 2`` (the layer, the operation
   found in the traceback, the partition); a source's own failure
   ``in flow-source0 (iterating the source iterable)``; a partition function's
   ``in flow layer 1 (partition key/hash), routing events to 4 partitions``.
   The innermost place that knows what failed adds it; later ones do not.
3. An executor that runs callbacks elsewhere (another process, an actor) raises the
   same exception type in the caller, with the remote traceback as a further note.

Executors build their notes with the functions below, so the wording is the same
whoever ran the flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lowlevel import collapse
from ..program import Labels, add_flow_note, partition_note, routing_note

if TYPE_CHECKING:
    from ..plan import LayerPlan

__all__ = [
    "add_flow_note",
    "collapse",
    "note_partition_failure",
    "routing_note",
    "source_note",
]


def note_partition_failure(
    exc: BaseException, layer: LayerPlan, index: int, labels: Labels | None = None
) -> None:
    """Note that ``exc`` was raised in stage ``index`` of ``layer``, naming the
    failing operation."""
    label = (labels or Labels(layer)).of(exc)
    add_flow_note(exc, partition_note(layer, index, label))


def source_note(name: str, asynchronous: bool) -> str:
    """The note of a failure raised while iterating a source."""
    kind = "async iterable" if asynchronous else "iterable"
    return f"in {name} (iterating the source {kind})"
