"""Prometheus counters fed by :mod:`flowstage.hooks` (extra ``prometheus``).

``PrometheusInstrument`` is an instrument that counts stage starts, stops,
failures, discards and window triggers in ``prometheus_client`` metrics::

    from flowstage import hooks
    from flowstage.prometheus import PrometheusInstrument

    hooks.add_instrument(PrometheusInstrument())   # on prometheus_client's REGISTRY

Metrics (``flowstage`` is the default ``namespace``):

==========================================  =====================================
``flowstage_stage_starts_total``            ``stage``, ``kind``
``flowstage_stage_stops_total``             ``stage``, ``kind``, ``reason``
``flowstage_stage_failures_total``          ``stage``, ``kind``, ``exception``
``flowstage_events_discarded_total``        ``stage``, ``reason``
``flowstage_triggers_total``                ``stage``, ``trigger``
``flowstage_stages_running``  (gauge)       ``kind``
==========================================  =====================================

Labels stay low-cardinality: ``reason`` is ``"normal"``, ``"shutdown"`` or
``"other"``; ``exception`` is the exception's class name; ``trigger`` is the
trigger's name as text; window ids and event contents are never labels. Stage
names repeat across flows (``flow-layer1-stage0``), so flows run one after another
add to the same series.

``prometheus_client`` is imported when an instrument is made, never when flowstage
is; without it the constructor raises an ``ImportError`` that says how to install
it. Counting costs one labelled-counter increment per event (``prometheus_client``
caches the labelled children), cheap enough for every window trigger. Serving the metrics
(``prometheus_client.start_http_server``, or the ASGI/WSGI apps) is the
application's choice.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .hooks import (
    EventsDiscarded,
    Instrument,
    StageFailed,
    StageStarted,
    StageStopped,
    TriggerFired,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ("PrometheusInstrument",)


def _reason_label(reason: object) -> str:
    if reason == "normal" or reason == "shutdown":
        return str(reason)
    return "other"


class PrometheusInstrument(Instrument):
    """Counts hook events in Prometheus metrics (see the module docstring).

    Args:
        registry: where the metrics are registered (default: ``prometheus_client``'s
            global ``REGISTRY``). One instrument per registry: a second one raises
            ``ValueError`` (duplicated metrics), as ``prometheus_client`` does.
        namespace: the metric names' prefix.

    Raises:
        ImportError: ``prometheus_client`` is not installed.
        ValueError: ``namespace`` is not a valid metric name prefix, or the registry
            already has these metrics.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, namespace: str = "flowstage"
    ) -> None:
        try:
            import prometheus_client as prom
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "PrometheusInstrument needs prometheus_client: pip install 'flowstage[prometheus]'"
            ) from exc
        if not isinstance(namespace, str) or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", namespace):
            raise ValueError(
                "expected namespace to be a metric name prefix (letters, digits and _), "
                f"got: {namespace!r}"
            )
        reg = prom.REGISTRY if registry is None else registry
        #: The registry the metrics live in.
        self.registry: CollectorRegistry = reg
        #: Stage starts, by ``stage`` and ``kind``.
        self.starts: Counter = prom.Counter(
            "stage_starts",
            "Stage tasks started",
            ("stage", "kind"),
            namespace=namespace,
            registry=reg,
        )
        #: Stage ends without a failure, by ``stage``, ``kind`` and ``reason``.
        self.stops: Counter = prom.Counter(
            "stage_stops",
            "Stages ended without a failing callback",
            ("stage", "kind", "reason"),
            namespace=namespace,
            registry=reg,
        )
        #: Stage failures, by ``stage``, ``kind`` and ``exception`` (class name).
        self.failures: Counter = prom.Counter(
            "stage_failures",
            "Stages whose callback raised",
            ("stage", "kind", "exception"),
            namespace=namespace,
            registry=reg,
        )
        #: Discarded events, by ``stage`` and ``reason``.
        self.discarded: Counter = prom.Counter(
            "events_discarded",
            "Events dropped by a bounded buffer",
            ("stage", "reason"),
            namespace=namespace,
            registry=reg,
        )
        #: Window triggers fired, by ``stage`` and ``trigger``.
        self.triggers: Counter = prom.Counter(
            "triggers",
            "Window triggers fired by flow partitions",
            ("stage", "trigger"),
            namespace=namespace,
            registry=reg,
        )
        #: Stages running now, by ``kind``.
        self.running: Gauge = prom.Gauge(
            "stages_running", "Stages running now", ("kind",), namespace=namespace, registry=reg
        )

    def on_stage_started(self, event: StageStarted) -> None:
        self.starts.labels(event.stage, event.kind).inc()
        self.running.labels(event.kind).inc()

    def on_stage_stopped(self, event: StageStopped) -> None:
        self.stops.labels(event.stage, event.kind, _reason_label(event.reason)).inc()
        self.running.labels(event.kind).dec()

    def on_stage_failed(self, event: StageFailed) -> None:
        self.failures.labels(event.stage, event.kind, type(event.exception).__name__).inc()
        self.running.labels(event.kind).dec()

    def on_events_discarded(self, event: EventsDiscarded) -> None:
        self.discarded.labels(event.stage, event.reason).inc(event.count)

    def on_trigger_fired(self, event: TriggerFired) -> None:
        trigger = event.trigger
        name = trigger if isinstance(trigger, str) else repr(trigger)
        self.triggers.labels(event.stage, name).inc()

    def __repr__(self) -> str:
        return f"PrometheusInstrument(registry={self.registry!r})"
