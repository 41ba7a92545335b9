"""The dashboard is served at / with its script and styles."""

from __future__ import annotations

import httpx

from tests.support import ServerProcess


def test_dashboard_is_served(server: ServerProcess) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script src="/static/app.js">' in page.text
    js = httpx.get(server.url + "/static/app.js")
    assert js.status_code == 200 and "/api/v1/runs/stats" in js.text and "/api/v1/watch" in js.text
    assert httpx.get(server.url + "/static/app.css").status_code == 200
    assert httpx.get(server.url + "/static/missing.js").status_code == 404
