"""Run one word count on the Ray executor from a fresh process and print, as JSON,
the result and whether Ray is still initialized afterwards.

    python ray_connect.py [ADDRESS] [TEMP_DIR]

Without ADDRESS (or with "-"), the executor starts a local Ray for the run; with one,
it connects to that cluster. Either way it disconnects when the run ends.
"""

from __future__ import annotations

import json
import sys

import anyio

from flowstage import Flow
from flowstage.executors.ray import RayExecutor


def split(line: str) -> list[str]:
    return line.split()


def count(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


async def main(address: str | None, temp_dir: str | None) -> None:
    import ray

    init: dict[str, object] = {}
    if address is None:
        init = {
            "num_cpus": 1,
            "_node_ip_address": "127.0.0.1",
            "object_store_memory": 100 * 1024**2,
            "log_to_driver": False,
        }
        if temp_dir:
            init["_temp_dir"] = temp_dir
    executor = RayExecutor(address, init_options=init)
    lines = ["a b", "b c", "c a b"]
    flow = Flow.from_iterable(lines, stages=1).flat_map(split).partition(stages=2)
    out = await flow.reduce(dict, count).to_list(executor=executor)
    print(json.dumps({"counts": dict(out), "initialized_after": ray.is_initialized()}))


if __name__ == "__main__":
    address = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None
    temp_dir = sys.argv[2] if len(sys.argv) > 2 else None
    anyio.run(main, address, temp_dir)
