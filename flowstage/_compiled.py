"""Where flowstage takes its optional compiled helpers from (``flowstage/_speedups.c``).

Every helper has a pure-Python reference beside its caller, which stays the contract
and the fallback. :func:`compiled` gives the helper, or ``None`` when the extension
was not built or ``FLOWSTAGE_NO_EXTENSIONS`` is set (not empty, not ``0``): one rule
for every caller.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["compiled"]


def compiled(name: str) -> Any:
    """The compiled helper ``name`` of ``flowstage._speedups``, or ``None``."""
    if os.environ.get("FLOWSTAGE_NO_EXTENSIONS", "") not in ("", "0"):
        return None
    try:
        module = importlib.import_module("flowstage._speedups")
    except ImportError:
        return None
    return getattr(module, name, None)
