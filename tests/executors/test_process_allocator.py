"""A worker's allocator keeps the memory it frees (glibc): each check runs in a new
Python process, whose allocator starts with glibc's defaults, and reads glibc's own
account of its memory (``mallinfo2``) before and after."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import textwrap

import pytest

from flowstage import Flow
from flowstage.executors.process import ProcessExecutor, _allocator
from flowstage.executors.process._allocator import keep_freed_memory

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not _allocator._glibc(),
    reason="the allocator is tuned on Linux with glibc only (run these tests there)",
)

_PROBE = textwrap.dedent(
    """
    import ctypes, json, sys
    from flowstage.executors.process._allocator import keep_freed_memory

    class Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = Info
    tuned = keep_freed_memory() if sys.argv[1] == "keep" else None
    before = mallinfo2().hblkhd
    block = bytearray(1 << 20)          # 1 MiB: a mapping of its own by default
    mapped = mallinfo2().hblkhd - before
    del block
    big = bytearray(24 << 20)           # from the heap either way once tuned...
    heap_with = mallinfo2().arena
    del big                             # ... and is it given back when freed?
    heap_after = mallinfo2().arena
    print(json.dumps({"tuned": tuned, "mapped": mapped, "heap_with": heap_with,
                      "heap_after": heap_after}))
    """
)


def _probe(mode: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, int] = json.loads(out)
    return result


@glibc_only
def test_a_tuned_allocator_takes_blocks_from_the_heap_and_keeps_them() -> None:
    default, kept = _probe("default"), _probe("keep")
    assert kept["tuned"] is True
    # By default a 1 MiB block is a mapping of its own (given back on free); tuned,
    # it comes from the heap.
    assert default["mapped"] >= 1 << 20
    assert kept["mapped"] < 1 << 20
    # Tuned, a 24 MiB block comes from the heap, which keeps it once freed.
    assert kept["heap_with"] >= 24 << 20
    assert kept["heap_after"] >= 24 << 20
    # By default the heap never holds it for long: a mapping, or trimmed after.
    assert default["heap_after"] < 24 << 20


def test_without_glibc_nothing_is_tuned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_allocator, "_glibc", lambda: False)
    assert keep_freed_memory() is False


class _Info(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            *("arena", "ordblks", "smblks", "hblks", "hblkhd"),
            *("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
        )
    ]


def mapped_by_a_block(_x: int) -> int:
    """Bytes of new mappings glibc made for a 1 MiB block, in this process."""
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = _Info
    before = mallinfo2().hblkhd
    block = bytearray(1 << 20)
    mapped: int = mallinfo2().hblkhd - before
    del block
    return mapped


@glibc_only
@pytest.mark.anyio
async def test_workers_run_with_the_tuned_allocator() -> None:
    flow = Flow.from_iterable(range(2), stages=1).partition(stages=2).map(mapped_by_a_block)
    assert await flow.to_list(executor=ProcessExecutor(2)) == [0, 0]
