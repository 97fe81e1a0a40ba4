"""Sending a plan to hosts: pickle, or cloudpickle when the plan needs it."""

from __future__ import annotations

import importlib.util
import pickle
from typing import Any

from ...plan import Plan, check_portable
from ._errors import FlowNotPortable

__all__ = ["cloudpickle", "serialize_plan"]


def cloudpickle() -> Any:
    """The ``cloudpickle`` module, or ``None`` when it is not installed."""
    if importlib.util.find_spec("cloudpickle") is None:
        return None
    import cloudpickle  # type: ignore[import-not-found, import-untyped, unused-ignore]

    return cloudpickle


def serialize_plan(
    plan: Plan, fallback: Any, executor: str, hosts: str, *, pickle_first: bool = True
) -> bytes:
    """``plan`` as bytes for the hosts: pickle, or ``fallback`` (a cloudpickle module,
    or ``None``) when the plan needs it. What cloudpickle writes loads with pickle.

    With ``pickle_first=False`` the fallback is used whenever there is one: hosts that
    do not import the parent's ``__main__`` (Ray actors) need the functions defined
    there sent by value, which only cloudpickle does.

    Raises:
        FlowNotPortable: a part of the plan cannot be sent (each with a fix), naming
            ``executor`` and its ``hosts``.
    """
    if pickle_first or fallback is None:
        problems = check_portable(plan)
        if not problems:
            return pickle.dumps(plan, protocol=5)
    if fallback is not None:
        problems = check_portable(plan, fallback)
        if not problems:
            data: bytes = fallback.dumps(plan, protocol=5)
            return data
    raise FlowNotPortable([str(p) for p in problems], executor, hosts)
