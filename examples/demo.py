"""The demo behind ``make demo`` (non-interactive, under 30 s on two cores).

1. Word count over part of the Python standard library's sources, four ways:
   eager, lazy, a concurrent flow on one event loop, and the same flow on the
   process executor (one worker process per core), with why each is as fast as it
   is.
2. Stages: a million events through producer -> producer-consumer -> consumer.
3. Live: requests arriving at a steady rate for a few seconds, counted per second
   in periodic windows, with the terminal dashboard of the running flow on screen.

``FLOWSTAGE_DEMO_QUICK=1`` runs a short version (the tests use it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import live_dashboard
import stages_demo
import word_count

#: Bytes of source the word count reads (about a million words; the whole
#: standard library is about 30 MB).
WORD_COUNT_BYTES = 10_000_000


def quick() -> bool:
    return os.environ.get("FLOWSTAGE_DEMO_QUICK") == "1"


def sample_files(budget: int) -> list[str]:
    """Standard library files, in order, until ``budget`` bytes."""
    chosen: list[str] = []
    total = 0
    for path in word_count.stdlib_files():
        if total >= budget:
            break
        chosen.append(path)
        total += os.path.getsize(path)
    return chosen


def main() -> None:
    files = sample_files(200_000 if quick() else WORD_COUNT_BYTES)
    size = sum(os.path.getsize(f) for f in files)
    print(f"== 1. Word count over {len(files)} standard library files ({size / 1e6:.1f} MB) ==")
    word_count.main(files)
    print(
        f"{'':10s} (the process executor adds cores, but every word also crosses from the "
        "worker that split it to the one that counts it:\n"
        f"{'':10s}  it gains most when each event carries more work than that; figures in "
        "docs/benchmarks.md)"
    )
    print()
    print("== 2. Stages: producer -> producer-consumer -> consumer ==")
    stages_demo.main()
    print()
    print("== 3. Live: a periodic window over a live source, with the dashboard ==")
    if quick():
        live_dashboard.main(seconds=1.0, rate=1_000, window_ms=250)
    else:
        live_dashboard.main()


if __name__ == "__main__":
    main()
