"""Dashboards of running flows, built on :mod:`flowstage.statistics` snapshots.

* :mod:`flowstage.dashboard.terminal`: a rich Live table that updates in place
  (``pip install 'flowstage[dashboard]'``).
* :mod:`flowstage.dashboard.web`: one HTML page fed by Server-Sent Events, which the
  integrations mount in a FastAPI or aiohttp app.

Both only read snapshots: they never see or show event contents, and showing one
does not slow the flow down beyond taking a snapshot per interval. Each submodule
imports its optional dependency only when used.
"""

from __future__ import annotations

__all__: tuple[str, ...] = ()
