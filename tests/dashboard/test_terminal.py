"""The terminal dashboard: the rows it computes from two snapshots (pure), the
table rich draws from them, and the live loop over a flow's statistics."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from rich.console import Console

from flowstage import Flow, StageStatistics
from flowstage.dashboard.terminal import (
    DashboardRow,
    dashboard_rows,
    render,
    show_dashboard,
    sparkline,
    summary_line,
)
from flowstage.statistics import FlowState, FlowStatistics, LayerStatistics


def stage(name: str, events_in: int, events_out: int, busy: float, **more: Any) -> StageStatistics:
    fields: dict[str, Any] = {
        "name": name,
        "kind": "producer_consumer",
        "running": True,
        "events_in": events_in,
        "events_out": events_out,
        "batches_in": 0,
        "batches_out": 0,
        "demand_outstanding": 0,
        "buffered": 0,
        "buffer_size": 0,
        "discarded": 0,
        "mailbox": 0,
        "producers": 1,
        "consumers": 1,
        "busy_seconds": busy,
    }
    fields.update(more)
    return StageStatistics(**fields)


def snapshot(
    elapsed: float,
    layers: list[tuple[str, list[StageStatistics]]],
    state: FlowState = FlowState.RUNNING,
    **more: Any,
) -> FlowStatistics:
    built = tuple(
        LayerStatistics(index=i, label=label, stages=tuple(stages))
        for i, (label, stages) in enumerate(layers)
    )
    return FlowStatistics(
        state=state,
        elapsed=elapsed,
        layers=built,
        events_in=built[0].events_out,
        events_out=built[-1].events_out,
        discarded=sum(layer.discarded for layer in built),
        **more,
    )


def two_snapshots() -> tuple[FlowStatistics, FlowStatistics]:
    before = snapshot(
        1.0,
        [
            ("from_iterable", [stage("source", 0, 1_000, 0.25)]),
            (
                "partition(2) → reduce",
                [stage("p0", 400, 0, 0.5), stage("p1", 600, 0, 0.5)],
            ),
        ],
    )
    after = snapshot(
        3.0,
        [
            ("from_iterable", [stage("source", 0, 5_000, 1.25, buffered=250, buffer_size=1000)]),
            (
                "partition(2) → reduce",
                [
                    stage("p0", 2_400, 0, 2.5, demand_outstanding=10),
                    stage("p1", 2_600, 0, 0.5, discarded=3),
                ],
            ),
        ],
    )
    return before, after


def by_key(rows: list[DashboardRow]) -> dict[tuple[int, str | None], DashboardRow]:
    return {(row.layer, row.stage): row for row in rows}


def test_rows_measure_rates_and_busy_time_between_two_snapshots() -> None:
    before, after = two_snapshots()
    rows = by_key(dashboard_rows(before, after))
    # One row per layer, plus one per stage for the layer with two stages.
    assert list(rows) == [(0, None), (1, None), (1, "p0"), (1, "p1")]
    source = rows[0, None]
    assert (source.events_out, source.rate_out) == (5_000, (5_000 - 1_000) / 2.0)
    assert source.busy_percent == pytest.approx(50.0)  # 1 s busy in 2 s
    assert source.buffer_fill == pytest.approx(0.25)
    reduce = rows[1, None]
    assert reduce.label == "partition(2) → reduce"
    assert reduce.stages == 2
    assert reduce.rate_in == pytest.approx((5_000 - 1_000) / 2.0)
    # 2 s busy of 2 stages x 2 s: 50 % on average.
    assert reduce.busy_percent == pytest.approx(50.0)
    assert (reduce.demand_outstanding, reduce.discarded) == (10, 3)
    assert reduce.buffer_fill is None
    assert rows[1, "p0"].rate_in == pytest.approx(1_000.0)
    assert rows[1, "p0"].busy_percent == pytest.approx(100.0)
    assert rows[1, "p1"].rate_in == pytest.approx(1_000.0)
    assert rows[1, "p1"].busy_percent == pytest.approx(0.0)


def test_without_a_previous_snapshot_rates_are_since_the_start() -> None:
    _before, after = two_snapshots()
    rows = by_key(dashboard_rows(None, after))
    assert rows[0, None].rate_out == pytest.approx(5_000 / 3.0)
    assert rows[1, "p0"].busy_percent == pytest.approx(2.5 / 3.0 * 100)


def test_stages_and_layers_new_since_the_previous_snapshot_count_from_zero() -> None:
    before, after = two_snapshots()
    renamed = snapshot(
        3.0,
        [
            ("from_iterable", list(after.layers[0].stages)),
            ("partition(2) → reduce", [after.layers[1].stages[0], stage("p9", 800, 0, 0.0)]),
            ("output", [stage("out", 100, 100, 0.0)]),
        ],
    )
    rows = by_key(dashboard_rows(before, renamed))
    assert rows[1, "p9"].rate_in == pytest.approx(800 / 2.0)
    assert rows[2, None].rate_in == pytest.approx(100 / 2.0)
    relabelled = snapshot(3.0, [("from_iterable", []), ("map", list(after.layers[1].stages))])
    assert by_key(dashboard_rows(before, relabelled))[1, None].rate_in == pytest.approx(2_500.0)


def test_stage_rows_caps_the_stages_shown_per_layer() -> None:
    before, after = two_snapshots()
    assert [r.stage for r in dashboard_rows(before, after, stage_rows=1)] == [None, None, "p0"]
    assert [r.stage for r in dashboard_rows(before, after, stage_rows=0)] == [None, None]
    with pytest.raises(ValueError, match="stage_rows must be an int >= 0"):
        dashboard_rows(before, after, stage_rows=-1)


def test_a_snapshot_taken_at_the_same_instant_gives_zero_rates() -> None:
    _before, after = two_snapshots()
    assert all(r.rate_in == r.rate_out == 0.0 for r in dashboard_rows(after, after))


def test_throughput_is_what_a_row_receives_or_else_what_it_emits() -> None:
    before, after = two_snapshots()
    rows = by_key(dashboard_rows(before, after))
    assert rows[0, None].throughput == rows[0, None].rate_out  # the source receives nothing
    assert rows[1, None].throughput == rows[1, None].rate_in


def test_sparkline_scales_to_the_largest_value() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([10, 10, 5]) == "██▅"
    assert sparkline([0.0, 0.0]) == "▁▁"
    assert sparkline([]) == ""
    assert sparkline(range(100), width=4) == sparkline([96, 97, 98, 99]) == "████"
    assert len(sparkline(range(100))) == 16
    assert sparkline([-5, 5]) == "▁█"  # a negative rate (a reset counter) counts as 0


def test_summary_line() -> None:
    before, after = two_snapshots()
    line = summary_line(before, after)
    assert line.startswith("running 3.0s")
    assert "in 5,000 (2,000/s)" in line
    assert "discarded 3" in line
    assert "subscribers" not in line
    published = snapshot(1.0, [("from_push", [stage("push", 0, 10, 0.0)])], subscribers=2)
    assert "subscribers 2 (dropped 0)" in summary_line(None, published)


def rendered(table: Any, width: int = 160) -> str:
    console = Console(file=io.StringIO(), force_terminal=False, width=width)
    console.print(table)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def test_render_draws_every_row_into_a_plain_console() -> None:
    before, after = two_snapshots()
    text = rendered(render(before, after))
    assert "running 3.0s" in text
    assert "1 partition(2) → reduce (2 stages)" in text
    for row in dashboard_rows(before, after):
        assert f"{row.events_in:,}" in text
    assert "250/1,000 (25%)" in text
    assert "2,000" in text  # out/s of the source


def test_render_adds_a_trend_per_layer_and_colours_full_buffers() -> None:
    before, after = two_snapshots()
    full = snapshot(
        3.0,
        [
            ("from_iterable", [stage("source", 0, 5_000, 1.0, buffered=950, buffer_size=1000)]),
            ("map", [stage("m", 5_000, 5_000, 1.0)]),
        ],
    )
    console = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=200)
    console.print(render(before, full, history={0: [1.0, 2.0, 4.0]}))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "trend" in text
    assert "▃▅█" in text
    assert "\x1b[1;31m950/1,000 (95%)" in text  # bold red: back-pressure or drops ahead
    assert "trend" not in rendered(render(before, after))  # no history, no column


def test_labels_are_shown_as_text_never_as_markup() -> None:
    evil = "[bold red]boom[/bold red] [link=http://example.com]x[/link]"
    snap = snapshot(
        1.0, [(evil, [stage(evil, 1, 1, 0.0), stage("[/]", 1, 1, 0.0)])], state=FlowState.DONE
    )
    text = rendered(render(None, snap), width=300)
    assert evil in text
    assert "[/]" in text


def test_render_without_rich_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    before, after = two_snapshots()
    with pytest.raises(ImportError, match=r"pip install 'flowstage\[dashboard\]'"):
        render(before, after)
    assert dashboard_rows(before, after)  # the pure part needs no rich


class Replay:
    """A flow handle whose ``statistics()`` returns the given snapshots in turn."""

    def __init__(self, snapshots: list[FlowStatistics]) -> None:
        self._snapshots: Iterator[FlowStatistics] = iter(snapshots)
        self.taken = 0

    def statistics(self) -> FlowStatistics:
        self.taken += 1
        return next(self._snapshots)


def replay() -> Replay:
    before, after = two_snapshots()
    done = snapshot(4.0, [(layer.label, list(layer.stages)) for layer in after.layers])
    return Replay([before, before, after, FlowStatistics(**{**asdict(done), "state": "done"})])


def asdict(stats: FlowStatistics) -> dict[str, Any]:
    return {name: getattr(stats, name) for name in FlowStatistics.__dataclass_fields__}


@pytest.mark.anyio
async def test_show_dashboard_prints_lines_then_the_table_when_not_a_terminal() -> None:
    source = replay()
    console = Console(file=io.StringIO(), force_terminal=False, width=160)
    last = await show_dashboard(source, interval=0.001, console=console)
    assert str(last.state) == "done"
    assert source.taken == 4  # the stage_rows check, then one per interval until done
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert lines[0].startswith("running 1.0s")
    assert lines[1].startswith("running 3.0s")
    assert lines[2].startswith("done 4.0s")  # the title of the table printed at the end
    assert sum(line.startswith(("running", "done")) for line in lines) == 3
    assert "1 partition(2) → reduce (2 stages)" in text


@pytest.mark.anyio
async def test_show_dashboard_redraws_in_place_on_a_terminal() -> None:
    source = replay()
    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    last = await show_dashboard(source, interval=0.001, console=console)
    assert str(last.state) == "done"
    text = console.file.getvalue()  # type: ignore[attr-defined]
    # One frame per snapshot (and the last one again when the display stops), each
    # moving the cursor back up over the previous one.
    frames = [text.find("running 1.0s"), text.find("running 3.0s"), text.find("done 4.0s")]
    assert -1 < frames[0] < frames[1] < frames[2]
    assert "\x1b[2K" in text[frames[0] : frames[2]]  # erase line: drawn over in place


@pytest.mark.anyio
async def test_show_dashboard_stops_after_seconds() -> None:
    before, _after = two_snapshots()
    source = Replay([before] * 1000)
    console = Console(file=io.StringIO(), force_terminal=False, width=160)
    last = await show_dashboard(source, interval=0.001, seconds=0, console=console)
    assert last is before
    assert source.taken == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interval": 0}, "interval must be a number > 0"),
        ({"interval": "1"}, "interval must be a number > 0"),
        ({"seconds": -1}, "seconds must be None or a number >= 0"),
        ({"stage_rows": 1.5}, "stage_rows must be an int >= 0"),
    ],
)
async def test_show_dashboard_rejects_bad_options(options: dict[str, Any], message: str) -> None:
    before, _after = two_snapshots()
    with pytest.raises(ValueError, match=message):
        await show_dashboard(Replay([before]), **options)


def count_words(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


def word_flow() -> Flow[tuple[str, int]]:
    lines = [f"w{i % 7} w{i % 3} w{i % 5}" for i in range(2_000)]
    return (
        Flow.from_iterable(lines, stages=1)
        .flat_map(str.split)
        .partition(stages=2)
        .reduce(dict, count_words)
    )


@pytest.mark.anyio
async def test_show_dashboard_beside_a_streamed_flow() -> None:
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    shown: list[FlowStatistics] = []

    async def dashboard(source: Any) -> None:
        shown.append(await show_dashboard(source, interval=0.01, console=console))

    async with word_flow().stream() as pairs, anyio.create_task_group() as tg:
        tg.start_soon(dashboard, pairs)
        counts = dict([pair async for pair in pairs])
    assert sum(counts.values()) == 6_000
    (last,) = shown
    assert str(last.state) == "done"
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for layer in last.layers:
        assert f"{layer.index} {layer.label}" in text
    assert f"{last.events_in:,}" in text


@pytest.mark.anyio
async def test_show_dashboard_of_a_running_flow() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    flow = word_flow().emit("nothing")
    async with flow.start() as running:
        last = await show_dashboard(running, interval=0.01, console=console)
        await running.wait()
    assert str(last.state) == "done"
    assert str(running.statistics().state) == "done"
    assert "partition(2)" in console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_show_dashboard_ends_when_the_flow_fails() -> None:
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    flow = Flow.from_iterable(range(100), stages=1).map(lambda x: 1 // (x - 50))
    shown: list[FlowStatistics] = []
    with pytest.raises(ZeroDivisionError):
        async with flow.start() as running:
            shown.append(await show_dashboard(running, interval=0.01, console=console))
    # The failure cancels the block, or the dashboard saw it first and returned: it
    # never hangs, and never reports the flow as anything but failed.
    assert [str(s.state) for s in shown] in ([], ["failed"])
    assert str(running.statistics().state) == "failed"
