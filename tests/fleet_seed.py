"""Seeding runs for the fleet tests: runs in a given phase with actions, attempts, transitions,
cluster events, labels, log lines and held concurrency slots, written straight to the database."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from runtrack.clock import utcnow
from runtrack.domain.models import NewRun, RunId
from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from runtrack.storage.tables import (
    actions,
    attempts,
    cleanup_jobs,
    cluster_events,
    concurrency_limits,
    concurrency_slots,
    log_lines,
    phase_transitions,
    run_labels,
    runs,
)


def rid(name: str, project: str = "proj", domain: str = "dev", org: str = "acme") -> RunId:
    return RunId(org, project, domain, name)


async def seed_run(
    svc: Services,
    name: str,
    *,
    phase: Phase = Phase.SUCCEEDED,
    project: str = "proj",
    domain: str = "dev",
    org: str = "acme",
    created_by: str = "alice",
    labels: dict[str, str] | None = None,
    actions_n: int = 2,
    logs_per_action: int = 2,
    created_at: datetime | None = None,
) -> int:
    """A run with ``actions_n`` actions (a0 plus children), one attempt each with a transition,
    a cluster event and log lines. Returns the run's primary key."""
    run = await svc.runs.create_run(
        NewRun(id=rid(name, project, domain, org), created_by=created_by, labels=labels or {})
    )
    now = utcnow()
    created = created_at or now
    ended = now if phase.terminal else None
    async with svc.db.write() as conn:
        await conn.execute(
            sa.update(runs)
            .where(runs.c.id == run.pk)
            .values(phase=int(phase), created_at=created, ended_at=ended, attempts=1)
        )
        await conn.execute(
            sa.update(actions).where(actions.c.run_id == run.pk).values(phase=int(phase), attempts=1)
        )
        for i in range(1, actions_n):
            await conn.execute(
                actions.insert().values(
                    run_id=run.pk, name=f"a{i}", parent="a0", phase=int(phase), attempts=1,
                    created_at=now, updated_at=now,
                )
            )
        action_rows = (await conn.execute(sa.select(actions.c.id, actions.c.name).where(actions.c.run_id == run.pk)))
        for action_pk, action_name in action_rows.all():
            att = (
                await conn.execute(
                    attempts.insert()
                    .values(action_id=action_pk, attempt=1, phase=int(phase), created_at=now, updated_at=now)
                    .returning(attempts.c.id)
                )
            ).scalar_one()
            await conn.execute(phase_transitions.insert().values(attempt_id=att, phase=int(phase), start_time=now))
            await conn.execute(
                cluster_events.insert().values(attempt_id=att, occurred_at=now, message="pulled", fingerprint="f")
            )
            if logs_per_action:
                await conn.execute(
                    log_lines.insert(),
                    [
                        {"run_id": run.pk, "action_name": action_name, "attempt": 1, "ts": now, "message": f"line {j}"}
                        for j in range(logs_per_action)
                    ],
                )
    return run.pk


async def hold_slot(svc: Services, run_pk: int, *, key: str = "gpu", slots: int = 1, action: str = "a0") -> int:
    """Make the run's action hold a slot of the project's limit ``key``; returns the limit id."""
    now = utcnow()
    async with svc.db.write() as conn:
        project = (await conn.execute(sa.select(runs.c.project).where(runs.c.id == run_pk))).scalar_one()
        limit_id = (
            await conn.execute(
                sa.select(concurrency_limits.c.id).where(
                    concurrency_limits.c.project == project, concurrency_limits.c.key == key
                )
            )
        ).scalar_one_or_none()
        if limit_id is None:
            limit_id = (
                await conn.execute(
                    concurrency_limits.insert()
                    .values(project=project, key=key, slots=slots, created_at=now)
                    .returning(concurrency_limits.c.id)
                )
            ).scalar_one()
        action_pk = (
            await conn.execute(
                sa.select(actions.c.id).where(actions.c.run_id == run_pk, actions.c.name == action)
            )
        ).scalar_one()
        await conn.execute(
            sa.update(actions).where(actions.c.id == action_pk).values(concurrency_key=key)
        )
        await conn.execute(concurrency_slots.insert().values(limit_id=limit_id, action_id=action_pk, acquired_at=now))
    return int(limit_id)


async def rows_of(svc: Services, run_pk: int) -> dict[str, int]:
    """How many rows of each kind belong to the run (by primary key)."""
    async with svc.db.read() as conn:
        action_ids = sa.select(actions.c.id).where(actions.c.run_id == run_pk).scalar_subquery()
        attempt_ids = sa.select(attempts.c.id).where(attempts.c.action_id.in_(
            sa.select(actions.c.id).where(actions.c.run_id == run_pk)
        )).scalar_subquery()

        async def n(stmt: sa.Select[tuple[int]]) -> int:
            return int((await conn.execute(stmt)).scalar_one())

        count = sa.func.count()
        return {
            "runs": await n(sa.select(count).select_from(runs).where(runs.c.id == run_pk)),
            "actions": await n(sa.select(count).select_from(actions).where(actions.c.run_id == run_pk)),
            "attempts": await n(
                sa.select(count).select_from(attempts).where(
                    attempts.c.action_id.in_(sa.select(actions.c.id).where(actions.c.run_id == run_pk))
                )
            ),
            "transitions": await n(
                sa.select(count).select_from(phase_transitions).where(phase_transitions.c.attempt_id.in_(attempt_ids))
            ),
            "cluster_events": await n(
                sa.select(count).select_from(cluster_events).where(cluster_events.c.attempt_id.in_(attempt_ids))
            ),
            "labels": await n(sa.select(count).select_from(run_labels).where(run_labels.c.run_id == run_pk)),
            "slots": await n(
                sa.select(count).select_from(concurrency_slots).where(concurrency_slots.c.action_id.in_(action_ids))
            ),
            "logs": await n(sa.select(count).select_from(log_lines).where(log_lines.c.run_id == run_pk)),
            "cleanup_jobs": await n(
                sa.select(count).select_from(cleanup_jobs).where(cleanup_jobs.c.run_id == run_pk)
            ),
        }


async def total_rows(svc: Services) -> dict[str, int]:
    """Row counts of every table a run's deletion touches (orphans show up here)."""
    out: dict[str, int] = {}
    async with svc.db.read() as conn:
        for t in (runs, actions, attempts, phase_transitions, cluster_events, run_labels, concurrency_slots,
                  log_lines, cleanup_jobs):
            out[t.name] = int((await conn.execute(sa.select(sa.func.count()).select_from(t))).scalar_one())
    return out


def days_ago(n: float) -> datetime:
    return utcnow() - timedelta(days=n)
