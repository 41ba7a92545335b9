"""Fleet SQL: phase counts for stats, selecting and deleting runs, the log-cleanup queue.

Filters reach SQL only through :mod:`runtrack.storage.filter_sql`, the one compiler. Deleting a
run relies on the schema's ``ON DELETE CASCADE`` chain (runs → actions → attempts → transitions,
cluster events; runs → labels; actions → held concurrency slots); log lines have no foreign key and
are queued in ``cleanup_jobs`` in the same transaction instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runtrack.domain.filters import Node
from runtrack.domain.models import RunId
from runtrack.domain.phases import Phase
from runtrack.storage.filter_sql import compile_filter
from runtrack.storage.tables import actions, cleanup_jobs, concurrency_slots, log_lines, runs

# Keys of the PostgreSQL advisory locks taken by fleet jobs (any stable 63-bit numbers).
RETENTION_LOCK_KEY = 0x72742D726574656E  # "rt-reten"


@dataclass(frozen=True, slots=True)
class RunRef:
    """What deleting a run needs to know about it."""

    pk: int
    id: RunId
    phase: Phase
    version: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CleanupJob:
    id: int
    run_pk: int


def _where(node: Node | None) -> sa.ColumnElement[bool]:
    return sa.true() if node is None else compile_filter(node)


def _ref(row: Any) -> RunRef:
    return RunRef(
        pk=int(row.id),
        id=RunId(row.org, row.project, row.domain, row.name),
        phase=Phase(row.phase),
        version=int(row.version),
        created_at=row.created_at,
    )


_REF_COLUMNS = (
    runs.c.id, runs.c.org, runs.c.project, runs.c.domain, runs.c.name, runs.c.phase, runs.c.version, runs.c.created_at
)


class FleetStore:
    """Counting, selecting and deleting runs in bulk."""

    async def phase_counts(self, conn: AsyncConnection, node: Node | None) -> dict[int, int]:
        """``SELECT phase, COUNT(*) FROM runs WHERE <filter> GROUP BY phase``."""
        stmt = sa.select(runs.c.phase, sa.func.count()).where(_where(node)).group_by(runs.c.phase)
        rows: Any = await conn.execute(stmt)
        return {int(phase): int(n) for phase, n in rows}

    async def select_runs(
        self, conn: AsyncConnection, node: Node | None, *, limit: int, lock: bool = False
    ) -> list[RunRef]:
        """Matching runs, newest first. ``lock`` takes row locks, skipping rows another
        transaction holds (PostgreSQL; SQLite's write transaction already excludes other writers)."""
        stmt = (
            sa.select(*_REF_COLUMNS)
            .where(_where(node))
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .limit(limit)
        )
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=runs)
        return [_ref(r) for r in await conn.execute(stmt)]

    async def run_ref(self, conn: AsyncConnection, run_id: RunId) -> RunRef | None:
        stmt = sa.select(*_REF_COLUMNS).where(
            runs.c.org == run_id.org,
            runs.c.project == run_id.project,
            runs.c.domain == run_id.domain,
            runs.c.name == run_id.name,
        )
        row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else _ref(row)

    async def lock_runs_by_pk(
        self, conn: AsyncConnection, pks: Sequence[int], *, skip_locked: bool = True
    ) -> list[RunRef]:
        """Re-read runs by primary key, newest first, locking them on PostgreSQL (skipping rows
        another transaction holds, unless ``skip_locked`` is false: then it waits for them)."""
        if not pks:
            return []
        stmt = (
            sa.select(*_REF_COLUMNS)
            .where(runs.c.id.in_(list(pks)))
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
        )
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=skip_locked, of=runs)
        return [_ref(r) for r in await conn.execute(stmt)]

    async def held_limit_ids(self, conn: AsyncConnection, pks: Sequence[int]) -> list[int]:
        """Concurrency limits in which the given runs' actions hold (granted) slots."""
        if not pks:
            return []
        stmt = (
            sa.select(concurrency_slots.c.limit_id)
            .join(actions, actions.c.id == concurrency_slots.c.action_id)
            .where(actions.c.run_id.in_(list(pks)), concurrency_slots.c.granted.is_(True))
            .distinct()
            .order_by(concurrency_slots.c.limit_id)
        )
        ids: list[Any] = list((await conn.execute(stmt)).scalars())
        return [int(x) for x in ids]

    async def delete_runs(self, conn: AsyncConnection, pks: Sequence[int], now: datetime) -> int:
        """Queue the runs' log cleanup and delete the runs (the cascade takes everything else)."""
        if not pks:
            return 0
        await conn.execute(cleanup_jobs.insert(), [{"run_id": pk, "created_at": now} for pk in pks])
        result = await conn.execute(sa.delete(runs).where(runs.c.id.in_(list(pks))))
        return int(result.rowcount or 0)

    async def try_advisory_xact_lock(self, conn: AsyncConnection, key: int) -> bool:
        """A transaction-scoped PostgreSQL advisory lock, without waiting. Always granted on SQLite,
        whose write transactions exclude each other anyway."""
        if conn.dialect.name != "postgresql":
            return True
        got: Any = (await conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(key)))).scalar_one()
        return bool(got)


class CleanupStore:
    """The durable queue of deleted runs whose log lines are still to be removed."""

    async def claim(self, conn: AsyncConnection, limit: int, *, queued_before: datetime) -> list[CleanupJob]:
        """Oldest pending jobs queued before the given time; on PostgreSQL locked so that another
        replica skips them."""
        stmt = (
            sa.select(cleanup_jobs.c.id, cleanup_jobs.c.run_id)
            .where(cleanup_jobs.c.created_at <= queued_before)
            .order_by(cleanup_jobs.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows: Any = await conn.execute(stmt)
        return [CleanupJob(id=int(i), run_pk=int(r)) for i, r in rows]

    async def delete_log_lines(self, conn: AsyncConnection, run_pk: int) -> int:
        result = await conn.execute(sa.delete(log_lines).where(log_lines.c.run_id == run_pk))
        return int(result.rowcount or 0)

    async def finish(self, conn: AsyncConnection, job_id: int) -> None:
        await conn.execute(sa.delete(cleanup_jobs).where(cleanup_jobs.c.id == job_id))

    async def pending(self, conn: AsyncConnection) -> int:
        n: Any = (await conn.execute(sa.select(sa.func.count()).select_from(cleanup_jobs))).scalar_one()
        return int(n)
