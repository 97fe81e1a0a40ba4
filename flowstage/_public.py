"""Where users find each public name: the module-metadata fix-up of public packages."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["PUBLIC_MODULES", "fixup_module_metadata"]

#: The modules users import from; everything else in the package is private.
PUBLIC_MODULES: Final = frozenset(
    {
        "flowstage",
        "flowstage.connectors",
        "flowstage.connectors.redis",
        "flowstage.dashboard",
        "flowstage.dashboard.terminal",
        "flowstage.dashboard.web",
        "flowstage.dispatchers",
        "flowstage.executors",
        "flowstage.executors.process",
        "flowstage.executors.ray",
        "flowstage.flow",
        "flowstage.hooks",
        "flowstage.integrations",
        "flowstage.integrations.aiohttp",
        "flowstage.integrations.fastapi",
        "flowstage.lowlevel",
        "flowstage.messages",
        "flowstage.plan",
        "flowstage.program",
        "flowstage.prometheus",
        "flowstage.statistics",
        "flowstage.testing",
    }
)


def fixup_module_metadata(home: str, names: Iterable[str], *, claim: bool = False) -> None:
    """Set ``__module__`` of the classes and functions ``home`` exports to ``home``,
    unless they already live in a public module (or, with ``claim``, always: the
    top-level package is the home of everything it exports).

    So reprs, tracebacks and pickles say ``flowstage.Flow`` rather than
    ``flowstage.flow._builder.Flow`` (as trio and httpx do). Call it at the end of
    each public package's ``__init__``.
    """
    module = sys.modules[home]
    for name in names:
        obj = getattr(module, name)
        current = getattr(obj, "__module__", None)
        if (
            isinstance(current, str)
            and current.startswith("flowstage")
            and (claim or current not in PUBLIC_MODULES)
            and (isinstance(obj, type) or callable(obj))
        ):
            with contextlib.suppress(AttributeError, TypeError):  # builtins
                obj.__module__ = home
