"""Deployed task versions: insert (idempotent on an identical spec), read, list, list versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runtrack.domain.models import Task
from runtrack.errors import AlreadyExists, NotFound
from runtrack.storage import rows
from runtrack.storage.tables import tasks


@dataclass(frozen=True, slots=True)
class TaskKey:
    org: str
    project: str
    domain: str
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.org}/{self.project}/{self.domain}/{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class TaskScope:
    """Which tasks a listing covers: an org, optionally narrowed to a project/domain and a name."""

    org: str
    project: str | None = None
    domain: str | None = None
    name: str | None = None


def _key_where(key: TaskKey) -> sa.ColumnElement[bool]:
    return sa.and_(
        tasks.c.org == key.org,
        tasks.c.project == key.project,
        tasks.c.domain == key.domain,
        tasks.c.name == key.name,
        tasks.c.version == key.version,
    )


def scope_where(scope: TaskScope) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [tasks.c.org == scope.org]
    if scope.project is not None:
        where.append(tasks.c.project == scope.project)
    if scope.domain is not None:
        where.append(tasks.c.domain == scope.domain)
    if scope.name is not None:
        where.append(tasks.c.name == scope.name)
    return where


class TaskStore:
    async def get(self, conn: AsyncConnection, key: TaskKey) -> Task:
        row = (await conn.execute(sa.select(tasks).where(_key_where(key)))).one_or_none()
        if row is None:
            raise NotFound(f"task {key} not found")
        return rows.task_from_row(row)

    async def deploy(
        self, conn: AsyncConnection, key: TaskKey, spec: Any, spec_hash: str, by: str, now: datetime
    ) -> tuple[Task, bool]:
        """Insert a task version; ``(task, created)``. The same spec again is a no-op, another spec
        under an existing version is AlreadyExists."""
        existing = (await conn.execute(sa.select(tasks).where(_key_where(key)))).one_or_none()
        if existing is None:
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        tasks.insert().values(
                            org=key.org,
                            project=key.project,
                            domain=key.domain,
                            name=key.name,
                            version=key.version,
                            spec=spec,
                            spec_hash=spec_hash,
                            deployed_by=by,
                            deployed_at=now,
                        )
                    )
                return await self.get(conn, key), True
            except sa.exc.IntegrityError:
                existing = (await conn.execute(sa.select(tasks).where(_key_where(key)))).one_or_none()
                if existing is None:
                    raise
        if existing.spec_hash != spec_hash:
            raise AlreadyExists(f"task {key} already exists with a different spec")
        return rows.task_from_row(existing), False
