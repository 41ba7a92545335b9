"""Concurrency limits and their slots.

A limit is ``(project, key) → slots``. ``concurrency_slots`` holds one row per action that either
holds a slot (``granted``) or waits for one (not granted; waiters are served in row id order).
Callers hold the action's run lock (see ``storage/writes.py``); the limit row is locked last
(``FOR UPDATE`` on PostgreSQL) so that two actions never both take the last slot.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runtrack.domain.models import RunId
from runtrack.domain.reports import ConcurrencyLimit, SlotHolder
from runtrack.errors import NotFound
from runtrack.storage.repository import _is_unique_violation
from runtrack.storage.tables import actions, concurrency_limits, concurrency_slots, runs


class SlotStore:
    async def _limit(self, conn: AsyncConnection, project: str, key: str, *, lock: bool) -> Any:
        stmt = sa.select(concurrency_limits.c.id, concurrency_limits.c.slots).where(
            concurrency_limits.c.project == project, concurrency_limits.c.key == key
        )
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return (await conn.execute(stmt)).one_or_none()

    async def acquire(self, conn: AsyncConnection, project: str, key: str, action_pk: int, now: datetime) -> bool:
        """Take a slot for the action (True), or queue it as a waiter (False). No limit: True."""
        limit = await self._limit(conn, project, key, lock=True)
        if limit is None:
            return True
        mine = (
            await conn.execute(
                sa.select(concurrency_slots.c.id, concurrency_slots.c.granted).where(
                    concurrency_slots.c.action_id == action_pk
                )
            )
        ).one_or_none()
        if mine is not None and mine.granted:
            return True
        held = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(concurrency_slots)
                .where(concurrency_slots.c.limit_id == limit.id, concurrency_slots.c.granted.is_(True))
            )
        ).scalar_one()
        granted = bool(held < limit.slots)
        if mine is None:
            await conn.execute(
                concurrency_slots.insert().values(
                    limit_id=limit.id, action_id=action_pk, acquired_at=now, granted=granted
                )
            )
        elif granted:
            await conn.execute(
                concurrency_slots.update()
                .where(concurrency_slots.c.id == mine.id)
                .values(granted=True, acquired_at=now)
            )
        return granted

    async def release(self, conn: AsyncConnection, action_pk: int) -> int | None:
        """Drop the action's slot or place in the queue; the limit id when a held slot was freed."""
        row = (
            await conn.execute(
                sa.select(concurrency_slots.c.id, concurrency_slots.c.limit_id, concurrency_slots.c.granted).where(
                    concurrency_slots.c.action_id == action_pk
                )
            )
        ).one_or_none()
        if row is None:
            return None
        await conn.execute(concurrency_slots.delete().where(concurrency_slots.c.id == row.id))
        return int(row.limit_id) if row.granted else None

    async def next_waiter(self, conn: AsyncConnection, limit_id: int, skip: set[int]) -> int | None:
        """The action pk first in line for a slot of the limit, if a slot is free."""
        limit = (
            await conn.execute(sa.select(concurrency_limits.c.slots).where(concurrency_limits.c.id == limit_id))
        ).scalar_one_or_none()
        if limit is None:
            return None
        held = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(concurrency_slots)
                .where(concurrency_slots.c.limit_id == limit_id, concurrency_slots.c.granted.is_(True))
            )
        ).scalar_one()
        if held >= limit:
            return None
        stmt = (
            sa.select(concurrency_slots.c.action_id)
            .where(concurrency_slots.c.limit_id == limit_id, concurrency_slots.c.granted.is_(False))
            .order_by(concurrency_slots.c.id)
            .limit(1)
        )
        if skip:
            stmt = stmt.where(concurrency_slots.c.action_id.not_in(list(skip)))
        pk = (await conn.execute(stmt)).scalar_one_or_none()
        return None if pk is None else int(pk)

    async def limits_with_waiters(self, conn: AsyncConnection) -> list[int]:
        result = await conn.execute(
            sa.select(concurrency_slots.c.limit_id).where(concurrency_slots.c.granted.is_(False)).distinct()
        )
        ids: list[int] = list(map(int, result.scalars().all()))
        return ids

    async def waiters(self, conn: AsyncConnection, limit_id: int) -> list[int]:
        result = await conn.execute(
            sa.select(concurrency_slots.c.action_id)
            .where(concurrency_slots.c.limit_id == limit_id, concurrency_slots.c.granted.is_(False))
            .order_by(concurrency_slots.c.id)
        )
        ids: list[int] = list(map(int, result.scalars().all()))
        return ids

    # -- limits ------------------------------------------------------------------------------

    async def put_limit(
        self, conn: AsyncConnection, project: str, key: str, slots: int, now: datetime
    ) -> tuple[int, bool]:
        """Create or resize a limit; (limit id, created)."""
        existing = await self._limit(conn, project, key, lock=True)
        if existing is not None:
            await conn.execute(
                concurrency_limits.update().where(concurrency_limits.c.id == existing.id).values(slots=slots)
            )
            return int(existing.id), False
        try:
            async with conn.begin_nested():
                pk = (
                    await conn.execute(
                        concurrency_limits.insert()
                        .values(project=project, key=key, slots=slots, created_at=now)
                        .returning(concurrency_limits.c.id)
                    )
                ).scalar_one()
        except sa.exc.IntegrityError as exc:  # created concurrently: resize it instead
            if not _is_unique_violation(exc):
                raise
            return await self.put_limit(conn, project, key, slots, now)
        return int(pk), True

    async def delete_limit(self, conn: AsyncConnection, project: str, key: str) -> list[int]:
        """Delete a limit; the action pks that were waiting on it (they are now unlimited)."""
        limit = await self._limit(conn, project, key, lock=True)
        if limit is None:
            raise NotFound(f"concurrency limit {project}/{key} not found")
        waiting = await self.waiters(conn, int(limit.id))
        await conn.execute(concurrency_limits.delete().where(concurrency_limits.c.id == limit.id))
        return waiting

    async def list_limits(self, conn: AsyncConnection, project: str | None = None) -> list[ConcurrencyLimit]:
        stmt = sa.select(concurrency_limits).order_by(concurrency_limits.c.project, concurrency_limits.c.key)
        if project:
            stmt = stmt.where(concurrency_limits.c.project == project)
        limits = (await conn.execute(stmt)).all()
        if not limits:
            return []
        holders: dict[int, list[SlotHolder]] = {lim.id: [] for lim in limits}
        waiting: dict[int, list[SlotHolder]] = {lim.id: [] for lim in limits}
        result = await conn.execute(
            sa.select(
                concurrency_slots.c.limit_id,
                concurrency_slots.c.granted,
                concurrency_slots.c.acquired_at,
                actions.c.name.label("action"),
                runs.c.org,
                runs.c.project,
                runs.c.domain,
                runs.c.name,
            )
            .select_from(
                concurrency_slots.join(actions, actions.c.id == concurrency_slots.c.action_id).join(
                    runs, runs.c.id == actions.c.run_id
                )
            )
            .where(concurrency_slots.c.limit_id.in_(list(holders)))
            .order_by(concurrency_slots.c.id)
        )
        for r in result:
            h = SlotHolder(run=RunId(r.org, r.project, r.domain, r.name), action=r.action, since=r.acquired_at)
            (holders if r.granted else waiting)[r.limit_id].append(h)
        return [
            ConcurrencyLimit(
                project=lim.project,
                key=lim.key,
                slots=lim.slots,
                created_at=lim.created_at,
                holders=tuple(holders[lim.id]),
                waiting=tuple(waiting[lim.id]),
            )
            for lim in limits
        ]

    async def limit_id(self, conn: AsyncConnection, project: str, key: str) -> int | None:
        row = await self._limit(conn, project, key, lock=False)
        return None if row is None else int(row.id)
