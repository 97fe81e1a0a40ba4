"""Plans are portable data: every builder method with module-level callbacks gives
a plan that pickles, compares equal after a round trip and runs the same;
``check_portable`` names what stops one that does not."""

from __future__ import annotations

import operator
import pickle
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import flowstage
from flowstage import Flow, Window
from flowstage.executors import LocalExecutor
from flowstage.plan import (
    PLAN_VERSION,
    Bindings,
    LocalRef,
    Plan,
    PlanVersionError,
    check_portable,
    require_version,
)

# -- module-level callbacks (importable, so pickled by reference) ---------------------


def double(x: int) -> int:
    return x * 2


def is_even(x: int) -> bool:
    return x % 2 == 0


def pair(x: int) -> tuple[int, int]:
    return x % 3, x


def repeat(x: int) -> list[int]:
    return [x, x]


def add(acc: int, x: int) -> int:
    return acc + x


def emit_and_add(acc: int, x: int) -> tuple[list[int], int]:
    return [x], acc + x


def mod3(x: Any) -> int:
    return int(x) % 3


def ident(x: Any) -> Any:
    return x


def stamp(x: int) -> int:
    return x * 1000


def on_trigger(acc: int, partition: Any, trigger: Any) -> tuple[list[Any], int]:
    return [(trigger[0], acc)], acc


def appended(acc: list[Any], x: Any) -> list[Any]:
    acc.append(x)
    return acc


def batch_sorted(xs: list[int]) -> list[int]:
    return sorted(xs)


def zero() -> int:
    return 0


def merge_counts(acc: int, value: int) -> int:
    return acc + value


def done_total(acc: int) -> int:
    return acc


def joined(a: Any, b: Any) -> tuple[Any, Any]:
    return (a, b)


def first_of(x: Any) -> Any:
    return x[0]


def punct(acc: int, events: list[Any]) -> tuple[Any, ...]:
    return ("cont", acc)


def route(x: int) -> tuple[int, int]:
    return x, x % 2


async def numbers() -> AsyncIterator[int]:
    for i in range(6):
        yield i


class Forward(flowstage.ProducerConsumer[Any, Any]):
    def handle_events(self, events: list[Any], from_: Any) -> list[Any]:
        return events


def src(n: int = 12, **kw: Any) -> Flow[int]:
    return Flow.from_iterable(range(n), stages=2, **kw)


#: One flow per builder method (and window/trigger kind), all with module-level
#: callbacks; ``runs`` says whether the test also runs the unpickled plan.
CASES: list[tuple[str, Callable[[], Flow[Any]], bool]] = [
    ("from_iterable", lambda: src().map(double), True),
    ("from_iterables", lambda: Flow.from_iterables([range(3), range(3, 6)]).map(double), True),
    ("from_async_iterable", lambda: Flow.from_async_iterable(numbers()).map(double), True),
    ("from_async_iterables", lambda: Flow.from_async_iterables([numbers()]).map(double), True),
    (
        "from_stages",
        lambda: Flow.from_stages([flowstage.from_iterable(range(3))]).map(double),
        False,
    ),
    ("merge", lambda: Flow.merge([src().map(double), src().map(ident)]).map(ident), True),
    ("partition", lambda: src().map(double).partition(stages=3).map(ident), True),
    ("partition key=", lambda: src().partition(stages=3, key=mod3).map(ident), True),
    (
        "partition elem",
        lambda: src().map(pair).partition(stages=3, key=("elem", 0)).map(ident),
        True,
    ),
    ("partition key", lambda: src().map(pair).partition(stages=3, key=("key", 1)).map(ident), True),
    ("partition hash=", lambda: src().partition(stages=2, hash=route).map(ident), True),
    ("shuffle", lambda: src().map(double).shuffle(stages=2).map(ident), True),
    ("through_stages", lambda: src().map(double).through_stages([Forward()]).map(ident), False),
    ("flat_map", lambda: src().flat_map(repeat), True),
    ("filter", lambda: src().filter(is_even), True),
    ("reject", lambda: src().reject(is_even), True),
    ("map_values", lambda: src().map(pair).map_values(double), True),
    ("map_batch", lambda: src().map_batch(batch_sorted), True),
    ("uniq", lambda: src().map(mod3).uniq(), True),
    ("uniq_by", lambda: src().uniq_by(mod3), True),
    ("reduce", lambda: src().partition(stages=2).reduce(zero, add).emit("state"), True),
    ("emit_and_reduce", lambda: src().emit_and_reduce(zero, emit_and_add).emit("nothing"), True),
    ("group_by", lambda: src().partition(key=mod3).group_by(mod3), True),
    ("group_by value", lambda: src().partition(key=mod3).group_by(mod3, double), True),
    ("group_by_key", lambda: src().map(pair).partition(key=("elem", 0)).group_by_key(), True),
    ("on_trigger", lambda: src().reduce(zero, add).on_trigger(on_trigger), True),
    ("emit state", lambda: src().reduce(zero, add).emit("state"), True),
    ("emit nothing", lambda: src().reduce(zero, add).emit("nothing"), True),
    (
        "departition",
        lambda: src().reduce(zero, add).departition(zero, merge_counts, done_total),
        True,
    ),
    ("take_sort", lambda: src().reduce(zero, add).emit("state").take_sort(1), True),
    (
        "take_sort key",
        lambda: src().map(pair).reduce(list, appended).take_sort(3, key=first_of, reverse=True),
        True,
    ),
    *[
        (
            f"bounded_join {mode}",
            (
                lambda m: (
                    lambda: Flow.bounded_join(m, src(6), src(6).map(double), mod3, mod3, joined)
                )
            )(mode),
            True,
        )
        for mode in ("inner", "left_outer", "right_outer", "full_outer")
    ],
    (
        "window_join",
        lambda: Flow.window_join(
            "inner", src(6), src(6), Window.fixed(1, "second", stamp), mod3, mod3, joined
        ),
        True,
    ),
    ("Window.count", lambda: src(window=Window.count(4)).reduce(zero, add).emit("state"), True),
    (
        "Window.periodic",
        lambda: src(window=Window.periodic(1, "hour")).reduce(zero, add).emit("state"),
        True,
    ),
    (
        "Window.fixed",
        lambda: src(window=Window.fixed(1, "second", stamp)).reduce(zero, add).emit("state"),
        True,
    ),
    (
        "allowed_lateness",
        lambda: src(window=Window.fixed(1, "second", stamp).allowed_lateness(1, "second")).reduce(
            zero, add
        ),
        False,
    ),
    (
        "Window.trigger",
        lambda: src(window=Window.global_().trigger(zero, punct)).reduce(zero, add).emit("state"),
        True,
    ),
    (
        "trigger_every",
        lambda: src(window=Window.count(6).trigger_every(2)).reduce(zero, add).emit("state"),
        True,
    ),
    (
        "trigger_periodically",
        lambda: (
            src(window=Window.global_().trigger_periodically(1, "hour"))
            .reduce(zero, add)
            .emit("state")
        ),
        True,
    ),
]


@pytest.mark.parametrize(("name", "make", "runs"), CASES, ids=[c[0] for c in CASES])
def test_plan_round_trips_through_pickle(
    name: str, make: Callable[[], Flow[Any]], runs: bool
) -> None:
    plan = make().plan()
    assert check_portable(plan) == []
    copy = pickle.loads(pickle.dumps(plan, protocol=5))
    assert copy == plan
    assert copy is not plan


def test_into_stages_plan_refers_to_its_consumers() -> None:
    consumer = flowstage.Consumer()
    compiled = src().map(double).compile(sink="into_stages", consumers=[consumer])
    (ref,) = compiled.plan.consumers
    assert isinstance(ref, LocalRef)
    assert compiled.bindings.resolve(ref) is consumer
    assert pickle.loads(pickle.dumps(compiled.plan)) == compiled.plan


def test_bindings_never_pickle() -> None:
    compiled = src().map(double).compile()
    with pytest.raises(TypeError, match="cannot be pickled; ship the Plan only"):
        pickle.dumps(compiled.bindings)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "make"), [(c[0], c[1]) for c in CASES if c[2]], ids=[c[0] for c in CASES if c[2]]
)
async def test_an_unpickled_plan_runs_like_the_original(
    name: str, make: Callable[[], Flow[Any]]
) -> None:
    expected = sorted(map(repr, await make().to_list()))
    compiled = make().compile()
    copy = pickle.loads(pickle.dumps(compiled.plan))
    executor = LocalExecutor()
    got: list[Any] = []
    async with executor.open_stream(copy, compiled.bindings) as events:
        async for batch in events.batches():
            got.extend(batch)
    assert sorted(map(repr, got)) == expected


def test_check_portable_names_the_path_and_the_fix() -> None:
    plan = src().map(double).partition(stages=2).reduce(zero, lambda acc, x: acc + x).plan()
    (problem,) = check_portable(plan)
    assert problem.path == "layers[1].ops.reducer.fn"
    assert str(problem).startswith(
        "layers[1].ops.reducer.fn: <lambda> cannot be pickled; define it at module level"
    )


def test_check_portable_finds_closures_inside_library_records() -> None:
    def local_key(x: int) -> int:
        return x

    plan = src().partition(stages=2, key=local_key).map(ident).plan()
    (problem,) = check_portable(plan)
    assert problem.path == "layers[0].inputs[0].dispatch.hash.key"
    assert "local_key" in problem.problem
    assert "define it at module level" in problem.fix


def test_check_portable_with_another_serializer() -> None:
    class Everything:
        @staticmethod
        def dumps(obj: Any, protocol: int | None = None) -> bytes:
            return b""

    plan = src().map(lambda x: x).plan()
    assert check_portable(plan) != []
    assert check_portable(plan, Everything()) == []


def test_plans_carry_their_version() -> None:
    plan = src().map(double).plan()
    assert plan.version == PLAN_VERSION
    assert require_version(plan) is plan
    old = Plan(plan.layers, plan.output, version=PLAN_VERSION - 1)
    with pytest.raises(PlanVersionError, match="run every process of a flow on the same"):
        require_version(old)
    with pytest.raises(PlanVersionError):
        LocalExecutor().open_stream(old, Bindings())


def test_library_records_compare_by_value() -> None:
    a = src().map(pair).partition(stages=2, key=("elem", 0)).map(ident).plan()
    b = src().map(pair).partition(stages=2, key=("elem", 0)).map(ident).plan()
    assert a == b
    c = src().map(pair).partition(stages=2, key=("elem", 1)).map(ident).plan()
    assert a != c
    assert flowstage.KeyHash(2, operator.neg) == flowstage.KeyHash(2, operator.neg)
    assert flowstage.KeyHash(2) != flowstage.KeyHash(3)
