"""``flowstage.prometheus.PrometheusInstrument``: hook events counted in real
``prometheus_client`` metrics, read back from the registry and its text exposition."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flowstage import Flow, StageGroup, Window, hooks

from .services import missing
from .stages import Counter

try:
    from prometheus_client import CollectorRegistry, generate_latest
except ImportError:  # pragma: no cover - the dev extra installs it
    CollectorRegistry = None

from flowstage.prometheus import PrometheusInstrument


@pytest.fixture
def registry() -> Iterator[Any]:
    if CollectorRegistry is None:
        missing("prometheus_client", "pip install 'flowstage[prometheus]' (or make test)")
    assert hooks.instruments() == ()
    yield CollectorRegistry()
    assert hooks.instruments() == ()


def value(registry: Any, name: str, **labels: str) -> float:
    got = registry.get_sample_value(name, labels)
    return 0.0 if got is None else float(got)


def total(x: int, acc: int) -> int:
    return acc + x


def explode(x: int) -> int:
    if x == 3:
        raise KeyError(x)
    return x


@pytest.mark.anyio
async def test_a_flow_counts_starts_stops_and_triggers(registry: Any) -> None:
    flow = (
        Flow.from_iterable(range(10))
        .partition(stages=2, window=Window.count(3))
        .reduce(int, total)
        .emit("state")
    )
    with hooks.instrumented(PrometheusInstrument(registry)):
        windows = await flow.to_list()
    for stage in ("flow-source0", "flow-layer0-stage0", "flow-layer0-stage1"):
        kind = "producer" if stage == "flow-source0" else "producer_consumer"
        assert value(registry, "flowstage_stage_starts_total", stage=stage, kind=kind) == 1
        assert (
            value(registry, "flowstage_stage_stops_total", stage=stage, kind=kind, reason="normal")
            == 1
        )
    triggers = sum(
        value(registry, "flowstage_triggers_total", stage=f"flow-layer0-stage{i}", trigger="done")
        for i in (0, 1)
    )
    assert triggers == len(windows)
    for kind in ("producer", "producer_consumer"):
        assert value(registry, "flowstage_stages_running", kind=kind) == 0
    text = generate_latest(registry).decode()
    assert 'flowstage_triggers_total{stage="flow-layer0-stage0",trigger="done"}' in text


@pytest.mark.anyio
async def test_failures_and_discards_are_counted(registry: Any) -> None:
    with hooks.instrumented(PrometheusInstrument(registry, namespace="app")):
        with pytest.raises(KeyError):
            await Flow.from_iterable(range(10), stages=1).map(explode).to_list()
        async with StageGroup() as g:
            p = g.start(Counter(name="counter", buffer_size=4))
            await p.call(("queue", list(range(10))))
            g.cancel()
    failed = [
        value(
            registry,
            "app_stage_failures_total",
            stage=f"flow-layer0-stage{i}",
            kind="producer_consumer",
            exception="KeyError",
        )
        for i in range(4)
    ]
    assert sum(failed) == 1
    assert value(registry, "app_events_discarded_total", stage="counter", reason="buffer_full") == 6
    assert (
        value(
            registry, "app_stage_stops_total", stage="counter", kind="producer", reason="shutdown"
        )
        == 1
    )


def test_bad_options_are_refused(registry: Any) -> None:
    with pytest.raises(ValueError, match="expected namespace"):
        PrometheusInstrument(registry, namespace="9lives")
    PrometheusInstrument(registry)
    with pytest.raises(ValueError, match=r"[Dd]uplicated"):
        PrometheusInstrument(registry)
