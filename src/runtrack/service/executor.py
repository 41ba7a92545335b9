"""The executor write path: events, status updates, child actions, heartbeats, aborts.

Every phase change is decided by :mod:`runtrack.domain.transitions` inside the write transaction
that performs it (see ``storage/writes.py`` for the locking). After a transaction commits, what
changed is published through the notifier as :class:`~runtrack.service.notifier.Change` records:
one per changed action (``action=<name>``), plus one with ``action=None`` when the root action —
and so the run's own phase and times — changed. A duplicate or stale report writes and publishes
nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from runtrack.clock import utcnow
from runtrack.config import Settings
from runtrack.domain.models import ROOT_ACTION, AbortInfo, ErrorInfo, NewRun, Run, RunId
from runtrack.domain.phases import Phase
from runtrack.domain.reports import (
    HEARTBEAT_TIMEOUT,
    WAITING_FOR_SLOT,
    AbortOutcome,
    ActionReport,
    ConcurrencyLimit,
    LogLine,
    LogPage,
    NewAction,
    ReportResult,
    concurrency_key_of,
)
from runtrack.domain.transitions import Decision, Outcome, Report, decide, decide_abort
from runtrack.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from runtrack.service.logs import LogService
from runtrack.service.notifier import Change, Notifier
from runtrack.service.recent import RecentStates
from runtrack.service.run_names import generate_run_name
from runtrack.storage.concurrency import SlotStore
from runtrack.storage.db import Database
from runtrack.storage.pending import Pending
from runtrack.storage.repository import Repository
from runtrack.storage.writes import Locked, WriteStore

log = logging.getLogger("runtrack.executor")
T = TypeVar("T")

# (write path, outcome, reason) → counted by the transport's metrics; a no-op by default.
DecisionObserver = Callable[[str, str, str], None]


def _no_observer(_path: str, _outcome: str, _reason: str) -> None:
    return None


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    text = str(exc.orig).lower()
    return code in ("40P01", "40001") or "deadlock detected" in text or "could not serialize" in text


@dataclass
class _Tx:
    """What one write transaction changed, published and followed up after it commits."""

    changes: dict[tuple[int, str | None], Change] = field(default_factory=dict)
    freed_limits: set[int] = field(default_factory=set)
    pending: Pending = field(default_factory=Pending)

    def changed(self, lk: Locked, run_version: int) -> None:
        self.changes[(lk.run_pk, lk.name)] = Change(lk.run_pk, lk.run_id, run_version, action=lk.name)
        if lk.name == ROOT_ACTION:
            self.changes[(lk.run_pk, None)] = Change(lk.run_pk, lk.run_id, run_version, action=None)


class ExecutorService:
    def __init__(
        self, db: Database, repo: Repository, settings: Settings, notifier: Callable[[], Notifier]
    ) -> None:
        self.db = db
        self.repo = repo
        self.settings = settings
        self._notifier = notifier
        self.writes = WriteStore()
        self.recent = RecentStates()
        self.slots = SlotStore()
        self.logs = LogService(db)
        self.observe: DecisionObserver = _no_observer

    # -- transactions ------------------------------------------------------------------------

    async def _write(self, fn: Callable[[AsyncConnection, _Tx], Awaitable[T]]) -> T:
        """Run ``fn`` in a write transaction (retried on deadlock), then publish and admit waiters."""
        for attempt in range(5):
            tx = _Tx()
            try:
                async with self.db.write() as conn:
                    result = await fn(conn, tx)
                    await self.writes.flush(conn, tx.pending)
                break
            except DBAPIError as exc:
                if attempt == 4 or not _retryable(exc):
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        await self._after(tx)
        return result

    async def _after(self, tx: _Tx) -> None:
        if tx.changes:
            await self._notifier().publish(list(tx.changes.values()))
        if tx.freed_limits:
            await self.admit_waiting(tx.freed_limits)

    async def _step(
        self, conn: AsyncConnection, tx: _Tx, lk: Locked, rep: ActionReport, d: Decision, now: datetime,
        *, abort: AbortInfo | None = None,
    ) -> tuple[Locked, ReportResult]:
        """Write one applied decision (taking or releasing a concurrency slot as needed)."""
        phase, reason, message = rep.phase, d.reason.value, d.message
        if phase is Phase.RUNNING and lk.concurrency_key:
            if not await self.slots.acquire(conn, lk.run_id.project, lk.concurrency_key, lk.action_pk, now):
                phase, reason = Phase.WAITING_FOR_RESOURCES, WAITING_FOR_SLOT
                message = (
                    f"no free slot for concurrency key {lk.concurrency_key!r} in project {lk.run_id.project!r};"
                    " held in WAITING_FOR_RESOURCES"
                )
        applied = await self.writes.apply(conn, lk, rep, d, phase, now, tx.pending, abort=abort)
        if applied.changed and applied.run_version is not None:
            tx.changed(applied.locked, applied.run_version)
        if phase.terminal and lk.concurrency_key:
            freed = await self.slots.release(conn, lk.action_pk)
            if freed is not None:
                tx.freed_limits.add(freed)
        after = applied.locked
        return after, ReportResult(Outcome.APPLY, reason, message, after.phase, after.attempts)

    def _count(self, path: str, d: Decision, lk: Locked | None, rep: ActionReport) -> None:
        self.observe(path, d.outcome.value, d.reason.value)
        if d.outcome is Outcome.REJECT:
            log.info(
                "report rejected",
                extra={"fields": {"path": path, "run": str(rep.run), "action": rep.action,
                                  "attempt": rep.attempt, "reason": d.reason.value, "message": d.message}},
            )

    # -- events (fire-and-forget) and status (strict) ------------------------------------------

    async def _guarded(self, path: str, rep: ActionReport, *, strict: bool) -> ReportResult | None:
        """One report without a transaction (PostgreSQL): decide on the action's state as this
        process last saw it (:mod:`runtrack.service.recent`) or as read in one statement, and write
        in one statement guarded by that state's run version (see ``storage/pending.py``), so the
        decision holds for the state it is written over. A guard that fails on a remembered state is
        tried once more on a fresh read.

        None when the report needs the locked path: an unknown action, a new attempt, cluster
        events, a concurrency slot, a strict conflict (raised there, with the locked state), or a
        write of someone else committed between the read and the write.
        """
        if rep.cluster_events:
            return None
        key = (rep.run, rep.action)
        report = Report(rep.attempt, rep.phase, rep.version)
        try:
            async with self.db.autocommit() as conn:
                lk = self.recent.get(key)
                for remembered in (True, False) if lk is not None else (False,):
                    if not remembered:
                        lk = await self.writes.read_action(conn, rep.run, rep.action)
                        if lk is None or lk.attempt_pk is None or lk.concurrency_key:
                            self.recent.drop(key)
                            return None
                        self.recent.put(lk)  # only states this path can write over are remembered
                    assert lk is not None
                    d = decide(lk.state, report, strict=strict)
                    if not d.applies and remembered:
                        continue  # answer what is not written from the database's state
                    if d.new_attempt or (strict and d.outcome is Outcome.REJECT):
                        return None
                    tx = _Tx()
                    if not d.applies:
                        result = _unchanged(d, lk)
                        break
                    after, result = await self._step(conn, tx, lk, rep, d, utcnow())
                    version = tx.pending.run_versions.get(lk.run_pk, lk.run_version)
                    if await self.writes.flush(conn, tx.pending, expect_run_version=lk.run_version):
                        self.recent.put(dataclasses.replace(after, run_version=version))
                        break
                    self.recent.drop(key)
                else:
                    return None
        except DBAPIError as exc:
            self.recent.drop(key)
            if _retryable(exc):
                return None
            raise
        self._count(path, d, lk, rep)
        await self._after(tx)
        return result

    async def record_events(self, events: Sequence[ActionReport]) -> list[ReportResult]:
        """Ingest a batch in one transaction; one result per event, in order. Never raises Conflict.
        A single event on PostgreSQL is first tried without a transaction (:meth:`_guarded`)."""
        if not events:
            return []
        if len(events) == 1 and self.db.is_postgres:
            result = await self._guarded("events", events[0], strict=False)
            if result is not None:
                return [result]

        async def run(conn: AsyncConnection, tx: _Tx) -> list[ReportResult]:
            now = utcnow()
            keys = sorted({(e.run, e.action) for e in events})
            locked: dict[tuple[RunId, str], Locked | None] = dict.fromkeys(keys)
            locked.update(await self.writes.lock_actions(conn, keys))
            out: list[ReportResult] = []
            for rep in events:
                lk = locked[(rep.run, rep.action)]
                if lk is None:
                    self.observe("events", Outcome.REJECT.value, "not_found")
                    msg = f"action {rep.action!r} of run {rep.run} not found"
                    out.append(ReportResult(Outcome.REJECT, "not_found", msg))
                    continue
                d = decide(lk.state, Report(rep.attempt, rep.phase, rep.version), strict=False)
                self._count("events", d, lk, rep)
                if not d.applies:
                    out.append(_unchanged(d, lk))
                    continue
                lk, result = await self._step(conn, tx, lk, rep, d, now)
                locked[(rep.run, rep.action)] = lk
                out.append(result)
            return out

        return await self._write(run)

    async def update_status(self, rep: ActionReport) -> ReportResult:
        """The strict path: applied or idempotent → the result; a conflict raises :class:`Conflict`."""
        if self.db.is_postgres:
            result = await self._guarded("status", rep, strict=True)
            if result is not None:
                return result

        async def run(conn: AsyncConnection, tx: _Tx) -> ReportResult:
            lk = await self.writes.lock_action(conn, rep.run, rep.action)
            d = decide(lk.state, Report(rep.attempt, rep.phase, rep.version), strict=True)
            self._count("status", d, lk, rep)
            if d.outcome is Outcome.REJECT:
                raise Conflict(
                    f"action {rep.action!r} of run {rep.run}: stored phase {lk.current_phase.name} "
                    f"(attempt {lk.attempts}), reported {rep.phase.name} (attempt {rep.attempt}): {d.message}"
                )
            if not d.applies:
                return _unchanged(d, lk)
            return (await self._step(conn, tx, lk, rep, d, utcnow()))[1]

        return await self._write(run)

    # -- runs and child actions ----------------------------------------------------------------

    async def create_run(self, new: NewRun) -> Run:
        """Create a run (and its root action); a missing name gets a generated unique one."""
        named = bool(new.id.name)
        for _ in range(5 if not named else 1):
            candidate = new if named else dataclasses.replace(
                new, id=RunId(new.id.org, new.id.project, new.id.domain, generate_run_name())
            )

            async def run(conn: AsyncConnection, tx: _Tx, candidate: NewRun = candidate) -> Run:
                created = await self.repo.runs.insert_run(conn, candidate, utcnow())
                key = concurrency_key_of(candidate.action_spec, candidate.labels) or concurrency_key_of(
                    candidate.spec
                )
                if key:
                    root = await self.writes.lock_action(conn, created.id, ROOT_ACTION)
                    await self.writes.set_concurrency_key(conn, root.action_pk, key)
                tx.changes[(created.pk, None)] = Change(created.pk, created.id, created.version)
                tx.changes[(created.pk, ROOT_ACTION)] = Change(
                    created.pk, created.id, created.version, action=ROOT_ACTION
                )
                return created

            try:
                return await self._write(run)
            except AlreadyExists:
                if named:
                    raise
        raise AlreadyExists("could not generate a unique run name; pass one")

    async def record_action(self, new: NewAction) -> bool:
        """Register a child action under its parent; True when created, False when it existed."""
        if not new.name:
            raise InvalidArgument("action name must not be empty")

        async def run(conn: AsyncConnection, tx: _Tx) -> bool:
            run_pk = await self.writes.lock_run(conn, new.run)
            now = utcnow()
            created = await self.writes.insert_action(conn, run_pk, new, now)
            if created:
                version = await self.writes.bump_run(conn, run_pk, now)
                tx.changes[(run_pk, new.name)] = Change(run_pk, new.run, version, action=new.name)
            return created

        return await self._write(run)

    # -- heartbeats ------------------------------------------------------------------------------

    async def heartbeat(self, run_id: RunId, action: str, attempt: int) -> None:
        async with self.db.write() as conn:
            await self.writes.heartbeat(conn, run_id, action, attempt, utcnow())

    async def sweep(self) -> None:
        """One round of the background job: fail silent attempts, admit actions waiting for slots."""
        await self.sweep_heartbeats()
        await self.admit_waiting()

    async def sweep_heartbeats(self) -> int:
        """Fail attempts silent for longer than ``heartbeat_timeout``; the number failed by this call."""
        timeout = self.settings.heartbeat_timeout
        async with self.db.read() as conn:
            candidates = await self.writes.stale_attempts(conn, utcnow() - timeout, 500)
        failed = 0
        for action_pk, attempt in candidates:

            async def run(conn: AsyncConnection, tx: _Tx, action_pk: int = action_pk, attempt: int = attempt) -> bool:
                now = utcnow()
                lk = await self.writes.lock_action_pk(conn, action_pk)
                if lk is None or lk.attempt_pk is None or lk.attempts != attempt:
                    return False
                if lk.last_heartbeat_at is None or lk.last_heartbeat_at >= now - timeout:
                    return False  # a heartbeat arrived meanwhile
                silent = (now - lk.last_heartbeat_at).total_seconds()
                msg = f"no heartbeat for {silent:.0f}s (timeout {timeout.total_seconds():.0f}s)"
                rep = ActionReport(lk.run_id, lk.name, attempt, Phase.FAILED, error=ErrorInfo(HEARTBEAT_TIMEOUT, msg))
                d = decide(lk.state, Report(attempt, Phase.FAILED), strict=False)
                self._count("heartbeat", d, lk, rep)
                if not d.applies:
                    return False
                await self._step(conn, tx, lk, rep, d, now)
                return True

            failed += await self._write(run)
        if failed:
            log.info("heartbeat sweep failed silent attempts", extra={"fields": {"failed": failed}})
        return failed

    # -- abort (DESIGN.md rule 5) -------------------------------------------------------------

    async def abort_run(self, run_id: RunId, reason: str = "", by: str = "") -> AbortOutcome:
        """Abort every non-terminal action of the run and the run itself. Terminal: no change, no error."""
        return await self._abort(run_id, None, reason, by)

    async def abort_action(self, run_id: RunId, action: str, reason: str = "", by: str = "") -> AbortOutcome:
        """Abort one action and its descendants (the root action ``a0`` aborts the whole run)."""
        return await self._abort(run_id, action, reason, by)

    async def _abort(self, run_id: RunId, action: str | None, reason: str, by: str) -> AbortOutcome:
        info = AbortInfo(reason=reason, aborted_by=by)

        async def run(conn: AsyncConnection, tx: _Tx) -> AbortOutcome:
            now = utcnow()
            locked = await self.writes.lock_run_actions(conn, run_id)
            targets = locked if action is None or action == ROOT_ACTION else _subtree(locked, action, run_id)
            aborted: list[str] = []
            for lk in targets:
                d = decide_abort(lk.state)
                rep = ActionReport(run_id, lk.name, max(lk.attempts, 1), Phase.ABORTED)
                self._count("abort", d, lk, rep)
                if not d.applies:
                    continue
                await self._step(conn, tx, lk, rep, d, now, abort=info)
                aborted.append(lk.name)
            version = max((c.run_version for c in tx.changes.values()), default=0)
            return AbortOutcome(run=run_id, aborted=tuple(aborted), run_version=version)

        return await self._write(run)

    # -- concurrency slots -----------------------------------------------------------------------

    async def admit_waiting(self, limit_ids: set[int] | None = None) -> int:
        """Admit actions waiting for a concurrency slot while slots are free; how many were admitted."""
        if limit_ids is None:
            async with self.db.read() as conn:
                limit_ids = set(await self.slots.limits_with_waiters(conn))
        admitted = 0
        for limit_id in sorted(limit_ids):
            skip: set[int] = set()
            while True:
                result = await self._admit_one(limit_id, skip)
                if result is None:
                    break
                admitted += result
        return admitted

    async def put_limit(self, project: str, key: str, slots: int) -> tuple[ConcurrencyLimit, bool]:
        """Create or resize a limit (then admit waiters a larger limit makes room for); (limit, created)."""
        if not project or not key:
            raise InvalidArgument("project and key must not be empty")
        if slots < 0:
            raise InvalidArgument(f"slots must be 0 or more, got {slots}")
        async with self.db.write() as conn:
            limit_id, created = await self.slots.put_limit(conn, project, key, slots, utcnow())
        await self.admit_waiting({limit_id})
        return await self.get_limit(project, key), created

    async def get_limit(self, project: str, key: str) -> ConcurrencyLimit:
        for limit in await self.list_limits(project):
            if limit.key == key:
                return limit
        raise NotFound(f"concurrency limit {project}/{key} not found")

    async def list_limits(self, project: str | None = None) -> list[ConcurrencyLimit]:
        async with self.db.read() as conn:
            return await self.slots.list_limits(conn, project)

    async def delete_limit(self, project: str, key: str) -> None:
        """Delete a limit; actions that waited on it are admitted (nothing limits them any more)."""
        async with self.db.write() as conn:
            waiting = await self.slots.delete_limit(conn, project, key)
        for action_pk in waiting:
            await self._admit_pk(action_pk)

    async def _admit_pk(self, action_pk: int) -> None:
        async def run(conn: AsyncConnection, tx: _Tx) -> None:
            lk = await self.writes.lock_action_pk(conn, action_pk)
            if lk is None or lk.current_phase is not Phase.WAITING_FOR_RESOURCES:
                return
            rep = ActionReport(lk.run_id, lk.name, max(lk.attempts, 1), Phase.RUNNING)
            d = decide(lk.state, Report(rep.attempt, Phase.RUNNING), strict=False)
            self._count("admission", d, lk, rep)
            if d.applies:
                await self._step(conn, tx, lk, rep, d, utcnow())

        await self._write(run)

    # -- logs --------------------------------------------------------------------------------

    async def append_logs(self, run_id: RunId, action: str, attempt: int, lines: Sequence[LogLine]) -> int:
        return await self.logs.append(run_id, action, attempt, lines)

    async def read_logs(
        self, run_id: RunId, action: str, attempt: int, *, after: int = 0, limit: int = 500
    ) -> LogPage:
        return await self.logs.read(run_id, action, attempt, after=after, limit=limit)

    def follow_logs(self, run_id: RunId, action: str, attempt: int, *, after: int = 0) -> AsyncIterator[LogLine]:
        return self.logs.follow(run_id, action, attempt, after=after)

    async def _admit_one(self, limit_id: int, skip: set[int]) -> int | None:
        async def run(conn: AsyncConnection, tx: _Tx) -> int | None:
            pk = await self.slots.next_waiter(conn, limit_id, skip)
            if pk is None:
                return None
            lk = await self.writes.lock_action_pk(conn, pk)
            if lk is None:
                skip.add(pk)
                return 0
            rep = ActionReport(lk.run_id, lk.name, max(lk.attempts, 1), Phase.RUNNING)
            d = decide(lk.state, Report(rep.attempt, Phase.RUNNING), strict=False)
            self._count("admission", d, lk, rep)
            if not d.applies:
                await self.slots.release(conn, pk)  # it ended (or moved on) while waiting
                return 0
            _, result = await self._step(conn, tx, lk, rep, d, utcnow())
            if result.phase is not Phase.RUNNING:
                return None  # the slot was taken meanwhile; wait for the next release
            return 1

        return await self._write(run)


def _unchanged(d: Decision, lk: Locked) -> ReportResult:
    """The result of a report the rules did not apply (duplicate, stale or conflict)."""
    return ReportResult(d.outcome, d.reason.value, d.message, lk.phase, lk.attempts)


def _subtree(locked: list[Locked], action: str, run_id: RunId) -> list[Locked]:
    names = {lk.name for lk in locked}
    if action not in names:
        raise NotFound(f"action {action!r} of run {run_id} not found")
    wanted = {action}
    grew = True
    while grew:
        grew = False
        for lk in locked:
            if lk.name not in wanted and lk.parent in wanted:
                wanted.add(lk.name)
                grew = True
    return [lk for lk in locked if lk.name in wanted]
