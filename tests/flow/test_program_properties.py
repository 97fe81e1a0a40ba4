"""A single-stage program equals the plain-Python sequential reference."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ._helpers import program, src

ints = st.lists(st.integers(-1000, 1000), max_size=200)
batch = st.integers(1, 50)


def _batches(xs: list[int], n: int) -> list[list[int]]:
    return [xs[i : i + n] for i in range(0, len(xs), n)]


@settings(max_examples=100, deadline=None)
@given(xs=ints, n=batch, k=st.integers(1, 7))
def test_map_filter_flat_map(xs: list[int], n: int, k: int) -> None:
    flow = src().map(lambda x: x * k).filter(lambda x: x % 3 != 0).flat_map(lambda x: [x, x + 1])
    prog = program(flow)
    out: list[Any] = []
    for b in _batches(xs, n):
        out += prog.handle_events(b, "p")
    out += prog.handle_done()
    expected = [y for x in xs if (x * k) % 3 != 0 for y in (x * k, x * k + 1)]
    assert out == expected


@settings(max_examples=100, deadline=None)
@given(xs=ints, n=batch)
def test_reduce(xs: list[int], n: int) -> None:
    flow = src().reject(lambda x: x < 0).reduce(lambda: 0, lambda a, x: a + x).emit("state")
    prog = program(flow)
    out: list[Any] = []
    for b in _batches(xs, n):
        out += prog.handle_events(b, "p")
    out += prog.handle_done()
    assert out == [functools.reduce(lambda a, x: a + x, (x for x in xs if x >= 0), 0)]


@settings(max_examples=100, deadline=None)
@given(xs=ints, n=batch, size=st.integers(1, 20))
def test_count_windows_partition_the_input(xs: list[int], n: int, size: int) -> None:
    from flowstage.flow import Window

    flow = src(Window.count(size)).reduce(list, lambda a, x: [*a, x]).emit("state")
    prog = program(flow)
    out: list[Any] = []
    for b in _batches(xs, n):
        out += prog.handle_events(b, "p")
    out += prog.handle_done()
    expected = [xs[i : i + size] for i in range(0, len(xs), size)]
    if len(xs) % size == 0:
        expected.append([])
    assert out == expected


@settings(max_examples=100, deadline=None)
@given(xs=ints, n=batch)
def test_group_by_and_uniq(xs: list[int], n: int) -> None:
    prog = program(src().uniq_by(lambda x: x % 10).group_by(lambda x: x % 2))
    out: list[Any] = []
    for b in _batches(xs, n):
        out += prog.handle_events(b, "p")
    out += prog.handle_done()
    seen: set[int] = set()
    firsts = []
    for x in xs:
        if x % 10 not in seen:
            seen.add(x % 10)
            firsts.append(x)
    groups: dict[int, list[int]] = {}
    for x in firsts:
        groups.setdefault(x % 2, []).append(x)
    assert out == list(groups.items())
