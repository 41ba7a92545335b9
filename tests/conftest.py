"""Fixtures shared by every suite.

Databases are real: a SQLite file in a temporary directory, and a freshly created PostgreSQL
database per test (dropped afterwards). When PostgreSQL does not answer, the PostgreSQL variants
are skipped with a visible reason — except in CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from runtrack.config import Settings
from runtrack.service.container import Services
from runtrack.storage import migrate
from tests.support import ServerProcess, database_url, pg_reachable

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_PG_OK: bool | None = None


def _pg_ok() -> bool:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = pg_reachable()
    return _PG_OK


def require_db(kind: str) -> None:
    if kind == "postgres" and not _pg_ok():
        if IN_CI:
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 and CI=true: the PostgreSQL suite must run")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432: skipping the PostgreSQL variant")


def pytest_report_header(config: pytest.Config) -> str:
    state = "reachable" if _pg_ok() else "NOT reachable (PostgreSQL variants will be skipped)"
    return f"runtrack: PostgreSQL at 127.0.0.1:5432 is {state}; CI={IN_CI}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    require_db(kind)
    return kind


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    with database_url(db_kind, tmp_path) as url:
        yield url


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)


@asynccontextmanager
async def built(settings: Settings, *, upgrade: bool) -> AsyncIterator[Services]:
    svc = Services.build(settings)
    try:
        if upgrade:
            await migrate.upgrade(svc.db)
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with built(settings, upgrade=True) as svc:
        yield svc


@pytest.fixture
async def replica(settings: Settings) -> AsyncIterator[Services]:
    """A second replica on the same database as ``services`` (its own connection pool)."""
    async with built(settings, upgrade=True) as svc:
        yield svc


@pytest.fixture
async def server_services(server: ServerProcess) -> AsyncIterator[Services]:
    """A second view of the server's database, for seeding and checking rows."""
    async with built(Settings(database_url=server.db_url), upgrade=False) as svc:
        yield svc


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A real ``runtrack serve`` process on a free port, on the parametrized database."""
    proc = ServerProcess(db_url, log_path=tmp_path / "server.log").wait_ready()
    try:
        yield proc
    finally:
        proc.stop()
