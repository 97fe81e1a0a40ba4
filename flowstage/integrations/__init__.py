"""Run a flow inside a web service: FastAPI (Starlette) and aiohttp.

Each framework has its own module, whose library is an extra and is imported only
when that module is:

* :mod:`flowstage.integrations.fastapi` (``pip install 'flowstage[fastapi]'``);
* :mod:`flowstage.integrations.aiohttp` (``pip install 'flowstage[aiohttp]'``).

Both build on :class:`FlowService` (re-exported by each), which owns one running
flow for the app's lifetime: started with the app, shut down gracefully with it
(sources closed, drained up to a deadline, then cancelled), its failure kept for the
health endpoint instead of taking the server down. The helpers only answer requests
the app routes to them: nothing is served at a path the app did not choose.

Importing :mod:`flowstage` or this package imports no web framework.
"""

from __future__ import annotations

from .._public import fixup_module_metadata as _fixup_module_metadata
from ._common import FlowService as FlowService
from ._common import ServiceError as ServiceError

__all__ = ("FlowService", "ServiceError")

_fixup_module_metadata(__name__, __all__)
