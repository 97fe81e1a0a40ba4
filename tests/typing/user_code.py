"""Ordinary user code: ``mypy --strict`` must accept it as it is, and the element
type of every chain is checked with ``assert_type`` (tests/typing/test_types.py
runs mypy on this file, and runs it)."""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import assert_type

import anyio

from flowstage import (
    Consumer,
    Flow,
    FlowIterator,
    FlowSubscription,
    Producer,
    PushHandle,
    PushResult,
    RunningFlow,
    StageGroup,
    Subscription,
    Window,
    stream,
)
from flowstage.connectors.redis import RedisStreamSink, RedisStreamSource
from flowstage.executors.process import ProcessExecutor
from flowstage.flow import ReducedFlow


def count(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


def add(acc: int, x: int) -> int:
    return acc + x


def zero() -> int:
    return 0


def append(acc: list[int], x: int) -> list[int]:
    acc.append(x)
    return acc


async def slow_double(x: int) -> int:
    await anyio.lowlevel.checkpoint()
    return 2 * x


class Numbers(Producer[int]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.next, self.limit = 0, limit

    def handle_demand(self, demand: int) -> list[int]:
        end = min(self.next + demand, self.limit)
        events, self.next = list(range(self.next, end)), end
        if end == self.limit:
            self.finish()
        return events


class Total(Consumer[int]):
    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def handle_events(self, events: list[int], from_: Subscription[int]) -> None:
        self.total += sum(events)


async def word_count(lines: list[str]) -> list[tuple[str, int]]:
    words = Flow.from_iterable(lines).flat_map(str.split)
    assert_type(words, Flow[str])
    counts = words.partition(stages=2).reduce(dict, count)
    assert_type(counts, ReducedFlow[tuple[str, int], dict[str, int]])
    pairs = await counts.to_list()
    assert_type(pairs, list[tuple[str, int]])
    return pairs


async def on_workers(lines: list[str]) -> list[tuple[str, int]]:
    # Every executor is an Executor to the type checker (name is a class attribute).
    counts = Flow.from_iterable(lines).flat_map(str.split).partition().reduce(dict, count)
    return await counts.to_list(executor=ProcessExecutor(2))


async def chains() -> None:
    numbers = Flow.from_iterable(range(100), stages=2)
    assert_type(numbers, Flow[int])
    assert_type(numbers.map(str), Flow[str])
    assert_type(numbers.map(slow_double), Flow[int])
    assert_type(numbers.filter(lambda x: x % 2 == 0), Flow[int])

    summed = numbers.reduce(zero, add).emit("state")
    assert_type(summed, ReducedFlow[int, int])
    assert_type(await summed.to_list(), list[int])

    lists = numbers.reduce(list, append)
    assert_type(lists, ReducedFlow[int, list[int]])
    sizes = lists.on_trigger(lambda acc: ([len(acc)], acc))
    assert_type(sizes, ReducedFlow[int, list[int]])
    tagged = lists.on_trigger(lambda acc, partition: ([(partition, len(acc))], acc))
    assert_type(tagged, ReducedFlow[tuple[tuple[int, int], int], list[int]])

    by_length = Flow.from_iterable(["a", "bb", "cc"]).group_by(len)
    assert_type(by_length, ReducedFlow[tuple[int, list[str]], dict[int, list[str]]])
    upper = Flow.from_iterable(["a", "bb"]).group_by(len, str.upper)
    assert_type(upper, ReducedFlow[tuple[int, list[str]], dict[int, list[str]]])
    grouped = Flow.from_iterable([("a", 1), ("b", 2)]).group_by_key()
    assert_type(grouped, ReducedFlow[tuple[str, list[int]], dict[str, list[int]]])
    assert_type(grouped.partition(stages=1).map_values(len), Flow[tuple[str, int]])

    top = (await word_count(["a b a"]), Flow.from_iterable(["x"]).reduce(dict, count))[1]
    assert_type(top.take_sort(2, key=lambda kv: -kv[1]), Flow[list[tuple[str, int]]])

    windowed = Flow.from_iterable(range(10), window=Window.count(5)).reduce(zero, add)
    assert_type(windowed.emit("state"), ReducedFlow[int, int])

    async with numbers.map(str).stream() as events:
        assert_type(events, FlowIterator[str])
        async for batch in events.batches():
            assert_type(batch, list[str])
    async with numbers.start() as running:
        assert_type(running, RunningFlow)
        await running.wait()
        assert running.done
        assert running.exception is None
    async with contextlib.aclosing(numbers.iterate()) as loop:
        async for x in loop:
            assert_type(x, int)
    async for y in numbers.map(float):
        assert_type(y, float)

    counter = Flow.from_iterable(["a"]).reduce(Counter[str], lambda acc, w: acc)
    assert_type(counter.emit("state").partition(stages=1).map(len), Flow[int])


async def stages() -> int:
    total = Total()
    async with StageGroup() as group:
        numbers = group.start(Numbers(100))
        assert_type(group.start(total), Total)
        total.subscribe(numbers, max_demand=10)
        await group.wait()
    async with stream([Numbers(5)]) as events:
        got = [e async for e in events]
    return total.total + len(got)


async def pushed() -> list[int]:
    """A push source, typed by ``Flow.from_push[str]``, and a fan-out subscriber."""
    words, push = Flow.from_push[str](capacity=10, overflow="block")
    assert_type(words, Flow[str])
    assert_type(push, PushHandle[str])
    async with words.map(len).start(publish=True) as running:
        subscription = running.subscribe(buffer=10)
        result = await push("abc")
        assert_type(result, PushResult)
        assert_type(await push.push_many(["de", "f"]), int)
        push.close()
        async with subscription as events:
            lengths: list[int] = [n async for n in events]
        assert isinstance(subscription, FlowSubscription)
        await running.wait()
    return lengths


def redis_sources() -> None:
    """Building Redis sources (no connection is made before ``open``)."""
    fields = RedisStreamSource("events", "group")
    assert_type(fields, RedisStreamSource[dict[str, str]])
    numbers = RedisStreamSource("events", "group", decode=lambda f: int(f[b"n"]))
    assert_type(numbers, RedisStreamSource[int])
    doubled = Flow.from_messages(numbers).map(lambda m: 2 * m.data)
    assert_type(doubled, Flow[int])
    assert_type(doubled.write_to(RedisStreamSink("out", encode=lambda n: {"n": n})), Flow[int])


async def main() -> None:
    assert sorted(await word_count(["a b", "a"])) == [("a", 2), ("b", 1)]
    assert sorted(await on_workers(["a b", "a"])) == [("a", 2), ("b", 1)]
    await chains()
    assert await stages() == sum(range(100)) + 5
    redis_sources()
    assert sorted(await pushed()) == [1, 2, 3]


if __name__ == "__main__":
    anyio.run(main)
