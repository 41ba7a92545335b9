"""Migrations: applied on start, by `runtrack migrate`, and exactly once under concurrent start-up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from runtrack.storage import migrate
from runtrack.storage.tables import metadata
from tests.conftest import require_db
from tests.support import REPO, ServerProcess


async def _schema(url: str) -> tuple[set[str], list[str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
            versions = [r[0] for r in await conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
    finally:
        await engine.dispose()
    return tables, versions


def test_migrate_command_is_idempotent(db_url: str) -> None:
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "runtrack", "migrate", "--database-url", db_url]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert first.returncode == 0, first.stderr
    assert "migrated from empty to" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert second.returncode == 0 and "already at" in second.stdout
    tables, versions = asyncio.run(_schema(db_url))
    assert set(metadata.tables) <= tables
    assert versions == [migrate.head_revision()]


def test_two_replicas_starting_at_once_migrate_once(db_url: str, db_kind: str, tmp_path: Path) -> None:
    require_db("postgres")
    if db_kind != "postgres":
        return
    a = ServerProcess(db_url, log_path=tmp_path / "a.log")
    b = ServerProcess(db_url, log_path=tmp_path / "b.log")
    try:
        a.wait_ready(60)
        b.wait_ready(60)
        logs = [a.log_text(), b.log_text()]
    finally:
        a.stop()
        b.stop()
    assert sum("Running upgrade" in text for text in logs) == 1, logs
    tables, versions = asyncio.run(_schema(db_url))
    assert set(metadata.tables) <= tables
    assert versions == [migrate.head_revision()]


def test_models_match_migrations(db_url: str) -> None:
    """tables.py and the migrations describe the same schema (autogenerate finds nothing to do)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    async def diff() -> list[object]:
        from runtrack.config import Settings
        from runtrack.storage.db import create_database

        db = create_database(Settings(database_url=db_url))
        try:
            await migrate.upgrade(db)
            async with db.read() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": False}), metadata)
                )
        finally:
            await db.dispose()

    assert asyncio.run(diff()) == []
