"""A worker's C allocator keeps the memory it frees (glibc only).

A worker is a new process for each run: every page of memory it uses is a page
fault the first time it is touched, and glibc's allocator, by default, gives freed
memory back to the system (a large block is a mapping of its own; the top of the
heap is trimmed once enough of it is free), so that a worker receiving frames of
events took the same pages again and again: about 7,000 page faults a worker in a
word count of 20 MiB on 2 workers. With large blocks taken from the heap and the
heap never trimmed, about 4,500-5,200 (:func:`keep_freed_memory`).

A worker's memory is still bounded: the allocator keeps what the worker freed, so
the worker holds at most its own peak until it exits at the end of the run. Only
workers call this, never the parent (a user's process), and only where the C library
is glibc (``mallopt`` elsewhere may not exist or mean the same).
"""

from __future__ import annotations

import os
import sys
from typing import Final

__all__ = ["keep_freed_memory"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
#: The largest block taken from the heap; larger ones are still mappings of their own
#: (glibc accepts at most 32 MiB on 64-bit systems).
MMAP_THRESHOLD: Final = 32 << 20
#: Free memory at the top of the heap beyond this is given back (never, in practice:
#: the largest value mallopt takes).
TRIM_THRESHOLD: Final = (1 << 31) - 1


def _glibc() -> bool:
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):  # no such name here, or no confstr
        return False
    return version is not None and version.startswith("glibc")


def keep_freed_memory() -> bool:
    """Have glibc's allocator keep the memory this process frees, for it to use again:
    blocks up to :data:`MMAP_THRESHOLD` come from the heap, and the heap is not
    trimmed. Returns whether it did (``False`` off Linux, or where the C library is
    not glibc)."""
    if not sys.platform.startswith("linux") or not _glibc():
        return False
    import ctypes  # the fork server imports it beforehand (see ._preload)

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - glibc always has mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
