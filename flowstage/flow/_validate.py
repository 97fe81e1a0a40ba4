"""Validation helpers shared by the Flow and Window builders.

Every check raises at *build* time (when the builder method is called), with a
message in one format: ``<what> expected <constraint>, got: <value!r>``, plus a
hint saying what to do instead where Flow has one.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import TYPE_CHECKING, Any, Final, Literal, cast

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_MAX_DEMAND",
    "UNITS",
    "Unit",
    "arity",
    "check_callable",
    "check_initial",
    "default_stages",
    "demand_options",
    "is_async_callable",
    "positive_int",
    "stages_option",
    "to_ms",
]

Unit = Literal["millisecond", "second", "minute", "hour"]

UNITS: Final[dict[str, int]] = {
    "millisecond": 1,
    "second": 1000,
    "minute": 60 * 1000,
    "hour": 60 * 60 * 1000,
}

DEFAULT_MAX_DEMAND: Final = 1000


def default_stages() -> int:
    """The default number of stages of a layer: ``os.cpu_count()`` (at least 1)."""
    return os.cpu_count() or 1


def positive_int(what: str, value: object) -> int:
    """Return ``value`` if it is an ``int`` >= 1 (``bool`` excluded), else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} expected a positive integer, got: {value!r}")
    if value < 1:
        raise ValueError(f"{what} expected a positive integer, got: {value!r}")
    return value


def to_ms(count: object, unit: object, what: str = "unit") -> int:
    """Convert ``count`` ``unit`` to milliseconds, validating both."""
    n = positive_int(f"{what} count", count)
    if not isinstance(unit, str) or unit not in UNITS:
        raise ValueError(
            f"unknown unit {unit!r} (expected 'millisecond', 'second', 'minute' or 'hour')"
        )
    return n * UNITS[unit]


def stages_option(stages: object, what: str) -> int:
    """Validate a ``stages=`` option; ``None`` means :func:`default_stages`."""
    if stages is None:
        return default_stages()
    return positive_int(f"{what}: stages", stages)


def demand_options(max_demand: object, min_demand: object, what: str) -> tuple[int, int]:
    """Validate ``max_demand``/``min_demand``.

    ``max_demand`` defaults to 1000; ``min_demand`` defaults to ``max_demand // 2``
    and must satisfy ``0 <= min_demand < max_demand``.
    """
    mx = (
        DEFAULT_MAX_DEMAND
        if max_demand is None
        else positive_int(f"{what}: max_demand", max_demand)
    )
    if min_demand is None:
        return mx, mx // 2
    if isinstance(min_demand, bool) or not isinstance(min_demand, int):
        raise TypeError(f"{what}: min_demand expected an integer, got: {min_demand!r}")
    if not 0 <= min_demand < mx:
        raise ValueError(
            f"{what}: min_demand expected an integer >= 0 and < max_demand ({mx}), "
            f"got: {min_demand!r}"
        )
    return mx, min_demand


def check_callable(what: str, fn: object) -> Callable[..., Any]:
    """Raise ``TypeError`` unless ``fn`` is callable."""
    if not callable(fn):
        raise TypeError(f"{what} expected a callable, got: {fn!r}")
    return cast("Callable[..., Any]", fn)


def arity(
    fn: Callable[..., Any],
    allowed: tuple[int, ...],
    what: str,
    unreadable: int | None = None,
) -> int:
    """The number of positional arguments to pass to ``fn``: the largest of
    ``allowed`` that ``fn`` accepts. Callables whose signature cannot be read (some
    builtins and C extensions) get ``unreadable``, or the largest of ``allowed``
    when it is ``None``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return max(allowed) if unreadable is None else unreadable
    for n in sorted(allowed, reverse=True):
        try:
            sig.bind(*range(n))
        except TypeError:
            continue
        return n
    raise TypeError(
        f"{what} expected a callable taking {' or '.join(map(str, allowed))} "
        f"positional arguments, got: {fn!r}"
    )


def check_initial(what: str, initial: object) -> Callable[[], Any]:
    """``initial`` must be a zero-argument callable (an accumulator factory)."""
    if not callable(initial):
        raise TypeError(
            f"{what} expects the accumulator to be given as a zero-argument function "
            f"(for example `list` or `lambda: 0`), got: {initial!r}"
        )
    fn = cast("Callable[[], Any]", initial)
    arity(fn, (0,), f"{what} initial")
    return fn


def is_async_callable(fn: object) -> bool:
    """True for ``async def`` functions (and callables whose ``__call__`` is one)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )
