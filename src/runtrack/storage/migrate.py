"""Alembic migrations, run programmatically on an existing connection.

On PostgreSQL the upgrade holds a transaction-scoped advisory lock, so that several replicas
starting at once against one empty database migrate it exactly once: the first takes the lock and
migrates, the others wait, then find the schema at head and do nothing.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from runtrack.storage.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_ADVISORY_LOCK_KEY = 0x72756E747261636B & 0x7FFFFFFFFFFFFFFF  # "runtrack"


def _config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(connection: sa.Connection) -> None:
    command.upgrade(_config(connection), "head")


def _current(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(db: Database) -> tuple[str | None, str]:
    """Apply pending migrations. Returns (revision before, revision after)."""
    async with db.write() as conn:
        if db.is_postgres:
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
        before = await conn.run_sync(_current)
        if before != head_revision():
            await conn.run_sync(_upgrade)
        after = await conn.run_sync(_current)
    assert after is not None
    return before, after


async def current_revision(db: Database) -> str | None:
    async with db.read() as conn:
        return await conn.run_sync(_current)
