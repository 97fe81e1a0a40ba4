"""The plan: the contract between the ``Flow`` builder and the executors.

``Flow.plan()`` compiles a flow into a :class:`Plan`: frozen records holding only
user callables, numbers and strings, versioned (:data:`PLAN_VERSION`), comparable,
and picklable when the callbacks are. Live objects (source iterables, running
stages) are referenced by :class:`LocalRef` and resolved through :class:`Bindings`,
which stay in the process that built the flow. :func:`check_portable` lists what
would stop a plan from running in another process.

This package imports only the stage engine below it.
"""

from .._hash import ItemKey as ItemKey
from .._public import fixup_module_metadata as _fixup_module_metadata
from ._callables import JoinHash as JoinHash
from ._callables import MergeSorted as MergeSorted
from ._callables import identity as identity
from ._labels import layer_label as layer_label
from ._ops import Emit as Emit
from ._ops import GroupBy as GroupBy
from ._ops import LayerOps as LayerOps
from ._ops import MapBatch as MapBatch
from ._ops import Mapper as Mapper
from ._ops import MapperKind as MapperKind
from ._ops import OnTrigger as OnTrigger
from ._ops import Operation as Operation
from ._ops import Reduce as Reduce
from ._ops import Reducer as Reducer
from ._ops import Uniq as Uniq
from ._portable import PortabilityProblem as PortabilityProblem
from ._portable import Serializer as Serializer
from ._portable import check_portable as check_portable
from ._refs import Bindings as Bindings
from ._refs import LocalRef as LocalRef
from ._types import JOIN_MODES as JOIN_MODES
from ._types import PLAN_VERSION as PLAN_VERSION
from ._types import AsyncIterableSource as AsyncIterableSource
from ._types import DepartitionSpec as DepartitionSpec
from ._types import DepartitionTag as DepartitionTag
from ._types import Dispatch as Dispatch
from ._types import IterableSource as IterableSource
from ._types import JoinMode as JoinMode
from ._types import JoinSpec as JoinSpec
from ._types import LayerInput as LayerInput
from ._types import LayerKind as LayerKind
from ._types import LayerPlan as LayerPlan
from ._types import MessageSource as MessageSource
from ._types import OutputEnd as OutputEnd
from ._types import OutputTag as OutputTag
from ._types import PartitionOutput as PartitionOutput
from ._types import Plan as Plan
from ._types import PlanVersionError as PlanVersionError
from ._types import PushSource as PushSource
from ._types import Sink as Sink
from ._types import Source as Source
from ._types import StagesSource as StagesSource
from ._types import TakeSortTag as TakeSortTag
from ._types import ThroughStagesSource as ThroughStagesSource
from ._types import TriggerInfo as TriggerInfo
from ._types import require_version as require_version
from ._window import EveryTrigger as EveryTrigger
from ._window import Punctuation as Punctuation
from ._window import Window as Window
from ._window import WindowType as WindowType

__all__ = (
    "JOIN_MODES",
    "PLAN_VERSION",
    "AsyncIterableSource",
    "Bindings",
    "DepartitionSpec",
    "DepartitionTag",
    "Dispatch",
    "Emit",
    "EveryTrigger",
    "GroupBy",
    "ItemKey",
    "IterableSource",
    "JoinHash",
    "JoinMode",
    "JoinSpec",
    "LayerInput",
    "LayerKind",
    "LayerOps",
    "LayerPlan",
    "MessageSource",
    "OutputEnd",
    "LocalRef",
    "MapBatch",
    "Mapper",
    "MapperKind",
    "MergeSorted",
    "OnTrigger",
    "Operation",
    "OutputTag",
    "PartitionOutput",
    "Plan",
    "PlanVersionError",
    "PortabilityProblem",
    "PushSource",
    "Punctuation",
    "Reduce",
    "Reducer",
    "Serializer",
    "Sink",
    "Source",
    "StagesSource",
    "TakeSortTag",
    "ThroughStagesSource",
    "TriggerInfo",
    "Uniq",
    "Window",
    "WindowType",
    "check_portable",
    "identity",
    "layer_label",
    "require_version",
)

_fixup_module_metadata(__name__, __all__)
