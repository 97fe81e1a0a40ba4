"""The web dashboard: one self-contained HTML page, fed by Server-Sent Events.

Mount :func:`page` at ``<prefix>/`` and :func:`statistics_feed` at
``<prefix>/statistics`` (the page opens ``EventSource("statistics")``, relative to
itself, so a page served at ``/flowstage/`` reads ``/flowstage/statistics``). Each
string the feed yields goes in one ``data:`` line of its own event::

    async for data in statistics_feed(running):
        await send(f"data: {data}\\n\\n")

The page shows the flow's state and totals, a table of its layers and their stages
(events in and out, throughput, outstanding demand, buffer fill, busy %, discards,
running or not) and a throughput-over-time chart per layer.

Guarantees:

* The page is one HTML document with its CSS and JavaScript inline; it loads
  nothing else (no build step, no external URL) and needs no server-side state.
* Safe by default: the page renders every value it receives (stage labels and
  names, states, numbers) as text (``textContent``), never as HTML. Its
  Content-Security-Policy (a ``<meta>`` tag, :data:`CONTENT_SECURITY_POLICY`)
  lets only the page's own script and style run, pinned by their SHA-256 hashes;
  no other script, inline handler or ``javascript:`` URL runs, and Trusted Types
  make any assignment of a string to ``innerHTML`` throw. The page connects only
  to its own origin. Servers may also send the policy as a header.
* The page never shows event contents: only the statistics.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from importlib import resources
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from ..statistics import HasStatistics

__all__ = ("CONTENT_SECURITY_POLICY", "page", "statistics_feed")

_CSP_MARKER = "__FLOWSTAGE_CONTENT_SECURITY_POLICY__"


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _only(tag: str, html: str) -> str:
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    if len(found) != 1:  # pragma: no cover - guards the packaged file
        raise RuntimeError(f"dashboard.html must hold exactly one <{tag}> element")
    return str(found[0])


def _build() -> tuple[str, str]:
    template = (
        resources.files(__package__ or "flowstage.dashboard")
        .joinpath("_static", "dashboard.html")
        .read_text(encoding="utf-8")
    )
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src {_sha256(_only('script', template))}",
            f"style-src {_sha256(_only('style', template))}",
            "connect-src 'self'",
            "img-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "require-trusted-types-for 'script'",
            "trusted-types 'none'",
        )
    )
    return policy, template.replace(_CSP_MARKER, policy)


_POLICY, _PAGE = _build()

#: The page's Content-Security-Policy (also in the page's ``<meta>`` tag): only
#: the page's own inline script and style run (by SHA-256 hash), the page connects
#: only to its own origin, loads no image, font, frame or other resource, and
#: Trusted Types forbid HTML injection sinks such as ``innerHTML``. A server may
#: send it as a ``Content-Security-Policy`` header too (and add
#: ``frame-ancestors``, which a ``<meta>`` tag cannot carry).
CONTENT_SECURITY_POLICY: Final[str] = _POLICY


def page() -> str:
    """The dashboard's whole HTML document (the same string on every call).

    It reads ``statistics`` relative to its own URL with ``EventSource``, expecting
    each message's data to be one :func:`statistics_feed` string, closes the feed
    once the flow has ended (state ``done``, ``stopped`` or ``failed``), and shows
    that it is reconnecting when the connection drops before then.
    """
    return _PAGE


def statistics_feed(source: HasStatistics, interval: float = 1.0) -> AsyncGenerator[str, None]:
    """The dashboard's feed: ``FlowStatistics.to_dict()`` of ``source`` as JSON.

    ``source`` is what ``flowstage.statistics.watch_statistics`` takes: any flow
    handle (a running flow, a ``stream()`` or ``async for`` iterator). Yields a
    snapshot at once, then one every ``interval`` seconds, and a last one once the
    flow has ended, then ends; leaving it early (``aclose()``, or
    ``contextlib.aclosing`` around it) does not touch the flow. Each
    string is one line of strict JSON (no newline, no ``NaN``: a non-finite
    number is sent as ``null``), ready for one SSE ``data:`` line. Raises
    ``ValueError`` at the call for an ``interval`` that is not a positive finite
    number of seconds.
    """
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not math.isfinite(interval)
        or interval <= 0
    ):
        raise ValueError(
            f"statistics_feed: interval must be a positive finite number of seconds, "
            f"got {interval!r}"
        )
    return _feed(source, float(interval))


async def _feed(source: HasStatistics, interval: float) -> AsyncGenerator[str, None]:
    from ..statistics import watch_statistics

    async for snapshot in watch_statistics(source, interval):
        yield snapshot.to_json()
