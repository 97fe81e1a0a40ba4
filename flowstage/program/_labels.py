"""Naming what failed: the operation and partition an exception came from.

Every executor adds the same note to an exception raised by a user callback, such
as ``in flow layer 1 (map), partition 0 of 2``: :class:`Labels` finds the failing
operation by matching the traceback's code objects against the layer's callbacks,
and against the program's own checks of what callbacks return (registered with
:func:`labelled`, so renaming a helper cannot silently lose its label).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from types import CodeType
from typing import Final, TypeVar

from ..plan import Emit, GroupBy, LayerPlan, Mapper, OnTrigger, Punctuation, Uniq

__all__ = [
    "Labels",
    "add_flow_note",
    "describe_layer",
    "labelled",
    "layer_label",
    "partition_note",
    "routing_note",
]

F = TypeVar("F", bound=Callable[..., object])

_NOTED: Final = "_flowstage_flow_noted"

#: Code objects of the program's checks, and the operation each one blames.
_INTERNAL: dict[CodeType, str] = {}


def labelled(label: str) -> Callable[[F], F]:
    """Register a program helper: an exception raised inside it is blamed on
    ``label`` (for example ``"on_trigger"`` for the check of its result)."""

    def register(fn: F) -> F:
        code = code_of(fn)
        if code is None:  # pragma: no cover - only plain functions are decorated
            raise TypeError(f"cannot label {fn!r}")
        _INTERNAL[code] = label
        return fn

    return register


def add_flow_note(exc: BaseException, note: str) -> None:
    """Add ``note`` to ``exc`` unless another flow note was added already (the
    innermost place that knows what failed wins)."""
    if isinstance(exc, Exception) and not getattr(exc, _NOTED, False):
        exc.add_note(note)
        with contextlib.suppress(AttributeError):  # exceptions with __slots__
            setattr(exc, _NOTED, True)


def code_of(fn: object) -> CodeType | None:
    """The code object a callable runs (through ``functools.partial`` and
    callable objects), if any."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    code = getattr(fn, "__code__", None)
    if isinstance(code, CodeType):
        return code
    code = getattr(type(fn).__dict__.get("__call__"), "__code__", None)
    return code if isinstance(code, CodeType) else None


def _op_names(layer: LayerPlan) -> list[str]:
    ops = layer.ops
    names: list[str] = []
    if layer.kind == "join" and layer.join is not None:
        names.append(f"{layer.join.mode} join")
    elif layer.kind == "departition":
        names.append("departition")
    names += ["map_batch"] * len(ops.map_batch)
    for m in ops.mappers:
        names.append(m.kind if isinstance(m, Mapper) else "uniq")
    red = ops.reducer
    if isinstance(red, GroupBy):
        names.append("group_by" if red.key is not None else "group_by_key")
    elif red is not None:
        names.append("emit_and_reduce" if red.emits else "reduce")
    if isinstance(ops.on_trigger, OnTrigger):
        names.append("on_trigger")
    elif isinstance(ops.on_trigger, Emit):
        names.append(f"emit {ops.on_trigger.mode}")
    if layer.window.type != "global":
        names.append(f"{layer.window.type} window")
    return names or ["identity"]


def describe_layer(layer: LayerPlan) -> str:
    """A short summary of what a layer does, such as ``map, filter, reduce``."""
    return ", ".join(_op_names(layer))


def layer_label(layer: LayerPlan) -> str:
    """How a layer is shown to people: where it starts and what it does, such as
    ``from_iterable(2) → flat_map`` or ``partition(4) → reduce``."""
    return f"{layer.origin}({layer.stages}) → {describe_layer(layer)}"


def routing_note(consumer: LayerPlan | None, partitions: int) -> str:
    """The note of a failure of the partition function feeding ``consumer``
    (``None``: the flow's output)."""
    what = "join key" if consumer is not None and consumer.kind == "join" else "partition key/hash"
    layer = "?" if consumer is None else str(consumer.index)
    return f"in flow layer {layer} ({what}), routing events to {partitions} partitions"


def partition_note(layer: LayerPlan, index: int, label: str) -> str:
    """The note for a failure in stage ``index`` of ``layer`` blamed on ``label``."""
    return f"in flow layer {layer.index} ({label}), partition {index} of {layer.stages}"


class Labels:
    """Maps the code objects of a layer's callbacks to operation names."""

    def __init__(self, layer: LayerPlan) -> None:
        self.summary: str = describe_layer(layer)
        codes: dict[CodeType, str] = dict(_INTERNAL)
        ops = layer.ops

        def add(fn: object, label: str) -> None:
            code = code_of(fn)
            if code is not None:
                codes[code] = label

        for b in ops.map_batch:
            add(b.fn, "map_batch")
        for m in ops.mappers:
            if isinstance(m, Uniq):
                add(m.key, "uniq_by")
            else:
                add(m.fn, m.kind)
        red = ops.reducer
        if isinstance(red, GroupBy):
            add(red.key, "group_by key")
            add(red.value, "group_by value")
        elif red is not None:
            name = "emit_and_reduce" if red.emits else "reduce"
            add(red.initial, f"{name} initial")
            add(red.fn, name)
        if isinstance(ops.on_trigger, OnTrigger):
            add(ops.on_trigger.fn, "on_trigger")
        w = layer.window
        add(w.by, "window by")
        if isinstance(w.punctuation, Punctuation):
            add(w.punctuation.initial, "window trigger initial")
            add(w.punctuation.fn, "window trigger")
        if layer.departition is not None:
            d = layer.departition
            add(d.initial, "departition initial")
            add(d.merge, "departition merge")
            add(d.done, "departition done")
        if layer.join is not None:
            add(layer.join.join, "join")
        self.codes = codes

    def of(self, exc: BaseException) -> str:
        """The innermost known callback in ``exc``'s traceback, else the summary."""
        label = None
        tb = exc.__traceback__
        codes = self.codes
        while tb is not None:
            found = codes.get(tb.tb_frame.f_code)
            if found is not None:
                label = found
            tb = tb.tb_next
        return label or self.summary
