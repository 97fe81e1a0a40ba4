"""Every output shown in docs/windows-and-triggers.md, printed by the code shown there.

Usage: python examples/windows_guide.py [SECTION ...]
       python examples/windows_guide.py --update-guide   (rewrite the guide's blocks)

Each section is one function below; it returns what the flow emitted, and the
script prints it under ``== section ==``. The guide embeds both the functions'
code and their printed output (after ``<!-- code: section -->`` and
``<!-- output: section -->`` markers), and a test checks that they still match.

The script runs on trio's ``MockClock(autojump_threshold=0)``: a virtual clock that
jumps to the next deadline as soon as every task waits, so processing-time windows
fire at exact times and the script takes no real time. On a real clock the same
flows emit the same windows, at times that wobble by a few milliseconds.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from trio.testing import MockClock

from flowstage.flow import Flow, Window


def show(acc: Any, _partition: Any, trigger: Any) -> tuple[list[Any], Any]:
    """An ``on_trigger`` callback: emit ``(trigger, acc)`` and keep ``acc``."""
    return [(trigger, acc)], acc


def appended(acc: list[Any], event: Any) -> list[Any]:
    return [*acc, event]


def show_time(start: float) -> Callable[[Any, Any, Any], tuple[list[Any], Any]]:
    """Like ``show``, with the seconds since ``start`` at which the trigger fired."""

    def on_trigger(acc: Any, _partition: Any, trigger: Any) -> tuple[list[Any], Any]:
        return [(trigger, round(anyio.current_time() - start, 3), acc)], acc

    return on_trigger


async def at(times: list[float]) -> AsyncIterator[float]:
    """A live source: yield each of ``times`` at that many seconds after the start."""
    start = anyio.current_time()
    for t in times:
        await anyio.sleep(start + t - anyio.current_time())
        yield t


async def global_window() -> list[Any]:
    flow = Flow.from_iterable(range(6), stages=1).reduce(list, appended).on_trigger(show)
    return await flow.to_list()


async def emit_modes() -> list[Any]:
    def words() -> Flow[str]:
        return Flow.from_iterable(["a", "b", "a"], stages=1)

    def count(acc: dict[str, int], word: str) -> dict[str, int]:
        return {**acc, word: acc.get(word, 0) + 1}

    return [
        await words().reduce(dict, count).to_list(),  # "events": a dict gives its pairs
        await words().reduce(dict, count).emit("state").to_list(),  # the accumulator itself
        await words().reduce(dict, count).emit("nothing").to_list(),
        await words().reduce(list, appended).to_list(),  # a list gives its items
    ]


async def count_windows() -> list[Any]:
    window = Window.count(4)
    flow = (
        Flow.from_iterable(range(10), stages=1, window=window)
        .reduce(list, appended)
        .on_trigger(show)
    )
    return await flow.to_list()


async def count_windows_exact() -> list[Any]:
    window = Window.count(4)
    flow = (
        Flow.from_iterable(range(8), stages=1, window=window)
        .reduce(list, appended)
        .on_trigger(show)
    )
    return await flow.to_list()


async def trigger_every() -> list[Any]:
    window = Window.global_().trigger_every(3)
    flow = (
        Flow.from_iterable(range(8), stages=1, window=window)
        .reduce(list, appended)
        .on_trigger(show)
    )
    return await flow.to_list()


async def trigger_every_plain_reduce() -> list[Any]:
    window = Window.global_().trigger_every(3)
    flow = Flow.from_iterable(range(5), stages=1, window=window).reduce(list, appended)
    return await flow.to_list()


async def trigger_every_reset() -> list[Any]:
    def show_and_reset(acc: list[int], _p: Any, trigger: Any) -> tuple[list[Any], list[int]]:
        return [(trigger, acc)], []  # the next trigger sees only the new events

    window = Window.global_().trigger_every(3)
    flow = (
        Flow.from_iterable(range(8), stages=1, window=window)
        .reduce(list, appended)
        .on_trigger(show_and_reset)
    )
    return await flow.to_list()


async def periodic_windows() -> list[Any]:
    start = anyio.current_time()
    window = Window.periodic(1, "second")
    source = at([0.2, 0.6, 1.1, 3.4, 3.5])  # nothing between 1.1 s and 3.4 s
    flow = (
        Flow.from_async_iterable(source, stages=1, max_demand=1, window=window)
        .reduce(list, appended)
        .on_trigger(show_time(start))
    )
    return await flow.to_list()


async def trigger_periodically() -> list[Any]:
    start = anyio.current_time()
    window = Window.global_().trigger_periodically(1, "second")
    source = at([0.5, 1.5, 1.7, 3.2])
    flow = (
        Flow.from_async_iterable(source, stages=1, max_demand=1, window=window)
        .reduce(list, appended)
        .on_trigger(show_time(start))
    )
    return await flow.to_list()


Reading = tuple[int, str]  # (timestamp in ms, sensor)


async def fixed_windows() -> list[Any]:
    readings: list[Reading] = [(100, "a"), (900, "b"), (1200, "c"), (700, "late"), (2100, "d")]
    window = Window.fixed(1, "second", by=lambda r: r[0])
    flow = (
        Flow.from_iterable(readings, stages=1, max_demand=1, window=window)
        .reduce(list, lambda acc, r: [*acc, r[1]])
        .on_trigger(show)
    )
    return await flow.to_list()


async def arriving(readings: list[Reading], every: float) -> AsyncIterator[Reading]:
    """A live source: one reading every ``every`` seconds of processing time."""
    for reading in readings:
        await anyio.sleep(every)
        yield reading


async def fixed_windows_lateness() -> list[Any]:
    start = anyio.current_time()
    readings: list[Reading] = [
        (100, "a"),
        (900, "b"),
        (1200, "c"),
        (700, "late"),
        (2100, "d"),
        (600, "too late"),
    ]  # one every 0.2 s of processing time: "late" at 0.8 s, "too late" at 1.2 s
    window = Window.fixed(1, "second", by=lambda r: r[0]).allowed_lateness(500, "millisecond")
    flow = (
        Flow.from_async_iterable(arriving(readings, 0.2), stages=1, max_demand=1, window=window)
        .reduce(list, lambda acc, r: [*acc, r[1]])
        .on_trigger(show_time(start))
    )
    return await flow.to_list()


async def custom_trigger() -> list[Any]:
    def at_end_marker(acc: None, events: list[str]) -> tuple[Any, ...]:
        if "END" in events:
            i = events.index("END")
            return ("trigger", "end-of-batch", events[:i], events[i + 1 :], acc)
        return ("cont", acc)

    window = Window.global_().trigger(lambda: None, at_end_marker)
    lines = ["a", "b", "END", "c", "END", "d"]
    flow = (
        Flow.from_iterable(lines, stages=1, window=window)
        .reduce(list, appended)
        .on_trigger(lambda acc, _p, trigger: ([(trigger, acc)], []))
    )
    return await flow.to_list()


async def partitioned_windows() -> list[Any]:
    def stamp(acc: list[int], partition: tuple[int, int], trigger: Any) -> tuple[list[Any], Any]:
        return [(partition, trigger, sorted(acc))], acc

    window = Window.count(2)
    flow = (
        Flow.from_iterable(range(10), stages=1)
        .partition(stages=2, key=lambda n: "even" if n % 2 == 0 else "odd", window=window)
        .reduce(list, appended)
        .on_trigger(stamp)
    )
    return sorted(await flow.to_list())


async def departitioned_windows() -> list[Any]:
    window = Window.fixed(1, "second", by=lambda r: r[0])
    readings = [(ms, sensor) for ms in range(0, 3000, 250) for sensor in "abc"]
    flow = (
        Flow.from_iterable(readings, stages=1)
        .partition(stages=3, key=lambda r: r[1], window=window)
        .reduce(lambda: 0, lambda n, _r: n + 1)
        .emit("state")  # each partition emits its count per window
        .departition(lambda: 0, lambda total, n: total + n, lambda total, w: (w, total))
    )
    return await flow.to_list()


SECTIONS: dict[str, Callable[[], Awaitable[list[Any]]]] = {
    f.__name__: f
    for f in (
        global_window,
        emit_modes,
        count_windows,
        count_windows_exact,
        trigger_every,
        trigger_every_reset,
        trigger_every_plain_reduce,
        periodic_windows,
        trigger_periodically,
        fixed_windows,
        fixed_windows_lateness,
        custom_trigger,
        partitioned_windows,
        departitioned_windows,
    )
}


def run(section: str) -> list[str]:
    """The lines ``section`` prints: one ``repr`` per emitted event."""

    async def main() -> list[Any]:
        return await SECTIONS[section]()

    clock = MockClock(autojump_threshold=0)
    events = anyio.run(main, backend="trio", backend_options={"clock": clock})
    return [repr(event) for event in events]


GUIDE = Path(__file__).resolve().parent.parent / "docs" / "windows-and-triggers.md"
_BLOCK = re.compile(r"(<!-- (code|output): ([\w ]+) -->\n```(\w+)\n)(.*?)(```)", re.S)


def updated_guide(text: str) -> str:
    """``text`` (the guide) with the block after each marker replaced by the
    section's current code or output."""

    def block(match: re.Match[str]) -> str:
        kind, names = match.group(2), match.group(3).split()
        known = SECTIONS if kind == "output" else globals()
        unknown = [name for name in names if not callable(known.get(name))]
        if unknown:
            raise SystemExit(f"the guide names unknown {kind} {unknown}")
        if kind == "code":
            body = "\n\n".join(inspect.getsource(known[name]) for name in names)
        else:
            body = "".join(f"{line}\n" for name in names for line in run(name))
        return f"{match.group(1)}{body}{match.group(6)}"

    return _BLOCK.sub(block, text)


def main(sections: list[str]) -> None:
    if sections == ["--update-guide"]:
        GUIDE.write_text(updated_guide(GUIDE.read_text(encoding="utf-8")), encoding="utf-8")
        return
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; known: {', '.join(SECTIONS)}")
    for name in sections or list(SECTIONS):
        print(f"== {name} ==")
        for line in run(name):
            print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
