"""The per-partition programs: pure state machines any executor can host.

``make_program(layer, index, total)`` returns the :class:`StageProgram` of one
stage (one partition) of a plan layer: the layer's fused operations, its window and
triggers, with no clock, no I/O and no anyio, so the same code runs in the local
executor's stages, in worker processes and in cluster actors. :class:`Labels`
names the operation an exception came from, for the note every executor adds.
:func:`track_plan` rewrites a plan over acknowledged messages so that every event
keeps its lineage (:class:`Tracked`), which :class:`Ledger` settles at the end.

This package imports only the plan and the stage engine's pure parts below it.
"""

from .._public import fixup_module_metadata as _fixup_module_metadata
from ._cores import as_reduce as as_reduce
from ._labels import Labels as Labels
from ._labels import add_flow_note as add_flow_note
from ._labels import describe_layer as describe_layer
from ._labels import layer_label as layer_label
from ._labels import partition_note as partition_note
from ._labels import routing_note as routing_note
from ._lineage import MARK as MARK
from ._lineage import Ledger as Ledger
from ._lineage import Tracked as Tracked
from ._lineage import check_trackable as check_trackable
from ._lineage import track_plan as track_plan
from ._node import PartitionNode as PartitionNode
from ._node import adrive as adrive
from ._node import drive as drive
from ._program import StageProgram as StageProgram
from ._program import every_trigger as every_trigger
from ._program import layer_callbacks as layer_callbacks
from ._program import make_program as make_program

__all__ = (
    "MARK",
    "Labels",
    "Ledger",
    "PartitionNode",
    "StageProgram",
    "Tracked",
    "add_flow_note",
    "adrive",
    "as_reduce",
    "check_trackable",
    "describe_layer",
    "drive",
    "every_trigger",
    "layer_callbacks",
    "layer_label",
    "make_program",
    "partition_note",
    "routing_note",
    "track_plan",
)

_fixup_module_metadata(__name__, __all__)
