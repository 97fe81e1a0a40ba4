"""The demo behind ``make demo``.

Counts the words of the Python standard library's own source files three ways
(eager, lazy, and as a concurrent flow), prints the top words and the throughput of
each, then pushes a million events through a three-stage pipeline.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stages_demo


def main() -> None:
    try:
        import word_count
    except ImportError:  # pragma: no cover - the word count example ships with Flow
        word_count = None
    if word_count is not None:
        print("== Word count over the standard library's sources ==")
        word_count.main([])
        print()
    print("== Stages: producer -> producer-consumer -> consumer ==")
    stages_demo.main()


if __name__ == "__main__":
    main()
