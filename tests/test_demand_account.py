"""Consumer-side automatic demand (GenStage's split_batches)."""

from __future__ import annotations

import logging

import pytest

from flowstage._demand import DemandAccount
from flowstage._options import validate_demand


def run_counter(
    account: DemandAccount, messages: int, per_message: int | None = None
) -> list[tuple[list[int], int]]:
    """Simulate a Counter producer that emits exactly the demand it receives.

    ``per_message`` caps the size of each events message (the producer splits what
    it owes into messages of that size). Returns the handled chunks and asks, in order.
    """
    log: list[tuple[list[int], int]] = []
    owed = account.max_demand  # the initial ask
    counter = 0
    for _ in range(messages):
        if owed == 0:
            break
        size = owed if per_message is None else min(owed, per_message)
        message = list(range(counter, counter + size))
        counter += size
        owed -= size
        for chunk, ask in account.split(message):
            log.append((chunk, ask))
            owed += ask
    return log


def test_defaults_1000_500() -> None:
    account = DemandAccount(None, None)
    assert (account.max_demand, account.min_demand, account.demand) == (1000, 500, 1000)
    log = run_counter(account, 1)
    assert [(c[0], c[-1], len(c), ask) for c, ask in log] == [
        (0, 499, 500, 500),
        (500, 999, 500, 500),
    ]
    assert log[0][0] == list(range(500))
    assert log[1][0] == list(range(500, 1000))


def test_max_100_min_80_batches_of_20() -> None:
    account = DemandAccount(100, 80)
    log = run_counter(account, 3)
    chunks = [chunk for chunk, _ in log]
    assert chunks[0] == list(range(20))
    assert chunks[1] == list(range(20, 40))
    assert all(len(c) == 20 for c in chunks)
    assert all(ask == 20 for _, ask in log)
    flat = [e for c in chunks for e in c]
    assert flat == list(range(len(flat)))


def test_max_100_min_20() -> None:
    account = DemandAccount(100, 20)
    log = run_counter(account, 5)
    assert [(c[0], c[-1], ask) for c, ask in log[:5]] == [
        (0, 79, 80),
        (80, 99, 0),
        (100, 179, 100),
        (180, 259, 80),
        (260, 279, 0),
    ]


def test_max_1000_min_750_messages_of_100() -> None:
    account = DemandAccount(1000, 750)
    first = account.split(list(range(100)))
    second = account.split(list(range(100, 200)))
    third = account.split(list(range(200, 300)))
    assert [ask for _, ask in first] == [0]
    assert [ask for _, ask in second] == [0]
    # Handled whole (chunks are 250 wide), then ask 300: the code, not the moduledoc.
    assert len(third) == 1
    assert third[0][0] == list(range(200, 300))
    assert third[0][1] == 300
    assert account.demand == 1000


def test_fast_path_returns_same_list() -> None:
    account = DemandAccount(10, 5)
    events = [1, 2, 3]
    [(chunk, ask)] = account.split(events)
    assert chunk is events
    assert ask == 0
    assert account.demand == 7


def test_min_zero_and_max_one() -> None:
    account = DemandAccount(1, 0)
    assert account.split(["a"]) == [(["a"], 1)]
    account = DemandAccount(10, 0)
    assert [(len(c), a) for c, a in account.split(list(range(10)))] == [(10, 10)]


def test_empty_message() -> None:
    account = DemandAccount(10, 5)
    assert account.split([]) == []
    assert account.demand == 10


def test_excess_is_logged_and_clamped(caplog: pytest.LogCaptureFixture) -> None:
    account = DemandAccount(10, 5)
    with caplog.at_level(logging.ERROR, logger="flowstage"):
        out = account.split(list(range(12)))
    assert "received 2 events in excess" in caplog.text
    # Chunks of 5 (max - min): 0..4 and 5..9 each bring demand to 5 <= min, so ask 5;
    # 10..11 were never asked for: counted as 0 for the accounting, so no ask.
    assert [c for c, _ in out] == [list(range(5)), list(range(5, 10)), [10, 11]]
    assert [a for _, a in out] == [5, 5, 0]
    assert account.demand == 10


def test_excess_single_chunk(caplog: pytest.LogCaptureFixture) -> None:
    account = DemandAccount(10, 0)
    with caplog.at_level(logging.ERROR, logger="flowstage"):
        out = account.split(list(range(3)))  # fine: demand 10 -> 7
        assert out == [([0, 1, 2], 0)]
        out = account.split(list(range(9)))  # 2 in excess
    assert "received 2 events in excess" in caplog.text
    assert out == [(list(range(9)), 10)]
    assert account.demand == 10


def test_validate_defaults() -> None:
    assert validate_demand() == (1000, 500)
    assert validate_demand(10) == (10, 5)
    assert validate_demand(1) == (1, 0)
    assert validate_demand(10, 0) == (10, 0)
    assert validate_demand(10, 9) == (10, 9)


def test_validate_messages() -> None:
    with pytest.raises(ValueError, match=r"^max_demand must be an integer >= 1, got: 0$"):
        validate_demand(0)
    with pytest.raises(
        ValueError,
        match=r"^min_demand must be an integer between 0 and max_demand - 1 \(999\), got: 2000$",
    ):
        validate_demand(1000, 2000)
    with pytest.raises(ValueError, match=r"max_demand - 1 \(9\), got: 10"):
        validate_demand(10, 10)
    with pytest.raises(ValueError, match=r"got: -1"):
        validate_demand(10, -1)
    with pytest.raises(ValueError, match="min_demand"):
        DemandAccount(10, 20)
    # Larger counts could only fail later (inside islice, say).
    with pytest.raises(
        ValueError, match=r"^max_demand must be an integer between 1 and \d+, got: "
    ):
        validate_demand(2**70)


@pytest.mark.parametrize(
    ("max_demand", "min_demand", "name"),
    [
        (True, None, "max_demand"),
        (1.5, None, "max_demand"),
        ("10", None, "max_demand"),
        (10, False, "min_demand"),
        (10, 2.0, "min_demand"),
    ],
)
def test_validate_types(max_demand: object, min_demand: object, name: str) -> None:
    with pytest.raises(TypeError, match=rf"^{name} must be an integer( >= 1)?, got: "):
        validate_demand(max_demand, min_demand)  # type: ignore[arg-type]
