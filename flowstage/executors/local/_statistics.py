"""A :class:`~flowstage.statistics.FlowStatistics` snapshot of a local runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...plan import layer_label
from ...statistics import FlowStatistics, LayerStatistics

if TYPE_CHECKING:
    from ..._stats import StageStatistics
    from ._runtime import Runtime

__all__ = ["snapshot"]


def snapshot(runtime: Runtime) -> FlowStatistics:
    """The counters of every stage of the flow, grouped: sources, each layer of
    the plan (labelled by :func:`~flowstage.plan.layer_label`), the output stage.

    Stages of layers hosted elsewhere (worker processes, actors) come from what
    their hosts last reported (:meth:`Graph.layer_statistics`)."""
    graph = runtime.graph
    groups: list[LayerStatistics] = []
    sources = tuple(s.statistics() for s in graph.sources)
    foreign = tuple(s.statistics() for s in graph.foreign if s.kind == "producer")
    groups.append(LayerStatistics(0, "sources", sources + foreign))
    for layer in runtime.plan.layers:
        stages = graph.layer_statistics(layer.index)
        groups.append(LayerStatistics(len(groups), layer_label(layer), stages))
    ends: tuple[StageStatistics, ...] = ()
    if graph.end_stage is not None:
        ends = (graph.end_stage.statistics(),)
        groups.append(LayerStatistics(len(groups), "output", ends))
    events_in = sum(s.events_out for s in sources) + sum(s.events_out for s in foreign)
    if ends:
        events_out = ends[0].events_in if runtime.plan.sink == "run" else ends[0].events_out
    else:
        events_out = sum(s.statistics().events_out for s in graph.outputs)
    discarded = sum(layer.discarded for layer in groups)
    hub = runtime.hub
    return FlowStatistics(
        state=runtime.state,
        elapsed=runtime.elapsed(),
        layers=tuple(groups),
        events_in=events_in,
        events_out=events_out,
        discarded=discarded,
        subscribers=int(hub.subscribers) if hub is not None else 0,
        subscriber_dropped=int(hub.dropped) if hub is not None else 0,
    )
