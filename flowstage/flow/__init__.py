"""Flow: parallel computations over stages (a port of Elixir's Flow).

The builder: :class:`Flow` (and :class:`Window`, the window description it takes).
``Flow.plan()`` compiles a flow into a :class:`flowstage.plan.Plan`, which the
executors of :mod:`flowstage.executors` run.
"""

from .._public import fixup_module_metadata as _fixup_module_metadata
from ..plan import Window as Window
from ._builder import Flow as Flow
from ._builder import FromPush as FromPush
from ._builder import ReducedFlow as ReducedFlow
from ._compile import CompiledFlow as CompiledFlow
from ._compile import FlowSpec as FlowSpec
from ._compile import compile_flow as compile_flow

__all__ = (
    "CompiledFlow",
    "Flow",
    "FlowSpec",
    "FromPush",
    "ReducedFlow",
    "Window",
    "compile_flow",
)

_fixup_module_metadata(__name__, __all__)
