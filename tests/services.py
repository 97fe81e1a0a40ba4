"""Real services for the tests that need them (Ray, Redis), and the compiled extension.

On a machine without one, the tests that need it skip with a message saying how to
get it. Set ``FLOWSTAGE_REQUIRE_SERVICES=1`` (CI does) to make a missing service fail
those tests instead.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import NoReturn

import pytest

#: Ray's settings for a test cluster, set before Ray is imported: no usage reports,
#: no token file, every socket on 127.0.0.1.
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_ENABLE_AUTO_CONNECT": "0",
}


def missing(what: str, how: str) -> NoReturn:
    """Skip (or fail, when services are required) because ``what`` is missing."""
    message = f"{what} is not available: {how}"
    if os.environ.get("FLOWSTAGE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (FLOWSTAGE_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def speedups() -> ModuleType:
    """The compiled extension ``flowstage._speedups``: the test skips when it is not
    built, or fails when ``FLOWSTAGE_REQUIRE_EXTENSIONS=1`` (CI sets it)."""
    try:
        from flowstage import _speedups
    except ImportError:
        if os.environ.get("FLOWSTAGE_REQUIRE_EXTENSIONS", "") not in ("", "0"):
            pytest.fail("FLOWSTAGE_REQUIRE_EXTENSIONS is set but flowstage._speedups is missing")
        pytest.skip("flowstage._speedups is not built (pip install -e . with a C compiler)")
    return _speedups


def use_path(
    path: str, monkeypatch: pytest.MonkeyPatch, module: ModuleType, slot: str, name: str
) -> str:
    """Make ``module.<slot>`` (where a module keeps its optional compiled helper)
    the pure-Python path (``path == "python"``: the slot is ``None``) or the compiled
    function ``name`` (``"compiled"``); return ``path``. For fixtures that run a test
    on both paths."""
    monkeypatch.setattr(module, slot, None if path == "python" else getattr(speedups(), name))
    return path
