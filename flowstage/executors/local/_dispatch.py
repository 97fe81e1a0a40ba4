"""Dispatchers of the local executor's stages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ...dispatchers import DemandDispatcher, Dispatcher, PartitionDispatcher
from .._failure import add_flow_note, routing_note

if TYPE_CHECKING:
    from collections.abc import Callable

    from ...plan import LayerPlan

__all__ = ["FlowPartitionDispatcher", "make_dispatcher"]


class FlowPartitionDispatcher(PartitionDispatcher[Any]):
    """A partition dispatcher whose hash errors carry a note naming the flow layer
    the events were being routed to."""

    __slots__ = ("_note",)

    def __init__(
        self,
        partitions: int,
        hash: Callable[[Any], tuple[Any, int] | None] | None,
        note: str,
    ) -> None:
        super().__init__(partitions, hash=hash)
        self._note = note

    def dispatch(self, events: list[Any]) -> list[Any]:
        try:
            return super().dispatch(events)
        except Exception as exc:
            add_flow_note(exc, self._note)
            raise


def make_dispatcher(
    kind: Literal["demand", "partition"],
    partitions: int,
    hash: Callable[[Any], tuple[Any, int] | None] | None,
    consumer: LayerPlan | None,
) -> Dispatcher[Any]:
    """The dispatcher a producer uses to feed ``consumer`` (``None``: the output)."""
    if kind != "partition":
        return DemandDispatcher()
    return FlowPartitionDispatcher(partitions, hash, routing_note(consumer, partitions))
