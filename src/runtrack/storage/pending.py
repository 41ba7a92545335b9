"""Row updates of one write, collected while the rules are applied and written in as few statements
as the database allows.

* Updates are merged per row (an action that moves twice in one batch is written once) and the
  run's version is bumped once per write.
* Phase-transition rows (the timeline) are collected too: the open entry of an attempt is closed at
  the first new entry's start, and the new entries are inserted closed by their successor (the last
  one open).
* :meth:`Flusher.flush` writes them: one ``executemany`` per table and column set or, on
  PostgreSQL when the write touches one row per table (one event: its run, action, attempt and at
  most one new timeline entry), one statement that updates all of them (data-modifying CTEs).

That single statement can be **guarded**: given the run version the state was read at, the run row
is updated only if its version is still that one, and every other part runs only if the run row was
updated (PostgreSQL re-checks the condition on the newest row version after waiting for a
concurrent writer). Nothing is written when another write committed in between, and the caller
learns it from the result. Every write bumps the run's version, so the version is the run's
optimistic-concurrency token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runtrack.storage.direct import DirectStatements
from runtrack.storage.tables import actions, attempts, phase_transitions, runs


@dataclass
class Pending:
    """What one write transaction will write, merged per row (see the module docstring)."""

    attempts: dict[int, dict[str, Any]] = field(default_factory=dict)
    actions: dict[int, dict[str, Any]] = field(default_factory=dict)
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    run_versions: dict[int, int] = field(default_factory=dict)
    transitions: list[tuple[int, int, datetime]] = field(default_factory=list)  # (attempt pk, phase, start)

    def bump(self, run_pk: int, read_version: int, now: datetime) -> int:
        """The run's version after this write (read version + 1, once per write)."""
        version = self.run_versions.setdefault(run_pk, read_version + 1)
        self.runs.setdefault(run_pk, {}).update(updated_at=now, version=version)
        return version

    def transition(self, attempt_pk: int, phase: int, start: datetime) -> None:
        self.transitions.append((attempt_pk, phase, start))

    def clear(self) -> None:
        self.attempts.clear()
        self.actions.clear()
        self.runs.clear()
        self.transitions.clear()

    def single_rows(self) -> bool:
        """At most one row per table and one timeline entry: one statement can write it all."""
        return len(self.runs) == 1 and len(self.actions) <= 1 and len(self.attempts) <= 1 and len(
            self.transitions
        ) <= 1


_TABLES = ((runs, "runs"), (actions, "actions"), (attempts, "attempts"))


class Flusher:
    """Writes a :class:`Pending`; statements are built once per shape and reused."""

    def __init__(self) -> None:
        self._stmts: dict[tuple[Any, ...], Any] = {}
        self._direct = DirectStatements()

    async def flush(self, conn: AsyncConnection, pending: Pending, *, expect_run_version: int | None = None) -> bool:
        """Write everything pending; False (and nothing written) only when ``expect_run_version`` is
        given and the run's version is no longer that one. A guard needs :meth:`Pending.single_rows`,
        PostgreSQL and an autocommit connection (the one statement is the whole write)."""
        try:
            if not pending.runs:
                return True
            if conn.dialect.name == "postgresql" and pending.single_rows():
                return await self._one_statement(conn, pending, expect_run_version)
            if expect_run_version is not None:
                raise ValueError("a guarded flush needs one row per table on PostgreSQL")
            await self._many(conn, pending)
            return True
        finally:
            pending.clear()

    async def _one_statement(self, conn: AsyncConnection, pending: Pending, expect: int | None) -> bool:
        shape: list[tuple[str, tuple[str, ...]]] = []
        params: dict[str, Any] = {"expect": expect}
        for _, name in _TABLES:
            rows: dict[int, dict[str, Any]] = getattr(pending, name)
            for pk, values in rows.items():
                cols = tuple(sorted(values))
                shape.append((name, cols))
                params[f"{name}_pk"] = pk
                params.update({f"{name}_{c}": values[c] for c in cols})
        if pending.transitions:
            ((attempt_pk, phase, start),) = pending.transitions
            params.update(t_attempt=attempt_pk, t_phase=phase, t_start=start)
        stmt = self._together(tuple(shape), bool(pending.transitions))
        if expect is not None:  # on an autocommit connection: the statement is the transaction
            return await self._direct.of(stmt, conn.dialect).fetchrow(conn, params) is not None
        return (await conn.execute(stmt, params)).first() is not None

    def _together(self, shape: tuple[tuple[str, tuple[str, ...]], ...], transition: bool) -> Any:
        """``WITH run AS (UPDATE runs ... RETURNING id), <the other updates, each only if run updated>
        SELECT id FROM run``. The run row is updated (and so locked) first, as in every write path."""
        key = ("together", shape, transition)
        stmt = self._stmts.get(key)
        if stmt is not None:
            return stmt
        tables = {name: table for table, name in _TABLES}
        (_, run_cols), *rest = shape
        run_cte = (
            runs.update()
            .where(
                runs.c.id == sa.bindparam("runs_pk"),
                runs.c.version == sa.func.coalesce(sa.bindparam("expect", type_=sa.BigInteger), runs.c.version),
            )
            .values({c: sa.bindparam(f"runs_{c}", type_=runs.c[c].type) for c in run_cols})
            .returning(runs.c.id)
            .cte("w_run")
        )
        gate = sa.exists(sa.select(run_cte.c.id))
        parts: list[Any] = []
        for name, cols in rest:
            table = tables[name]
            parts.append(
                table.update()
                .where(table.c.id == sa.bindparam(f"{name}_pk"), gate)
                .values({c: sa.bindparam(f"{name}_{c}", type_=table.c[c].type) for c in cols})
                .returning(table.c.id)
                .cte(f"w_{name}")
            )
        if transition:
            pt = phase_transitions
            attempt = sa.bindparam("t_attempt", type_=pt.c.attempt_id.type)
            start = sa.bindparam("t_start", type_=pt.c.start_time.type)
            # Same snapshot: the close does not see the new entry, the insert does not wait for it.
            parts.append(
                pt.update()
                .where(pt.c.attempt_id == attempt, pt.c.end_time.is_(None), gate)
                .values(end_time=start)
                .returning(pt.c.id)
                .cte("w_close")
            )
            parts.append(
                pt.insert()
                .from_select(
                    ["attempt_id", "phase", "start_time"],
                    sa.select(attempt, sa.bindparam("t_phase", type_=pt.c.phase.type), start).where(gate),
                )
                .returning(pt.c.id)
                .cte("w_open")
            )
        stmt = self._stmts[key] = sa.select(run_cte.c.id).add_cte(*parts)
        return stmt

    async def _many(self, conn: AsyncConnection, pending: Pending) -> None:
        for table, name in _TABLES:
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            rows: dict[int, dict[str, Any]] = getattr(pending, name)
            for pk, values in sorted(rows.items()):
                cols = tuple(sorted(values))
                groups.setdefault(cols, []).append({"_pk": pk, **{f"v_{c}": values[c] for c in cols}})
            for cols, params in groups.items():
                await conn.execute(self._update_by_pk(table, cols), params)
        if not pending.transitions:
            return
        by_attempt: dict[int, list[tuple[int, datetime]]] = {}
        for attempt_pk, phase, start in pending.transitions:
            by_attempt.setdefault(attempt_pk, []).append((phase, start))
        pt = phase_transitions
        for attempt_pk, entries in sorted(by_attempt.items()):
            await conn.execute(
                pt.update()
                .where(pt.c.attempt_id == attempt_pk, pt.c.end_time.is_(None))
                .values(end_time=entries[0][1])
            )
        await conn.execute(
            pt.insert(),
            [
                {
                    "attempt_id": attempt_pk,
                    "phase": phase,
                    "start_time": start,
                    "end_time": entries[i + 1][1] if i + 1 < len(entries) else None,
                }
                for attempt_pk, entries in sorted(by_attempt.items())
                for i, (phase, start) in enumerate(entries)
            ],
        )

    def _update_by_pk(self, table: sa.Table, cols: tuple[str, ...]) -> Any:
        key = ("update", table.name, cols)
        stmt = self._stmts.get(key)
        if stmt is None:
            stmt = self._stmts[key] = (
                table.update()
                .where(table.c.id == sa.bindparam("_pk"))
                .values({c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in cols})
            )
        return stmt
