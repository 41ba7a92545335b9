"""Deleting runs: one by identity, or in bulk by filter (newest first, at most 200 at a time).

A run goes in one transaction with everything that hangs off it (actions, attempts, transitions,
cluster events, labels, held concurrency slots: the schema cascades); the concurrency slots it
held are handed to waiting actions in that same transaction. Its log lines are queued for the
background cleanup in that transaction too, and removed after the response
(:mod:`runtrack.service.cleanup`). Runs not yet terminal are skipped unless ``force``, which aborts
them first (through the executor's abort, so every phase change goes through the transition rules).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from runtrack.clock import utcnow
from runtrack.domain.filters import RUN_FIELDS, And, Node, Op, Pred, and_, validate
from runtrack.domain.models import RunId
from runtrack.domain.phases import TERMINAL
from runtrack.errors import Conflict, InvalidArgument, NotFound
from runtrack.service.notifier import Change, Notifier
from runtrack.storage.db import Database
from runtrack.storage.fleet import FleetStore, RunRef

log = logging.getLogger("runtrack.delete")

MAX_BULK_DELETE = 200
_TERMINAL_VALUES = tuple(sorted(TERMINAL))


class RunAborter(Protocol):
    async def abort_run(self, run_id: RunId, reason: str, by: str) -> object: ...


class SlotAdmitter(Protocol):
    async def admit_waiting(self, limit_ids: set[int] | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class Skipped:
    run: RunId
    reason: str


@dataclass(frozen=True, slots=True)
class DeleteResult:
    deleted: list[RunId] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    dry_run: bool = False


def _not_terminal(ref: RunRef) -> str:
    return f"run is {ref.phase.name}, not terminal; abort it first or delete with force"


def _passed_over(node: Node, doomed: Sequence[RunRef], limit: int) -> Node:
    """The matching runs not yet terminal that a batch passed over: when the batch is full, those
    no older than its oldest run (the next batch reports the rest); otherwise all of them."""
    active = and_(node, Pred("phase", Op.NOT_IN, _TERMINAL_VALUES))
    if len(doomed) >= limit:
        active = and_(active, Pred("created_at", Op.GTE, doomed[-1].created_at))
    assert active is not None
    return active


def _is_empty(node: Node) -> bool:
    """An ``and`` of nothing (also nested): a filter that says nothing."""
    return isinstance(node, And) and all(_is_empty(i) for i in node.items)


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_BULK_DELETE:
        raise InvalidArgument(f"limit: must be between 1 and {MAX_BULK_DELETE}, got {limit}")
    return limit


class DeleteService:
    def __init__(
        self,
        db: Database,
        store: FleetStore,
        notifier: Callable[[], Notifier],
        *,
        aborter: RunAborter | None = None,
        admitter: SlotAdmitter | None = None,
        on_deleted: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.db = db
        self.store = store
        self.notifier = notifier  # looked up at publish time
        self.aborter = aborter
        self.admitter = admitter
        self.on_deleted = tuple(on_deleted)  # e.g. wake the log cleanup, drop cached stats

    async def bulk_delete(
        self,
        node: Node | None,
        *,
        limit: int = MAX_BULK_DELETE,
        dry_run: bool = False,
        force: bool = False,
        by: str = "",
        lock_key: int | None = None,
    ) -> DeleteResult:
        """Delete at most ``limit`` runs matching ``node`` (resolved), newest first.

        ``lock_key`` (PostgreSQL) makes the call a no-op when another transaction holds that
        advisory lock: background jobs use it so that only one replica works at a time.
        """
        node = validate(node, RUN_FIELDS)
        if node is None or _is_empty(node):
            raise InvalidArgument(
                "filter: a non-empty filter is required to delete runs (deleting everything takes an explicit filter)"
            )
        check_limit(limit)
        if force:
            return await self._bulk_force(node, limit, dry_run, by)
        done = and_(node, Pred("phase", Op.IN, _TERMINAL_VALUES))
        if dry_run:
            async with self.db.read() as conn:
                doomed = await self.store.select_runs(conn, done, limit=limit)
                busy = await self.store.select_runs(conn, _passed_over(node, doomed, limit), limit=limit)
            return DeleteResult([r.id for r in doomed], [Skipped(r.id, _not_terminal(r)) for r in busy], True)
        async with self.db.write() as conn:
            if lock_key is not None and not await self.store.try_advisory_xact_lock(conn, lock_key):
                return DeleteResult()
            doomed = await self.store.select_runs(conn, done, limit=limit, lock=True)
            busy = await self.store.select_runs(conn, _passed_over(node, doomed, limit), limit=limit)
            freed = await self._delete_locked(conn, doomed)
        await self._after_delete(doomed, freed)
        return DeleteResult([r.id for r in doomed], [Skipped(r.id, _not_terminal(r)) for r in busy])

    async def _bulk_force(self, node: Node, limit: int, dry_run: bool, by: str) -> DeleteResult:
        async with self.db.read() as conn:
            candidates = await self.store.select_runs(conn, node, limit=limit)
        if dry_run:
            return DeleteResult([r.id for r in candidates], [], True)
        for ref in candidates:
            if not ref.phase.terminal:
                await self._abort(ref.id, by)
        skipped: list[Skipped] = []
        async with self.db.write() as conn:
            locked = await self.store.lock_runs_by_pk(conn, [r.pk for r in candidates])
            doomed = [r for r in locked if r.phase.terminal]
            skipped = [Skipped(r.id, _not_terminal(r)) for r in locked if not r.phase.terminal]
            freed = await self._delete_locked(conn, doomed)
        await self._after_delete(doomed, freed)
        return DeleteResult([r.id for r in doomed], skipped)

    async def delete_run(self, run_id: RunId, *, force: bool = False, by: str = "") -> None:
        """Delete one run: NotFound if missing, Conflict if not terminal (unless ``force``)."""
        ref = await self._ref(run_id)
        if not ref.phase.terminal:
            if not force:
                raise Conflict(f"run {run_id} is {ref.phase.name}, not terminal; abort it first or use force=true")
            await self._abort(run_id, by)
        async with self.db.write() as conn:
            locked = await self.store.lock_runs_by_pk(conn, [ref.pk], skip_locked=False)
            if not locked:
                raise NotFound(f"run {run_id} not found")
            if not locked[0].phase.terminal:
                raise Conflict(f"run {run_id} is {locked[0].phase.name}, not terminal")
            freed = await self._delete_locked(conn, locked)
        await self._after_delete(locked, freed)

    async def _ref(self, run_id: RunId) -> RunRef:
        async with self.db.read() as conn:
            ref = await self.store.run_ref(conn, run_id)
        if ref is None:
            raise NotFound(f"run {run_id} not found")
        return ref

    async def _abort(self, run_id: RunId, by: str) -> None:
        if self.aborter is None:
            raise Conflict(f"run {run_id} is not terminal and this server cannot abort runs")
        try:
            await self.aborter.abort_run(run_id, "deleted", by or "runtrack")
        except NotFound:
            pass  # deleted meanwhile: nothing left to abort

    async def _delete_locked(self, conn: AsyncConnection, doomed: Sequence[RunRef]) -> set[int]:
        """Delete locked runs (their slots and places in slot queues go with their actions);
        the limits in which they held slots."""
        if not doomed:
            return set()
        pks = [r.pk for r in doomed]
        freed = set(await self.store.held_limit_ids(conn, pks))
        await self.store.delete_runs(conn, pks, utcnow())
        return freed

    async def _after_delete(self, doomed: Sequence[RunRef], freed: set[int]) -> None:
        """After the commit: wake the log cleanup, admit waiters into freed slots, publish."""
        if not doomed:
            return
        log.info("runs deleted", extra={"fields": {"count": len(doomed)}})
        for hook in self.on_deleted:
            hook()
        if freed and self.admitter is not None:
            try:
                await self.admitter.admit_waiting(freed)
            except Exception:  # a later release or admission pass picks them up
                log.exception("admitting waiters after a delete failed")
        try:
            await self.notifier().publish(
                [Change(run_pk=r.pk, run_id=r.id, run_version=r.version + 1, deleted=True) for r in doomed]
            )
        except Exception:
            log.exception("publishing deletions failed")
