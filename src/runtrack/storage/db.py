"""Engines, transactions and the dialect differences that matter to them.

* SQLite: WAL journal, foreign keys on, a busy timeout; write transactions start with
  ``BEGIN IMMEDIATE`` so that two writers never both read-then-write the same row (the second
  waits for the first instead of failing on upgrade to a write lock).
* PostgreSQL (asyncpg): a bounded pool. A connection error invalidates the whole pool (SQLAlchemy's
  disconnect handling), so a restarted database is picked up again without a restart of runtrack and
  without paying a pre-ping round trip on every checkout.

Connection failures surface as :class:`runtrack.errors.Unavailable`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from runtrack.config import Settings
from runtrack.errors import Unavailable

_WRITE = "runtrack_write"


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        text = f"{type(exc.orig).__name__} {exc.orig}".lower()
        needles = (
            "connection", "cannot connect", "terminating", "shutting down", "starting up",
            "connectiondoesnotexist", "interfaceerror", "recovery mode", "the database system",
        )
        if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) and any(
            n in text for n in needles
        ):
            return True
    return False


class Database:
    """An engine plus the two ways to use it: a read and a write transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading.

        SQLite: a deferred read transaction (one snapshot for all statements). PostgreSQL: autocommit,
        which saves the BEGIN and COMMIT round trips; at READ COMMITTED every statement takes its own
        snapshot inside a transaction too, so nothing is lost. Never write through it.
        """
        if self.is_postgres:
            async with self.autocommit() as conn:
                yield conn
        else:
            async with self._connect() as conn, conn.begin():
                yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """PostgreSQL only: a connection on which every statement is a transaction of its own. For
        reads, and for writes that are one statement guarded by what was read before (the executor's
        single-event path, see ``storage/pending.py``)."""
        if not self.is_postgres:
            raise RuntimeError("autocommit connections are used on PostgreSQL only")
        async with self._connect(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; committed on success, rolled back on any exception."""
        async with self._connect(**{_WRITE: True}) as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def _connect(self, **options: Any) -> AsyncIterator[AsyncConnection]:
        """A pooled connection with ``options``; a lost or unreachable database becomes Unavailable."""
        try:
            async with self.engine.connect() as conn:
                yield await conn.execution_options(**options) if options else conn
        except Exception as exc:
            if _is_unavailable(exc):
                raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc
            raise

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    sync = engine.sync_engine

    @event.listens_for(sync, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(sync, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get(_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def create_database(settings: Settings) -> Database:
    """Create the engine for ``settings.database_url`` (no connection is opened yet)."""
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_timeout=60)
        _install_sqlite_hooks(engine)
    else:
        engine = create_async_engine(
            url,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_recycle=settings.pool_recycle_s,
            pool_timeout=30,
            connect_args={"timeout": 5, "command_timeout": 60},
        )
    return Database(engine)
