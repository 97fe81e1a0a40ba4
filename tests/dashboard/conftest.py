from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..services import missing
from .harness import HOW_TO_INSTALL, browser_paths, start_browser


@pytest.fixture(scope="session")
def _browser_session() -> Iterator[Any]:
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing("selenium", HOW_TO_INSTALL)
    if browser_paths() is None:
        missing("a headless Chromium with chromedriver", HOW_TO_INSTALL)
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(_browser_session: Any) -> Iterator[Any]:
    """The session's headless Chromium; each test leaves it on a blank page (so no
    dashboard of an earlier test keeps reading its feed)."""
    yield _browser_session
    _browser_session.get("about:blank")
