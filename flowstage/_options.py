"""Defaults and argument checks: the one place every layer validates options.

Every check raises when the option is given (a constructor, a builder method, a
``subscribe`` call), never later, with one message format::

    [<call>: ]<option> must be <constraint>, got: <value!r>

for example ``max_demand must be an integer >= 1, got: 0`` or
``Flow.partition: stages must be an integer >= 1, got: 0``. ``TypeError`` means the
value has the wrong type, ``ValueError`` that it is out of range or not one of the
allowed values.

This module sits at the bottom of the package: it imports nothing from flowstage, so
the engine, the plan, the programs, the executors and the builder all share it.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import sys
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "DEFAULT_BUFFER_SIZE",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAILBOX_LIMIT",
    "DEFAULT_MAX_DEMAND",
    "MAX_COUNT",
    "UNITS",
    "arity",
    "check_callable",
    "check_choice",
    "check_initial",
    "check_int",
    "check_option_names",
    "check_positive_int",
    "default_stages",
    "invalid",
    "is_async_callable",
    "named",
    "to_ms",
    "validate_demand",
]

T = TypeVar("T")

#: The most events a subscription asks for at once (GenStage's ``max_demand``).
DEFAULT_MAX_DEMAND: Final = 1000
#: Events a producer (or producer-consumer) holds while no consumer asks for them.
DEFAULT_BUFFER_SIZE: Final = 10_000
#: External messages (``send``, ``call``, ``async_info``) a mailbox holds at once.
DEFAULT_MAILBOX_LIMIT: Final = 1024
#: Seconds an async source's ``aclose()`` may take when its stage ends.
DEFAULT_CLOSE_TIMEOUT: Final = 1.0

#: Milliseconds per time unit accepted by windows and triggers.
UNITS: Final[dict[str, int]] = {
    "millisecond": 1,
    "second": 1000,
    "minute": 60 * 1000,
    "hour": 60 * 60 * 1000,
}


def named(option: str, call: str | None = None) -> str:
    """``option``, prefixed with ``call: `` when the option belongs to a call."""
    return option if not call else f"{call}: {option}"


def invalid(option: str, constraint: str, value: object, call: str | None = None) -> str:
    """The message of every option error: ``<option> must be <constraint>, got: <value!r>``."""
    return f"{named(option, call)} must be {constraint}, got: {value!r}"


def check_int(option: str, value: object, call: str | None = None) -> int:
    """Return ``value`` if it is an integer (``bool`` is rejected), else raise ``TypeError``."""
    if type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(invalid(option, "an integer", value, call))
    return int(value)


#: The largest count any option accepts (what ``itertools.islice``, ``deque`` and
#: friends take): a larger one could only fail later, deep inside a stage.
MAX_COUNT: Final = sys.maxsize


def check_positive_int(option: str, value: object, call: str | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer between 1 and
    :data:`MAX_COUNT` (``sys.maxsize``); a ``bool`` is not an integer here.

    Raises:
        TypeError: ``value`` is not an integer.
        ValueError: ``value`` is below 1 or above :data:`MAX_COUNT`.
    """
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(invalid(option, "an integer >= 1", value, call))
        value = int(value)
    if value < 1:
        raise ValueError(invalid(option, "an integer >= 1", value, call))
    if value > MAX_COUNT:
        raise ValueError(invalid(option, f"an integer between 1 and {MAX_COUNT}", value, call))
    return value


def check_choice(option: str, value: T, allowed: Iterable[object], call: str | None = None) -> T:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError``."""
    choices = tuple(allowed)
    try:
        ok = value in choices
    except TypeError:  # an unhashable or oddly comparing value
        ok = False
    if not ok:
        shown = ", ".join(repr(c) for c in choices)
        raise ValueError(invalid(option, f"one of {shown}", value, call))
    return value


def default_stages() -> int:
    """The default number of stages of a layer: ``os.cpu_count()`` (at least 1)."""
    return os.cpu_count() or 1


def validate_demand(
    max_demand: object = None, min_demand: object = None, call: str | None = None
) -> tuple[int, int]:
    """Apply the defaults and validate a ``(max_demand, min_demand)`` pair.

    ``max_demand`` defaults to :data:`DEFAULT_MAX_DEMAND` and must be an integer
    ``>= 1``. ``min_demand`` defaults to ``max_demand // 2`` and must satisfy
    ``0 <= min_demand < max_demand``.

    Raises:
        TypeError: a value is not an ``int`` (``bool`` is rejected).
        ValueError: a value is out of range; the message names the option.
    """
    mx = (
        DEFAULT_MAX_DEMAND
        if max_demand is None
        else check_positive_int("max_demand", max_demand, call)
    )
    if min_demand is None:
        return mx, mx // 2
    mn = check_int("min_demand", min_demand, call)
    if not 0 <= mn < mx:
        raise ValueError(
            invalid("min_demand", f"an integer between 0 and max_demand - 1 ({mx - 1})", mn, call)
        )
    return mx, mn


def to_ms(count: object, unit: object, call: str) -> int:
    """Convert ``count`` ``unit`` to milliseconds, validating both."""
    n = check_positive_int("n", count, call)
    check_choice("unit", unit, UNITS, call)
    return n * UNITS[cast("str", unit)]


def check_option_names(
    given: Iterable[str], allowed: Iterable[str], call: str | None = None
) -> None:
    """Raise ``TypeError`` for the first name in ``given`` that is not in ``allowed``,
    suggesting the closest allowed name (a misspelled option must not be ignored).
    """
    known = sorted(set(allowed))
    for name in given:
        if name not in known:
            shown = ", ".join(repr(k) for k in known)
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(invalid("option", f"one of {shown}", name, call) + hint)


def check_callable(option: str, fn: object, call: str | None = None) -> Callable[..., Any]:
    """Return ``fn`` if it is callable, else raise ``TypeError``."""
    if not callable(fn):
        raise TypeError(invalid(option, "a callable", fn, call))
    return cast("Callable[..., Any]", fn)


def arity(
    fn: Callable[..., Any],
    allowed: tuple[int, ...],
    option: str,
    call: str | None = None,
    *,
    unreadable: int | None = None,
) -> int:
    """The number of positional arguments to pass to ``fn``: the largest of
    ``allowed`` that ``fn`` accepts.

    Callables whose signature cannot be read (some builtins and C extensions) get
    ``unreadable``, or the largest of ``allowed`` when it is ``None``.

    Raises:
        TypeError: ``fn`` accepts none of the ``allowed`` counts.
    """
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
    counts = " or ".join(map(str, allowed))
    noun = "argument" if allowed == (1,) else "arguments"
    raise TypeError(invalid(option, f"a callable taking {counts} positional {noun}", fn, call))


def check_initial(initial: object, call: str, option: str = "initial") -> Callable[[], Any]:
    """``initial`` must be a zero-argument callable (an accumulator factory)."""
    if not callable(initial):
        raise TypeError(
            invalid(
                option,
                "a zero-argument function that creates the accumulator "
                "(for example `list` or `lambda: 0`)",
                initial,
                call,
            )
        )
    fn = cast("Callable[[], Any]", initial)
    arity(fn, (0,), option, call)
    return fn


def is_async_callable(fn: object) -> bool:
    """True for ``async def`` functions (and callables whose ``__call__`` is one),
    looking through :func:`functools.partial`."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )
