"""Stages exchanging events under back-pressure: producer -> producer-consumer -> consumer.

Run with ``python examples/stages_demo.py``.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

import flowstage


class Numbers(flowstage.Producer[int]):
    """Emits 0, 1, 2, ... up to ``limit``, exactly as many as asked for."""

    def __init__(self, limit: int) -> None:
        super().__init__(name="numbers")
        self.next = 0
        self.limit = limit

    def handle_demand(self, demand: int) -> list[int]:
        end = min(self.next + demand, self.limit)
        events = list(range(self.next, end))
        self.next = end
        if end == self.limit:
            self.finish()  # stop once these events are out
        return events


class Square(flowstage.ProducerConsumer[int, int]):
    def handle_events(self, events: list[int], from_: Any) -> list[int]:
        return [e * e for e in events]


class Total(flowstage.Consumer[int]):
    def __init__(self, **opts: Any) -> None:
        super().__init__(**opts)
        self.total = 0
        self.count = 0

    def handle_events(self, events: list[int], from_: Any) -> None:
        self.total += sum(events)
        self.count += len(events)


async def run(limit: int = 1_000_000) -> tuple[int, float, list[flowstage.StageStatistics]]:
    start = time.perf_counter()
    async with flowstage.StageGroup() as group:
        numbers = group.start(Numbers(limit))
        square = group.start(Square(name="square", subscribe_to=[numbers]))
        total = group.start(Total(name="total", subscribe_to=[(square, {"max_demand": 1000})]))
        await group.wait()
    elapsed = time.perf_counter() - start
    return total.total, elapsed, [s.statistics() for s in (numbers, square, total)]


def main(limit: int = 1_000_000) -> None:
    total, elapsed, stats = anyio.run(run, limit)
    assert total == sum(i * i for i in range(limit))
    print(f"sum of squares below {limit:,}: {total}")
    print(f"{limit:,} events through 3 stages in {elapsed:.2f} s ({limit / elapsed:,.0f} events/s)")
    for s in stats:
        print(
            f"  {s.name:<8} {s.kind:<18} in={s.events_in:>9,} out={s.events_out:>9,} "
            f"batches_out={s.batches_out:>5} busy={s.busy_seconds:.2f}s"
        )


if __name__ == "__main__":
    main()
