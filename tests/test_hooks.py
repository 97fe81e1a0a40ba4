"""``flowstage.hooks``: instruments hear stage starts, stops, failures, discards and
window triggers, from real stages and flows; a raising hook never breaks a flow;
nothing is built when nothing listens."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from flowstage import Flow, StageExited, StageGroup, Window, hooks
from flowstage.executors.process import ProcessExecutor
from flowstage.hooks import (
    EventsDiscarded,
    Instrument,
    StageFailed,
    StageStarted,
    StageStopped,
    TriggerFired,
)
from flowstage.program import make_program

from .stages import Counter, Forwarder


class Recorder(Instrument):
    """Keeps every record, in order."""

    def __init__(self) -> None:
        self.records: list[object] = []

    def on_stage_started(self, event: StageStarted) -> None:
        self.records.append(event)

    def on_stage_stopped(self, event: StageStopped) -> None:
        self.records.append(event)

    def on_stage_failed(self, event: StageFailed) -> None:
        self.records.append(event)

    def on_events_discarded(self, event: EventsDiscarded) -> None:
        self.records.append(event)

    def on_trigger_fired(self, event: TriggerFired) -> None:
        self.records.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [r for r in self.records if type(r) is kind]


class Discards(Instrument):
    """Overrides one hook only."""

    def __init__(self) -> None:
        self.seen: list[EventsDiscarded] = []

    def on_events_discarded(self, event: EventsDiscarded) -> None:
        self.seen.append(event)


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    assert hooks.instruments() == ()
    yield
    assert hooks.instruments() == (), "a test left an instrument registered"


def add_one(x: int) -> int:
    return x + 1


def total(x: int, acc: int) -> int:
    return acc + x


def explode(x: int) -> int:
    if x == 7:
        raise ValueError("seven")
    return x


def check_lifecycles(rec: Recorder) -> dict[str, object]:
    """Every stage that started ended exactly once, after it started; returns
    ``{stage: its StageStopped reason or StageFailed exception}``."""
    started: list[str] = []
    ended: dict[str, object] = {}
    for r in rec.records:
        if isinstance(r, StageStarted):
            assert r.stage not in started, f"{r.stage} started twice"
            started.append(r.stage)
        elif isinstance(r, StageStopped | StageFailed):
            assert r.stage in started, f"{r.stage} ended before it started"
            assert r.stage not in ended, f"{r.stage} ended twice"
            ended[r.stage] = r.reason if isinstance(r, StageStopped) else r.exception
    assert sorted(ended) == sorted(started)
    return ended


# -- the registry (no event loop) --------------------------------------------------------


def test_only_the_overridden_hooks_are_active() -> None:
    discards = Discards()
    remove = hooks.add_instrument(discards)
    try:
        assert hooks.instruments() == (discards,)
        assert len(hooks.active.on_events_discarded) == 1
        assert not hooks.active.on_stage_started
        assert not hooks.active.on_trigger_fired
    finally:
        remove()
    assert not hooks.active.on_events_discarded
    for name in hooks.EVENT_NAMES:
        assert getattr(hooks.active, name) == ()


def test_adding_twice_registers_once_and_removing_is_idempotent() -> None:
    rec = Recorder()
    remove = hooks.add_instrument(rec)
    remove_again = hooks.add_instrument(rec)
    assert hooks.instruments() == (rec,)
    assert len(hooks.active.on_stage_started) == 1
    remove()
    remove()
    remove_again()
    assert hooks.instruments() == ()
    with pytest.raises(ValueError, match="is not registered"):
        hooks.remove_instrument(rec)


def test_instruments_are_called_in_the_order_they_were_added() -> None:
    calls: list[str] = []

    class Named(Instrument):
        def __init__(self, name: str) -> None:
            self.name = name

        def on_stage_started(self, event: StageStarted) -> None:
            calls.append(f"{self.name}:{event.stage}")

    first, second = Named("first"), Named("second")
    with hooks.instrumented(first, second):
        hooks.emit_stage_started("s", "producer")
        hooks.remove_instrument(first)
        hooks.emit_stage_started("t", "producer")
    assert calls == ["first:s", "second:s", "second:t"]


def test_instrumented_keeps_an_instrument_registered_before_it() -> None:
    rec = Recorder()
    remove = hooks.add_instrument(rec)
    try:
        with hooks.instrumented(rec, other := Discards()):
            assert hooks.instruments() == (rec, other)
        assert hooks.instruments() == (rec,)
    finally:
        remove()


def test_instrumented_removes_its_instruments_when_the_block_raises() -> None:
    rec = Recorder()
    with pytest.raises(KeyError), hooks.instrumented(rec):
        raise KeyError("boom")
    assert hooks.instruments() == ()


def test_bad_instruments_and_options_are_refused() -> None:
    with pytest.raises(TypeError, match=r"flowstage\.hooks\.Instrument"):
        hooks.add_instrument(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected events to name hooks among on_stage_started"):
        hooks.LoggingInstrument(events=["on_stage_start"])
    with pytest.raises(ValueError, match="expected level"):
        hooks.LoggingInstrument(level="INFO")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected logger"):
        hooks.LoggingInstrument(logger=42)  # type: ignore[arg-type]
    assert hooks.instruments() == ()


def test_emit_discarded_ignores_nothing_dropped() -> None:
    d = Discards()
    with hooks.instrumented(d):
        hooks.emit_discarded("push", 0, "drop_newest")
        hooks.emit_discarded("push", 2, "drop_newest")
    assert d.seen == [EventsDiscarded("push", 2, "drop_newest")]


def test_logging_instrument_logs_each_event_at_its_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="flowstage.hooks")
    inst = hooks.LoggingInstrument(level=logging.DEBUG)
    error = ValueError("bad")
    with hooks.instrumented(inst):
        hooks.emit_stage_started("a", "producer")
        hooks.emit_discarded("a", 3)
        hooks.emit_stage_failed("a", "producer", error)
        hooks.emit_trigger_fired(1, 2, ("count", 4, "done"))
        hooks.emit_stage_stopped("a", "producer", "normal")
    got = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "flowstage.hooks"]
    assert got == [
        (logging.DEBUG, "stage a started"),
        (logging.WARNING, "stage a discarded 3 events (buffer_full)"),
        (logging.ERROR, "stage a failed: ValueError: bad"),
        (logging.DEBUG, "stage flow-layer1-stage2 fired trigger 'done' on count window 4"),
        (logging.DEBUG, "stage a stopped: 'normal'"),
    ]
    failed = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert failed.flowstage_event == StageFailed("a", "producer", error)  # type: ignore[attr-defined]


def test_logging_instrument_logs_only_the_chosen_events(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.hooks.chosen")
    caplog.set_level(logging.INFO, logger=logger.name)
    with hooks.instrumented(hooks.LoggingInstrument(logger, events=["on_stage_failed"])):
        hooks.emit_stage_started("a", "producer")
        hooks.emit_stage_failed("a", "producer", KeyError("k"))
    assert [r.getMessage() for r in caplog.records if r.name == logger.name] == [
        "stage a failed: KeyError: 'k'"
    ]


def test_a_program_reports_its_triggers_wherever_it_runs() -> None:
    """A partition's program reports triggers itself (no executor, no event loop):
    so a worker process running it reports to its own registry."""
    rec = Recorder()
    flow = Flow.from_iterable([], stages=1, window=Window.fixed(10, "second", lambda e: e * 1000))
    layer = flow.reduce(int, total).emit("state").plan().layers[0]
    prog = make_program(layer, 0, 1)
    with hooks.instrumented(rec):
        prog.start(0.0)
        assert prog.handle_events([1, 2], "p") == []
        assert prog.handle_trigger("flush") == [3]
        # An event of the window [20, 30) closes [0, 10) and the empty [10, 20).
        prog.handle_events([25], "p")
        prog.handle_done()
    fired = [(f.stage, f.trigger, f.window_type, f.window) for f in rec.of(TriggerFired)]
    # Fixed windows are named by their start, in ms.
    assert fired == [
        ("flow-layer0-stage0", "flush", "fixed", 0),
        ("flow-layer0-stage0", "done", "fixed", 0),
        ("flow-layer0-stage0", "done", "fixed", 10_000),
        ("flow-layer0-stage0", "done", "fixed", 20_000),
    ]


# -- events from real stages and flows ------------------------------------------------------


@pytest.mark.anyio
async def test_a_flow_reports_every_stage_starting_and_stopping_normally() -> None:
    rec = Recorder()
    flow = Flow.from_iterable(range(100)).map(add_one).partition(stages=3).map(add_one)
    with hooks.instrumented(rec):
        out = await flow.to_list()
    assert sorted(out) == [x + 2 for x in range(100)]
    ended = check_lifecycles(rec)
    assert set(ended.values()) == {"normal"}
    assert {"flow-source0", "flow-layer1-stage0", "flow-layer1-stage2"} <= set(ended)
    kinds = {r.stage: r.kind for r in rec.of(StageStarted)}
    assert kinds["flow-source0"] == "producer"
    assert kinds["flow-layer1-stage1"] == "producer_consumer"


@pytest.mark.anyio
async def test_async_for_reports_every_stage_ending_even_when_closed_early() -> None:
    rec = Recorder()
    flow = Flow.from_iterable(range(10_000)).map(add_one).partition(stages=2).map(add_one)
    with hooks.instrumented(rec):
        seen = [x async for x in flow]
        assert sorted(seen) == [x + 2 for x in range(10_000)]
        assert set(check_lifecycles(rec).values()) == {"normal"}
        rec.records.clear()
        async with contextlib.aclosing(flow.iterate()) as events:
            async for _ in events:
                break
    ended = check_lifecycles(rec)
    assert "flow-layer1-stage1" in ended
    assert set(ended.values()) == {"shutdown"}


@pytest.mark.anyio
async def test_a_failing_callback_reports_the_stage_and_the_exception() -> None:
    rec = Recorder()
    with hooks.instrumented(rec), pytest.raises(ValueError, match="seven") as info:
        await Flow.from_iterable(range(20)).map(explode).to_list()
    failed = rec.of(StageFailed)
    # One event is 7: the one stage of layer 0 that received it failed.
    assert len(failed) == 1
    assert failed[0].stage.startswith("flow-layer0-stage")
    assert failed[0].kind == "producer_consumer"
    assert failed[0].exception is info.value
    ended = check_lifecycles(rec)
    assert ended[failed[0].stage] is info.value


@pytest.mark.anyio
async def test_stages_cancelled_by_their_scope_stop_with_shutdown() -> None:
    rec = Recorder()
    with hooks.instrumented(rec):
        async with StageGroup() as g:
            p = g.start(Counter(name="counter"))
            c = g.start(Forwarder(name="forwarder"))
            c.subscribe(p, max_demand=4)
            await p.call(("queue", []))  # both running
            g.cancel()
    assert check_lifecycles(rec) == {"counter": "shutdown", "forwarder": "shutdown"}


@pytest.mark.anyio
async def test_a_stage_stopped_with_a_reason_reports_it() -> None:
    rec = Recorder()
    with hooks.instrumented(rec), pytest.raises(StageExited):
        async with StageGroup() as g:
            p = g.start(Counter(name="counter"))
            p.stop("enough")
    assert check_lifecycles(rec) == {"counter": "enough"}


@pytest.mark.anyio
async def test_buffer_overflow_reports_the_discarded_count() -> None:
    rec = Recorder()
    with hooks.instrumented(rec):
        async with StageGroup() as g:
            p = g.start(Counter(name="counter", buffer_size=5))
            await p.call(("queue", list("abcdefgh")))
            await p.call(("queue", list("ij")))
            discarded = p.statistics().discarded
            g.cancel()
    seen = rec.of(EventsDiscarded)
    assert [(d.stage, d.reason) for d in seen] == [("counter", "buffer_full")] * 2
    assert sum(d.count for d in seen) == discarded
    assert [d.count for d in seen] == [8 - 5, 2]


@pytest.mark.anyio
async def test_count_windows_report_one_trigger_per_window() -> None:
    rec = Recorder()
    flow = (
        Flow.from_iterable(range(10))
        .partition(stages=2, window=Window.count(3))
        .reduce(int, total)
        .on_trigger(lambda acc, part, info: ([(part[0], info[1], acc)], acc))
    )
    with hooks.instrumented(rec):
        out = await flow.to_list()
    fired = rec.of(TriggerFired)
    assert all(f.trigger == "done" and f.window_type == "count" for f in fired)
    assert all(f.stage == f"flow-layer{f.layer}-stage{f.partition}" for f in fired)
    # One trigger per emitted window, partition by partition, in order.
    assert sorted((f.partition, f.window) for f in fired) == sorted((p, w) for p, w, _ in out)
    for part in (0, 1):
        windows = [f.window for f in fired if f.partition == part]
        assert windows == list(range(len(windows)))


@pytest.mark.anyio
async def test_trigger_every_and_a_trigger_sent_to_a_running_flow_are_reported() -> None:
    rec = Recorder()
    fired: dict[object, anyio.Event] = {("every", 4): anyio.Event(), "flush": anyio.Event()}

    class Watch(Instrument):
        def on_trigger_fired(self, event: TriggerFired) -> None:
            if event.trigger in fired:
                fired[event.trigger].set()

    send, receive = anyio.create_memory_object_stream[int](10)
    flow = (
        Flow.from_async_iterable(receive)
        .partition(stages=1, window=Window.global_().trigger_every(4))
        .reduce(int, total)
        .emit("state")
    )
    with hooks.instrumented(rec, Watch()), anyio.fail_after(10):
        async with flow.start() as running:
            async with send:
                for x in range(6):
                    await send.send(x)
                await fired[("every", 4)].wait()
                running.trigger("flush")
                await fired["flush"].wait()
            await running.wait()
    names = [f.trigger for f in rec.of(TriggerFired)]
    assert names == [("every", 4), "flush", "done"]
    assert {f.window_type for f in rec.of(TriggerFired)} == {"global"}


@pytest.mark.anyio
async def test_a_raising_hook_is_logged_once_and_the_flow_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Instrument):
        def on_stage_started(self, event: StageStarted) -> None:
            raise RuntimeError(f"broken hook at {event.stage}")

        def __repr__(self) -> str:
            return "<Broken>"

    caplog.set_level(logging.ERROR, logger="flowstage")
    rec = Recorder()
    flow = Flow.from_iterable(range(50)).partition(stages=2).map(add_one)
    with hooks.instrumented(Broken(), rec):
        out = await flow.to_list()
    assert sorted(out) == [x + 1 for x in range(50)]
    # Every stage's start raised (three of them at least), and one was logged.
    started = check_lifecycles(rec)
    assert {"flow-source0", "flow-layer0-stage0", "flow-layer0-stage1"} <= set(started)
    logged = [r for r in caplog.records if "instrument <Broken> raised" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "broken hook at" in str(logged[0].exc_info[1])


@pytest.mark.anyio
async def test_a_removed_instrument_hears_nothing_more() -> None:
    rec = Recorder()
    remove = hooks.add_instrument(rec)
    try:
        await Flow.from_iterable(range(10)).map(add_one).to_list()
        heard = len(rec.records)
        assert heard > 0
    finally:
        remove()
    await Flow.from_iterable(range(10)).map(add_one).to_list()
    assert len(rec.records) == heard


@pytest.mark.anyio
async def test_nothing_is_built_when_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    for name in ("StageStarted", "StageStopped", "StageFailed", "EventsDiscarded", "TriggerFired"):
        cls = getattr(hooks, name)

        def counting(*args: Any, _cls: Any = cls) -> Any:
            built.append(_cls.__name__)
            return _cls(*args)

        monkeypatch.setattr(hooks, name, counting)

    async def workload() -> None:
        flow = (
            Flow.from_iterable(range(30))
            .partition(stages=2, window=Window.count(2))
            .reduce(int, total)
            .emit("state")
        )
        assert sum(await flow.to_list()) == sum(range(30))
        with pytest.raises(ValueError, match="seven"):
            await Flow.from_iterable(range(10)).map(explode).to_list()
        async with StageGroup() as g:
            p = g.start(Counter(buffer_size=2))
            await p.call(("queue", list("abcd")))
            g.cancel()

    await workload()
    assert built == []
    # The counter works, and a registered hook builds only its own records.
    d = Discards()
    with hooks.instrumented(d):
        await workload()
    assert built
    assert set(built) == {"EventsDiscarded"}
    assert len(built) == len(d.seen)


@pytest.mark.anyio
async def test_worker_partitions_report_to_the_worker_not_the_parent() -> None:
    rec = Recorder()
    flow = (
        Flow.from_iterable(range(20))
        .partition(stages=2, window=Window.count(5))
        .reduce(int, total)
        .emit("state")
    )
    with hooks.instrumented(rec):
        out = await flow.to_list(executor=ProcessExecutor(1))
    assert sum(out) == sum(range(20))
    # The source runs in the parent; the partitions (and their triggers) in the worker.
    assert "flow-source0" in check_lifecycles(rec)
    assert rec.of(TriggerFired) == []
