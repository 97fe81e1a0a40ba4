"""The flow both service examples run: words counted in windows of processing time.

Used by ``examples/service_fastapi.py`` and ``examples/service_aiohttp.py``.
"""

from __future__ import annotations

from typing import Any

from flowstage import Flow, Window
from flowstage.integrations import FlowService


def word(item: Any) -> str:
    """Each pushed item must be a string (anything else answers 422)."""
    if not isinstance(item, str):
        raise TypeError(f"a word must be a string, got: {item!r}")
    return item


def count(acc: dict[str, int], w: str) -> dict[str, int]:
    acc[w] = acc.get(w, 0) + 1
    return acc


def window_counts(
    acc: dict[str, int], _partition: Any, trigger: tuple[str, int, str]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One result per window (and partition) that saw words (periodic windows
    close every period, words or not)."""
    _type, index, _name = trigger
    if not acc:
        return [], acc
    return [{"window": index, "counts": dict(sorted(acc.items()))}], acc


def counting_service(window_ms: int = 1000, **options: Any) -> FlowService[dict[str, Any]]:
    """A push source of words, counted in windows of ``window_ms``."""
    words, push = Flow.from_push[str](capacity=10_000)
    counts = (
        words.partition(stages=2, window=Window.periodic(window_ms, "millisecond"))
        .reduce(dict, count)
        .on_trigger(window_counts)
    )
    return FlowService(counts, push, convert=word, **options)
