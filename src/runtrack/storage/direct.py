"""Statements of the hot single-event write path, run on the asyncpg connection itself.

A statement is written with SQLAlchemy Core as everywhere else, compiled once for the connection's
dialect, and then executed on the driver connection with the same parameter and result conversions
SQLAlchemy applies (each column type's bind and result processors). SQLAlchemy's execution layer
(compiled-cache lookup, execution context, result objects) costs more CPU than the statement
itself on a warm connection: reading one action took ~400 µs of server CPU through it and ~150 µs
this way. asyncpg prepares each statement once per connection (its statement cache).

Only for connections whose SQLAlchemy transaction state does not matter: autocommit connections,
where every statement is a transaction of its own. Errors come out as SQLAlchemy's do
(:class:`sqlalchemy.exc.DBAPIError` around the driver's exception; a lost connection invalidated).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

_Processor = Callable[[Any], Any] | None


class DirectStatement:
    """One Core statement compiled for PostgreSQL (asyncpg), run with :meth:`fetchrow`."""

    def __init__(self, stmt: Any, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self._params: list[tuple[str, Any, _Processor]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            impl = bind.type.dialect_impl(dialect)
            self._params.append((bind.key, bind.effective_value, impl.bind_processor(dialect)))
        columns = list(stmt.selected_columns) if isinstance(stmt, sa.Select) else []
        # Unnamed or clashing columns get positional names (_0, _1, ...).
        self._row = namedtuple("_row", [str(c.key) for c in columns], rename=True)  # type: ignore[misc]
        self._results: list[_Processor] = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        out = []
        for key, default, proc in self._params:
            value = params[key] if key in params else default
            out.append(value if proc is None else proc(value))
        return out

    async def fetchrow(self, conn: AsyncConnection, params: Mapping[str, Any]) -> Any:
        """The first row (a named tuple, values converted as SQLAlchemy would), or None."""
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        try:
            record = await driver.fetchrow(self.sql, *self.args(params))
        except (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError, asyncpg.PostgresConnectionError) as exc:
            # The connection is gone: drop it from the pool, and report it as SQLAlchemy would.
            await conn.invalidate()
            raise sa.exc.DBAPIError(self.sql, None, exc, connection_invalidated=True) from exc
        except asyncpg.PostgresError as exc:  # carries its SQLSTATE (deadlocks are retried by callers)
            raise sa.exc.DBAPIError(self.sql, None, exc) from exc
        if record is None:
            return None
        return self._row(*(v if p is None else p(v) for p, v in zip(self._results, record, strict=True)))


class DirectStatements:
    """Compiled :class:`DirectStatement` objects, one per statement object and dialect."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[int, str], tuple[Any, DirectStatement]] = {}

    def of(self, stmt: Any, dialect: Dialect) -> DirectStatement:
        key = (id(stmt), dialect.name)
        hit = self._compiled.get(key)
        if hit is None or hit[0] is not stmt:
            hit = self._compiled[key] = (stmt, DirectStatement(stmt, dialect))
        return hit[1]
