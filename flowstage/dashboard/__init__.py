"""Dashboards of a running flow (``flowstage.dashboard.web``: a web page fed by SSE)."""
