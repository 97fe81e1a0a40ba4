"""A layer that only maps, filters or expands events runs its input as downstream
demand needs it (the local executor holds the rest back), with the same events in
the same order as running every batch at once."""

from __future__ import annotations

from typing import Any

import pytest

from flowstage import Flow, StageGroup
from flowstage.plan import Dispatch, LayerInput, LayerOps, LayerPlan, Mapper, Reduce, Uniq, Window
from flowstage.program import make_program
from flowstage.testing import wait_quiescent, wait_until

from ..stages import ManualForwarder

pytestmark = pytest.mark.anyio

FANOUT = 10
N = 10_000


class Expander:
    """``x -> [x] * FANOUT``, recording every input it was called with."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.seen: list[int] = []
        self.fail_at = fail_at

    def __call__(self, x: int) -> list[int]:
        if x == self.fail_at:
            raise ValueError(f"cannot expand {x}")
        self.seen.append(x)
        return [x] * FANOUT


def expanded(n: int) -> list[int]:
    return [x for x in range(n) for _ in range(FANOUT)]


async def test_a_flat_map_runs_only_the_input_that_demand_needs() -> None:
    expand = Expander()
    consumer = ManualForwarder()
    # More input than the layer takes at once: the source does not end meanwhile
    # (an upstream ending runs everything held, as any callback but events does).
    flow = Flow.from_iterable(range(N), stages=1).flat_map(expand)
    async with StageGroup() as group:
        group.start(consumer)
        async with flow.into_stages([consumer]) as running:
            await wait_until(lambda: consumer.subscriptions)
            stages = [*running.stages, consumer]
            await wait_quiescent(stages)
            # The layer received its input, but nothing asked for output yet.
            assert expand.seen == []
            asked = 0
            for ask in (25, 100, 500, 2000, 40):
                consumer.subscriptions[0].ask(ask)
                asked += ask
                await wait_quiescent(stages)
                assert consumer.events == expanded(N)[:asked]
                # The first piece guesses one event out per input (25 inputs for 25
                # events); after that, pieces follow the ratio, so the inputs run
                # cover what was asked and overshoot by less than that first guess.
                assert asked <= len(expand.seen) * FANOUT < asked + 25 * FANOUT
            assert expand.seen == list(range(len(expand.seen)))
            consumer.subscriptions[0].ask(N * FANOUT)
            await running.wait()
        group.cancel()
    assert consumer.events == expanded(N)
    assert expand.seen == list(range(N))


async def test_held_input_is_all_delivered_when_the_source_ends_first() -> None:
    """The source ends while most of the input is held: it is all run, in order."""
    expand = Expander()
    consumer = ManualForwarder()
    flow = Flow.from_iterable(range(300), stages=1, max_demand=400).flat_map(expand)
    async with StageGroup() as group:
        group.start(consumer)
        async with flow.into_stages([consumer]) as running:
            await wait_until(lambda: consumer.subscriptions)
            consumer.subscriptions[0].ask(5)
            await wait_quiescent([*running.stages, consumer])
            assert consumer.events == expanded(300)[:5]
            for _ in range(30):
                consumer.subscriptions[0].ask(100)
            await running.wait()
        group.cancel()
    assert consumer.events == expanded(300)
    assert expand.seen == list(range(300))


@pytest.mark.parametrize("stages", [1, 3])
async def test_filters_and_expansions_lose_and_add_nothing(
    stages: int,
) -> None:
    def spread(x: int) -> list[int]:
        return list(range(x % 7))

    def odd(x: int) -> bool:
        return x % 2 == 1

    flow = (
        Flow.from_iterable(range(5000), stages=stages, max_demand=50, min_demand=10)
        .flat_map(spread)
        .filter(odd)
        .map(str)
    )
    got = await flow.to_list()
    assert sorted(got) == sorted(str(y) for x in range(5000) for y in spread(x) if odd(y))


async def test_a_failure_in_held_input_names_the_layer() -> None:
    expand = Expander(fail_at=700)
    flow = Flow.from_iterable(range(1000), stages=1).flat_map(expand)
    with pytest.raises(ValueError, match="cannot expand 700") as info:
        await flow.to_list()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "flat_map" in notes, notes
    assert "layer 0" in notes, notes
    assert expand.seen == list(range(700))


def layer(ops: LayerOps, window: Window | None = None) -> LayerPlan:
    return LayerPlan(
        index=0,
        inputs=(LayerInput(source=0, dispatch=Dispatch()),),
        stages=1,
        max_demand=1000,
        min_demand=500,
        window=window or Window(),
        ops=ops,
    )


def double(x: int) -> int:
    return 2 * x


async def adouble(x: int) -> int:
    return 2 * x


def add(acc: int, x: int) -> int:
    return acc + x


@pytest.mark.parametrize(
    ("ops", "window", "streams"),
    [
        (LayerOps(mappers=(Mapper("map", double),)), None, True),
        (LayerOps(mappers=(Mapper("flat_map", str.split),)), None, True),
        (LayerOps(mappers=(Mapper("map", adouble),)), None, False),
        (LayerOps(mappers=(Mapper("map", double),), reducer=Reduce(int, add)), None, False),
        (LayerOps(), None, False),
        (LayerOps(mappers=(Mapper("map", double),)), Window.count(10), False),
        (
            LayerOps(mappers=(Mapper("map", double),)),
            Window.global_().trigger_periodically(1, "second"),
            False,
        ),
    ],
    ids=["map", "flat_map", "async-map", "reducer", "no-steps", "count-window", "periodic"],
)
def test_which_programs_may_take_their_input_in_pieces(
    ops: LayerOps, window: Window | None, streams: bool
) -> None:
    assert make_program(layer(ops, window), 0, 1).streams_input is streams


def test_pieces_give_the_same_outputs_as_the_whole_batch() -> None:
    ops = LayerOps(mappers=(Mapper("flat_map", str.split), Mapper("map", str.upper), Uniq(None)))
    events: list[Any] = ["a b c", "b d", "e a f", "g", "h b", "c i j"]
    whole = make_program(layer(ops), 0, 1)
    whole.start(0.0)
    expected = whole.handle_events(events, "p")
    pieces = make_program(layer(ops), 0, 1)
    pieces.start(0.0)
    got: list[Any] = []
    for start, end in ((0, 1), (1, 4), (4, 6)):
        got += pieces.handle_events(events[start:end], "p")
    assert got == expected == ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"]
