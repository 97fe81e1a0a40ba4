"""The executor conformance kit: the end-to-end behaviour every executor must show.

Each case builds flows with module-level callbacks (so they pickle), runs them on
the executor under test, and checks only what any executor can show: the output,
the exception raised (type and note), what the flow does to objects of the calling
process (sources, running stages), and that it ends. Run them all with
:func:`check_executor`, or one per test with :func:`conformance_cases`::

    @pytest.mark.parametrize("case", conformance_cases(), ids=lambda c: c.name)
    async def test_my_executor(case):
        await case.run(MyExecutor())

Cases tagged ``"virtual_clock"`` assert exact times and must run under a virtual
clock (``anyio_backend = ("trio", {"clock": MockClock(autojump_threshold=0)})``)
on an executor whose programs read the caller's clock.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import json
import pickle
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.lowlevel

from .._errors import StageExited
from .._flowstate import FlowState
from .._kinds import Consumer, Producer, ProducerConsumer
from .._push import PushClosed
from .._scope import StageGroup
from .._sources import from_iterable
from ..flow import Flow, Window
from ._quiescence import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from ..executors import Executor
    from ..statistics import FlowStatistics

__all__ = ["ConformanceCase", "ConformanceFailure", "check_executor", "conformance_cases"]


@dataclass(frozen=True)
class ConformanceCase:
    """One behaviour an executor must show; ``await case.run(executor)`` raises
    ``AssertionError`` (or the flow's unexpected exception) when it does not."""

    name: str
    func: Callable[[Executor], Awaitable[None]]
    tags: frozenset[str] = field(default_factory=frozenset)

    async def run(self, executor: Executor) -> None:
        await self.func(executor)

    def __repr__(self) -> str:
        return f"<ConformanceCase {self.name}>"


_CASES: list[ConformanceCase] = []


def _case(*tags: str) -> Callable[[Callable[[Executor], Awaitable[None]]], Any]:
    def register(func: Callable[[Executor], Awaitable[None]]) -> Any:
        _CASES.append(ConformanceCase(func.__name__, func, frozenset(tags)))
        return func

    return register


def conformance_cases(
    *, virtual_clock: bool | None = False, exclude: frozenset[str] | set[str] = frozenset()
) -> tuple[ConformanceCase, ...]:
    """The cases of the kit: with ``virtual_clock=False`` (the default) those that
    run on any clock, with ``True`` only those that need a virtual clock, with
    ``None`` all. Cases with a tag in ``exclude`` are left out."""
    out = []
    for case in _CASES:
        clocked = "virtual_clock" in case.tags
        if virtual_clock is not None and clocked != virtual_clock:
            continue
        if case.tags & set(exclude):
            continue
        out.append(case)
    return tuple(out)


class ConformanceFailure(AssertionError):
    """Raised by :func:`check_executor` with every case that failed."""

    def __init__(self, failures: list[tuple[str, BaseException]]) -> None:
        lines = [f"{name}: {type(exc).__name__}: {exc}" for name, exc in failures]
        super().__init__(f"{len(failures)} conformance case(s) failed:\n" + "\n".join(lines))
        self.failures = failures


async def check_executor(
    executor: Executor, *, virtual_clock: bool | None = False, exclude: set[str] | None = None
) -> int:
    """Run every conformance case on ``executor``; return how many ran.

    Raises:
        ConformanceFailure: one or more cases failed (all are run and listed).
    """
    failures: list[tuple[str, BaseException]] = []
    cases = conformance_cases(virtual_clock=virtual_clock, exclude=frozenset(exclude or ()))
    for case in cases:
        try:
            await case.run(executor)
        except Exception as exc:
            failures.append((case.name, exc))
    if failures:
        raise ConformanceFailure(failures)
    return len(cases)


# -- helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def _raises(
    exc_type: type[BaseException] | tuple[type[BaseException], ...], note: str | None = None
) -> Iterator[list[BaseException]]:
    """Assert that the block raises ``exc_type`` itself (not inside a group), with
    one flow note matching ``note`` (a regular expression) when given."""
    caught: list[BaseException] = []
    try:
        yield caught
    except exc_type as exc:
        caught.append(exc)
    except BaseExceptionGroup as group:
        raise AssertionError(f"expected {exc_type}, got an exception group: {group!r}") from group
    else:
        raise AssertionError(f"expected {exc_type} to be raised")
    if note is not None:
        notes = [n for n in getattr(caught[0], "__notes__", []) if n.startswith("in flow")]
        assert len(notes) == 1, (
            f"expected one flow note, got {getattr(caught[0], '__notes__', None)}"
        )
        assert re.fullmatch(note + ".*", notes[0]), notes[0]


async def _collect(flow: Flow[Any], ex: Executor) -> list[Any]:
    return await flow.to_list(executor=ex)


def _by_repr(xs: list[Any]) -> list[Any]:
    return sorted(xs, key=repr)


# Module-level callbacks: importable, so they pickle by reference.


class Boom(Exception):
    """The failure the kit's callbacks raise."""


def identity(x: Any) -> Any:
    return x


def double(x: int) -> int:
    return x * 2


def triple(x: int) -> int:
    return x * 3


def negate(x: int) -> int:
    return -x


def increment(x: int) -> int:
    return x + 1


def not_multiple_of_3(x: int) -> bool:
    return x % 3 != 0


def add(acc: int, x: int) -> int:
    return acc + x


def count_one(acc: int, _: Any) -> int:
    return acc + 1


def zero() -> int:
    return 0


def appended(acc: list[Any], x: Any) -> list[Any]:
    return [*acc, x]


def count_words(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


def count_keys(acc: dict[Any, int], e: Any) -> dict[Any, int]:
    acc[e] = acc.get(e, 0) + 1
    return acc


def first(e: Any) -> Any:
    return e[0]


def stamp(e: Any) -> Any:
    return e[2]


def mod2_hash(e: int) -> tuple[int, int] | None:
    return None if e < 0 else (e, e % 2)


def partition_and_keys(acc: dict[Any, Any], p: Any) -> tuple[list[Any], dict[Any, Any]]:
    return [(p[0], k) for k in acc], acc


def partition_and_sorted(acc: list[int], p: Any) -> tuple[list[Any], list[int]]:
    return [(p[0], sorted(acc))], acc


def trigger_and_acc(acc: Any, _p: Any, trigger: Any) -> tuple[list[Any], Any]:
    return [(trigger, acc)], acc


def window_id_and_acc(acc: Any, _p: Any, trigger: Any) -> tuple[list[Any], Any]:
    return [(trigger[1], acc)], acc


def partition_name_acc_reset(acc: int, p: Any, t: Any) -> tuple[list[Any], int]:
    return [(p[0], t[2], acc)], 0


def partition_name_acc(acc: int, p: Any, t: Any) -> tuple[list[Any], int]:
    return [(p[0], t[2], acc)], acc


def sorted_groups(acc: dict[Any, list[Any]]) -> tuple[list[Any], dict[Any, list[Any]]]:
    return sorted((k, sorted(v)) for k, v in acc.items()), acc


def running_total(acc: int, x: int) -> tuple[list[int], int]:
    return [acc + x], acc + x


def tag_total(total: int) -> tuple[str, int]:
    return ("total", total)


def merge_dicts(acc: dict[Any, Any], counts: dict[Any, Any]) -> dict[Any, Any]:
    return {**acc, **counts}


def window_and_sum(acc: list[int], wid: Any) -> tuple[Any, int]:
    return (wid, sum(acc))


def by_count_then_word(kv: tuple[str, int]) -> tuple[int, str]:
    return (-kv[1], kv[0])


def ten_times(x: int) -> int:
    return x * 10


def pair_values(left: Any, right: Any) -> tuple[Any, Any]:
    return (left and left[1], right and right[1])


def concat_values(left: Any, right: Any) -> Any:
    return left[1] + right[1]


def split_words(line: str) -> list[str]:
    return line.split()


def thirty_thousand(x: int) -> range:
    return range(30_000)


def twenty_thousand_from(x: int) -> range:
    return range(x * 20_000, (x + 1) * 20_000)


def put_key(acc: dict[int, int], x: int) -> dict[int, int]:
    acc[x] = x
    return acc


async def slow_double(x: int) -> int:
    await anyio.lowlevel.checkpoint()
    return x * 2


def stops_at_3(x: int) -> Any:
    if x == 3:
        raise StopIteration
    return x


def stops_at_3_list(x: int) -> list[Any]:
    return [stops_at_3(x)]


def append_stopping(acc: list[Any], x: int) -> list[Any]:
    return [*acc, stops_at_3(x)]


def boom_at_7(x: Any) -> Any:
    if x == 7:
        raise Boom(f"at {x}")
    return x


def boom_at_3(x: Any) -> Any:
    if x == 3:
        raise Boom(f"at {x}")
    return x


def boom_at_5(x: Any) -> Any:
    if x == 5:
        raise Boom(f"at {x}")
    return x


def boom_at_42(x: Any) -> Any:
    if x == 42:
        raise Boom(f"at {x}")
    return x


def add_boom_at_11(acc: int, x: int) -> int:
    if x == 11:
        raise Boom(f"at {x}")
    return acc + x


async def async_add_boom_at_3(acc: int, x: int) -> int:
    if x == 3:
        raise Boom("async reduce")
    return acc + x


def divide_by_zero(acc: Any) -> tuple[Any, Any]:
    return acc / 0, acc


def not_a_tuple(acc: Any) -> Any:
    return acc


def one_over_x_minus_4(x: int) -> int:
    return 1 // (x - 4)


def keep_acc(acc: Any, x: Any) -> Any:
    return acc


def divide_join(a: Any, b: Any) -> Any:
    return a / 0


def divide_merge(acc: Any, v: Any) -> Any:
    return acc / 0


def raise_in_partition(acc: int, p: Any) -> tuple[list[Any], int]:
    raise Boom(str(p))


class Shade(str, enum.Enum):  # noqa: UP042 (not StrEnum: str() differs from the value)
    """A str-mixin enum: equal to its value, with another ``str()``."""

    DARK = "dark"


async def _numbers(n: int, closed: list[bool] | None = None) -> AsyncIterator[int]:
    try:
        for i in range(n):
            await anyio.lowlevel.checkpoint()
            yield i
    finally:
        if closed is not None:
            closed.append(True)


async def _forever(closed: list[bool]) -> AsyncIterator[int]:
    try:
        for i in itertools.count():
            await anyio.lowlevel.checkpoint()
            yield i
    finally:
        closed.append(True)


# -- sources, mappers, running ---------------------------------------------------------


@_case()
async def map_filter_to_list(ex: Executor) -> None:
    flow = Flow.from_iterable(range(1000), stages=3).map(double).filter(not_multiple_of_3)
    assert sorted(await _collect(flow, ex)) == [x * 2 for x in range(1000) if (x * 2) % 3]


@_case()
async def stream_yields_batches(ex: Executor) -> None:
    flow = Flow.from_iterable(range(100), stages=2, max_demand=10).map(increment)
    got: list[int] = []
    async with flow.stream(executor=ex) as events:
        async for batch in events.batches():
            assert isinstance(batch, list)
            got.extend(batch)
    assert sorted(got) == list(range(1, 101))


@_case()
async def stream_yields_events(ex: Executor) -> None:
    flow = Flow.from_iterable(range(100), stages=2).map(increment)
    async with flow.stream(executor=ex) as events:
        got = [e async for e in events]
    assert sorted(got) == list(range(1, 101))


@_case()
async def iterate_to_completion(ex: Executor) -> None:
    flow = Flow.from_iterable(range(50), stages=2).map(negate)
    assert sorted([e async for e in flow.iterate(executor=ex)]) == sorted(-x for x in range(50))


@_case()
async def iterate_break_with_aclosing_closes_the_source(ex: Executor) -> None:
    closed: list[bool] = []
    flow = Flow.from_async_iterable(_forever(closed), stages=1).map(identity)
    it = flow.iterate(executor=ex)
    async with contextlib.aclosing(it) as events:
        async for e in events:
            if e == 3:
                break
    assert closed == [True]


@_case()
async def iterate_surfaces_a_failing_callback(ex: Executor) -> None:
    with _raises(Boom, r"in flow layer 0 \(map\), partition [01] of 2"):
        async for _ in (
            Flow.from_iterable(range(1000), stages=2).map(boom_at_42).iterate(executor=ex)
        ):
            pass


@_case()
async def iterate_with_a_reduce(ex: Executor) -> None:
    flow = (
        Flow.from_iterable(["a b", "b c"] * 50)
        .flat_map(split_words)
        .partition()
        .reduce(dict, count_words)
    )
    out = []
    async for pair in flow.iterate(executor=ex):
        with anyio.move_on_after(1):  # scopes inside the loop body are fine
            await anyio.lowlevel.checkpoint()
        out.append(pair)
    assert sorted(out) == [("a", 50), ("b", 100), ("c", 50)]


@_case()
async def no_operations_streams_the_sources(ex: Executor) -> None:
    flow = Flow.from_iterables([range(3), range(10, 13)])
    assert sorted(await _collect(flow, ex)) == [0, 1, 2, 10, 11, 12]


@_case()
async def empty_source(ex: Executor) -> None:
    assert await _collect(Flow.from_iterable([], stages=2).map(identity), ex) == []
    out = await _collect(Flow.from_iterable([], stages=2).reduce(zero, add).emit("state"), ex)
    assert out == [0, 0]


@_case()
async def one_stage_keeps_the_order(ex: Executor) -> None:
    out = await _collect(Flow.from_iterable(range(20), stages=1).map(ten_times), ex)
    assert out == [x * 10 for x in range(20)]


@_case()
async def async_callbacks_and_async_source(ex: Executor) -> None:
    flow = (
        Flow.from_async_iterable(_numbers(30), stages=2, max_demand=5)
        .map(slow_double)
        .partition(stages=2)
        .reduce(zero, add)
        .emit("state")
    )
    assert sum(await _collect(flow, ex)) == sum(x * 2 for x in range(30))


@_case()
async def async_source_is_closed_at_its_end(ex: Executor) -> None:
    closed: list[bool] = []
    flow = Flow.from_async_iterable(_numbers(10, closed), stages=2).map(identity)
    assert sorted(await _collect(flow, ex)) == list(range(10))
    assert closed == [True]


@_case()
async def flat_map_larger_than_a_buffer_loses_nothing(ex: Executor) -> None:
    flow = Flow.from_iterable([0, 1], stages=1).flat_map(thirty_thousand)
    assert len(await _collect(flow, ex)) == 60_000


@_case()
async def huge_final_emission_is_drained_by_demand(ex: Executor) -> None:
    flow = Flow.from_iterable(range(45_000), stages=2).reduce(dict, put_key)
    out = await _collect(flow, ex)
    assert sorted(k for k, _ in out) == list(range(45_000))


@_case()
async def huge_emission_into_a_partitioned_layer(ex: Executor) -> None:
    flow = (
        Flow.from_iterable(range(3), stages=1)
        .flat_map(twenty_thousand_from)
        .partition(stages=3, max_demand=700)
        .reduce(zero, count_one)
        .emit("state")
    )
    assert sum(await _collect(flow, ex)) == 60_000


@_case()
async def run_consumes_the_source(ex: Executor) -> None:
    closed: list[bool] = []
    flow = Flow.from_async_iterable(_numbers(100, closed), stages=2).map(double)
    await flow.run(executor=ex)
    assert closed == [True]


@_case()
async def run_of_a_flow_without_layers(ex: Executor) -> None:
    await Flow.from_iterable(range(10)).run(executor=ex)


# -- reducing, partitioning, layers -------------------------------------------------------


@_case()
async def word_count_with_partition(ex: Executor) -> None:
    lines = ["the quick brown fox", "jumps over the lazy dog", "the end"] * 20
    flow = Flow.from_iterable(lines, stages=2).flat_map(split_words).partition(stages=3)
    out = await _collect(flow.reduce(dict, count_words), ex)
    # Partitioning by the word: every word is counted by exactly one stage.
    assert len(out) == len({w for w, _ in out})
    assert dict(out) == Counter(w for line in lines for w in line.split())


@_case()
async def partition_by_key_elem(ex: Executor) -> None:
    pairs = [(i % 5, i) for i in range(100)]
    flow = (
        Flow.from_iterable(pairs, stages=2)
        .partition(stages=3, key=("elem", 0))
        .group_by_key()
        .on_trigger(partition_and_keys)
    )
    owners = await _collect(flow, ex)
    assert sorted(k for _, k in owners) == [0, 1, 2, 3, 4]


@_case()
async def partition_by_custom_hash(ex: Executor) -> None:
    flow = (
        Flow.from_iterable([-1, *range(10)], stages=1)
        .partition(stages=2, hash=mod2_hash)
        .reduce(list, appended)
        .on_trigger(partition_and_sorted)
    )
    assert sorted(await _collect(flow, ex)) == [(0, [0, 2, 4, 6, 8]), (1, [1, 3, 5, 7, 9])]


@_case()
async def merge_and_shuffle(ex: Executor) -> None:
    a = Flow.from_iterable(range(10), stages=2).map(identity)
    b = Flow.from_iterable(range(100, 110), stages=1)
    merged = Flow.merge([a, b], stages=3).map(increment)
    assert sorted(await _collect(merged, ex)) == sorted([*range(1, 11), *range(101, 111)])
    shuffled = Flow.from_iterable(range(40), stages=2).map(identity).shuffle(stages=3)
    assert sorted(await _collect(shuffled.map(negate), ex)) == sorted(-x for x in range(40))


@_case()
async def uniq_per_partition(ex: Executor) -> None:
    flow = Flow.from_iterable([1, 2, 2, 3, 1, 4] * 3, stages=1).partition(stages=2).uniq()
    assert sorted(await _collect(flow, ex)) == [1, 2, 3, 4]


@_case()
async def emit_and_reduce_emits_in_order(ex: Executor) -> None:
    flow = Flow.from_iterable(range(1, 6), stages=1).emit_and_reduce(zero, running_total)
    assert await _collect(flow.emit("nothing"), ex) == [1, 3, 6, 10, 15]


@_case()
async def group_by_and_on_trigger(ex: Executor) -> None:
    flow = (
        Flow.from_iterable(["the", "quick", "brown", "fox"], stages=1)
        .group_by(len)
        .on_trigger(sorted_groups)
    )
    assert await _collect(flow, ex) == [(3, ["fox", "the"]), (5, ["brown", "quick"])]


@_case()
async def departition_merges_the_partitions(ex: Executor) -> None:
    flow = (
        Flow.from_iterable(range(100), stages=2)
        .partition(stages=4)
        .reduce(zero, add)
        .departition(zero, add, tag_total)
    )
    assert await _collect(flow, ex) == [("total", 4950)]


@_case()
async def departition_with_a_builtin_done(ex: Executor) -> None:
    flow = (
        Flow.from_iterable(["a b", "b c", "c"], stages=2)
        .flat_map(split_words)
        .partition(stages=2)
        .reduce(dict, count_words)
        .departition(dict, merge_dicts, frozenset)
    )
    assert await _collect(flow, ex) == [frozenset({"a", "b", "c"})]


@_case()
async def departition_per_window_with_window_id(ex: Executor) -> None:
    flow = (
        Flow.from_iterable(range(20), stages=1, window=Window.count(5))
        .reduce(zero, add)
        .departition(list, appended, window_and_sum)
    )
    assert sorted(await _collect(flow, ex)) == [(0, 10), (1, 35), (2, 60), (3, 85), (4, 0)]


@_case()
async def take_sort_across_partitions(ex: Executor) -> None:
    words = ["a", "b", "c", "a", "b", "a", "d", "d", "d", "d", "e"]
    flow = (
        Flow.from_iterable(words, stages=2)
        .partition(stages=3)
        .reduce(dict, count_words)
        .take_sort(2, key=by_count_then_word)
    )
    assert await _collect(flow, ex) == [[("d", 4), ("a", 3)]]


@_case()
async def mappers_after_departition(ex: Executor) -> None:
    flow = (
        Flow.from_iterable(range(10), stages=2)
        .partition(stages=2)
        .reduce(zero, add)
        .departition(zero, add, identity)
        .map(ten_times)
    )
    assert await _collect(flow, ex) == [450]


@_case()
async def equal_keys_share_a_partition_in_any_batch(ex: Executor) -> None:
    events: list[object] = [Shade.DARK] * 50 + [Shade.DARK, 1, "dark"] * 50
    flow = (
        Flow.from_iterable(events, stages=1, max_demand=10)
        .partition(stages=4)
        .reduce(dict, count_keys)
    )
    result = await _collect(flow, ex)
    assert sorted((type(k).__name__, v) for k, v in result) == [("Shade", 150), ("int", 50)]


@_case()
async def a_callback_raising_stop_iteration_fails_the_flow(ex: Executor) -> None:
    src = Flow.from_iterable(range(6), stages=1)
    for flow in (
        src.map(stops_at_3),
        src.filter(stops_at_3),
        src.reject(stops_at_3),
        src.flat_map(stops_at_3_list),
        src.map(stops_at_3).reduce(list, appended),
        src.reduce(list, append_stopping),
        src.partition(stages=2, key=stops_at_3),
        Flow.from_iterable(range(6), stages=1, window=Window.count(2))
        .map(stops_at_3)
        .reduce(list, appended),
    ):
        with _raises((StopIteration, RuntimeError)):
            await _collect(flow, ex)


# -- joins ---------------------------------------------------------------------------------

_LEFT = [(1, "l1"), (2, "l2"), (2, "l2b"), (4, "l4")]
_RIGHT = [(2, "r2"), (3, "r3"), (4, "r4"), (4, "r4b")]


def _reference_join(mode: str) -> list[Any]:
    out: list[Any] = [(lv, rv) for lk, lv in _LEFT for rk, rv in _RIGHT if lk == rk]
    rkeys = {k for k, _ in _RIGHT}
    lkeys = {k for k, _ in _LEFT}
    if mode in ("left_outer", "full_outer"):
        out += [(lv, None) for lk, lv in _LEFT if lk not in rkeys]
    if mode in ("right_outer", "full_outer"):
        out += [(None, rv) for rk, rv in _RIGHT if rk not in lkeys]
    return _by_repr(out)


@_case()
async def bounded_joins(ex: Executor) -> None:
    for mode in ("inner", "left_outer", "right_outer", "full_outer"):
        for stages in (1, 3):
            flow = Flow.bounded_join(
                mode,
                Flow.from_iterable(_LEFT, stages=2).map(identity),
                Flow.from_iterable(_RIGHT, stages=1),
                first,
                first,
                pair_values,
                stages=stages,
            )
            got = _by_repr(await _collect(flow, ex))
            assert got == _reference_join(mode), (mode, stages, got)


@_case()
async def window_join_with_fixed_windows(ex: Executor) -> None:
    left = [(1, "a", 1), (1, "b", 15)]  # (key, value, timestamp ms)
    right = [(1, "x", 2), (1, "y", 16)]
    flow = Flow.window_join(
        "inner",
        Flow.from_iterable(left, stages=1),
        Flow.from_iterable(right, stages=1),
        Window.fixed(10, "millisecond", stamp),
        first,
        first,
        concat_values,
        stages=1,
    )
    assert sorted(await _collect(flow, ex)) == ["ax", "by"]


# -- windows without a clock ------------------------------------------------------------


@_case()
async def count_windows(ex: Executor) -> None:
    flow = (
        Flow.from_iterable(range(10), stages=1, window=Window.count(3))
        .reduce(list, appended)
        .on_trigger(trigger_and_acc)
    )
    assert await _collect(flow, ex) == [
        (("count", 0, "done"), [0, 1, 2]),
        (("count", 1, "done"), [3, 4, 5]),
        (("count", 2, "done"), [6, 7, 8]),
        (("count", 3, "done"), [9]),
    ]


@_case()
async def fixed_windows_by_timestamp_with_gaps(ex: Executor) -> None:
    flow = (
        Flow.from_iterable(
            [1, 5, 12, 15, 31],
            stages=1,
            max_demand=1,
            window=Window.fixed(10, "millisecond", identity),
        )
        .reduce(zero, add)
        .on_trigger(window_id_and_acc)
    )
    assert await _collect(flow, ex) == [(0, 6), (10, 27), (20, 0), (30, 31)]


@_case()
async def trigger_every_on_a_partitioned_layer(ex: Executor) -> None:
    flow = (
        Flow.from_iterable(range(12), stages=1)
        .partition(stages=2, window=Window.global_().trigger_every(3), hash=mod2_hash)
        .reduce(zero, count_one)
        .on_trigger(partition_name_acc_reset)
    )
    out = _by_repr(await _collect(flow, ex))
    every = [(p, acc) for p, name, acc in out if name == ("every", 3)]
    assert sorted(every) == [(0, 3), (0, 3), (1, 3), (1, 3)]


# -- stages of the calling process -------------------------------------------------------


class Doubler(ProducerConsumer[int, int]):
    """A producer-consumer that stops itself once its producers are gone."""

    def __init__(self) -> None:
        super().__init__()
        self.upstream = 0

    def handle_subscribe(
        self, kind: str, options: Any, from_: Any
    ) -> Literal["automatic", "manual"]:
        if kind == "producer":
            self.upstream += 1
        return "automatic"

    def handle_events(self, events: list[int], from_: Any) -> list[int]:
        return [e * 2 for e in events]

    def handle_cancel(self, reason: tuple[str, object], from_: Any) -> None:
        if from_.producer is not self:
            self.upstream -= 1
            if self.upstream == 0:
                self.finish()


class Collector(Consumer[Any]):
    """A consumer that keeps every event it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []

    def handle_events(self, events: list[Any], from_: Any) -> None:
        self.events.extend(events)


class Oops(Producer[int]):
    """A producer that stops with an abnormal reason at its first demand."""

    def handle_demand(self, demand: int) -> list[int]:
        self.stop("oops")
        return [1]


@_case()
async def from_stages_with_running_and_unstarted_producers(ex: Executor) -> None:
    async with StageGroup() as group:
        running = group.start(from_iterable(range(10), demand="accumulate"))
        later = from_iterable(range(100, 105))
        flow = Flow.from_stages([running, later], stages=2).map(increment)
        assert sorted(await _collect(flow, ex)) == [*range(1, 11), *range(101, 106)]


@_case()
async def from_stages_partitioned(ex: Executor) -> None:
    flow = (
        Flow.from_stages([from_iterable(range(20))], stages=1)
        .partition(stages=2)
        .reduce(zero, add)
        .emit("state")
    )
    assert sum(await _collect(flow, ex)) == sum(range(20))


@_case()
async def through_stages(ex: Executor) -> None:
    flow = (
        Flow.from_iterable(range(10), stages=2)
        .map(increment)
        .through_stages([Doubler(), Doubler()], stages=2)
        .map(negate)
    )
    assert sorted(await _collect(flow, ex)) == sorted(-(x + 1) * 2 for x in range(10))


@_case()
async def into_stages(ex: Executor) -> None:
    collector = Collector()
    async with StageGroup() as group:
        group.start(collector)
        flow = Flow.from_iterable(range(30), stages=2).map(triple)
        async with flow.into_stages([collector], executor=ex) as running:
            await running.wait()
            assert running.done
        await wait_until(lambda: len(collector.events) == 30)
        assert sorted(collector.events) == [x * 3 for x in range(30)]
        group.cancel()


class SlowCollector(Collector):
    """A collector that lets other tasks run before it takes each batch, so that
    it lags behind the flow."""

    async def handle_events(self, events: list[Any], from_: Any) -> None:  # type: ignore[override]
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        self.events.extend(events)


@_case()
async def into_stages_drains_the_consumers_it_starts(ex: Executor) -> None:
    # A consumer that is not running is started by the flow, which owns it: it
    # handles every event sent to it, then stops, before the flow is done.
    collector = SlowCollector()
    flow = Flow.from_iterable(range(5000), stages=3).map(triple)
    async with flow.into_stages([collector], executor=ex) as running:
        await running.wait()
        assert running.done
        assert not collector.running
    assert sorted(collector.events) == [x * 3 for x in range(5000)]


@_case()
async def into_stages_of_a_source_without_layers(ex: Executor) -> None:
    collector = Collector()
    async with StageGroup() as group:
        group.start(collector)
        async with Flow.from_iterable(range(5)).into_stages([collector], executor=ex) as running:
            await running.wait()
        await wait_until(lambda: len(collector.events) == 5)
        assert sorted(collector.events) == list(range(5))
        group.cancel()


@_case()
async def a_producer_stopping_abnormally_fails_the_flow(ex: Executor) -> None:
    with _raises(StageExited) as caught:
        await _collect(Flow.from_stages([Oops()], stages=2).map(identity), ex)
    assert caught[0].reason == "oops"  # type: ignore[attr-defined]


@_case()
async def a_bad_from_stages_argument(ex: Executor) -> None:
    with _raises(TypeError):
        await _collect(Flow.from_stages([object()]).map(identity), ex)


# -- start / trigger / stop / wait -------------------------------------------------------------


@_case()
async def start_and_wait_runs_to_completion(ex: Executor) -> None:
    closed: list[bool] = []
    flow = Flow.from_async_iterable(_numbers(50, closed), stages=2).map(double)
    async with flow.start(executor=ex) as running:
        await running.wait()
        assert running.done
        assert running.exception is None
    assert closed == [True]
    await running.wait()  # after the block: returns at once


@_case()
async def start_trigger_and_stop(ex: Executor) -> None:
    collector = Collector()
    gate = anyio.Event()
    sent = anyio.Event()

    async def gated() -> AsyncIterator[int]:
        for i in range(40):
            yield i
        sent.set()
        await gate.wait()

    flow = (
        Flow.from_async_iterable(gated(), stages=1, max_demand=10)
        .partition(stages=2, max_demand=10, hash=mod2_hash)
        .reduce(zero, count_one)
        .on_trigger(partition_name_acc)
    )
    async with StageGroup() as group:
        group.start(collector)
        async with flow.into_stages([collector], executor=ex) as running:
            await sent.wait()
            running.trigger("flush")
            await wait_until(lambda: len(collector.events) >= 2)
            gate.set()
            await running.wait()
        await wait_until(lambda: sum(acc for _, n, acc in collector.events if n == "done") == 40)
        group.cancel()
    flushes = sorted(p for p, name, _ in collector.events if name == "flush")
    assert flushes == [0, 1], collector.events
    done = sorted((p, acc) for p, name, acc in collector.events if name == "done")
    assert done == [(0, 20), (1, 20)]


@_case()
async def stop_ends_an_infinite_flow(ex: Executor) -> None:
    closed: list[bool] = []
    flow = Flow.from_async_iterable(_forever(closed), stages=2).map(identity)
    async with flow.start(executor=ex) as running:
        await anyio.lowlevel.checkpoint()
        running.stop()
        await running.wait()
        assert running.done
    assert running.exception is None


@_case()
async def leaving_the_start_block_stops_an_infinite_flow(ex: Executor) -> None:
    flow = Flow.from_iterable(itertools.count(), stages=2).map(identity)
    async with flow.start(executor=ex) as running:
        await anyio.lowlevel.checkpoint()
    assert running.done
    await running.wait()  # the block was left early: returns at once


# -- state, statistics, shutdown -------------------------------------------------------------


async def hang(x: Any) -> Any:
    """Never returns (until cancelled)."""
    await anyio.sleep_forever()
    return x


async def _gated(n: int, gate: anyio.Event, sent: anyio.Event) -> AsyncIterator[int]:
    for i in range(n):
        yield i
    sent.set()
    await gate.wait()


def _state(running: Any) -> FlowState:
    state: FlowState = running.state
    return state


@_case()
async def statistics_count_every_layer(ex: Executor) -> None:
    lines = ["a b c", "b c", "c", "d e f g"] * 25
    words = [w for line in lines for w in line.split()]
    snapshots: list[FlowStatistics] = []
    flow = (
        Flow.from_iterable(lines, stages=2)
        .flat_map(split_words)
        .partition(stages=2)
        .reduce(dict, count_words)
    )
    out = await flow.to_list(executor=ex, on_statistics=snapshots.append)
    assert len(snapshots) == 1
    stats = snapshots[0]
    assert stats.state == FlowState.DONE
    labels = [layer.label for layer in stats.layers]
    assert labels == ["sources", "from_iterable(2) → flat_map", "partition(2) → reduce"], labels
    sources, mappers, reducers = stats.layers
    assert stats.events_in == sources.events_out == len(lines)
    assert mappers.events_in == len(lines)
    assert mappers.events_out == reducers.events_in == len(words)
    assert stats.events_out == reducers.events_out == len(out) == len(set(words))
    assert [s.name for s in reducers.stages] == ["flow-layer1-stage0", "flow-layer1-stage1"]
    # Gauges: nothing is subscribed any more once the flow has ended.
    assert not any(s.producers or s.consumers for layer in stats.layers for s in layer.stages)
    assert not any(s.running for layer in stats.layers for s in layer.stages)
    assert pickle.loads(pickle.dumps(stats)) == stats
    assert json.loads(json.dumps(stats.to_dict()))["layers"][2]["events_in"] == len(words)


@_case()
async def statistics_of_a_stream_and_a_loop(ex: Executor) -> None:
    flow = Flow.from_iterable(range(100), stages=2).filter(not_multiple_of_3)
    async with flow.stream(executor=ex) as events:
        seen = [e async for e in events]
        assert events.statistics().layers[1].events_out == len(seen) == 66
    iterator = flow.iterate(executor=ex)
    try:
        looped = [e async for e in iterator]
        stats = iterator.statistics()
    finally:
        await iterator.aclose()
    assert stats.state == FlowState.DONE
    assert stats.events_in == 100
    assert stats.events_out == len(looped) == 66


@_case()
async def a_running_flow_reports_its_state(ex: Executor) -> None:
    gate, sent = anyio.Event(), anyio.Event()
    flow = Flow.from_async_iterable(_gated(30, gate, sent), stages=2).map(double)
    async with flow.start(executor=ex) as running:
        assert _state(running) == FlowState.RUNNING
        await sent.wait()
        live = running.statistics()
        assert live.state == FlowState.RUNNING
        assert [s.producers for s in live.layers[1].stages] == [1, 1]  # the source
        gate.set()
        await running.wait()
        assert _state(running) == FlowState.DONE
        assert running.statistics().events_in == 30
    assert _state(running) == FlowState.DONE

    closed: list[bool] = []
    forever = Flow.from_async_iterable(_forever(closed), stages=2).map(identity)
    async with forever.start(executor=ex) as running:
        await anyio.lowlevel.checkpoint()
        running.stop()
        await running.wait()
    assert _state(running) == FlowState.STOPPED
    async with forever.start(executor=ex) as running:
        await anyio.lowlevel.checkpoint()
    assert _state(running) == FlowState.STOPPED  # the block was left early


@_case()
async def a_failed_flow_reports_failed(ex: Executor) -> None:
    flow = Flow.from_iterable(range(20), stages=2).map(boom_at_7)
    with _raises(Boom):
        async with flow.start(executor=ex) as running:
            await running.wait()
    assert running.state == FlowState.FAILED
    assert isinstance(running.exception, Boom)
    assert running.statistics().state == FlowState.FAILED
    result = await running.shutdown()
    assert result.outcome == "already_done"
    assert isinstance(result.exception, Boom)


@_case()
async def shutdown_closes_the_sources_and_drains(ex: Executor) -> None:
    collector = Collector()
    gate, sent = anyio.Event(), anyio.Event()
    flow = (
        Flow.from_async_iterable(_gated(40, gate, sent), stages=1, max_demand=10)
        .partition(stages=2, max_demand=10, hash=mod2_hash)
        .reduce(zero, count_one)
        .on_trigger(partition_name_acc)
    )
    async with StageGroup() as group:
        group.start(collector)
        async with flow.into_stages([collector], executor=ex) as running:
            await sent.wait()
            result = await running.shutdown(timeout=60)
            assert result.outcome == "drained", result
            assert result.state == FlowState.DONE
            assert running.state == FlowState.DONE
        await wait_until(lambda: len(collector.events) >= 2)
        group.cancel()
    done = sorted((p, acc) for p, name, acc in collector.events if name == "done")
    assert done == [(0, 20), (1, 20)], collector.events


@_case()
async def shutdown_stops_a_flow_that_does_not_drain(ex: Executor) -> None:
    closed: list[bool] = []
    flow = Flow.from_async_iterable(_forever(closed), stages=1).map(hang)
    async with flow.start(executor=ex) as running:
        # An event inside the flow, whose callback never returns.
        await wait_until(lambda: running.statistics().events_in >= 1)
        result = await running.shutdown(timeout=0.05)
        assert result.outcome == "cancelled", result
        assert result.state == FlowState.STOPPED
        assert result.exception is None
    assert closed == [True]
    try:
        await running.shutdown(timeout=-1)
    except ValueError as exc:
        message = str(exc)
    else:
        raise AssertionError("shutdown(timeout=-1) did not raise ValueError")
    assert "timeout" in message, message


# -- push sources and fan-out --------------------------------------------------------------


@_case()
async def push_source_feeds_the_flow_until_closed(ex: Executor) -> None:
    flow, push = Flow.from_push[int](capacity=8, stages=2)
    sums = flow.map(double).partition(stages=2).reduce(zero, add).emit("state")
    async with sums.stream(executor=ex) as events:
        await push.push_many(range(100))  # more than the capacity: waits for room
        push.close()  # the input ends: the windows flush, the flow finishes
        out = [e async for e in events]
    assert sum(out) == sum(x * 2 for x in range(100)), out
    assert len(out) == 2, out
    with _raises(PushClosed):
        push.push_nowait(1)


@_case()
async def published_output_reaches_every_subscriber(ex: Executor) -> None:
    flow, push = Flow.from_push[int](stages=2)
    async with flow.map(double).start(executor=ex, publish=True) as running:
        subscriptions = [running.subscribe(buffer=100) for _ in range(3)]
        await push.push_many(range(50))
        push.close()
        await running.wait()
        for sub in subscriptions:
            assert sorted([e async for e in sub]) == [x * 2 for x in range(50)]
            assert sub.dropped == 0
        assert running.statistics().subscribers == 0


@_case()
async def push_after_a_failure_raises_it_as_the_cause(ex: Executor) -> None:
    flow, push = Flow.from_push[int](stages=2)
    with _raises(Boom):
        async with flow.map(boom_at_42).start(executor=ex) as running:
            await push.push_many(range(100))
            await running.wait()
    with _raises(PushClosed) as caught:
        await push(0)
    assert isinstance(caught[0].__cause__, Boom), caught


# -- failures ------------------------------------------------------------------------------


def _failing_flows() -> list[tuple[str, Flow[Any], type[BaseException], str]]:
    return [
        (
            "map",
            Flow.from_iterable(range(20), stages=2).map(boom_at_7),
            Boom,
            r"in flow layer 0 \(map\), partition [01] of 2",
        ),
        (
            "filter after map",
            Flow.from_iterable(range(20), stages=1).map(identity).filter(boom_at_3),
            Boom,
            r"in flow layer 0 \(filter\), partition 0 of 1",
        ),
        (
            "reduce",
            Flow.from_iterable(range(20), stages=2)
            .partition(stages=3)
            .reduce(zero, add_boom_at_11)
            .emit("state"),
            Boom,
            r"in flow layer 0 \(reduce\), partition [012] of 3",
        ),
        (
            "async reduce",
            Flow.from_iterable(range(20), stages=1).reduce(zero, async_add_boom_at_3),
            Boom,
            r"in flow layer 0 \(reduce\), partition 0 of 1",
        ),
        (
            "on_trigger at done",
            Flow.from_iterable(range(20), stages=1)
            .map(identity)
            .partition(stages=2)
            .reduce(zero, add)
            .on_trigger(divide_by_zero),
            ZeroDivisionError,
            r"in flow layer 1 \(on_trigger\), partition [01] of 2",
        ),
        (
            "on_trigger bad result",
            Flow.from_iterable(range(5), stages=1).reduce(zero, add).on_trigger(not_a_tuple),
            TypeError,
            r"in flow layer 0 \(on_trigger\), partition 0 of 1",
        ),
        (
            "state not iterable",
            Flow.from_iterable(range(5), stages=1).reduce(zero, add),
            TypeError,
            r"in flow layer 0 \(reduce state to events\)",
        ),
        (
            "partition key",
            Flow.from_iterable(range(10), stages=1)
            .map(identity)
            .partition(stages=2, key=one_over_x_minus_4)
            .map(identity),
            ZeroDivisionError,
            r"in flow layer 1 \(partition key/hash\)",
        ),
        (
            "fixed window by",
            Flow.from_iterable(
                ["x"],
                stages=1,
                window=Window.fixed(1, "second", str),  # type: ignore[arg-type]
            )
            .reduce(list, keep_acc)
            .emit("state"),
            TypeError,
            r"in flow layer 0 \(window by\)",
        ),
        (
            "join function",
            Flow.bounded_join(
                "inner",
                Flow.from_iterable([1, 2]),
                Flow.from_iterable([2, 3]),
                identity,
                identity,
                divide_join,
                stages=2,
            ),
            ZeroDivisionError,
            r"in flow layer 0 \(join\), partition [01] of 2",
        ),
        (
            "departition merge",
            Flow.from_iterable(range(9), stages=1)
            .partition(stages=3)
            .reduce(zero, add)
            .departition(zero, divide_merge, identity),
            ZeroDivisionError,
            r"in flow layer 1 \(departition merge\), partition 0 of 1",
        ),
        (
            "source iterable",
            Flow.from_iterable((1 // (3 - i) for i in range(6)), stages=2).map(identity),
            ZeroDivisionError,
            r"in flow-source0 \(iterating the source iterable\)",
        ),
    ]


@_case()
async def callback_errors_surface_unwrapped_with_a_note(ex: Executor) -> None:
    for name, flow, exc_type, note in _failing_flows():
        try:
            with _raises(exc_type, note) as caught:
                await _collect(flow, ex)
        except AssertionError as error:
            raise AssertionError(f"{name}: {error}") from error
        assert type(caught[0]) is exc_type, name


@_case()
async def every_partition_failing_raises_one_failure(ex: Executor) -> None:
    """Several partitions fail: every run mode raises the failure itself (the first
    one, with a note listing any other that happened before the flow stopped)."""
    flow = Flow.from_iterable(range(10), stages=3).reduce(zero, add).on_trigger(raise_in_partition)
    for run in ("to_list", "iterate", "start"):
        with _raises(Boom, r"in flow layer 0 \(on_trigger\), partition [012] of 3"):
            if run == "to_list":
                await _collect(flow, ex)
            elif run == "iterate":
                async for _ in flow.iterate(executor=ex):
                    pass
            else:
                async with flow.start(executor=ex) as running:
                    await running.wait()


@_case()
async def error_inside_the_stream_block(ex: Executor) -> None:
    with _raises(Boom):
        async with (
            Flow.from_iterable(range(100), stages=2).map(boom_at_5).stream(executor=ex) as events
        ):
            async for _ in events:
                pass


@_case()
async def an_error_raised_by_the_loop_body_is_not_wrapped(ex: Executor) -> None:
    flow = Flow.from_iterable(itertools.count(), stages=2).map(identity)
    with _raises(KeyError):
        async with flow.stream(executor=ex) as events:
            async for e in events:
                if e > 10:
                    raise KeyError(e)
    flow = Flow.from_iterable(itertools.count()).partition(stages=2).map(str)
    with _raises(KeyError):
        async for e in flow.iterate(executor=ex):
            if e == "1000":
                raise KeyError(e)


@_case()
async def error_in_a_started_flow_is_raised_from_the_block(ex: Executor) -> None:
    flow = Flow.from_iterable(range(100), stages=2).map(boom_at_42)
    with _raises(Boom):
        async with flow.start(executor=ex) as running:
            await running.wait()
    assert running.done
    assert isinstance(running.exception, Boom)
    with _raises(Boom):
        await running.wait()


@_case()
async def break_stops_an_infinite_flow(ex: Executor) -> None:
    flow = Flow.from_iterable(itertools.count(), stages=2).map(identity).partition(stages=2)
    seen = 0
    async with flow.map(identity).stream(executor=ex) as events:
        async for _ in events:
            seen += 1
            if seen > 5000:
                break
    assert seen == 5001


@_case()
async def cancelling_the_consumer_stops_everything(ex: Executor) -> None:
    flow = Flow.from_iterable(itertools.count(), stages=3).map(identity).shuffle(stages=2)
    with anyio.CancelScope() as scope:
        async with flow.stream(executor=ex) as events:
            async for e in events:
                if e > 1000:
                    scope.cancel()
    assert scope.cancelled_caught


# -- windows and triggers in (virtual) time ----------------------------------------------------


async def ticking(times: list[float]) -> AsyncIterator[float]:
    """Yield each of ``times`` (seconds since the start) at that time."""
    start = anyio.current_time()
    for t in times:
        await anyio.sleep(start + t - anyio.current_time())
        yield t


def partition_trigger_count(acc: int, p: Any, t: Any) -> tuple[list[Any], int]:
    return [(p, t[2], acc)], acc


def floor(t: float) -> int:
    return int(t)


def window_id_and_sorted(acc: list[Any], _p: Any, t: Any) -> tuple[list[Any], list[Any]]:
    return [(t[1], sorted(acc))], acc


def second_of(e: Any) -> Any:
    return e[1]


def values_of(acc: list[Any], e: Any) -> list[Any]:
    return [*acc, e[1]]


def first_elem_of(e: Any) -> Any:
    return e[0]


def id_name_acc(acc: Any, _p: Any, t: Any) -> tuple[list[Any], Any]:
    return [(t[1], t[2], acc)], acc


@_case("virtual_clock")
async def periodic_windows_close_on_time(ex: Executor) -> None:
    flow = (
        Flow.from_async_iterable(
            ticking([1, 2, 3, 4, 5, 6, 7, 8, 9]),
            stages=1,
            max_demand=1,
            window=Window.periodic(2200, "millisecond"),
        )
        .reduce(list, appended)
        .on_trigger(trigger_and_acc)
    )
    assert await _collect(flow, ex) == [
        (("periodic", 0, "done"), [1, 2]),
        (("periodic", 1, "done"), [3, 4]),
        (("periodic", 2, "done"), [5, 6]),
        (("periodic", 3, "done"), [7, 8]),
        (("periodic", 4, "done"), [9]),
    ]


@_case("virtual_clock")
async def trigger_periodically_on_a_global_window(ex: Executor) -> None:
    flow = (
        Flow.from_async_iterable(
            ticking([0.5, 1.5, 2.5, 3.5]),
            stages=1,
            max_demand=1,
            window=Window.global_().trigger_periodically(1, "second"),
        )
        .reduce(list, appended)
        .on_trigger(trigger_and_acc)
    )
    name = ("periodically", 1, "second")
    assert await _collect(flow, ex) == [
        (("global", "global", name), [0.5]),
        (("global", "global", name), [0.5, 1.5]),
        (("global", "global", name), [0.5, 1.5, 2.5]),
        (("global", "global", "done"), [0.5, 1.5, 2.5, 3.5]),
    ]


@_case("virtual_clock")
async def trigger_periodically_with_two_stages_fires_on_each(ex: Executor) -> None:
    flow = (
        Flow.from_async_iterable(
            ticking([0.5, 1.5, 2.5]),
            stages=2,
            max_demand=1,
            window=Window.global_().trigger_periodically(1, "second"),
        )
        .reduce(zero, count_one)
        .on_trigger(partition_trigger_count)
    )
    out = await _collect(flow, ex)
    done = [acc for (_, name, acc) in out if name == "done"]
    assert sum(done) == 3
    ticks = [(p, acc) for (p, name, acc) in out if name != "done"]
    # Every stage ticks at 1s and 2s (the flow ends at 2.5s).
    assert sorted(p for p, _ in ticks) == [(0, 2), (0, 2), (1, 2), (1, 2)]


@_case("virtual_clock")
async def periodic_window_with_partition_downstream(ex: Executor) -> None:
    flow = (
        Flow.from_async_iterable(ticking([0.5, 1.5, 2.5, 3.5]), stages=1, max_demand=1)
        .map(floor)
        .partition(stages=2, max_demand=1, window=Window.periodic(2, "second"))
        .reduce(list, appended)
        .on_trigger(window_id_and_sorted)
    )
    out = await _collect(flow, ex)
    windows: dict[int, list[int]] = {}
    for wid, acc in out:
        windows.setdefault(wid, []).extend(acc)
    assert {k: sorted(v) for k, v in windows.items()} == {0: [0, 1], 1: [2, 3]}


@_case("virtual_clock")
async def external_trigger_and_stop_in_virtual_time(ex: Executor) -> None:
    collector = Collector()

    async def forever() -> AsyncIterator[int]:
        i = 0
        while True:
            await anyio.sleep(1)
            yield i
            i += 1

    flow = (
        Flow.from_async_iterable(forever(), stages=1, max_demand=1)
        .reduce(list, appended)
        .on_trigger(trigger_and_acc)
    )
    async with StageGroup() as group:
        group.start(collector)
        async with flow.into_stages([collector], executor=ex) as running:
            await anyio.sleep(3.5)
            running.trigger("flush")
            await anyio.sleep(2)
            running.stop()
            await running.wait()
            assert running.done
        group.cancel()
    assert collector.events == [(("global", "global", "flush"), [0, 1, 2])]


@_case("virtual_clock")
async def fixed_window_allowed_lateness(ex: Executor) -> None:
    events = [(0, "a"), (5, "b"), (12, "c"), (3, "late"), (25, "d")]
    flow = (
        Flow.from_iterable(
            events,
            stages=1,
            max_demand=1,
            window=Window.fixed(10, "millisecond", first_elem_of).allowed_lateness(1, "second"),
        )
        .reduce(list, values_of)
        .on_trigger(id_name_acc)
    )
    out = await _collect(flow, ex)
    # Window 0 closes (watermark) when 12 arrives; 3 is late but still open.
    assert (0, "watermark", ["a", "b"]) in out
    assert (0, "done", ["a", "b", "late"]) in out
    assert out[-1][1] == "done"
