"""Run a flow over MEGABYTES of 1 KiB events with a slow reducer on the process
executor; print the peak resident memory of the parent and of each worker (KiB).

    python memory_flow.py MEGABYTES
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import anyio

from flowstage import Flow
from flowstage.executors.process import ProcessExecutor


def peak_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def events(megabytes: int) -> Iterator[bytes]:
    block = bytes(range(256)) * 4  # 1 KiB
    for i in range(megabytes * 1024):
        yield bytes([i % 256]) + block[1:]


def first_byte(event: bytes) -> int:
    return event[0]


def slow_count(acc: int, event: bytes) -> int:
    total = 0
    for b in event[:300]:  # a reducer much slower than the source
        total += b
    return acc + 1 + total * 0


def report(acc: int, partition: Any, trigger: Any) -> tuple[list[Any], int]:
    return [("worker", partition[0], acc, peak_kib())], acc


async def main(megabytes: int) -> None:
    executor = ProcessExecutor(2)
    await Flow.from_iterable([b"x"] * 10).map(len).to_list(executor=executor)  # warm up
    before = peak_kib()
    flow = (
        Flow.from_iterable(events(megabytes), stages=1)
        .partition(stages=2, key=first_byte)
        .reduce(int, slow_count)
        .on_trigger(report)
    )
    out = await flow.to_list(executor=executor)
    print(
        json.dumps(
            {
                "events": sum(acc for _, _, acc, _ in out),
                "parent_growth_kib": peak_kib() - before,
                "workers_kib": sorted(peak for *_, peak in out),
            }
        )
    )


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]))
