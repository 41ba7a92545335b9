"""Putting runs into chosen states for the Connect tests, straight through the storage layer.

``put_run`` creates a run (root action ``a0``) and sets the phase, times and attempts of the run,
its root action and its attempt rows (with a phase transition each), as executors would have.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from runtrack.domain.models import NewRun, Run, RunId, TaskRef
from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from runtrack.storage.tables import actions, attempts, cluster_events, phase_transitions, runs

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORG, PROJECT, DOMAIN = "acme", "proj", "dev"


async def put_run(
    svc: Services,
    name: str,
    phase: Phase = Phase.QUEUED,
    *,
    minute: int = 0,
    n_attempts: int = 1,
    labels: dict[str, str] | None = None,
    task: str = "env.main",
    project: str = PROJECT,
    created_by: str = "alice",
    trigger: str | None = None,
    version: str = "v1",
) -> Run:
    created = T0 + timedelta(minutes=minute)
    started = created + timedelta(seconds=5) if phase is not Phase.QUEUED else None
    ended = created + timedelta(seconds=65) if phase.terminal else None
    new = NewRun(
        id=RunId(ORG, project, DOMAIN, name),
        created_by=created_by,
        labels=labels or {},
        task=TaskRef(name=task, version=version, type="python"),
        trigger_name=trigger,
    )
    count = n_attempts if started else 0
    async with svc.db.write() as conn:
        run = await svc.repo.runs.insert_run(conn, new, created)
        values = dict(phase=int(phase), attempts=count, started_at=started, ended_at=ended, updated_at=ended or created)
        await conn.execute(
            sa.update(runs).where(runs.c.id == run.pk).values(**values, duration_ms=60_000 if ended else None)
        )
        await conn.execute(
            sa.update(actions).where(actions.c.run_id == run.pk, actions.c.name == "a0").values(**values)
        )
        action_pk = (
            await conn.execute(sa.select(actions.c.id).where(actions.c.run_id == run.pk, actions.c.name == "a0"))
        ).scalar_one()
        for n in range(1, count + 1):
            last = n == count
            att_phase = phase if last else Phase.FAILED
            att_end = ended if last else started
            att_pk = (
                await conn.execute(
                    attempts.insert()
                    .values(
                        action_id=action_pk, attempt=n, phase=int(att_phase), start_time=started,
                        end_time=att_end if att_phase.terminal else None,
                        error_kind="USER" if att_phase is Phase.FAILED else None,
                        error_message="boom" if att_phase is Phase.FAILED else None,
                        log_info=[{"name": "stdout", "uri": f"http://logs/{name}/{n}"}],
                        cluster="c1", created_at=created, updated_at=ended or created,
                    )
                    .returning(attempts.c.id)
                )
            ).scalar_one()
            await conn.execute(
                phase_transitions.insert().values(attempt_id=att_pk, phase=int(Phase.RUNNING), start_time=started)
            )
            await conn.execute(
                cluster_events.insert().values(
                    attempt_id=att_pk, occurred_at=started, message=f"pulled image for attempt {n}",
                    type="NORMAL", reason="Pulled", source="kubelet", count=1, fingerprint=f"pulled-{n}",
                )
            )
        return await svc.repo.runs.get_run(conn, new.id)


async def put_child(svc: Services, run_name: str, name: str, phase: Phase, *, parent: str = "a0") -> None:
    async with svc.db.write() as conn:
        run_pk = await svc.repo.runs.run_pk(conn, RunId(ORG, PROJECT, DOMAIN, run_name))
        await conn.execute(
            actions.insert().values(
                run_id=run_pk, name=name, parent=parent, action_type="task", task_name="env.child",
                task_version="v1", task_type="python", phase=int(phase), attempts=1,
                created_at=T0 + timedelta(hours=1, seconds=len(name)), updated_at=T0 + timedelta(hours=1),
                started_at=T0 + timedelta(hours=1),
            )
        )
