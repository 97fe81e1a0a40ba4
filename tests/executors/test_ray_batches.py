"""The Ray executor's batching and ordering, without Ray: ``BatchSender`` with a fake
call, ``Reorder`` directly (pure)."""

from __future__ import annotations

import random
from typing import Any

import anyio
import pytest

from flowstage.executors.ray._batches import BatchSender, Reorder

pytestmark = pytest.mark.anyio


def test_reorder_hands_batches_on_in_number_order() -> None:
    r = Reorder()
    assert r.accept(2, ["b"]) == []
    assert r.accept(3, ["c"]) == []
    assert r.accept(1, ["a"]) == [["a"], ["b"], ["c"]]
    assert r.accept(4, ["d"]) == [["d"]]
    assert r.early == {}


@pytest.mark.parametrize("seed", range(20))
def test_reorder_any_arrival_order_within_a_window(seed: int) -> None:
    rng = random.Random(seed)
    window = 4
    numbers = list(range(1, 101))
    # Arrivals are shuffled only within windows, as a sender with `window` calls
    # in flight can produce.
    arrived: list[int] = []
    for start in range(0, len(numbers), window):
        chunk = numbers[start : start + window]
        rng.shuffle(chunk)
        arrived.extend(chunk)
    r = Reorder()
    out: list[int] = []
    for n in arrived:
        for batch in r.accept(n, [n]):
            out.extend(batch)
        assert len(r.early) < window
    assert out == numbers


class FakeRef:
    def __init__(self) -> None:
        self.done = anyio.Event()


async def test_batch_sender_keeps_at_most_window_calls_in_flight() -> None:
    calls: list[tuple[int, list[Any], FakeRef]] = []
    waited: list[FakeRef] = []

    def call(seq: int, batch: list[Any]) -> FakeRef:
        ref = FakeRef()
        calls.append((seq, batch, ref))
        return ref

    async def wait(ref: FakeRef) -> None:
        waited.append(ref)
        await ref.done.wait()

    sender = BatchSender(call, 2, wait)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sender.run)
        sender.send("a")
        await wait_for(lambda: len(calls) == 1)
        sender.send("b")
        await wait_for(lambda: len(calls) == 2)
        # Two in flight: what is sent now queues and goes as one batch later.
        sender.send("c")
        sender.send("d")
        await wait_for(lambda: len(waited) == 1)
        assert len(calls) == 2
        calls[0][2].done.set()
        await wait_for(lambda: len(calls) == 3)
        assert [(seq, batch) for seq, batch, _ in calls] == [
            (1, ["a"]),
            (2, ["b"]),
            (3, ["c", "d"]),
        ]
        tg.cancel_scope.cancel()


async def test_batch_sender_run_again_after_cancellation_loses_nothing() -> None:
    calls: list[tuple[int, list[Any]]] = []
    gate = anyio.Event()

    def call(seq: int, batch: list[Any]) -> str:
        calls.append((seq, batch))
        return "ref"

    async def wait(ref: str) -> None:
        await gate.wait()

    sender = BatchSender(call, 1, wait)
    sender.send(1)
    with anyio.move_on_after(0) as scope:
        await sender.run()  # sends batch 1, then waits for it and is cancelled
    assert scope.cancelled_caught
    sender.send(2)
    gate.set()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sender.run)
        await wait_for(lambda: len(calls) == 2)
        tg.cancel_scope.cancel()
    assert calls == [(1, [1]), (2, [2])]


async def wait_for(cond: Any) -> None:
    for _ in range(1000):
        if cond():
            return
        await anyio.lowlevel.checkpoint()
    raise AssertionError("condition never held")
