"""Helpers: build a one-layer program from a flow and feed it batches."""

from __future__ import annotations

from typing import Any

from flowstage.flow import Flow, Window
from flowstage.program import StageProgram, make_program


def program(flow: Flow[Any], index: int = 0, total: int = 1, layer: int = -1) -> StageProgram:
    plan = flow.plan()
    prog = make_program(plan.layers[layer], index, total)
    prog.start(0.0)
    return prog


def src(window: Window | None = None, **kw: Any) -> Flow[Any]:
    return Flow.from_iterable([], stages=1, window=window, **kw)


def feed(
    prog: StageProgram, events: list[Any], batch: int = 1000, producer: Any = "p"
) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(events), batch):
        out += prog.handle_events(events[i : i + batch], producer)
    return out


def run_all(prog: StageProgram, events: list[Any], batch: int = 1000) -> list[Any]:
    return feed(prog, events, batch) + prog.handle_done()
