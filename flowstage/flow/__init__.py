"""Flow: parallel computations over stages (a port of Elixir's Flow).

Public names: :class:`Flow`, :class:`Window`; for executors: :func:`compile_flow`,
the plan types and :func:`make_program`.
"""

from ._builder import Flow as Flow
from ._plan import (
    AsyncIterableSource as AsyncIterableSource,
)
from ._plan import (
    DepartitionSpec as DepartitionSpec,
)
from ._plan import (
    Dispatch as Dispatch,
)
from ._plan import (
    IterableSource as IterableSource,
)
from ._plan import (
    JoinSpec as JoinSpec,
)
from ._plan import (
    LayerInput as LayerInput,
)
from ._plan import (
    LayerOps as LayerOps,
)
from ._plan import (
    LayerPlan as LayerPlan,
)
from ._plan import (
    PartitionOutput as PartitionOutput,
)
from ._plan import (
    Plan as Plan,
)
from ._plan import (
    StagesSource as StagesSource,
)
from ._plan import (
    ThroughStagesSource as ThroughStagesSource,
)
from ._plan import (
    compile_flow as compile_flow,
)
from ._program import StageProgram as StageProgram
from ._program import make_program as make_program
from ._window import Window as Window

__all__ = (
    "AsyncIterableSource",
    "DepartitionSpec",
    "Dispatch",
    "Flow",
    "IterableSource",
    "JoinSpec",
    "LayerInput",
    "LayerOps",
    "LayerPlan",
    "PartitionOutput",
    "Plan",
    "StageProgram",
    "StagesSource",
    "ThroughStagesSource",
    "Window",
    "compile_flow",
    "make_program",
)
