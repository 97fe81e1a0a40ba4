"""The web dashboard mounted by the integrations: served only where the app mounts
it, with its Content-Security-Policy, fed by the statistics feed, and behind the
app's own authentication when the app says so."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from ..test_examples import load
from .conftest import FRAMEWORKS, serve

pytestmark = pytest.mark.anyio

words_example = load("service_words")

TOKEN = "s3cret"


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_the_dashboard_page_and_its_feed(framework: str) -> None:
    from flowstage.dashboard.web import CONTENT_SECURITY_POLICY, page

    with anyio.fail_after(20):
        async with serve(framework, words_example.counting_service(20)) as server:
            r = await server.get("/flowstage/")
            assert r.status == 200
            assert r.body == page()
            assert r.headers["content-type"].startswith("text/html")
            assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert (await server.post("/events", ["seen"])).status == 202
            async with server.sse("/flowstage/statistics") as snapshots:
                async for snapshot in snapshots:
                    assert snapshot["state"] == "running"
                    assert "reduce" in snapshot["layers"][-1]["label"]
                    if snapshot["events_in"] == 1:
                        break


async def test_nothing_is_served_where_the_app_mounted_nothing(framework: str) -> None:
    with anyio.fail_after(20):
        async with serve(framework, words_example.counting_service(20)) as server:
            for path in ("/statistics", "/flowstage/other", "/dashboard/"):
                assert (await server.get(path)).status == 404, path


def fastapi_app_with_auth(service: Any) -> Any:
    from fastapi import Depends, FastAPI, Header, HTTPException

    from flowstage.integrations.fastapi import mount_dashboard

    def check_token(authorization: str = Header("")) -> None:
        if authorization != f"Bearer {TOKEN}":
            raise HTTPException(401, "a valid token is required")

    app = FastAPI(lifespan=service.lifespan)
    mount_dashboard(app, service, "/ops/flow", dependencies=[Depends(check_token)])
    return app


def aiohttp_app_with_auth(service: Any) -> Any:
    from aiohttp import web

    from flowstage.integrations.aiohttp import mount_dashboard, setup

    @web.middleware
    async def require_token(request: web.Request, handler: Any) -> Any:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            raise web.HTTPUnauthorized(text="a valid token is required")
        return await handler(request)

    app = web.Application()
    setup(app, service)
    mount_dashboard(app, service, "/ops/flow", middlewares=[require_token])
    return app


async def test_the_dashboard_behind_the_apps_authentication(framework: str) -> None:
    make = fastapi_app_with_auth if framework == "fastapi" else aiohttp_app_with_auth
    service = words_example.counting_service(20)
    with anyio.fail_after(20):
        async with serve(framework, service, app=make(service)) as server:
            for path in ("/ops/flow/", "/ops/flow/statistics"):
                assert (await server.get(path)).status == 401
            auth = {"Authorization": f"Bearer {TOKEN}"}
            assert (await server.get("/ops/flow/", headers=auth)).status == 200
            assert (await server.get("/flowstage/", headers=auth)).status == 404


def test_a_bad_prefix_is_refused() -> None:
    from aiohttp import web
    from fastapi import FastAPI

    from flowstage.integrations import aiohttp as aiohttp_helpers
    from flowstage.integrations import fastapi as fastapi_helpers

    service = words_example.counting_service(20)
    for bad in ("flowstage", "/flowstage/", ""):
        with pytest.raises(ValueError, match="prefix must start with '/'"):
            fastapi_helpers.mount_dashboard(FastAPI(), service, bad)
        with pytest.raises(ValueError, match="prefix must start with '/'"):
            aiohttp_helpers.mount_dashboard(web.Application(), service, bad)
