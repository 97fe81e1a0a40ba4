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


#: Loop length of :func:`heavy` unless told otherwise; :func:`heavy_loops` finds the
#: length that makes a call cost a given time on this machine.
HEAVY_LOOP = 800


def heavy(x: int, loops: int = HEAVY_LOOP) -> int:
    """Pure Python work: ``loops`` turns of an integer recurrence (pass
    ``heavy_loops()`` through ``functools.partial`` for about 50 µs a call)."""
    total = x
    for i in range(loops):
        total = (total * 31 + i) % 1_000_003
    return total


def heavy_cost_us(calls: int = 2000, loops: int = HEAVY_LOOP) -> float:
    """The measured cost of one :func:`heavy` call, in microseconds."""
    t = time.perf_counter()
    for i in range(calls):
        heavy(i, loops)
    return (time.perf_counter() - t) / calls * 1e6


def heavy_loops(target_us: float = 50.0) -> int:
    """The loop length that makes one :func:`heavy` call cost about ``target_us``
    microseconds on this machine (best of three timings)."""
    per_loop = min(heavy_cost_us(loops=HEAVY_LOOP) for _ in range(3)) / HEAVY_LOOP
    return max(1, round(target_us / per_loop))


def burn(n: int) -> float:
    """Busy-loop ``n`` iterations; return the seconds it took."""
    t = time.perf_counter()
    s = 0
    for i in range(n):
        s += i
    return time.perf_counter() - t
