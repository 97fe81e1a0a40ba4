"""Every build-time error, with its message."""

from __future__ import annotations

from typing import Any

import pytest

from flowstage.flow import Flow, Window


def _f() -> Flow[Any]:
    return Flow.from_iterable([1, 2], stages=1)


def _r() -> Flow[Any]:
    return _f().reduce(list, list.__add__)


@pytest.mark.parametrize(
    "op",
    [
        lambda f: f.map(abs),
        lambda f: f.flat_map(list),
        lambda f: f.filter(bool),
        lambda f: f.reject(bool),
        lambda f: f.map_values(abs),
    ],
)
def test_mapper_after_reduce(op: Any) -> None:
    with pytest.raises(
        ValueError, match=r"cannot be called after group_by/reduce.*on_trigger.*partition"
    ):
        op(_r())


def test_uniq_after_reduce() -> None:
    with pytest.raises(ValueError, match="uniq/uniq_by cannot be called after"):
        _r().uniq()


@pytest.mark.parametrize(
    "op",
    [
        lambda f: f.reduce(list, list.__add__),
        lambda f: f.emit_and_reduce(list, lambda a, x: ([], a)),
        lambda f: f.group_by(abs),
        lambda f: f.group_by_key(),
    ],
)
def test_second_reduce(op: Any) -> None:
    with pytest.raises(ValueError, match="after another group_by/reduce/emit_and_reduce"):
        op(_r())


@pytest.mark.parametrize(
    ("op", "name"),
    [
        (lambda f: f.emit("state"), "emit"),
        (lambda f: f.on_trigger(lambda a: ([], a)), "on_trigger"),
        (lambda f: f.departition(list, list.__add__, list), "departition"),
        (lambda f: f.take_sort(1), "take_sort"),
    ],
)
def test_needs_reduce(op: Any, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be called after a group_by/reduce"):
        op(_f().uniq())


def test_on_trigger_after_emit_or_on_trigger() -> None:
    with pytest.raises(ValueError, match="on_trigger cannot be called after emit/on_trigger"):
        _r().emit("state").on_trigger(lambda a: ([], a))
    with pytest.raises(ValueError, match="emit cannot be called after emit/on_trigger"):
        _r().on_trigger(lambda a: ([], a)).emit("nothing")


def test_emit_events_is_a_no_op_and_unknown_value() -> None:
    r = _r()
    assert r.emit("events") is r
    with pytest.raises(
        ValueError, match=r"Flow\.emit: what must be one of 'events', 'state', 'nothing'"
    ):
        r.emit("everything")  # type: ignore[arg-type]


def test_on_trigger_arity() -> None:
    with pytest.raises(TypeError, match="taking 1 or 2 or 3 positional arguments"):
        _r().on_trigger(lambda: ([], None))


def test_map_batch_not_first() -> None:
    f = _f().map_batch(list).map_batch(list)  # several leading ones are fine
    with pytest.raises(ValueError, match="map_batch can only be called at the beginning"):
        f.map(abs).map_batch(list)


def test_take_sort_n() -> None:
    with pytest.raises(ValueError, match="must be an integer >= 1, got: "):
        _r().take_sort(0)
    with pytest.raises(TypeError, match="must be an integer >= 1, got: "):
        _r().take_sort(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Window.periodic(1, "day"),
        lambda: Window.fixed(1, "days", abs),
        lambda: Window.global_().trigger_periodically(1, "week"),
        lambda: Window.fixed(1, "second", abs).allowed_lateness(1, "year"),
    ],
)
def test_unknown_unit(make: Any) -> None:
    with pytest.raises(
        ValueError, match=r"unit must be one of 'millisecond', 'second', 'minute', 'hour', got: "
    ):
        make()


def test_window_errors() -> None:
    with pytest.raises(ValueError, match="must be an integer >= 1, got: "):
        Window.count(0)
    with pytest.raises(ValueError, match="only supported by fixed windows"):
        Window.count(2).allowed_lateness(1, "second")
    with pytest.raises(ValueError, match="can only be called once per window"):
        Window.global_().trigger_every(2).trigger_every(3)
    with pytest.raises(TypeError, match="initial must be a zero-argument function"):
        Window.global_().trigger(0, lambda a, e: ("cont", a))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a callable, got: "):
        Window.fixed(1, "second", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="window must be a Window"):
        Flow.from_iterable([1], window="global")  # type: ignore[arg-type]


def test_unknown_join_mode() -> None:
    with pytest.raises(ValueError, match=r"Flow\.bounded_join: mode must be one of 'inner'"):
        Flow.bounded_join("outer", _f(), _f(), abs, abs, max)


def test_join_sides_must_be_flows() -> None:
    with pytest.raises(TypeError, match="right must be a Flow"):
        Flow.bounded_join("inner", _f(), [1], abs, abs, max)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "op",
    [
        lambda: _f().map(3),
        lambda: _f().filter(None),
        lambda: _f().map_batch("x"),
        lambda: _f().uniq_by(1),
        lambda: _f().reduce(list, 1),
        lambda: _r().on_trigger(1),
        lambda: _f().group_by(1),
        lambda: Flow.bounded_join("inner", _f(), _f(), 1, abs, max),
        lambda: _r().departition(list, 1, list),
    ],
)
def test_non_callable_callbacks(op: Any) -> None:
    with pytest.raises(TypeError, match="must be a callable, got: "):
        op()


@pytest.mark.parametrize(
    "op",
    [
        lambda: _f().reduce([], list.__add__),
        lambda: _f().reduce(lambda x: x, list.__add__),
        lambda: _f().emit_and_reduce(0, lambda a, x: ([], a)),
        lambda: _r().departition(0, list.__add__, list),
    ],
)
def test_initial_must_be_zero_arg_callable(op: Any) -> None:
    with pytest.raises(
        TypeError, match=r"initial must be a zero-argument function|positional arguments"
    ):
        op()


def test_empty_lists() -> None:
    with pytest.raises(ValueError, match="from_iterables: iterables must be a non-empty list"):
        Flow.from_iterables([])
    with pytest.raises(
        ValueError, match="from_async_iterables: iterables must be a non-empty list"
    ):
        Flow.from_async_iterables([])
    with pytest.raises(ValueError, match="from_stages: producers must be a non-empty list"):
        Flow.from_stages([])
    with pytest.raises(ValueError, match="flows must be a flow or a non-empty list of flows"):
        Flow.merge([])
    with pytest.raises(ValueError, match="flows must be a flow or a non-empty list of flows"):
        Flow.merge([1, 2])  # type: ignore[list-item]
    with pytest.raises(
        ValueError, match="through_stages: producer_consumers must be a non-empty list"
    ):
        _f().through_stages([])


def test_passing_a_flow_to_from_iterable() -> None:
    msg = "Did you mean Flow.partition or Flow.merge?"
    with pytest.raises(TypeError, match=msg):
        Flow.from_iterable(_f())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=msg):
        Flow.from_iterables([_f()])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="iterables must be a list of iterables"):
        Flow.from_iterables([1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="iterables must be a list of async iterables"):
        Flow.from_async_iterables([[1]])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"stages": 0}, ValueError, "stages must be an integer >= 1"),
        ({"stages": "2"}, TypeError, "stages must be an integer >= 1"),
        ({"stages": True}, TypeError, "stages must be an integer >= 1"),
        ({"max_demand": 0}, ValueError, "max_demand must be an integer >= 1"),
        (
            {"min_demand": -1},
            ValueError,
            "min_demand must be an integer between 0 and max_demand - 1",
        ),
        ({"max_demand": 10, "min_demand": 10}, ValueError, r"max_demand - 1 \(9\)"),
        ({"min_demand": 1.0}, TypeError, "min_demand must be an integer"),
    ],
)
def test_bad_layer_options(kwargs: dict[str, Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        Flow.from_iterable([1], **kwargs)
    with pytest.raises(exc, match=match):
        _f().partition(**kwargs)


def test_demand_defaults() -> None:
    (layer,) = Flow.from_iterable([1], max_demand=10).map(abs).plan().layers
    assert (layer.max_demand, layer.min_demand) == (10, 5)


def test_partition_key_and_hash_validation() -> None:
    with pytest.raises(
        ValueError, match=r"Flow.partition: key must be a callable, \('elem', index\)"
    ):
        _f().partition(key=("elem", -1))
    with pytest.raises(ValueError, match="key must be a callable"):
        _f().partition(key="name")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hash must be a function that receives an event"):
        _f().partition(hash=3)  # type: ignore[arg-type]
