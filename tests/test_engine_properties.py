"""Property tests of whole pipelines on the engine (Hypothesis).

For random topologies (dispatcher, consumer count, demand settings, an optional
producer-consumer that expands events) and finite inputs, the run must deliver:

* never more events on a subscription than were asked for on it;
* every event exactly once per consumer that should see it (demand: one of them;
  broadcast: all of them, in order; partition: the one its key hashes to) — so no
  loss and no duplicate;
* a given key to a single partition only.
"""

from __future__ import annotations

from collections import Counter as Multiset
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowstage
from flowstage import (
    BroadcastDispatcher,
    Consumer,
    DemandDispatcher,
    PartitionDispatcher,
    ProducerConsumer,
    StageGroup,
)
from flowstage._hash import partition_of
from flowstage.testing import wait_quiescent


class Checking(Consumer[Any]):
    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self.events: list[Any] = []
        self.received: dict[Any, int] = {}
        self.violations: list[str] = []

    def handle_events(self, events: list[Any], from_: Any) -> None:
        got = self.received.get(from_, 0) + len(events)
        self.received[from_] = got
        if got > from_.asked:
            self.violations.append(f"received {got} but asked {from_.asked}")
        self.events.extend(events)


class Expand(ProducerConsumer[Any, Any]):
    def __init__(self, factor: int, **opts: Any) -> None:
        super().__init__(**opts)
        self.factor = factor

    def handle_events(self, events: list[Any], from_: Any) -> list[Any]:
        return [(e, k) for e in events for k in range(self.factor)]


topologies = st.fixed_dictionaries(
    {
        "n_events": st.integers(0, 400),
        "dispatcher": st.sampled_from(["demand", "broadcast", "partition"]),
        "consumers": st.integers(1, 3),
        "max_demand": st.integers(1, 40),
        "min_ratio": st.floats(0, 0.99),
        "expand": st.sampled_from([0, 1, 3]),
        "backend": st.sampled_from(["asyncio", "trio"]),
    }
)


async def run_topology(t: dict[str, Any]) -> tuple[list[Checking], list[Any]]:
    n = t["consumers"]
    if t["dispatcher"] == "demand":
        dispatcher: Any = DemandDispatcher()
    elif t["dispatcher"] == "broadcast":
        dispatcher = BroadcastDispatcher()
    else:
        dispatcher = PartitionDispatcher(n)
    max_demand = t["max_demand"]
    min_demand = int(max_demand * t["min_ratio"])
    sub_opts: dict[str, Any] = {"max_demand": max_demand, "min_demand": min_demand}
    source = list(range(t["n_events"]))
    async with StageGroup() as g:
        if t["expand"]:
            p = g.start(flowstage.from_iterable(source, demand="accumulate"))
            top = g.start(
                Expand(t["expand"], dispatcher=dispatcher, subscribe_to=[(p, dict(sub_opts))])
            )
            expected = [(e, k) for e in source for k in range(t["expand"])]
        else:
            p = g.start(flowstage.from_iterable(source, dispatcher=dispatcher, demand="accumulate"))
            top = p
            expected = source
        consumers = []
        for i in range(n):
            opts = dict(sub_opts)
            if t["dispatcher"] == "partition":
                opts["partition"] = i
            c = g.start(Checking(subscribe_to=[(top, opts)]))
            consumers.append(c)
        await wait_quiescent(g)
        p.set_demand("forward")
        with anyio.fail_after(30):
            await g.wait()
    return consumers, expected


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies)
def test_pipelines_deliver_exactly_what_was_asked(t: dict[str, Any]) -> None:
    consumers, expected = anyio.run(run_topology, t, backend=t["backend"])
    for c in consumers:
        assert c.violations == []
        assert not c.running
    if t["dispatcher"] == "demand":
        got = Multiset(e for c in consumers for e in c.events)
        assert got == Multiset(expected)
    elif t["dispatcher"] == "broadcast":
        for c in consumers:
            assert c.events == expected
    else:
        seen: dict[Any, int] = {}
        for i, c in enumerate(consumers):
            for e in c.events:
                assert partition_of(e, len(consumers)) == i
                assert seen.setdefault(e, i) == i
        assert Multiset(e for c in consumers for e in c.events) == Multiset(expected)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_discards_are_counted_not_lost(backend: str) -> None:
    """A full buffer drops events, and every drop is counted."""

    async def main() -> tuple[int, int, int]:
        async with StageGroup() as g:
            p = g.start(flowstage.from_iterable(range(50), buffer_size=10))
            c = Checking()
            # Emit 50 events with no consumer: 40 are discarded.
            p.emit(list(range(100, 150)))
            g.start(c)
            c.subscribe(p, max_demand=5)
            await g.wait()
        return len(c.events), p.statistics().discarded, p.statistics().events_out

    received, discarded, out = anyio.run(main, backend=backend)
    assert discarded == 40
    assert received == out == 10 + 50
