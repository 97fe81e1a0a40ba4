"""Deterministic synthetic text corpus for word-count benchmarks.

Words follow a Zipf-like distribution over a fixed synthetic vocabulary,
so every tool counts the same words on the same bytes.

    python corpus.py OUT_PATH [MEGABYTES]   (default 20 MB)
"""

import random
import sys


def vocabulary(n: int, rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    seen: set[str] = set()
    words: list[str] = []
    while len(words) < n:
        w = "".join(rng.choice(letters) for _ in range(rng.randint(2, 10)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def main() -> None:
    out = sys.argv[1]
    megabytes = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    target = int(megabytes * 1024 * 1024)
    rng = random.Random(20170318)
    vocab = vocabulary(50_000, rng)
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    written = 0
    with open(out, "w", encoding="utf-8") as f:
        while written < target:
            words = rng.choices(vocab, weights=weights, k=12 * 200)
            lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
            chunk = "\n".join(lines) + "\n"
            f.write(chunk)
            written += len(chunk)


if __name__ == "__main__":
    main()
