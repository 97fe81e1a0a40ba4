"""Flows over acknowledged messages (``Flow.from_messages``) and sinks (``write_to``),
on the local and process executors: every message is acknowledged once, only after
everything derived from it reached the end (and was written), failures are nacked,
demand maps onto ``receive`` and ``max_unacked`` bounds what is in hand."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest
from trio.testing import MockClock

from flowstage import Flow
from flowstage.executors import Executor, LocalExecutor
from flowstage.executors.process import ProcessExecutor
from flowstage.flow import Window
from flowstage.messages import AckSource, MemorySource, Message, Sink

pytestmark = pytest.mark.anyio

EXECUTORS = {"local": LocalExecutor, "process": lambda: ProcessExecutor(2)}


@pytest.fixture(params=sorted(EXECUTORS))
def executor(request: pytest.FixtureRequest) -> Executor:
    made: Executor = EXECUTORS[request.param]()
    return made


# -- callbacks (module level: they travel to worker processes) -------------------------------


def words(m: Message[str]) -> list[str]:
    return m.data.split()


def count(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


def data(m: Message[Any]) -> Any:
    return m.data


def message_id(m: Message[Any]) -> str:
    return m.id


def fails_on_boom(m: Message[str]) -> str:
    if m.data == "boom":
        raise ValueError(f"boom at {m.id}")
    return m.data


def is_even(x: int) -> bool:
    return x % 2 == 0


class Recorder:
    """A sink that records each batch and which messages were acknowledged when it
    was written."""

    def __init__(self, source: MemorySource[Any]) -> None:
        self.source = source
        self.batches: list[list[Any]] = []
        self.acked_at_write: list[set[str]] = []
        self.closed = False

    async def write(self, events: list[Any]) -> None:
        self.acked_at_write.append(set(self.source.acked))
        self.batches.append(list(events))

    async def aclose(self) -> None:
        self.closed = True


LINES = ["the quick brown fox", "", "jumps over the lazy dog", "the end"] * 25


# -- acknowledgement --------------------------------------------------------------------------


async def test_every_message_is_acknowledged_once_after_a_word_count(executor: Executor) -> None:
    source = MemorySource(LINES)
    flow = (
        Flow.from_messages(source, stages=2).flat_map(words).partition(stages=2).reduce(dict, count)
    )
    out = await flow.to_list(executor=executor)
    assert dict(out) == Counter(w for line in LINES for w in line.split())
    assert sorted(source.acked, key=int) == [str(i) for i in range(len(LINES))]
    assert source.nacked == []
    assert source.unacked == set()
    assert source.duplicates == 0
    assert source.opened
    assert source.closed


async def test_filtered_out_and_empty_messages_are_acknowledged(executor: Executor) -> None:
    source = MemorySource(range(50))
    out = await Flow.from_messages(source).map(data).filter(is_even).to_list(executor=executor)
    assert sorted(out) == list(range(0, 50, 2))
    assert len(source.acked) == 50


async def test_a_failing_callback_nacks_its_message_and_the_flow_goes_on(
    executor: Executor,
) -> None:
    source = MemorySource(["a", "boom", "b", "boom"])
    out = await Flow.from_messages(source, stages=2).map(fails_on_boom).to_list(executor=executor)
    assert sorted(out) == ["a", "b"]
    assert sorted(source.acked) == ["0", "2"]
    nacked = sorted(source.nacked, key=lambda f: f[0])
    assert [mid for mid, _ in nacked] == ["1", "3"]
    for mid, exc in nacked:
        assert isinstance(exc, ValueError)
        assert str(exc) == f"boom at {mid}"


async def test_on_error_raise_fails_the_flow_and_leaves_the_message_unacknowledged() -> None:
    source = MemorySource(["a", "boom", "b"])
    flow = Flow.from_messages(source, on_error="raise", max_demand=1).map(fails_on_boom)
    with pytest.raises(ValueError, match="boom at 1"):
        await flow.to_list()
    assert "1" not in source.acked
    assert source.nacked == []
    assert source.closed


async def test_messages_are_acknowledged_only_after_their_results_were_written(
    executor: Executor,
) -> None:
    source = MemorySource(range(200))
    recorder = Recorder(source)
    flow = Flow.from_messages(source, stages=2, max_demand=10).map(message_id)
    await flow.write_to(recorder).run(executor=executor)
    written = [mid for batch in recorder.batches for mid in batch]
    assert sorted(written, key=int) == [str(i) for i in range(200)]
    for batch, acked_before in zip(recorder.batches, recorder.acked_at_write, strict=True):
        assert not set(batch) & acked_before
    assert recorder.closed
    assert len(source.acked) == 200


async def test_a_reducer_acknowledges_when_its_window_emits() -> None:
    source = MemorySource(range(30))
    recorder = Recorder(source)
    flow = (
        Flow.from_messages(source, stages=1, max_demand=5).map(data).reduce(int, lambda a, x: a + x)
    )
    await flow.emit("state").write_to(recorder).run()
    assert recorder.batches == [[sum(range(30))]]
    assert recorder.acked_at_write == [set()]  # nothing before the state was emitted
    assert len(source.acked) == 30


class Watched(MemorySource[int]):
    """Records how many messages were in hand after each receive."""

    def __init__(self, items: range) -> None:
        super().__init__(items)
        self.in_hand: list[int] = []

    async def receive(self, max_count: int) -> list[Message[int]]:
        got = await super().receive(max_count)
        self.in_hand.append(len(self.unacked))
        return got


async def test_demand_maps_onto_receive() -> None:
    source = Watched(range(300))
    flow = Flow.from_messages(source, stages=1, max_demand=4, min_demand=2).map(data)
    assert sorted(await flow.to_list()) == list(range(300))
    assert max(source.receives) == 4  # the stage's demand, as the broker's batch size
    assert len(source.acked) == 300


async def test_max_unacked_bounds_what_is_in_hand() -> None:
    source = Watched(range(300))
    flow = Flow.from_messages(source, stages=2, max_unacked=5, max_demand=4).map(data)
    assert sorted(await flow.to_list()) == list(range(300))
    assert max(source.receives) <= 5
    assert max(source.in_hand) <= 5
    assert len(source.acked) == 300


async def test_leaving_the_stream_early_acknowledges_only_what_reached_the_end() -> None:
    source = MemorySource(range(1000))
    seen: list[int] = []
    async with Flow.from_messages(source, max_demand=10).map(data).stream() as events:
        async for x in events:
            seen.append(x)
            if len(seen) == 25:
                break
    acked = set(source.acked)
    assert len(acked) == len(source.acked)  # once each
    assert not acked & source.unacked
    delivered = {m for m in map(str, range(1000)) if source.attempts(m)}
    assert acked | source.unacked == delivered  # acknowledged, or still with the broker
    assert len(acked) < 1000
    assert source.closed


# -- virtual time --------------------------------------------------------------------------


class TestVirtualClock:
    @pytest.fixture
    def anyio_backend(self) -> tuple[str, dict[str, Any]]:
        return ("trio", {"clock": MockClock(autojump_threshold=0)})

    async def test_a_periodic_window_acknowledges_each_window_when_it_closes(self) -> None:
        class Slow(MemorySource[int]):
            async def receive(self, max_count: int) -> list[Message[int]]:
                await anyio.sleep(0.3)  # one message every 0.3 s of virtual time
                return await super().receive(1)

        source = Slow(range(10))
        recorder = Recorder(source)
        flow = (
            Flow.from_messages(source, window=Window.periodic(1, "second"), max_demand=1)
            .map(data)
            .reduce(list, lambda acc, x: [*acc, x])
            .emit("state")
        )
        await flow.write_to(recorder).run()
        windows = [batch[0] for batch in recorder.batches if batch and batch[0]]
        assert sorted(x for w in windows for x in w) == list(range(10))
        assert len(windows) > 1
        for batch, acked_before in zip(recorder.batches, recorder.acked_at_write, strict=True):
            for window in batch:
                assert not {str(x) for x in window} & acked_before
        assert len(source.acked) == 10


# -- options and errors ------------------------------------------------------------------------


async def test_options_are_checked_when_the_flow_is_built() -> None:
    with pytest.raises(TypeError, match=r"Flow.from_messages: source must be an acknowledged"):
        Flow.from_messages([1, 2])  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"Flow.from_messages: max_unacked must be an integer >= 1"
    ):
        Flow.from_messages(MemorySource([1]), max_unacked=0)
    with pytest.raises(ValueError, match=r"on_error must be one of 'nack', 'raise'"):
        Flow.from_messages(MemorySource([1]), on_error="drop")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Flow.write_to: sink must be a sink"):
        Flow.from_iterable([1]).write_to(print)  # type: ignore[arg-type]
    assert isinstance(MemorySource([1]), AckSource)
    assert isinstance(Recorder(MemorySource([1])), Sink)


async def test_write_to_must_be_the_last_step() -> None:
    recorder = Recorder(MemorySource([]))
    flow = Flow.from_iterable([1, 2]).write_to(recorder)
    with pytest.raises(ValueError, match="write_to must be the last step"):
        await flow.partition(stages=2).to_list()


async def test_a_sink_that_fails_fails_the_flow_with_a_note() -> None:
    class Broken:
        async def write(self, events: list[Any]) -> None:
            raise ConnectionError("down")

        async def aclose(self) -> None:
            pass

    source = MemorySource(range(5))
    with pytest.raises(ConnectionError, match="down") as info:
        await Flow.from_messages(source).map(data).write_to(Broken()).run()
    assert any("sink of the flow" in note for note in info.value.__notes__)
    assert source.acked == []


async def test_write_to_works_without_acknowledgements(executor: Executor) -> None:
    recorder = Recorder(MemorySource([]))
    await (
        Flow.from_iterable(range(20), stages=2)
        .map(is_even)
        .write_to(recorder)
        .run(executor=executor)
    )
    assert sorted(x for b in recorder.batches for x in b) == sorted(is_even(i) for i in range(20))


async def test_messages_from_two_sources_go_back_to_their_own_source() -> None:
    a = MemorySource(["x y", "z"], name="a")
    b = MemorySource(["x"], name="b")
    flow = Flow.merge([Flow.from_messages(a), Flow.from_messages(b)]).flat_map(words)
    assert sorted(await flow.to_list()) == ["x", "x", "y", "z"]
    assert sorted(a.acked) == ["0", "1"]
    assert b.acked == ["0"]
