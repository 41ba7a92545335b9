"""The repository: every SQL statement about runs and actions lives under ``storage/``.

Methods take an open connection (the service layer owns transactions: ``async with db.write()``)
and return domain records. They raise domain errors (NotFound, AlreadyExists), never HTTP codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runtrack.domain.models import ROOT_ACTION, Action, Attempt, NewRun, Run, RunId
from runtrack.domain.phases import Phase
from runtrack.errors import AlreadyExists, NotFound
from runtrack.storage import rows
from runtrack.storage.tables import (
    actions,
    attempts,
    cluster_events,
    phase_transitions,
    run_labels,
    runs,
)


def run_key(run_id: RunId) -> sa.ColumnElement[bool]:
    return sa.and_(
        runs.c.org == run_id.org,
        runs.c.project == run_id.project,
        runs.c.domain == run_id.domain,
        runs.c.name == run_id.name,
    )


def _is_unique_violation(exc: sa.exc.IntegrityError) -> bool:
    text = str(exc.orig).lower()
    return "unique" in text or "duplicate key" in text


class RunStore:
    """Runs, their root action and labels; reading actions with their attempts."""

    async def insert_run(self, conn: AsyncConnection, new: NewRun, now: datetime) -> Run:
        values: dict[str, Any] = {
            "org": new.id.org,
            "project": new.id.project,
            "domain": new.id.domain,
            "name": new.id.name,
            "phase": int(Phase.QUEUED),
            "attempts": 0,
            "created_by": new.created_by,
            "task_project": new.task.project if new.task else None,
            "task_domain": new.task.domain if new.task else None,
            "task_name": new.task.name if new.task else None,
            "task_version": new.task.version if new.task else None,
            "task_type": new.task.type or None if new.task else None,
            "trigger_name": new.trigger_name,
            "source": new.source,
            "spec": new.spec,
            "inputs": new.inputs,
            "labels": dict(new.labels),
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        try:
            async with conn.begin_nested():
                pk = (await conn.execute(runs.insert().values(values).returning(runs.c.id))).scalar_one()
        except sa.exc.IntegrityError as exc:
            if _is_unique_violation(exc):
                raise AlreadyExists(f"run {new.id} already exists") from None
            raise
        await conn.execute(
            actions.insert().values(
                run_id=pk,
                name=ROOT_ACTION,
                parent=None,
                action_type="task",
                task_name=new.task.name if new.task else None,
                task_version=new.task.version if new.task else None,
                task_type=new.task.type or None if new.task else None,
                spec=new.action_spec,
                inputs=new.inputs,
                phase=int(Phase.QUEUED),
                attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
        if new.labels:
            await conn.execute(
                run_labels.insert(), [{"run_id": pk, "key": k, "value": v} for k, v in new.labels.items()]
            )
        return await self.get_run(conn, new.id)

    async def get_run(self, conn: AsyncConnection, run_id: RunId) -> Run:
        row = (await conn.execute(sa.select(runs).where(run_key(run_id)))).one_or_none()
        if row is None:
            raise NotFound(f"run {run_id} not found")
        return rows.run_from_row(row)

    async def get_run_by_pk(self, conn: AsyncConnection, pk: int) -> Run | None:
        row = (await conn.execute(sa.select(runs).where(runs.c.id == pk))).one_or_none()
        return None if row is None else rows.run_from_row(row)

    async def get_runs_by_pks(self, conn: AsyncConnection, pks: Sequence[int]) -> dict[int, Run]:
        """The runs among ``pks`` that exist, by primary key (one statement per 500 keys)."""
        out: dict[int, Run] = {}
        ordered = sorted(set(pks))
        for i in range(0, len(ordered), 500):
            result = await conn.execute(sa.select(runs).where(runs.c.id.in_(ordered[i : i + 500])))
            out.update({int(r.id): rows.run_from_row(r) for r in result})
        return out

    async def run_pk(self, conn: AsyncConnection, run_id: RunId) -> int:
        pk = (await conn.execute(sa.select(runs.c.id).where(run_key(run_id)))).scalar_one_or_none()
        if pk is None:
            raise NotFound(f"run {run_id} not found")
        return int(pk)

    async def get_action(
        self, conn: AsyncConnection, run_id: RunId, name: str, *, details: bool = True
    ) -> Action:
        row = (
            await conn.execute(
                sa.select(actions)
                .join(runs, runs.c.id == actions.c.run_id)
                .where(run_key(run_id), actions.c.name == name)
            )
        ).one_or_none()
        if row is None:
            await self.run_pk(conn, run_id)  # NotFound names the run when that is what is missing
            raise NotFound(f"action {name!r} of run {run_id} not found")
        attempt_list = await self._attempts(conn, row.id) if details else ()
        return rows.action_from_row(run_id, row, attempt_list)

    async def list_actions(
        self, conn: AsyncConnection, run_id: RunId, *, limit: int = 1000, after_pk: int = 0
    ) -> list[Action]:
        """A run's actions in creation order (keyset on the action id)."""
        run_pk = await self.run_pk(conn, run_id)
        result = await conn.execute(
            sa.select(actions)
            .where(actions.c.run_id == run_pk, actions.c.id > after_pk)
            .order_by(actions.c.id)
            .limit(limit)
        )
        return [rows.action_from_row(run_id, r) for r in result]

    async def attempts_of(self, conn: AsyncConnection, action_pk: int) -> tuple[Attempt, ...]:
        """An action's attempts with their phase transitions and cluster events."""
        return await self._attempts(conn, action_pk)

    async def _attempts(self, conn: AsyncConnection, action_pk: int) -> tuple[Attempt, ...]:
        att_rows = (
            await conn.execute(
                sa.select(attempts).where(attempts.c.action_id == action_pk).order_by(attempts.c.attempt)
            )
        ).all()
        if not att_rows:
            return ()
        ids = [a.id for a in att_rows]
        trans: dict[int, list[Any]] = {i: [] for i in ids}
        for t in await conn.execute(
            sa.select(phase_transitions)
            .where(phase_transitions.c.attempt_id.in_(ids))
            .order_by(phase_transitions.c.id)
        ):
            trans[t.attempt_id].append(rows.transition_from_row(t))
        events: dict[int, list[Any]] = {i: [] for i in ids}
        for e in await conn.execute(
            sa.select(cluster_events)
            .where(cluster_events.c.attempt_id.in_(ids))
            .order_by(cluster_events.c.occurred_at, cluster_events.c.id)
        ):
            events[e.attempt_id].append(rows.cluster_event_from_row(e))
        return tuple(
            rows.attempt_from_row(a, tuple(trans[a.id]), tuple(events[a.id])) for a in att_rows
        )


class Repository:
    """The storage interface the service layer uses, one store per aggregate."""

    def __init__(self) -> None:
        self.runs = RunStore()
