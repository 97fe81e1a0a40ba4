"""A terminal dashboard of a running flow (``pip install 'flowstage[dashboard]'``).

:func:`show_dashboard` draws a table of the flow's layers and their stages with
rich and updates it in place, every ``interval`` seconds, until the flow ends (or
for ``seconds``)::

    async with flow.stream() as events, anyio.create_task_group() as tg:
        tg.start_soon(show_dashboard, events)
        async for event in events:
            ...

Per layer (and per stage, under it): events in and out, throughput between two
snapshots, outstanding demand, buffer fill (yellow from half full, red from 90 %),
busy % and discards, and each layer's recent throughput as a sparkline; above the
table, the flow's state, age and totals.

Guarantees:

* it only reads :class:`~flowstage.statistics.FlowStatistics` snapshots: event
  contents are never shown, and stage and layer labels are shown as plain text
  (never parsed as rich markup);
* :func:`dashboard_rows`, :func:`summary_line` and :func:`sparkline` are pure
  functions (no terminal, no rich): what the table shows, as plain data;
* rich is imported only by :func:`render` and :func:`show_dashboard`; without it
  they raise ``ImportError`` naming ``pip install 'flowstage[dashboard]'``;
* on a console that is not a terminal (a pipe, a CI log) :func:`show_dashboard`
  prints one summary line per interval and the table once at the end instead of
  redrawing (on a console of its own, 160 columns wide at least).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rich.console import Console
    from rich.table import Table

    from ..statistics import FlowStatistics, HasStatistics, LayerStatistics
    from ..statistics import StageStatistics as _Stage

__all__ = (
    "DashboardRow",
    "dashboard_rows",
    "render",
    "show_dashboard",
    "sparkline",
    "summary_line",
)

_INSTALL = "pip install 'flowstage[dashboard]'"
_ENDED = frozenset({"done", "stopped", "failed"})
_LOG_WIDTH = 160
_TREND = 16


@dataclass(frozen=True, slots=True)
class DashboardRow:
    """One line of the dashboard table: a layer (``stage`` is ``None``) or one of
    its stages. Rates are events per second between the two snapshots given to
    :func:`dashboard_rows` (since the start when there is no earlier one)."""

    #: The layer's index in the snapshot (0: the sources).
    layer: int
    #: The layer's label (``"partition(4) → reduce"``), the same on its stage rows.
    label: str
    #: The stage's name, or ``None`` on a layer's row.
    stage: str | None
    #: Stages in the layer (1 on a stage's row).
    stages: int
    #: Events received (a layer: summed over its stages).
    events_in: int
    #: Events sent on.
    events_out: int
    #: Events received per second between the two snapshots.
    rate_in: float
    #: Events sent on per second between the two snapshots.
    rate_out: float
    #: Demand asked for and not yet met.
    demand_outstanding: int
    #: Events held in buffers.
    buffered: int
    #: Buffer capacity (0: no buffer, as for consumers).
    buffer_size: int
    #: Percent of the interval the stages spent handling messages (a layer: the
    #: average over its stages, so 100 means every stage was busy all the time).
    busy_percent: float
    #: Events dropped (full buffers, push overflow).
    discarded: int

    @property
    def buffer_fill(self) -> float | None:
        """``buffered / buffer_size`` (0.0 to 1.0), or ``None`` without a buffer."""
        return self.buffered / self.buffer_size if self.buffer_size else None

    @property
    def throughput(self) -> float:
        """Events per second through the row: received, or emitted for a row that
        receives nothing (the sources)."""
        return self.rate_in if self.events_in else self.rate_out


def _interval(previous: FlowStatistics | None, current: FlowStatistics) -> float:
    if previous is None:
        return current.elapsed
    return current.elapsed - previous.elapsed


def _rate(now: float, before: float, seconds: float) -> float:
    return max(0.0, now - before) / seconds if seconds > 0 else 0.0


def _row(
    layer: LayerStatistics,
    stage: _Stage | None,
    before: _Stage | LayerStatistics | None,
    seconds: float,
) -> DashboardRow:
    now: _Stage | LayerStatistics = layer if stage is None else stage
    count = len(layer.stages) if stage is None else 1
    in0 = before.events_in if before is not None else 0
    out0 = before.events_out if before is not None else 0
    busy0 = before.busy_seconds if before is not None else 0.0
    busy = _rate(now.busy_seconds, busy0, seconds) / max(count, 1) * 100.0
    return DashboardRow(
        layer=layer.index,
        label=layer.label,
        stage=None if stage is None else stage.name,
        stages=count,
        events_in=now.events_in,
        events_out=now.events_out,
        rate_in=_rate(now.events_in, in0, seconds),
        rate_out=_rate(now.events_out, out0, seconds),
        demand_outstanding=now.demand_outstanding,
        buffered=now.buffered,
        buffer_size=now.buffer_size,
        busy_percent=min(100.0, busy),
        discarded=now.discarded,
    )


def dashboard_rows(
    previous: FlowStatistics | None, current: FlowStatistics, *, stage_rows: int = 8
) -> list[DashboardRow]:
    """The rows of the dashboard table for ``current``, with rates and busy %
    measured since ``previous`` (an earlier snapshot of the same flow; ``None``:
    since the flow started).

    Each layer gives one row, followed by one row per stage when it has more than
    one stage (at most ``stage_rows`` of them; 0 shows layers only). Stages are
    matched between the snapshots by layer index and stage name; a stage or layer
    missing from ``previous`` counts from zero. Pure: no I/O, no rich.
    """
    if isinstance(stage_rows, bool) or not isinstance(stage_rows, int) or stage_rows < 0:
        raise ValueError(f"dashboard_rows: stage_rows must be an int >= 0, got {stage_rows!r}")
    seconds = _interval(previous, current)
    earlier: dict[int, LayerStatistics] = {}
    if previous is not None:
        earlier = {layer.index: layer for layer in previous.layers}
    rows: list[DashboardRow] = []
    for layer in current.layers:
        before = earlier.get(layer.index)
        if before is not None and before.label != layer.label:
            before = None
        rows.append(_row(layer, None, before, seconds))
        if len(layer.stages) > 1:
            by_name = {s.name: s for s in before.stages} if before is not None else {}
            for stage in layer.stages[:stage_rows]:
                rows.append(_row(layer, stage, by_name.get(stage.name), seconds))
    return rows


def _state(stats: FlowStatistics) -> str:
    state: Any = stats.state
    return str(getattr(state, "value", state))


def summary_line(previous: FlowStatistics | None, current: FlowStatistics) -> str:
    """One line about the whole flow: state, age, events in and out with their
    rates since ``previous`` (since the start when ``None``), discards and, when
    the flow publishes, subscribers. Pure."""
    seconds = _interval(previous, current)
    in0 = previous.events_in if previous is not None else 0
    out0 = previous.events_out if previous is not None else 0
    parts = [
        f"{_state(current)} {current.elapsed:.1f}s",
        f"in {current.events_in:,} ({_rate(current.events_in, in0, seconds):,.0f}/s)",
        f"out {current.events_out:,} ({_rate(current.events_out, out0, seconds):,.0f}/s)",
        f"discarded {current.discarded:,}",
    ]
    if current.subscribers or current.subscriber_dropped:
        parts.append(f"subscribers {current.subscribers} (dropped {current.subscriber_dropped:,})")
    return " | ".join(parts)


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 16) -> str:
    """The last ``width`` of ``values`` as a line of block characters, scaled to
    their maximum (all zero: the lowest block). Pure."""
    shown = [max(0.0, v) for v in list(values)[-width:]] if width > 0 else []
    top = max(shown, default=0.0)
    if top <= 0:
        return _BARS[0] * len(shown)
    return "".join(_BARS[min(len(_BARS) - 1, int(v / top * (len(_BARS) - 1) + 0.5))] for v in shown)


def _require_rich() -> None:
    try:
        import rich  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"the terminal dashboard needs rich, which is not installed: {_INSTALL}"
        ) from exc


def _fill(row: DashboardRow) -> tuple[str, str]:
    """The buffer cell and its style: yellow from half full, red from 90 %
    (where back-pressure starts, or events are dropped)."""
    fill = row.buffer_fill
    if fill is None:
        return "-", ""
    style = "bold red" if fill >= 0.9 else "yellow" if fill >= 0.5 else ""
    return f"{row.buffered:,}/{row.buffer_size:,} ({fill:.0%})", style


def render(
    previous: FlowStatistics | None,
    current: FlowStatistics,
    *,
    stage_rows: int = 8,
    history: Mapping[int, Sequence[float]] | None = None,
) -> Table:
    """The dashboard as a rich ``Table`` (the :func:`summary_line` as its title,
    the :func:`dashboard_rows` as its rows). ``history`` maps a layer's index to
    its recent throughputs (oldest first), drawn as a :func:`sparkline` in a
    ``trend`` column when given. Every label is a ``rich.text.Text``, so a
    ``[bold]`` in a stage name is shown as it is, never interpreted."""
    _require_rich()
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(summary_line(previous, current)), title_justify="left")
    for header in ("layer / stage", "in", "out", "in/s", "out/s", "demand", "buffer"):
        table.add_column(header, justify="left" if header == "layer / stage" else "right")
    table.add_column("busy", justify="right")
    table.add_column("discarded", justify="right")
    if history is not None:
        table.add_column("trend", justify="left")
    for row in dashboard_rows(previous, current, stage_rows=stage_rows):
        if row.stage is None:
            name = Text(f"{row.layer} {row.label}", style="bold")
            if row.stages > 1:
                name.append(f" ({row.stages} stages)", style="dim")
        else:
            name = Text(f"   {row.stage}", style="dim")
        cells: list[str | Text] = [
            name,
            f"{row.events_in:,}",
            f"{row.events_out:,}",
            f"{row.rate_in:,.0f}",
            f"{row.rate_out:,.0f}",
            f"{row.demand_outstanding:,}",
            Text(*_fill(row)),
            f"{row.busy_percent:.0f}%",
            Text(f"{row.discarded:,}", style="red" if row.discarded else ""),
        ]
        if history is not None:
            trend = history.get(row.layer, ()) if row.stage is None else ()
            cells.append(Text(sparkline(trend), style="cyan"))
        table.add_row(*cells)
    return table


def _remember(
    history: dict[int, deque[float]], previous: FlowStatistics | None, current: FlowStatistics
) -> None:
    """Append each layer's throughput since ``previous`` to its history."""
    for row in dashboard_rows(previous, current, stage_rows=0):
        history.setdefault(row.layer, deque(maxlen=_TREND)).append(row.throughput)


async def show_dashboard(
    source: HasStatistics,
    *,
    interval: float = 0.5,
    seconds: float | None = None,
    console: Console | None = None,
    stage_rows: int = 8,
) -> FlowStatistics:
    """Show a live table of ``source``'s statistics until the flow ends, or for
    ``seconds`` when given; return the last snapshot shown.

    ``source`` is any flow handle with ``statistics()``: a running flow
    (``flow.start()``), the ``flow.stream()`` iterator or the ``async for``
    iterator. Every ``interval`` seconds the table is redrawn in place with the
    rates since the previous snapshot. ``console`` is the rich ``Console`` to draw
    on (default: a new one on standard output). Run it beside the code consuming
    the flow (in a task group): it only reads snapshots, and cancelling it leaves
    the flow untouched.

    Raises ``ValueError`` for an ``interval`` that is not > 0 or ``seconds`` < 0,
    and ``ImportError`` naming the extra when rich is missing.
    """
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise ValueError(f"show_dashboard: interval must be a number > 0, got {interval!r}")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0
    ):
        raise ValueError(f"show_dashboard: seconds must be None or a number >= 0, got {seconds!r}")
    dashboard_rows(None, source.statistics(), stage_rows=stage_rows)  # checks stage_rows
    _require_rich()
    from rich.console import Console
    from rich.live import Live

    out = console if console is not None else Console()
    if console is None and not out.is_terminal:
        out = Console(width=max(out.width, _LOG_WIDTH))  # a log is not cut at 80 columns
    start = anyio.current_time()
    previous: FlowStatistics | None = None
    current = source.statistics()
    history: dict[int, deque[float]] = {}
    live: Live | None = None
    if out.is_terminal:
        live = Live(console=out, auto_refresh=False, transient=False)
        live.start()
    try:
        while True:
            _remember(history, previous, current)
            if live is not None:
                table = render(previous, current, stage_rows=stage_rows, history=history)
                live.update(table, refresh=True)
            elif _state(current) not in _ENDED:  # the table's title says the last one
                out.print(summary_line(previous, current), markup=False, highlight=False)
            if _state(current) in _ENDED:
                break
            elapsed = anyio.current_time() - start
            if seconds is not None and elapsed >= seconds:
                break
            wait = interval if seconds is None else min(interval, seconds - elapsed)
            await anyio.sleep(wait)
            previous, current = current, source.statistics()
    finally:
        if live is not None:
            live.stop()
    if live is None:
        out.print(render(previous, current, stage_rows=stage_rows, history=history))
    return current
