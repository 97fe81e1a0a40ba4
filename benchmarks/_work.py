"""Callbacks and helpers for benchmarks that run flows in worker processes.

They live in an importable module (``benchmarks/`` is on ``sys.path`` when the
benchmarks run), because worker processes import callbacks by name.
"""

from __future__ import annotations

import time


def count(acc: dict[str, int], word: str) -> dict[str, int]:
    acc[word] = acc.get(word, 0) + 1
    return acc


def double(x: int) -> int:
    return x * 2


def multiple_of_3(x: int) -> bool:
    return x % 3 == 0


def add(acc: int, x: int) -> int:
    return acc + x


#: Loop length of :func:`heavy`; :func:`heavy_cost_us` says what one call costs.
HEAVY_LOOP = 800


def heavy(x: int) -> int:
    """About 50 µs of pure Python per call on the benchmark machine."""
    total = x
    for i in range(HEAVY_LOOP):
        total = (total * 31 + i) % 1_000_003
    return total


def heavy_cost_us(calls: int = 2000) -> float:
    """The measured cost of one :func:`heavy` call, in microseconds."""
    t = time.perf_counter()
    for i in range(calls):
        heavy(i)
    return (time.perf_counter() - t) / calls * 1e6


def burn(n: int) -> float:
    """Busy-loop ``n`` iterations; return the seconds it took."""
    t = time.perf_counter()
    s = 0
    for i in range(n):
        s += i
    return time.perf_counter() - t
