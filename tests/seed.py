"""Seeding runs with chosen phases, times, owners and labels, straight through the storage layer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from runtrack.domain.models import NewRun, Run, RunId, TaskRef
from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from runtrack.storage.tables import runs

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def seed_run(
    svc: Services,
    name: str,
    *,
    phase: Phase = Phase.QUEUED,
    created_at: datetime | None = None,
    minute: int = 0,
    org: str = "acme",
    project: str = "proj",
    domain: str = "dev",
    created_by: str = "",
    labels: dict[str, str] | None = None,
    task: str | None = None,
    ended_at: datetime | None = None,
    duration_ms: int | None = None,
    **extra: Any,
) -> Run:
    """Create a run as of ``created_at`` (default: T0 + ``minute`` minutes) and set its phase etc."""
    when = created_at or T0 + timedelta(minutes=minute)
    new = NewRun(
        id=RunId(org, project, domain, name),
        created_by=created_by,
        labels=labels or {},
        task=TaskRef(name=task, version="v1") if task else None,
    )
    async with svc.db.write() as conn:
        run = await svc.repo.runs.insert_run(conn, new, when)
        await conn.execute(
            sa.update(runs)
            .where(runs.c.id == run.pk)
            .values(phase=int(phase), ended_at=ended_at, duration_ms=duration_ms, **extra)
        )
        return await svc.repo.runs.get_run(conn, new.id)
