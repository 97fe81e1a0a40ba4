"""Argument checks shared by the engine's constructors."""

from __future__ import annotations

__all__ = ["check_positive_int"]


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 1 (not a ``bool``).

    Raises:
        TypeError: ``value`` is not an integer; the message names ``name``.
        ValueError: ``value`` is below 1; the message names ``name``.
    """
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer >= 1, got: {value!r}")
        value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got: {value!r}")
    return value
