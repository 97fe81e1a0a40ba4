"""Window and trigger state machines, driven explicitly (no clock, no tasks)."""

from __future__ import annotations

from typing import Any

import pytest

from flowstage.flow import Window

from ._helpers import feed, program, run_all, src


def _sum_state(window: Window, on_trigger: Any = None) -> Any:
    flow = src(window).reduce(lambda: 0, lambda a, x: a + x)
    return flow.on_trigger(on_trigger) if on_trigger else flow.emit("state")


def test_global_trigger_every() -> None:
    prog = program(_sum_state(Window.global_().trigger_every(10)))
    out = run_all(prog, list(range(1, 101)), batch=7)
    assert out == [55, 210, 465, 820, 1275, 1830, 2485, 3240, 4095, 5050, 5050]


def test_trigger_every_counts_before_mappers() -> None:
    flow = (
        src(Window.global_().trigger_every(2))
        .flat_map(lambda x: [x, x])
        .reduce(lambda: 0, lambda a, x: a + 1)
        .emit("state")
    )
    assert run_all(program(flow), [1, 2, 3, 4, 5]) == [4, 8, 10]


def test_trigger_names_in_on_trigger() -> None:
    seen: list[Any] = []

    def trig(acc: int, part: Any, trigger: Any) -> tuple[list[int], int]:
        seen.append(trigger)
        return [acc], acc

    prog = program(_sum_state(Window.global_().trigger_every(2), trig))
    run_all(prog, [1, 2, 3])
    assert seen == [("global", "global", ("every", 2)), ("global", "global", "done")]


def test_count_window_100_events_gives_11_windows() -> None:
    seen: list[Any] = []

    def trig(acc: int, part: Any, trigger: Any) -> tuple[list[int], int]:
        seen.append(trigger)
        return [acc], 999  # discarded at window end

    prog = program(_sum_state(Window.count(10), trig))
    out = run_all(prog, list(range(1, 101)), batch=33)
    assert out == [sum(range(i, i + 10)) for i in range(1, 101, 10)] + [0]
    assert seen == [("count", w, "done") for w in range(11)]


def test_count_window_counts_raw_events_and_external_trigger_keeps_acc() -> None:
    flow = (
        src(Window.count(3)).filter(lambda x: x % 2).reduce(lambda: 0, lambda a, x: a + x)
    ).emit("state")
    prog = program(flow)
    assert feed(prog, [1, 2, 3, 4]) == [4]
    assert prog.handle_trigger("flush") == [0]
    assert feed(prog, [5, 6]) == [5]
    assert prog.handle_done() == [0]


def test_count_window_mapper_only_layer_resets_uniq() -> None:
    prog = program(src(Window.count(2)).uniq())
    assert feed(prog, [1, 1, 1, 1, 2]) == [1, 1, 2]


def test_periodic_window_virtual_time() -> None:
    prog = program(_sum_state(Window.periodic(1, "second")))  # started at 0.0
    assert prog.next_deadline() == 1.0
    assert prog.handle_events([1, 2], "p") == []
    assert prog.handle_time(0.5) == []
    assert prog.handle_time(1.0) == [3]
    assert prog.next_deadline() == 2.0
    prog.handle_events([10], "p")
    assert prog.handle_trigger("x") == [10]
    assert prog.handle_time(2.0) == [10]
    assert prog.handle_done() == [0]
    assert prog.next_deadline() is None


def test_periodic_window_ids() -> None:
    seen: list[Any] = []
    prog = program(
        _sum_state(Window.periodic(100, "millisecond"), lambda a, p, t: (seen.append(t) or [a], a))
    )
    prog.handle_time(0.1)
    prog.handle_time(0.2)
    prog.handle_done()
    assert seen == [("periodic", 0, "done"), ("periodic", 1, "done"), ("periodic", 2, "done")]


def test_trigger_periodically_keeps_acc() -> None:
    w = Window.global_().trigger_periodically(10, "second")
    assert w.periodically == ((10_000, ("periodically", 10, "second")),)
    seen: list[Any] = []
    prog = program(_sum_state(w, lambda a, p, t: (seen.append(t) or [a], a)))
    assert prog.next_deadline() == 10.0
    prog.handle_events([1, 2], "p")
    assert prog.handle_time(10.0) == [3]
    prog.handle_events([3], "p")
    assert prog.handle_time(25.0) == [6]
    assert prog.next_deadline() == 30.0
    assert prog.handle_done() == [6]
    assert seen[0] == ("global", "global", ("periodically", 10, "second"))


def test_trigger_periodically_units() -> None:
    assert Window.global_().trigger_periodically(1, "minute").periodically[0][0] == 60_000
    assert Window.global_().trigger_periodically(10, "hour").periodically[0][0] == 36_000_000


def test_program_started_without_time_asks_for_it() -> None:
    from flowstage.program import make_program

    prog = make_program(_sum_state(Window.periodic(1, "second")).plan().layers[0], 0, 1)
    assert prog.next_deadline() is None or prog.next_deadline() == float("-inf")
    prog.handle_events([1], "p")  # implicit start without a clock
    assert prog.next_deadline() == float("-inf")
    assert prog.handle_time(5.0) == []
    assert prog.next_deadline() == 6.0


def test_custom_punctuation_trigger() -> None:
    def punct(acc: int, events: list[int]) -> tuple[Any, ...]:
        for i, e in enumerate(events):
            if e == 0:
                return ("trigger", "zero", events[:i], events[i + 1 :], acc + 1)
        return ("cont", acc)

    seen: list[Any] = []
    prog = program(
        _sum_state(
            Window.global_().trigger(lambda: 0, punct), lambda a, p, t: (seen.append(t) or [a], 0)
        )
    )
    assert feed(prog, [1, 2, 0, 3, 0, 4]) == [3, 3]
    assert prog.handle_done() == [4]
    assert [t[2] for t in seen] == ["zero", "zero", "done"]


def test_custom_trigger_cont_with_events_reduces_only_those() -> None:
    prog = program(
        _sum_state(Window.global_().trigger(lambda: None, lambda a, ev: ("cont", ev[:1], a)))
    )
    assert run_all(prog, [5, 6, 7]) == [5]


def test_custom_trigger_bad_return() -> None:
    prog = program(_sum_state(Window.global_().trigger(lambda: None, lambda a, ev: "nope")))
    with pytest.raises(TypeError, match=r"Window\.trigger function"):
        prog.handle_events([1], "p")


def _fixed(lateness: int = 0, batch_state: bool = True) -> Any:
    w = Window.fixed(10, "millisecond", lambda x: x)
    if lateness:
        w = w.allowed_lateness(lateness, "second")
    return w


def test_fixed_window_gaps_are_emitted() -> None:
    prog = program(_sum_state(_fixed()))
    assert prog.handle_events([1, 5, 12, 15, 31], "p") == [6, 27, 0]
    assert prog.handle_done() == [31]


def test_fixed_window_drops_events_older_than_first_seen() -> None:
    prog = program(_sum_state(_fixed()))
    out = feed(prog, [12, 1, 15, 31, 2], batch=1)
    assert out + prog.handle_done() == [27, 0, 31]


def test_fixed_window_ids_and_done_order() -> None:
    seen: list[Any] = []
    prog = program(_sum_state(_fixed(), lambda a, p, t: (seen.append(t) or [a], a)))
    run_all(prog, [25, 3])  # 3 is older than the first window: dropped
    prog2 = program(_sum_state(_fixed(), lambda a, p, t: (seen.append(t) or [a], a)))
    prog2.handle_events([3], "p")
    prog2.handle_events([25], "p")
    prog2.handle_done()
    assert seen == [
        ("fixed", 20, "done"),
        ("fixed", 0, "done"),
        ("fixed", 10, "done"),
        ("fixed", 20, "done"),
    ]


def test_fixed_window_waits_for_every_producer() -> None:
    prog = program(_sum_state(_fixed()))
    prog.add_producer("a")
    prog.add_producer("b")
    assert prog.handle_events([1, 15, 25], "a") == []
    assert prog.handle_events([3], "b") == []  # b still in window 0
    assert prog.handle_events([12], "b") == [4]  # min recent = window 1: close 0
    assert prog.handle_events([31], "b") == [27]  # a is at 2, b at 3: close 1
    assert prog.handle_done() == [25, 31]


def test_fixed_window_producer_done_releases_watermark() -> None:
    prog = program(_sum_state(_fixed()))
    prog.add_producer("a")
    prog.add_producer("b")
    assert prog.handle_events([1, 25], "a") == []
    assert prog.handle_producer_done("b") == [1, 0]
    assert prog.handle_done() == [25]


def test_fixed_window_by_must_return_int() -> None:
    prog = program(_sum_state(Window.fixed(1, "second", lambda x: "soon")))
    with pytest.raises(TypeError, match="by function to return an integer"):
        prog.handle_events([1], "p")


def test_fixed_window_allowed_lateness() -> None:
    seen: list[Any] = []

    def trig(acc: int, part: Any, t: Any) -> tuple[list[Any], int]:
        seen.append(t)
        return [(t[1], t[2], acc)], acc

    prog = program(_sum_state(_fixed(lateness=1), trig))
    assert prog.handle_events([1, 2, 15], "p") == [(0, "watermark", 3)]
    assert prog.next_deadline() == float("-inf")  # the lateness timer needs "now"
    assert prog.handle_time(5.0) == []
    assert prog.next_deadline() == 6.0
    assert prog.handle_events([4], "p") == []  # late event still added
    assert prog.handle_time(6.0) == [(0, "done", 7)]
    assert prog.handle_events([5], "p") == []  # window 0 is gone now: dropped
    assert prog.handle_done() == [(10, "done", 15)]
    assert prog.next_deadline() is None


def test_fixed_window_external_trigger_fires_all_windows_including_gaps() -> None:
    prog = program(_sum_state(_fixed()))
    prog.add_producer("a")
    prog.add_producer("b")
    prog.handle_events([1, 25], "a")
    assert prog.handle_trigger("flush") == [1, 0, 25]
    assert prog.handle_done() == [1, 0, 25]


def test_fixed_window_with_trigger_every() -> None:
    seen: list[Any] = []
    w = _fixed().trigger_every(2)
    prog = program(_sum_state(w, lambda a, p, t: (seen.append(t) or [a], a)))
    out = prog.handle_events([1, 2, 3, 11], "p")
    assert out == [3, 6]
    assert seen == [("fixed", 0, ("every", 2)), ("fixed", 0, "done")]
