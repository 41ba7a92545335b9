"""The server process: health, readiness through a database outage, graceful shutdown."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_db
from tests.support import PG_HOST, PG_PORT, ServerProcess, create_pg_database, drop_pg_database
from tests.tcp_proxy import TcpProxy


def test_healthz_and_readyz(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert "server-timing" in r.headers
    metrics = httpx.get(server.url + "/metrics").text
    assert "runtrack_http_requests_total" in metrics


def test_unknown_route_and_bad_input_are_json_errors(server: ServerProcess) -> None:
    r = httpx.get(server.url + "/api/v1/runs/o/p/d/missing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert "missing" in r.json()["error"]["message"]


def test_sigterm_stops_cleanly(server: ServerProcess) -> None:
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -SIGTERM).
    assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in server.log_text()


@pytest.fixture
def pg_through_proxy() -> Iterator[tuple[TcpProxy, str]]:
    require_db("postgres")
    url = create_pg_database()
    proxy = TcpProxy(PG_HOST, PG_PORT)
    proxy.start()
    host_port = f"{PG_HOST}:{PG_PORT}"
    try:
        yield proxy, url.replace(host_port, f"127.0.0.1:{proxy.port}")
    finally:
        proxy.close()
        drop_pg_database(url)


def _wait_status(url: str, status: int, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if httpx.get(url + "/readyz", timeout=timeout).status_code == status:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"/readyz did not turn {status} within {timeout}s")


def test_readyz_follows_a_database_outage(pg_through_proxy: tuple[TcpProxy, str], tmp_path: Path) -> None:
    proxy, url = pg_through_proxy
    server = ServerProcess(url, log_path=tmp_path / "server.log").wait_ready()
    try:
        proxy.stop()  # PostgreSQL is gone for this server
        _wait_status(server.url, 503, timeout=5.0)
        body = httpx.get(server.url + "/readyz", timeout=5).json()
        assert body["status"] == "unavailable" and body["reason"]
        r = httpx.get(server.url + "/api/v1/runs/o/p/d/x", timeout=10)
        assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
        proxy.start()  # and back, with no restart of runtrack
        _wait_status(server.url, 200, timeout=10.0)
        assert httpx.get(server.url + "/api/v1/runs/o/p/d/x").status_code == 404
        assert server.proc.poll() is None
    finally:
        server.stop()
