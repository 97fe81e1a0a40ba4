"""Statistics of a running flow: plain snapshots, grouped by layer.

Every handle on a flow has ``statistics()``: the ``stream()`` iterator, the
``async for`` iterator (``flow.iterate()``), a running flow (``flow.start()``), and
``to_list(on_statistics=...)`` / ``run(on_statistics=...)`` hand the last snapshot
to a callback. The same snapshot comes from every executor: the process and Ray
executors collect their partitions' counters from the workers under the same
labels (a little behind: workers report about twice a second, and when they end).

A snapshot is immutable, picklable data (:class:`FlowStatistics` holding
:class:`LayerStatistics` holding :class:`~flowstage.StageStatistics`); taking
one never awaits. :meth:`FlowStatistics.to_dict` gives the JSON form the web
dashboard reads. :func:`watch_statistics` yields snapshots at an interval for as
long as the flow runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from ._flowstate import FlowState
from ._stats import StageStatistics

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = [
    "FlowState",
    "FlowStatistics",
    "HasStatistics",
    "LayerStatistics",
    "StageStatistics",
    "watch_statistics",
]


_STAGE_FIELDS = tuple(f.name for f in dataclasses.fields(StageStatistics))


@dataclass(frozen=True, slots=True)
class LayerStatistics:
    """The stages of one layer of a flow.

    ``index`` counts the groups of a snapshot from 0 (the sources); ``label`` says
    what the layer does: ``"sources"``, ``"from_iterable → flat_map"``,
    ``"partition(4) → reduce"``, ``"output"``. The properties sum the stages'
    counters.
    """

    index: int
    label: str
    stages: tuple[StageStatistics, ...]

    @property
    def events_in(self) -> int:
        """Events the layer's stages received."""
        return sum(s.events_in for s in self.stages)

    @property
    def events_out(self) -> int:
        """Events the layer's stages sent on."""
        return sum(s.events_out for s in self.stages)

    @property
    def batches_out(self) -> int:
        """Batches the layer's stages sent on."""
        return sum(s.batches_out for s in self.stages)

    @property
    def busy_seconds(self) -> float:
        """Seconds the layer's stages spent handling messages (summed over stages)."""
        return sum(s.busy_seconds for s in self.stages)

    @property
    def discarded(self) -> int:
        """Events the layer's stages dropped (full buffers, push overflow)."""
        return sum(s.discarded for s in self.stages)

    @property
    def buffered(self) -> int:
        """Events held in the layer's buffers."""
        return sum(s.buffered for s in self.stages)

    @property
    def buffer_size(self) -> int:
        """The layer's buffer capacity (summed over stages)."""
        return sum(s.buffer_size for s in self.stages)

    @property
    def demand_outstanding(self) -> int:
        """Demand asked for and not yet met, summed over the layer's stages."""
        return sum(s.demand_outstanding for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form: the sums above, and every stage's counters."""
        return {
            "index": self.index,
            "label": self.label,
            "events_in": self.events_in,
            "events_out": self.events_out,
            "batches_out": self.batches_out,
            "busy_seconds": self.busy_seconds,
            "discarded": self.discarded,
            "buffered": self.buffered,
            "buffer_size": self.buffer_size,
            "demand_outstanding": self.demand_outstanding,
            "stages": [{name: getattr(s, name) for name in _STAGE_FIELDS} for s in self.stages],
        }


@dataclass(frozen=True, slots=True)
class FlowStatistics:
    """A snapshot of a whole flow.

    ``layers`` holds the sources first, then each layer of the plan in order, then
    the output stage when the flow has one (acknowledgements, ``write_to``).
    ``events_in`` counts the events the sources emitted, ``events_out`` those the
    flow output (0 for ``run()`` and ``start()``, whose last layer emits nothing
    unless published); ``discarded`` every event a stage dropped; ``subscribers``
    and ``subscriber_dropped`` describe the fan-out of a published running flow.
    ``elapsed`` is the seconds since the flow started (until it ended, once it
    has).
    """

    state: FlowState
    elapsed: float
    layers: tuple[LayerStatistics, ...]
    events_in: int
    events_out: int
    discarded: int
    subscribers: int = 0
    subscriber_dropped: int = 0

    @property
    def rate_in(self) -> float:
        """Events per second the sources emitted, over :attr:`elapsed`."""
        return self.events_in / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def rate_out(self) -> float:
        """Events per second the flow output, over :attr:`elapsed`."""
        return self.events_out / self.elapsed if self.elapsed > 0 else 0.0

    def layer(self, label: str) -> LayerStatistics:
        """The first layer whose label is ``label`` (``KeyError`` if none)."""
        for layer in self.layers:
            if layer.label == label:
                return layer
        raise KeyError(label)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (``json.dumps`` takes it as it is)."""
        return {
            "state": self.state.value,
            "elapsed": self.elapsed,
            "events_in": self.events_in,
            "events_out": self.events_out,
            "discarded": self.discarded,
            "subscribers": self.subscribers,
            "subscriber_dropped": self.subscriber_dropped,
            "rate_in": self.rate_in,
            "rate_out": self.rate_out,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as one line of strict JSON (what the web dashboard's feed
        sends): no newline, and a number JSON cannot hold (``NaN``, infinity) is
        ``null``."""
        data = self.to_dict()
        try:
            return json.dumps(data, separators=(",", ":"), allow_nan=False)
        except ValueError:
            return json.dumps(_finite(data), separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


class HasStatistics(Protocol):
    """Anything :func:`watch_statistics` can watch: every flow handle."""

    def statistics(self) -> FlowStatistics: ...


async def watch_statistics(
    source: HasStatistics, interval: float = 1.0
) -> AsyncIterator[FlowStatistics]:
    """Yield ``source.statistics()`` now, then every ``interval`` seconds while the
    flow runs, then a last snapshot once it has ended, and stop.

    ``source`` is any flow handle (a running flow, a ``stream()`` iterator, an
    ``async for`` iterator). The generator only reads snapshots: leaving it early
    does not touch the flow.
    """
    if not interval > 0:
        raise ValueError(f"watch_statistics: interval must be > 0, got {interval!r}")
    while True:
        snapshot = source.statistics()
        yield snapshot
        if snapshot.state.ended:
            return
        await anyio.sleep(interval)
