"""What a layer does, in a few words (statistics, dashboards, error messages)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._ops import Emit, GroupBy, MapBatch, Mapper, OnTrigger, Reduce, Uniq

if TYPE_CHECKING:
    from ._types import LayerPlan

__all__ = ["layer_label"]

#: Origins that start a layer of several partitions fed by a dispatcher.
_COUNTED = ("partition", "shuffle", "join", "departition")


def layer_label(layer: LayerPlan) -> str:
    """The builder calls behind ``layer``: its origin, then its operations.

    For example ``"from_iterable → flat_map"``, ``"partition(4) → reduce"``,
    ``"inner join(2)"``, ``"departition"``. The same plan always gives the same
    labels, in every process.
    """
    head = layer.origin
    if layer.stages > 1 or any(word in head for word in _COUNTED):
        head = f"{head}({layer.stages})"
    parts = [head]
    ops = layer.ops
    parts += ["map_batch" for op in ops.map_batch if isinstance(op, MapBatch)]
    for op in ops.mappers:
        parts.append(op.kind if isinstance(op, Mapper) else "uniq" if isinstance(op, Uniq) else "?")
    reducer = ops.reducer
    if isinstance(reducer, Reduce):
        parts.append("emit_and_reduce" if reducer.emits else "reduce")
    elif isinstance(reducer, GroupBy):
        parts.append("group_by" if reducer.key is not None else "group_by_key")
    trigger = ops.on_trigger
    if isinstance(trigger, OnTrigger):
        parts.append("on_trigger")
    elif isinstance(trigger, Emit):
        parts.append(f"emit({trigger.mode})")
    return " → ".join(parts)
