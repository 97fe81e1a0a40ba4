"""The library's own callables inside a plan: records that can be called.

Where a plan needs a function the library provides (a join side's partition
function, ``take_sort``'s merge), it holds one of these frozen dataclasses instead
of a closure, so it pickles (by value) and compares equal after a round trip.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._hash import ItemKey, partition_of

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ItemKey", "JoinHash", "MergeSorted", "identity"]


@dataclass(frozen=True, slots=True)
class JoinHash:
    """Partition one side of a join by ``key`` over ``n`` partitions, rewriting
    each event to ``(side, key, event)`` (side 0 is left, 1 is right)."""

    side: int
    key: Callable[[Any], Any]
    n: int

    def __call__(self, event: Any) -> tuple[tuple[int, Any, Any], int]:
        k = self.key(event)
        return (self.side, k, event), partition_of(k, self.n)


@dataclass(frozen=True, slots=True)
class MergeSorted:
    """``take_sort``'s merge: the first ``n`` of two sorted lists, merged in the
    order of ``sorted(..., key=key, reverse=reverse)``."""

    n: int
    key: Callable[[Any], Any] | None = None
    reverse: bool = False

    def __call__(self, acc: list[Any], other: list[Any]) -> list[Any]:
        merged = heapq.merge(acc, other, key=self.key, reverse=self.reverse)
        return list(itertools.islice(merged, self.n))


def identity(x: Any) -> Any:
    """Return ``x`` (``take_sort``'s ``done``)."""
    return x
