"""The executor write path in SQL: lock an action, then write what the rules decided.

Locking strategy (decide and write are one atomic step):

* Every write transaction first locks the **run row** and the action row(s) it touches, then reads
  the stored state, asks :func:`runtrack.domain.transitions.decide` (done by the service layer),
  and writes in the same transaction.
* PostgreSQL: ``SELECT ... FROM runs JOIN actions ... FOR UPDATE OF runs, actions``, and only
  then, in a second statement, the newest attempt (a row read in the locking statement through an
  outer join would not be re-read when the lock was waited for, and could be stale). The run row
  is locked first in every path (event, status, abort, heartbeat sweep, slot admission), so all
  writes to one run are serialised and there is one lock order: run → action(s) in id order →
  concurrency limit row. A batch that touches several runs locks them in sorted run identity order
  before applying anything. A deadlock or serialisation failure that still happens is retried by
  the service as a whole transaction.
* SQLite: write transactions start with ``BEGIN IMMEDIATE`` (see ``storage/db.py``), which takes
  the database write lock before the first read, so writers are serialised outright; ``FOR
  UPDATE`` is not emitted.

* PostgreSQL, single events: optimistic instead — :meth:`WriteStore.read_action` reads without
  locks, and the write is one statement guarded by the run version read (``storage/pending.py``):
  it writes nothing if anyone wrote to the run since, and the service then decides again.

Writers that lose a race therefore read the winner's state and get ``ignore`` (duplicate) or
``reject`` (conflict) from the rules — exactly one transition is recorded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runtrack.domain.models import ROOT_ACTION, AbortInfo, ClusterEvent, RunId
from runtrack.domain.phases import TERMINAL, Phase
from runtrack.domain.reports import ActionReport, NewAction, event_fingerprint
from runtrack.domain.transitions import Decision, StoredState
from runtrack.errors import NotFound
from runtrack.storage.direct import DirectStatements
from runtrack.storage.pending import Flusher, Pending
from runtrack.storage.repository import run_key
from runtrack.storage.tables import actions, attempts, cluster_events, phase_transitions, runs

_CHUNK = 500  # keys per locking statement (bound parameters stay well under SQLite's limit)
_NON_TERMINAL = [int(p) for p in Phase if p not in TERMINAL and p is not Phase.UNSPECIFIED]


@dataclass(frozen=True, slots=True)
class Locked:
    """One locked action with its newest attempt, as read inside the write transaction."""

    run_pk: int
    run_id: RunId
    run_started_at: datetime | None
    run_version: int  # the run's version when it was locked
    action_pk: int
    name: str
    parent: str | None
    phase: Phase
    attempts: int
    version: int | None
    concurrency_key: str | None
    started_at: datetime | None
    attempt_pk: int | None = None
    attempt_phase: Phase | None = None
    attempt_version: int | None = None
    attempt_start: datetime | None = None
    last_heartbeat_at: datetime | None = None
    log_info: Any = None
    cluster: str | None = None

    @property
    def state(self) -> StoredState:
        return StoredState(
            action_phase=self.phase,
            attempt=self.attempts if self.attempt_pk is not None else 0,
            attempt_phase=self.attempt_phase,
            version=self.attempt_version,
        )

    @property
    def current_phase(self) -> Phase:
        return self.attempt_phase if self.attempt_phase is not None else self.phase


@dataclass(frozen=True, slots=True)
class Applied:
    locked: Locked  # the state after the write
    changed: bool  # something was written
    phase_changed: bool
    run_version: int | None = None


def _locked_from(r: Any, a: Any) -> Locked:
    return Locked(
        run_pk=r.run_pk,
        run_id=RunId(r.org, r.project, r.domain, r.run_name),
        run_started_at=r.run_started_at,
        run_version=r.run_version,
        action_pk=r.action_pk,
        name=r.name,
        parent=r.parent,
        phase=Phase(r.phase),
        attempts=r.attempts,
        version=r.version,
        concurrency_key=r.concurrency_key,
        started_at=r.started_at,
        attempt_pk=a.id if a is not None else None,
        attempt_phase=Phase(a.phase) if a is not None else None,
        attempt_version=a.version if a is not None else None,
        attempt_start=a.start_time if a is not None else None,
        last_heartbeat_at=a.last_heartbeat_at if a is not None else None,
        log_info=a.log_info if a is not None else None,
        cluster=a.cluster if a is not None else None,
    )


class _JoinedAttempt:
    """The attempt columns of a joined row (labelled ``att_<column>``) under their own names."""

    __slots__ = ("cluster", "id", "last_heartbeat_at", "log_info", "phase", "start_time", "version")

    def __init__(self, r: Any) -> None:
        self.id, self.phase, self.version = r.att_id, r.att_phase, r.att_version
        self.start_time, self.last_heartbeat_at = r.att_start_time, r.att_last_heartbeat_at
        self.log_info, self.cluster = r.att_log_info, r.att_cluster


_RUN_KEY = sa.and_(
    runs.c.org == sa.bindparam("k_org"),
    runs.c.project == sa.bindparam("k_project"),
    runs.c.domain == sa.bindparam("k_domain"),
    runs.c.name == sa.bindparam("k_name"),
)


def _key_params(run_id: RunId) -> dict[str, str]:
    return {"k_org": run_id.org, "k_project": run_id.project, "k_domain": run_id.domain, "k_name": run_id.name}


class WriteStore:
    """Locking reads and the writes of the executor path.

    The statements of the per-event path are built once (with bound parameters) and reused:
    building a statement and computing its cache key cost more than running it on a warm
    connection, and a reused statement object carries its cache key already.
    """

    def __init__(self) -> None:
        self._stmts: dict[tuple[Any, ...], Any] = {}
        self.flusher = Flusher()
        self._direct = DirectStatements()

    def _lock_one(self, conn: AsyncConnection) -> sa.Select[Any]:
        key = ("lock_one", conn.dialect.name)
        stmt = self._stmts.get(key)
        if stmt is None:
            stmt = self._stmts[key] = self._select(conn).where(_RUN_KEY, actions.c.name == sa.bindparam("k_action"))
        return stmt

    def _read_one(self) -> sa.Select[Any]:
        stmt = self._stmts.get(("read_one",))
        if stmt is None:
            newest = sa.and_(attempts.c.action_id == actions.c.id, attempts.c.attempt == actions.c.attempts)
            stmt = self._stmts[("read_one",)] = (
                self._columns()
                .add_columns(*(c.label(f"att_{c.name}") for c in self._attempt_columns().selected_columns))
                .select_from(runs.join(actions, actions.c.run_id == runs.c.id).outerjoin(attempts, newest))
                .where(_RUN_KEY, actions.c.name == sa.bindparam("k_action"))
            )
        return stmt

    def _newest_attempt(self) -> sa.Select[Any]:
        stmt = self._stmts.get(("newest_attempt",))
        if stmt is None:
            stmt = self._stmts[("newest_attempt",)] = self._attempt_columns().where(
                attempts.c.action_id == sa.bindparam("a_action"), attempts.c.attempt == sa.bindparam("a_attempt")
            )
        return stmt

    @staticmethod
    def _attempt_columns() -> sa.Select[Any]:
        return sa.select(
            attempts.c.action_id,
            attempts.c.attempt,
            attempts.c.id,
            attempts.c.phase,
            attempts.c.version,
            attempts.c.start_time,
            attempts.c.last_heartbeat_at,
            attempts.c.log_info,
            attempts.c.cluster,
        )

    def _select(self, conn: AsyncConnection) -> sa.Select[Any]:
        stmt = self._columns().select_from(runs.join(actions, actions.c.run_id == runs.c.id))
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(of=[runs, actions])
        return stmt

    @staticmethod
    def _columns() -> sa.Select[Any]:
        return sa.select(
            runs.c.id.label("run_pk"),
            runs.c.org,
            runs.c.project,
            runs.c.domain,
            runs.c.name.label("run_name"),
            runs.c.started_at.label("run_started_at"),
            runs.c.version.label("run_version"),
            actions.c.id.label("action_pk"),
            actions.c.name,
            actions.c.parent,
            actions.c.phase,
            actions.c.attempts,
            actions.c.version,
            actions.c.concurrency_key,
            actions.c.started_at,
        )

    async def _with_attempts(self, conn: AsyncConnection, rows: list[Any]) -> list[Locked]:
        """Add each action's newest attempt, read AFTER the locks are held.

        Reading it in the locking statement would not do on PostgreSQL: when a locked row changes
        while we wait, only the locked rows are re-read; an outer-joined attempt would be stale.
        """
        wanted = [(r.action_pk, r.attempts) for r in rows if r.attempts > 0]
        newest: dict[int, Any] = {}
        if len(wanted) == 1:
            ((action_pk, attempt),) = wanted
            row = (await conn.execute(self._newest_attempt(), {"a_action": action_pk, "a_attempt": attempt})).first()
            if row is not None:
                newest[action_pk] = row
            wanted = []
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i : i + _CHUNK]
            want = dict(chunk)
            result = await conn.execute(
                self._attempt_columns().where(
                    attempts.c.action_id.in_(sorted(want)), attempts.c.attempt.in_(sorted(set(want.values())))
                )
            )
            newest.update({a.action_id: a for a in result if want.get(a.action_id) == a.attempt})
        return [_locked_from(r, newest.get(r.action_pk)) for r in rows]

    async def lock_action(self, conn: AsyncConnection, run_id: RunId, name: str) -> Locked:
        row = (await conn.execute(self._lock_one(conn), {**_key_params(run_id), "k_action": name})).one_or_none()
        if row is None:
            await self._require_run(conn, run_id)
            raise NotFound(f"action {name!r} of run {run_id} not found")
        return (await self._with_attempts(conn, [row]))[0]

    async def read_action(self, conn: AsyncConnection, run_id: RunId, name: str) -> Locked | None:
        """The action with its newest attempt, read in one statement WITHOUT locks (one snapshot):
        for a write that is guarded by the run version read here (see ``storage/pending.py``)."""
        params = {**_key_params(run_id), "k_action": name}
        if conn.dialect.name == "postgresql":
            r = await self._direct.of(self._read_one(), conn.dialect).fetchrow(conn, params)
        else:
            r = (await conn.execute(self._read_one(), params)).one_or_none()
        if r is None:
            return None
        return _locked_from(r, _JoinedAttempt(r) if r.att_id is not None else None)

    async def lock_actions(
        self, conn: AsyncConnection, keys: list[tuple[RunId, str]]
    ) -> dict[tuple[RunId, str], Locked]:
        """Lock several actions: runs resolved by their unique key, then one locking statement per
        chunk (rows locked in run id, action id order). Missing ones are simply absent."""
        if len(keys) == 1:
            try:
                lk = await self.lock_action(conn, *keys[0])
            except NotFound:
                return {}
            return {keys[0]: lk}
        out: dict[tuple[RunId, str], Locked] = {}
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            scopes: dict[tuple[str, str, str], set[str]] = {}
            for r, _ in chunk:
                scopes.setdefault((r.org, r.project, r.domain), set()).add(r.name)
            pks: dict[RunId, int] = {}
            for (org, project, domain), names in sorted(scopes.items()):  # the unique index, IN on its last column
                result = await conn.execute(
                    sa.select(runs.c.id, runs.c.name).where(
                        runs.c.org == org, runs.c.project == project, runs.c.domain == domain,
                        runs.c.name.in_(sorted(names)),
                    )
                )
                pks.update({RunId(org, project, domain, r.name): int(r.id) for r in result})
            wanted = {(pks[r], a) for r, a in chunk if r in pks}
            if not wanted:
                continue
            rows = list(
                await conn.execute(
                    self._select(conn)
                    .where(
                        actions.c.run_id.in_(sorted({pk for pk, _ in wanted})),
                        actions.c.name.in_(sorted({a for _, a in wanted})),
                    )
                    .order_by(runs.c.id, actions.c.id)
                )
            )  # may lock a few more actions of the same runs (harmless: their runs are locked anyway)
            rows = [r for r in rows if (r.run_pk, r.name) in wanted]
            out.update({(lk.run_id, lk.name): lk for lk in await self._with_attempts(conn, rows)})
        return out

    async def lock_action_pk(self, conn: AsyncConnection, action_pk: int) -> Locked | None:
        row = (await conn.execute(self._select(conn).where(actions.c.id == action_pk))).one_or_none()
        return None if row is None else (await self._with_attempts(conn, [row]))[0]

    async def lock_run_actions(self, conn: AsyncConnection, run_id: RunId) -> list[Locked]:
        """Every action of the run (locked, in id order), the root action first."""
        rows = list(await conn.execute(self._select(conn).where(run_key(run_id)).order_by(actions.c.id)))
        if not rows:
            await self._require_run(conn, run_id)
        return await self._with_attempts(conn, rows)

    async def _require_run(self, conn: AsyncConnection, run_id: RunId) -> None:
        if (await conn.execute(sa.select(runs.c.id).where(run_key(run_id)))).first() is None:
            raise NotFound(f"run {run_id} not found")

    # -- writes ------------------------------------------------------------------------------

    async def apply(
        self,
        conn: AsyncConnection,
        lk: Locked,
        rep: ActionReport,
        decision: Decision,
        phase: Phase,
        now: datetime,
        pending: Pending,
        *,
        abort: AbortInfo | None = None,
    ) -> Applied:
        """Write an applied decision; ``phase`` is what to store (RUNNING may be held as WAITING)."""
        ts = rep.reported_at or now
        terminal = phase in TERMINAL
        end = (rep.end_time or ts) if terminal else None
        new_attempt = decision.new_attempt
        phase_changed = new_attempt or phase is not lk.current_phase
        attempt_pk = lk.attempt_pk
        attempt_start = lk.attempt_start
        changed = phase_changed

        if new_attempt:
            attempt_start = rep.start_time or ts
            attempt_pk = (
                await conn.execute(
                    attempts.insert()
                    .values(
                        action_id=lk.action_pk,
                        attempt=rep.attempt,
                        phase=int(phase),
                        version=rep.version,
                        start_time=attempt_start,
                        end_time=end,
                        error_kind=rep.error.kind if rep.error else None,
                        error_message=rep.error.message if rep.error else None,
                        outputs=rep.outputs,
                        log_info=rep.log_info,
                        cluster=rep.cluster,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(attempts.c.id)
                )
            ).scalar_one()
            await conn.execute(
                phase_transitions.insert().values(attempt_id=attempt_pk, phase=int(phase), start_time=ts)
            )
        elif attempt_pk is not None:
            values: dict[str, Any] = {}
            if phase_changed:
                values["phase"] = int(phase)
                if terminal:
                    values["end_time"] = end
                    if rep.error is not None:
                        values["error_kind"], values["error_message"] = rep.error.kind, rep.error.message
                    if rep.outputs is not None:
                        values["outputs"] = rep.outputs
            if rep.version is not None and rep.version != lk.attempt_version:
                values["version"] = rep.version
            if rep.log_info is not None and rep.log_info != lk.log_info:
                values["log_info"] = rep.log_info
            if rep.cluster and rep.cluster != lk.cluster:
                values["cluster"] = rep.cluster
            if values:
                changed = True
                values["updated_at"] = now
                pending.attempts.setdefault(attempt_pk, {}).update(values)
            if phase_changed:
                pending.transition(attempt_pk, int(phase), ts)
        if attempt_pk is not None and rep.cluster_events:
            changed = await self._add_cluster_events(conn, attempt_pk, rep.cluster_events) or changed
        if not changed:
            return Applied(lk, False, False)

        attempt_no = rep.attempt if new_attempt else lk.attempts
        version = rep.version if rep.version is not None else (None if new_attempt else lk.attempt_version)
        act: dict[str, Any] = {"updated_at": now, "version": version}
        started = lk.started_at
        if phase_changed:
            act.update(phase=int(phase), attempts=attempt_no)
            if started is None and attempt_start is not None:
                started = attempt_start
                act["started_at"] = started
            if terminal:
                act["ended_at"] = end
                if rep.error is not None:
                    act["error_kind"], act["error_message"] = rep.error.kind, rep.error.message
                if rep.outputs is not None:
                    act["outputs"] = rep.outputs
                if abort is not None:
                    act["abort_reason"], act["aborted_by"] = abort.reason, abort.aborted_by
            elif new_attempt:
                act.update(ended_at=None, error_kind=None, error_message=None)
        pending.actions.setdefault(lk.action_pk, {}).update(act)

        run_version = pending.bump(lk.run_pk, lk.run_version, now)
        run_values: dict[str, Any] = {}
        run_started = lk.run_started_at
        if lk.name == ROOT_ACTION and phase_changed:
            run_values.update(phase=int(phase), attempts=attempt_no)
            if run_started is None and started is not None:
                run_started = started
                run_values["started_at"] = started
            if terminal and end is not None:
                run_values["ended_at"] = end
                if run_started is not None:
                    run_values["duration_ms"] = max(0, int((end - run_started).total_seconds() * 1000))
                if rep.error is not None:
                    run_values["error_kind"], run_values["error_message"] = rep.error.kind, rep.error.message
                if abort is not None:
                    run_values["abort_reason"], run_values["aborted_by"] = abort.reason, abort.aborted_by
            elif new_attempt:
                run_values.update(ended_at=None, duration_ms=None, error_kind=None, error_message=None)
        pending.runs[lk.run_pk].update(run_values)

        after = dataclasses.replace(
            lk,
            run_started_at=run_started,
            phase=phase if phase_changed else lk.phase,
            attempts=attempt_no,
            version=version,
            started_at=started,
            attempt_pk=attempt_pk,
            attempt_phase=phase if attempt_pk is not None else None,
            attempt_version=version,
            attempt_start=attempt_start,
            log_info=rep.log_info if rep.log_info is not None else (None if new_attempt else lk.log_info),
            cluster=rep.cluster or (None if new_attempt else lk.cluster),
            last_heartbeat_at=None if new_attempt else lk.last_heartbeat_at,
        )
        return Applied(after, True, phase_changed, run_version)

    async def flush(self, conn: AsyncConnection, pending: Pending, *, expect_run_version: int | None = None) -> bool:
        """Write what ``pending`` holds (see :mod:`runtrack.storage.pending`)."""
        return await self.flusher.flush(conn, pending, expect_run_version=expect_run_version)

    async def _add_cluster_events(
        self, conn: AsyncConnection, attempt_pk: int, events: tuple[ClusterEvent, ...]
    ) -> bool:
        """Append cluster events not stored yet (by fingerprint); True when any was new."""
        by_fp = {event_fingerprint(e): e for e in events}
        existing: set[str] = set(
            (
                await conn.execute(
                    sa.select(cluster_events.c.fingerprint).where(
                        cluster_events.c.attempt_id == attempt_pk, cluster_events.c.fingerprint.in_(list(by_fp))
                    )
                )
            ).scalars()
        )
        new = [
            {
                "attempt_id": attempt_pk,
                "occurred_at": e.occurred_at,
                "message": e.message,
                "type": e.type,
                "reason": e.reason,
                "source": e.source,
                "count": e.count,
                "fingerprint": fp,
            }
            for fp, e in by_fp.items()
            if fp not in existing
        ]
        if new:
            await conn.execute(cluster_events.insert(), new)
        return bool(new)

    async def insert_action(self, conn: AsyncConnection, run_pk: int, new: NewAction, now: datetime) -> bool:
        """Register a child action; False when it exists already (idempotent)."""
        exists = (
            await conn.execute(sa.select(actions.c.id).where(actions.c.run_id == run_pk, actions.c.name == new.name))
        ).first()
        if exists is not None:
            return False
        if new.parent:
            parent = (
                await conn.execute(
                    sa.select(actions.c.id).where(actions.c.run_id == run_pk, actions.c.name == new.parent)
                )
            ).first()
            if parent is None:
                raise NotFound(f"parent action {new.parent!r} of run {new.run} not found")
        await conn.execute(
            actions.insert().values(
                run_id=run_pk,
                name=new.name,
                parent=new.parent,
                group_name=new.group,
                action_type=new.action_type,
                task_name=new.task_name,
                task_version=new.task_version,
                spec=new.spec,
                inputs=new.inputs,
                phase=int(Phase.QUEUED),
                attempts=0,
                concurrency_key=new.concurrency_key,
                created_at=now,
                updated_at=now,
            )
        )
        return True

    async def lock_run(self, conn: AsyncConnection, run_id: RunId) -> int:
        stmt = sa.select(runs.c.id).where(run_key(run_id))
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        pk = (await conn.execute(stmt)).scalar_one_or_none()
        if pk is None:
            raise NotFound(f"run {run_id} not found")
        return int(pk)

    async def bump_run(self, conn: AsyncConnection, run_pk: int, now: datetime) -> int:
        version = (
            await conn.execute(
                runs.update()
                .where(runs.c.id == run_pk)
                .values(updated_at=now, version=runs.c.version + 1)
                .returning(runs.c.version)
            )
        ).scalar_one()
        return int(version)

    async def set_concurrency_key(self, conn: AsyncConnection, action_pk: int, key: str | None) -> None:
        await conn.execute(actions.update().where(actions.c.id == action_pk).values(concurrency_key=key))

    # -- heartbeats --------------------------------------------------------------------------

    async def heartbeat(self, conn: AsyncConnection, run_id: RunId, action: str, attempt: int, now: datetime) -> None:
        """Record a heartbeat of a live attempt; a finished attempt's heartbeat changes nothing."""
        row = (
            await conn.execute(
                sa.select(attempts.c.id, attempts.c.phase)
                .select_from(runs.join(actions, actions.c.run_id == runs.c.id).join(
                    attempts, attempts.c.action_id == actions.c.id))
                .where(run_key(run_id), actions.c.name == action, attempts.c.attempt == attempt)
            )
        ).one_or_none()
        if row is None:
            await self.lock_action(conn, run_id, action)  # names the missing run or action
            raise NotFound(f"attempt {attempt} of action {action!r} of run {run_id} not found")
        if Phase(row.phase) in TERMINAL:
            return
        await conn.execute(attempts.update().where(attempts.c.id == row.id).values(last_heartbeat_at=now))

    async def stale_attempts(self, conn: AsyncConnection, cutoff: datetime, limit: int) -> list[tuple[int, int]]:
        """(action pk, attempt) of live attempts whose last heartbeat is older than ``cutoff``."""
        result = await conn.execute(
            sa.select(attempts.c.action_id, attempts.c.attempt)
            .where(attempts.c.last_heartbeat_at < cutoff, attempts.c.phase.in_(_NON_TERMINAL))
            .order_by(attempts.c.last_heartbeat_at)
            .limit(limit)
        )
        return [(int(r.action_id), int(r.attempt)) for r in result]
