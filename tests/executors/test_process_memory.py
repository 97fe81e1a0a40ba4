"""Demand crosses processes: with a reducer slower than its source, memory stays
bounded whatever the input size (peak resident memory of the parent and of each
worker, from 2 MB to 200 MB of input)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "scripts" / "memory_flow.py"
MIB = 1024


def run(megabytes: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(megabytes)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert result["events"] == megabytes * 1024  # nothing lost
    return result


def test_peak_memory_does_not_grow_with_the_input() -> None:
    small = run(2)
    large = run(200)  # 100 times the input: 200 MiB through the flow
    # An unbounded queue anywhere would hold a good part of the 200 MiB; bounded
    # demand keeps every process within a few windows of events (1 KiB each).
    assert large["parent_growth_kib"] < 64 * MIB, large
    for small_peak, large_peak in zip(small["workers_kib"], large["workers_kib"], strict=True):
        assert large_peak < small_peak + 48 * MIB, (small, large)
