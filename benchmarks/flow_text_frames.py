"""What a worker does with a batch of words it receives: cut it out of its frame,
then count it, with and without the cache of short strings.

The process executor sends a batch of strings as one string and the length of each
item (``("sized", edge, text, lengths)``, see ``flowstage/executors/process/_text.py``);
the receiving process cuts the items out again with the compiled ``split_sized``. A
receiving process keeps the short strings it made in a cache (``piece_cache()``,
65,536 slots): a word that arrives again is the same object. This benchmark takes
every other line of the 20 MiB corpus (the half of the words a worker of a 2-worker
word count receives from its peer, about 1.5 million), in batches of 500 words as
they cross, and times per word:

* cutting the batches, without a cache and through one (kept across the batches, as
  a worker keeps it for a run);
* cutting them and counting the words in a dict, as the word count's reducer does
  (``counts[word] = counts.get(word, 0) + 1``), each batch freed after it is counted;
* cutting as many keys that never repeat (``key-0``, ``key-1``, ...), where the cache
  finds nothing (a batch stops looking after 16 lookups that found fewer than 2);
* the words' whole way between processes, but the sockets: each batch packed as the
  executor packs it, pickled, unpickled and cut;
* the same for lines, in batches of 1,000 as a parent sends a source's lines: every
  line of the corpus, each batch framed as a channel frames it (a payload of 64 KiB
  or more pickled to pieces), unpickled and cut (the last column is then per line).

Rounds alternate the two orders; the table shows medians. No event loop runs (the
backend column says ``-``). It needs the compiled
helpers (``flowstage._speedups``); without them it says so and prints no table.

    python benchmarks/flow_text_frames.py [--repeat K] [--megabytes M] [--slots N] [--quick]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import time
from collections.abc import Sequence

from flow_process import corpus_lines

from flowstage.executors.process._channel import encode
from flowstage.executors.process._text import PIECE_SLOTS, pack, unpack

ROWS: tuple[str, ...] = (
    "words cut, no cache",
    "words cut, through the cache",
    "words cut and counted, no cache",
    "words cut and counted, through the cache",
    "keys that never repeat cut, no cache",
    "keys that never repeat cut, through the cache",
    "words there and back (joined, pickled, unpickled, cut), no cache",
    "words there and back (joined, pickled, unpickled, cut), through the cache",
    "lines there and back (joined, framed, unpickled, cut), per line",
)

#: Words per batch, as a worker's sub-batch for one peer.
BATCH = 500
#: Lines per batch, as a parent sends a source's lines (``max_demand``).
LINE_BATCH = 1000


def _run(batches: list[tuple[str, bytes]], slots: int | None) -> tuple[float, float, int]:
    """(seconds cutting, seconds cutting and counting, words counted)."""
    from flowstage._speedups import split_sized

    cache: list[str | None] | None = [None] * slots if slots else None
    counts: dict[str, int] = {}
    cutting = 0.0
    start = time.perf_counter()
    for text, lengths in batches:
        t = time.perf_counter()
        words = split_sized(text, lengths, cache)
        cutting += time.perf_counter() - t
        for word in words:
            counts[word] = counts.get(word, 0) + 1
        del words
    return cutting, time.perf_counter() - start, sum(counts.values())


def _there_and_back(word_batches: list[list[str]], slots: int | None) -> float:
    """Seconds to pack, pickle, unpickle and cut every batch (as a channel does)."""
    cache: list[str | None] | None = [None] * slots if slots else None
    start = time.perf_counter()
    for batch in word_batches:
        frame = pickle.dumps(pack([("events", 0, batch)]), protocol=5)
        (message,) = pickle.loads(frame)
        if unpack(message, cache)[2] != batch:
            raise AssertionError("a batch came back different")
    return time.perf_counter() - start


def _lines_there_and_back(line_batches: list[list[str]]) -> float:
    """Seconds to pack, frame, unpickle and cut every batch of lines (as a parent's
    channel and a worker's do)."""
    start = time.perf_counter()
    for batch in line_batches:
        frame = encode(pack([("events", 0, batch)]))
        with memoryview(frame) as view:
            (message,) = pickle.loads(view[4:])
        if unpack(message)[2] != batch:
            raise AssertionError("a batch of lines came back different")
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--slots", type=int, default=PIECE_SLOTS, help="the cache's slots")
    parser.add_argument("--quick", action="store_true", help="a small corpus, one round")
    args, _ = parser.parse_known_args(argv)
    if args.quick:
        args.megabytes, args.repeat = 0.2, 1
    try:
        from flowstage._speedups import join_sized
    except ImportError:
        print("## Text frames: the compiled helpers are not built; nothing to measure\n")
        return 0
    lines = corpus_lines(args.megabytes)
    words = [word for line in lines[::2] for word in line.split()]
    batches = []
    for i in range(0, len(words), BATCH):
        both = join_sized(words[i : i + BATCH])
        assert both is not None
        batches.append(both)
    keys = [f"key-{i}" for i in range(len(words))]
    unique = []
    for i in range(0, len(keys), BATCH):
        both = join_sized(keys[i : i + BATCH])
        assert both is not None
        unique.append(both)
    word_batches = [words[i : i + BATCH] for i in range(0, len(words), BATCH)]
    line_batches = [lines[i : i + LINE_BATCH] for i in range(0, len(lines), LINE_BATCH)]
    timings: dict[str, list[tuple[float, float]]] = {
        name: []
        for name in (
            "no cache",
            "cache",
            "unique, no cache",
            "unique, cache",
            "framed, no cache",
            "framed, cache",
            "lines",
        )
    }
    for rep in range(args.repeat):
        order = ("no cache", "cache") if rep % 2 else ("cache", "no cache")
        for name in order:
            slots = args.slots if name == "cache" else None
            cutting, both, counted = _run(batches, slots)
            if counted != len(words):
                raise AssertionError(f"{name}: counted {counted} words of {len(words)}")
            timings[name].append((cutting, both))
            cutting, both, counted = _run(unique, slots)
            if counted != len(keys):
                raise AssertionError(f"{name}: counted {counted} keys of {len(keys)}")
            timings[f"unique, {name}"].append((cutting, both))
            framed = _there_and_back(word_batches, slots)
            timings[f"framed, {name}"].append((framed, framed))
        framed = _lines_there_and_back(line_batches)
        timings["lines"].append((framed, framed))
    print(
        f"## Text frames: {len(words):,} words in batches of {BATCH}, "
        f"{len(lines):,} lines in batches of {LINE_BATCH}, "
        f"cache of {args.slots:,} slots, median of {args.repeat}\n"
    )
    print("| backend | case | median ms | ns per word (line) |")
    print("|---|---|---:|---:|")
    for row, name, index in (
        (ROWS[0], "no cache", 0),
        (ROWS[1], "cache", 0),
        (ROWS[2], "no cache", 1),
        (ROWS[3], "cache", 1),
        (ROWS[4], "unique, no cache", 0),
        (ROWS[5], "unique, cache", 0),
        (ROWS[6], "framed, no cache", 0),
        (ROWS[7], "framed, cache", 0),
        (ROWS[8], "lines", 0),
    ):
        seconds = statistics.median(t[index] for t in timings[name])
        items = len(lines) if name == "lines" else len(words)
        print(f"| - | {row} | {seconds * 1e3:.1f} | {seconds / items * 1e9:.1f} |")
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
