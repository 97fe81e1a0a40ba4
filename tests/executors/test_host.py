"""The worker-side host and its channels, without worker processes where possible.

How deep a host keeps an edge from another process: its relay's window starts at
RELAY_START x max_demand, grows to about RELAY_SECONDS of the consumer's work (at
most RELAY_WINDOW x max_demand, or the set-up's parent_window x max_demand on an
edge from the parent) and, where the transport reports sizes, holds at most about RELAY_BYTES
(never below one event); no ask upstream is larger than the first. Also: the order
in which a host handles messages, asks added up per edge, and the process channel's
frame sizes, flush and poll."""

from __future__ import annotations

import contextlib
import logging
import pickle
import socket
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

import flowstage
from flowstage import Flow
from flowstage.executors._hosting import PartitionHost, _host
from flowstage.executors._hosting._host import (
    RELAY_BYTES,
    RELAY_SECONDS,
    RELAY_START,
    RELAY_WINDOW,
)
from flowstage.executors.process import ProcessExecutor
from flowstage.executors.process._channel import Channel, encode
from flowstage.executors.process._text import pack

pytestmark = pytest.mark.anyio

MAX_DEMAND = 100
IN, OUT = 0, 1


def same(x: int) -> int:
    return x


async def same_async(x: int) -> int:
    return x


def setup_of(flow: Flow[Any], wiring: dict[str, Any]) -> dict[str, Any]:
    """The set-up frame of worker 0 for ``flow``: ``wiring`` gives its nodes, edges
    and peers."""
    return {
        "index": 0,
        "plan": pickle.dumps(flow.plan()),
        "backend": "asyncio",
        "now": 0.0,
        "track": False,
        **wiring,
    }


#: One host running both layers of a two-layer flow: parent -> 0 -> 1 -> parent.
TWO_LAYERS: dict[str, Any] = {
    "nodes": [(0, 0, 0, (1, 0)), (1, 1, 0, None)],
    "edges": [
        (0, ("parent",), ("node", 0, 0), {}),
        (1, ("node", 0, 0), ("node", 1, 0), {}),
        (2, ("node", 1, 0), ("parent",), {}),
    ],
    "peers": 0,
}


TOTAL = 100 * MAX_DEMAND


class Parent:
    """Takes the node's output; stops the host once the node is done. With
    ``step``, it asks for ``step`` more events each time a batch arrives (the node's
    output then waits for demand, and the node handles what it received in the
    calls that bring the asks)."""

    def __init__(self, step: int | None = None) -> None:
        self.host: PartitionHost | None = None
        self.received = 0
        self.step = step

    def send(self, message: Any) -> None:
        assert self.host is not None
        if message[0] == "events":
            self.received += len(message[2])
            if self.step is not None:
                self.host.deliver(("ask", OUT, self.step))
        elif message[0] == "done":
            self.host.deliver(("stop",))


class Peer:
    """The producer in another process: answers every ask with that many events
    (in batches of max_demand), each reported as ``size`` bytes (or no size)."""

    def __init__(self, size: float | None) -> None:
        self.host: PartitionHost | None = None
        self.size = size
        self.asks: list[int] = []
        self.next = 0

    def send(self, message: Any) -> None:
        assert self.host is not None
        assert message[0] == "ask"
        self.asks.append(message[2])
        stop = min(self.next + message[2], TOTAL)
        while self.next < stop:
            batch = list(range(self.next, min(self.next + MAX_DEMAND, stop)))
            self.next += len(batch)
            if self.size is None:
                self.host.deliver(("events", IN, batch))
            else:
                self.host.deliver(("events", IN, batch, self.size * len(batch)))
        if self.next == TOTAL:
            self.next += 1
            self.host.deliver(("done", IN))


class ParentSource(Parent):
    """The parent as both the node's producer (a source answering its asks, as
    ``Peer`` does) and its consumer."""

    def __init__(self, size: float | None, step: int | None = None) -> None:
        super().__init__(step)
        self.source = Peer(size)

    def send(self, message: Any) -> None:
        if message[0] == "ask":
            self.source.send(message)
        else:
            super().send(message)


async def feed(
    size: float | None,
    *,
    parent_window: int | None = None,
    from_parent: bool = False,
    step: int | None = None,
    func: Any = None,
) -> tuple[int, int, int, list[int]]:
    """Run the node (``map(func)``) over TOTAL events from a peer (or the parent);
    return the first ask upstream, the window at the end, how many events came out,
    and every ask upstream. ``step``: the parent asks that many events at a time;
    ``parent_window``: the set-up's, if given."""
    flow = Flow.from_iterable([], stages=1, max_demand=MAX_DEMAND).map(func or same)
    producer = ("parent",) if from_parent else ("node", 99, 1)
    setup = setup_of(
        flow,
        {
            "nodes": [(0, 0, 0, None)],
            "edges": [
                (IN, producer, ("node", 0, 0), {}),
                (OUT, ("node", 0, 0), ("parent",), {}),
            ],
            "peers": 0 if from_parent else 1,
        },
    )
    if parent_window is not None:
        setup["parent_window"] = parent_window
    parent: Parent
    if from_parent:
        parent = ParentSource(size, step)
        peer = parent.source
        node_host = PartitionHost(setup, parent, {})
    else:
        parent, peer = Parent(step), Peer(size)
        node_host = PartitionHost(setup, parent, {1: peer})
    parent.host = peer.host = node_host
    node_host.deliver(("ask", OUT, 10**9 if step is None else step))
    with anyio.fail_after(10):
        await node_host.process()
    return peer.asks[0], node_host.relays[IN].window, parent.received, peer.asks


async def test_the_window_starts_small_and_grows_for_cheap_events() -> None:
    first, window, out, asks = await feed(None)
    assert first == RELAY_START * MAX_DEMAND
    assert window == RELAY_WINDOW * MAX_DEMAND
    assert out == TOTAL
    # A wider window is asked for in several asks, none above the first (a
    # DemandDispatcher upstream expects no larger ask than the first).
    assert max(asks) == first
    assert sum(asks) > 5 * first


@pytest.mark.parametrize("parent_window", [None, 2 * RELAY_WINDOW])
async def test_an_edge_from_the_parent_grows_as_deep_as_the_set_up_says(
    parent_window: int | None,
) -> None:
    first, window, out, asks = await feed(None, from_parent=True, parent_window=parent_window)
    assert first == RELAY_START * MAX_DEMAND
    assert window == (parent_window or RELAY_WINDOW) * MAX_DEMAND
    assert out == TOTAL
    assert max(asks) == first


#: A clock that only the callback below moves: each event costs COST seconds.
CLOCK = [0.0]
COST = RELAY_SECONDS / (2 * MAX_DEMAND)


def costly(x: int) -> int:
    CLOCK[0] += COST
    return x


@pytest.mark.parametrize("step", [None, MAX_DEMAND // 4], ids=["demand", "output-waits"])
async def test_the_window_holds_about_relay_seconds_of_the_consumers_work(
    monkeypatch: pytest.MonkeyPatch, step: int | None
) -> None:
    # The node's time is what its calls take, whichever message brought them: with
    # "output-waits" it handles most events in the calls that bring the parent's
    # asks, not in those that bring the events.
    monkeypatch.setattr(_host, "perf_counter", lambda: CLOCK[0])
    _, window, out, _ = await feed(None, step=step, func=costly)
    assert out == TOTAL
    # 2 x max_demand events are RELAY_SECONDS of work (less a rounding); an
    # estimate taken while up to max_demand received events wait to be handled
    # reads at most 2x that.
    assert 2 * MAX_DEMAND - 1 <= window <= 4 * MAX_DEMAND


async def test_reported_sizes_cap_the_window_in_bytes() -> None:
    per_event = RELAY_BYTES / (2 * MAX_DEMAND)  # the budget holds 2 x max_demand
    _, window, _, _ = await feed(per_event)
    assert window == 2 * MAX_DEMAND


async def test_huge_events_go_one_at_a_time() -> None:
    _, window, out, _ = await feed(float(RELAY_BYTES))  # one event is the whole budget
    assert window == 1
    assert out == TOTAL


@contextlib.contextmanager
def channel_pair(*, held: bool = False) -> Iterator[tuple[Channel, Channel]]:
    """A sending and a receiving channel over a socketpair, closed at the end."""
    a, b = socket.socketpair()
    sender, receiver = Channel(a, "a"), Channel(b, "b")
    sender.held = held
    try:
        yield sender, receiver
    finally:
        sender.close()
        receiver.close()


async def received(
    sender: Channel,
    receiver: Channel,
    send: Callable[[], None],
    enough: Callable[[list[Any]], bool],
) -> list[Any]:
    """Run both channels' loops, call ``send()``, and return what the receiver got
    once ``enough`` of it."""
    got: list[Any] = []

    def handle(message: Any) -> None:
        got.append(message)
        if enough(got):
            tg.cancel_scope.cancel()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sender.write_loop)
            tg.start_soon(receiver.read_loop, handle)
            send()
    return got


async def test_the_process_channel_reports_each_batchs_share_of_its_frame() -> None:
    words = [f"word{i}" for i in range(300)]
    numbers = list(range(100))

    def send() -> None:
        sender.send(("events", 1, words))
        sender.send(("ask", 2, 10))
        sender.send(("events", 3, numbers))

    with channel_pair() as (sender, receiver):
        got = await received(sender, receiver, send, lambda got: len(got) == 3)
    (k1, e1, w, s1), ask, (k3, e3, n, s3) = got
    assert (k1, e1, w, k3, e3, n) == ("events", 1, words, "events", 3, numbers)
    assert ask == ("ask", 2, 10)
    # The frame's size shared by event count: 3 parts to the words, 1 to the numbers.
    assert s1 == pytest.approx(3 * s3)
    assert (
        s1 + s3
        == len(encode(pack([("events", 1, words), ("ask", 2, 10), ("events", 3, numbers)]))) - 4
    )


def double(x: int) -> int:
    return x * 2


async def test_a_source_feeding_workers_logs_no_demand_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The relays' windows grow for these cheap events; the parent's source never
    # sees an ask larger than the first.
    caplog.set_level(logging.WARNING)
    items = list(range(300_000))
    flow = Flow.from_iterable(items, stages=2).map(double)
    out = await flow.to_list(executor=ProcessExecutor(2))
    assert len(out) == len(items)
    assert not [r for r in caplog.records if "maximum demand" in r.getMessage()]


async def test_a_users_producer_feeding_workers_logs_no_demand_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A from_stages producer keeps its own DemandDispatcher (expecting no ask above
    # the first); its proxies never ask it more at once.
    caplog.set_level(logging.WARNING)
    producer = flowstage.from_iterable(range(300_000))
    async with flowstage.StageGroup() as group:
        group.start(producer)
        flow = Flow.from_stages([producer], stages=2).map(double)
        out = await flow.to_list(executor=ProcessExecutor(2))
    assert sorted(out) == [x * 2 for x in range(300_000)]
    assert not [r for r in caplog.records if "maximum demand" in r.getMessage()]


def test_messages_for_a_later_layer_are_handled_first() -> None:
    # One host runs both layers: parent -> layer 0 -> layer 1 -> parent.
    flow = Flow.from_iterable([], stages=1).map(same).partition(stages=1).map(same)
    node_host = PartitionHost(setup_of(flow, TWO_LAYERS), Parent(), {})
    control, later, earlier = node_host.queues
    node_host.deliver(("events", 0, [1]))  # for layer 0
    node_host.deliver(("ask", 1, 5))  # for layer 0 (its output edge)
    node_host.deliver(("events", 1, [2]))  # for layer 1
    node_host.deliver(("ask", 2, 5))  # for layer 1
    node_host.deliver(("time", 0, 1.0))  # for layer 0
    node_host.deliver(("stats", 0))
    assert list(control) == [("stats", 0)]
    assert list(later) == [("events", 1, [2]), ("ask", 2, 5)]
    assert list(earlier) == [("events", 0, [1]), ("ask", 1, 5), ("time", 0, 1.0)]


def test_a_held_channel_is_flushed_and_polled_without_the_event_loop() -> None:
    got: list[Any] = []
    with channel_pair(held=True) as (sender, receiver):
        sender.send(("ask", 1, 10))
        sender.send(("events", 2, [f"w{i}" for i in range(100)]))
        receiver.poll(got.append)
        assert got == []  # held: nothing written until flushed
        sender.flush()
        receiver.poll(got.append)
        assert [m[:2] for m in got] == [("ask", 1), ("events", 2)]
        assert got[1][2] == [f"w{i}" for i in range(100)]
        sender.send(("done", 2))
        sender.flush()
        receiver.poll(got.append)
        assert got[-1] == ("done", 2)


async def test_what_a_flush_cannot_write_at_once_the_writer_task_finishes() -> None:
    big = [bytes(1000)] * 20_000  # about 20 MB: far more than a socket buffer holds

    def send() -> None:
        sender.send(("events", 1, big))
        sender.send(("done", 1))
        sender.flush()  # writes what fits, wakes the writer for the rest

    with channel_pair(held=True) as (sender, receiver):
        got = await received(sender, receiver, send, lambda got: got[-1][0] == "done")
    assert [m[0] for m in got] == ["events", "done"]
    assert got[0][2] == big


async def test_a_nodes_asks_on_one_edge_go_out_as_one() -> None:
    # One host runs both layers; layer 1 handles 4 events in two chunks of 2 and
    # asks for 2 after each: its producer gets one ask for 4.
    flow = (
        Flow.from_iterable([], stages=1)
        .map(same)
        .partition(stages=1, max_demand=4, min_demand=2)
        .map(same)
    )
    parent = StopOnEvents()
    node_host = PartitionHost(setup_of(flow, TWO_LAYERS), parent, {})
    parent.host = node_host
    delivered: list[Any] = []
    deliver = node_host.deliver

    def recording(message: Any) -> None:
        delivered.append(message)
        deliver(message)

    node_host.deliver = recording  # type: ignore[method-assign]
    node_host.deliver(("ask", 2, 100))
    node_host.deliver(("events", 1, [1, 2, 3, 4]))
    with anyio.fail_after(10):
        await node_host.process()
    asks_on_1 = [m for m in delivered if m[0] == "ask" and m[1] == 1]
    # The first ask (max_demand, when the edge connected) and one for both chunks.
    assert [m[2] for m in asks_on_1] == [4, 4]
    assert [m[2] for m in parent.sent if m[0] == "events"] == [[1, 2], [3, 4]]


class StopOnEvents:
    """The parent: keeps what it is sent; stops the host once events arrive."""

    def __init__(self) -> None:
        self.host: PartitionHost | None = None
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)
        if message[0] == "events":
            assert self.host is not None
            self.host.deliver(("stop",))


def test_a_flush_after_a_full_socket_writes_the_rest_and_what_came_since() -> None:
    got: list[Any] = []
    with channel_pair(held=True) as (sender, receiver):
        big = [bytes(1000)] * 5_000  # about 5 MB: more than the socket holds
        sender.send(("events", 1, big))
        sender.flush()  # writes what fits
        sender.send(("done", 1))  # queued behind the rest of the big frame
        for _ in range(10_000):
            receiver.poll(got.append)
            sender.flush()
            if got and got[-1] == ("done", 1):
                break
        assert [m[0] for m in got] == ["events", "done"]
        assert got[0][2] == big


@pytest.mark.parametrize(
    ("flow", "kind"),
    [
        (Flow.from_iterable([], stages=1, max_demand=MAX_DEMAND).map(same), range),
        (Flow.from_iterable([], stages=1, max_demand=MAX_DEMAND).map(same_async), list),
    ],
    ids=["iterates", "async"],
)
async def test_range_slices_reach_a_program_that_iterates_them_as_ranges(
    flow: Flow[Any], kind: type
) -> None:
    setup = setup_of(
        flow,
        {
            "nodes": [(0, 0, 0, None)],
            "edges": [
                (IN, ("parent",), ("node", 0, 0), {}),
                (OUT, ("node", 0, 0), ("parent",), {}),
            ],
            "peers": 0,
        },
    )
    parent = Parent()
    node_host = PartitionHost(setup, parent, {})
    parent.host = node_host
    node = node_host.consumer_of[IN]
    seen: list[type] = []
    on_events = node.on_events

    def spy(edge: int, batch: Any) -> Any:
        seen.append(type(batch))
        return on_events(edge, batch)

    node.on_events = spy  # type: ignore[method-assign]
    node_host.deliver(("ask", OUT, 10**9))
    node_host.deliver(("events", IN, range(250)))
    node_host.deliver(("done", IN))
    with anyio.fail_after(10):
        await node_host.process()
    assert parent.received == 250
    assert set(seen) == {kind}
