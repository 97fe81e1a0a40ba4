"""The producer buffer (GenStage.Buffer, cases BF-01..BF-09 of the reference)."""

from __future__ import annotations

import pytest

from flowstage._buffer import Buffer


def test_bf01_len_does_not_count_infos() -> None:
    buf: Buffer[str] = Buffer(10, keep="first")
    assert buf.store(["t1", "t2"]) == (0, [])
    assert buf.store_info("p3") is True
    assert buf.store_info("p4") is True
    assert len(buf) == 2
    assert buf.infos == 2


def test_bf02_keep_first_discards_newest() -> None:
    buf: Buffer[str] = Buffer(3, keep="first")
    assert buf.store(["a", "b", "c"]) == (0, [])
    assert buf.store(["d", "e", "f"]) == (3, [])
    assert len(buf) == 3
    assert buf.take(3) == (["a", "b", "c"], [], 0)


def test_bf02_keep_first_partial_room() -> None:
    buf: Buffer[int] = Buffer(5, keep="first")
    assert buf.store([1, 2, 3]) == (0, [])
    assert buf.store([4, 5, 6, 7]) == (2, [])
    assert buf.take(10) == ([1, 2, 3, 4, 5], [], 5)


def test_bf03_large_buffer() -> None:
    buf: Buffer[int] = Buffer(10**9, keep="first")
    assert buf.store(list(range(1000))) == (0, [])
    assert len(buf) == 1000


def test_bf04_keep_last_discards_oldest() -> None:
    buf: Buffer[str] = Buffer(3, keep="last")
    assert buf.store(["a", "b", "c"]) == (0, [])
    assert buf.store(["d", "e", "f"]) == (3, [])
    assert buf.take(3) == (["d", "e", "f"], [], 0)


def test_keep_last_single_store_larger_than_size() -> None:
    buf: Buffer[int] = Buffer(3)
    assert buf.store([1, 2]) == (0, [])
    assert buf.store([3, 4, 5, 6, 7]) == (4, [])
    assert buf.take(5) == ([5, 6, 7], [], 2)


def test_keep_last_partial_overflow_across_chunks() -> None:
    buf: Buffer[int] = Buffer(5)
    buf.store([1, 2])
    buf.store([3, 4])
    assert buf.store([5, 6, 7]) == (2, [])
    assert buf.take(10) == ([3, 4, 5, 6, 7], [], 5)


def test_bf05_infos_displaced_by_keep_last_overflow() -> None:
    buf: Buffer[str] = Buffer(3, keep="last")
    buf.store(["t1", "t2"])
    assert buf.store_info("p3")
    assert buf.store_info("p4")
    assert buf.store(["t5", "t6", "t7"]) == (2, ["p3", "p4"])
    assert buf.infos == 0
    assert buf.take(3) == (["t5", "t6", "t7"], [], 0)


def test_bf05_only_infos_behind_dropped_events_are_released() -> None:
    buf: Buffer[str] = Buffer(3)
    buf.store(["t1"])
    buf.store_info("p1")
    buf.store(["t2"])
    buf.store_info("p2")
    assert buf.store(["t3", "t4"]) == (1, ["p1"])
    assert buf.take(10) == (["t2"], ["p2"], 9)
    assert buf.take(10) == (["t3", "t4"], [], 8)


def test_bf06_empty_buffer() -> None:
    buf: Buffer[str] = Buffer(10)
    assert buf.store_info("p1") is False
    assert buf.infos == 0
    assert buf.take(5) == ([], [], 5)
    assert buf.store([]) == (0, [])
    assert buf.take(5) == ([], [], 5)


def test_bf07_take_stops_at_info() -> None:
    buf: Buffer[str] = Buffer(10, keep="first")
    buf.store(["t1", "t2"])
    assert buf.store_info("p3")
    buf.store(["t4"])
    assert buf.take(5) == (["t1", "t2"], ["p3"], 3)
    assert buf.take(5) == (["t4"], [], 4)


def test_bf07_info_due_when_count_runs_out_exactly_there() -> None:
    buf: Buffer[str] = Buffer(10)
    buf.store(["t1", "t2"])
    buf.store_info("p3")
    buf.store(["t4"])
    assert buf.take(2) == (["t1", "t2"], ["p3"], 0)


def test_bf08_infos_at_same_position_fifo() -> None:
    buf: Buffer[str] = Buffer(10, keep="first")
    buf.store(["t1", "t2"])
    for info in ("p3", "p4", "p5"):
        assert buf.store_info(info)
    assert buf.take(5) == (["t1", "t2"], ["p3", "p4", "p5"], 3)


def test_bf09_interleaved() -> None:
    buf: Buffer[str] = Buffer(10, keep="first")
    buf.store(["t1", "t2"])
    buf.store_info("p3")
    buf.store_info("p4")
    buf.store(["t5", "t6", "t7"])
    buf.store_info("p8")
    buf.store_info("p9")
    buf.store(["t10"])
    buf.store_info("p11")
    assert buf.take(3) == (["t1", "t2"], ["p3", "p4"], 1)
    assert buf.take(4) == (["t5", "t6", "t7"], ["p8", "p9"], 1)
    assert buf.take(2) == (["t10"], ["p11"], 1)
    assert len(buf) == 0
    assert buf.infos == 0
    assert buf.take(2) == ([], [], 2)


def test_take_across_many_chunks_and_offsets() -> None:
    buf: Buffer[int] = Buffer(100)
    for start in range(0, 30, 3):
        buf.store([start, start + 1, start + 2])
    out: list[int] = []
    for n in (1, 4, 2, 7, 5, 100):
        events, infos, left = buf.take(n)
        assert infos == []
        assert left == n - len(events)
        out.extend(events)
    assert out == list(range(30))


def test_take_zero() -> None:
    buf: Buffer[int] = Buffer(5)
    buf.store([1])
    assert buf.take(0) == ([], [], 0)
    assert len(buf) == 1


def test_max_infos() -> None:
    buf: Buffer[int] = Buffer(5, max_infos=2)
    buf.store([1])
    buf.store_info("a")
    buf.store_info("b")
    with pytest.raises(RuntimeError, match="already holds 2 info messages"):
        buf.store_info("c")
    assert buf.take(1) == ([1], ["a", "b"], 0)


@pytest.mark.parametrize("size", [0, -1])
def test_size_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match=rf"buffer_size must be an integer >= 1, got: {size}"):
        Buffer(size)


@pytest.mark.parametrize("size", [1.5, "3", True, None])
def test_size_must_be_int(size: object) -> None:
    with pytest.raises(TypeError, match="buffer_size must be an integer >= 1"):
        Buffer(size)  # type: ignore[arg-type]


def test_keep_must_be_first_or_last() -> None:
    with pytest.raises(ValueError, match="buffer_keep must be one of 'first', 'last', got: "):
        Buffer(3, keep="middle")  # type: ignore[arg-type]


def test_large_take_is_not_quadratic() -> None:
    buf: Buffer[int] = Buffer(10**6)
    buf.store(list(range(10**6)))
    total = 0
    while len(buf):
        events, _, _ = buf.take(1000)
        total += len(events)
    assert total == 10**6
