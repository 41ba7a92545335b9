"""Retention: delete terminal runs older than a cutoff, in batches (background loop and ``gc``).

A run has expired when it was created more than ``older_than`` ago and its phase is one of
``phases`` (terminal phases only). The expiry is an ordinary filter (``created_at < cutoff AND
phase IN (...)``), so it goes through the same compiler and the same delete path as a bulk delete.

Several replicas: each batch is one transaction that first tries a PostgreSQL advisory lock; a
replica that does not get it ends its round (another one is working). The row locks of the delete
(``FOR UPDATE SKIP LOCKED``) would keep concurrent rounds apart anyway; the advisory lock only
saves them the duplicate work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from runtrack.clock import utcnow
from runtrack.config import Retention
from runtrack.domain.filters import Node, Op, Pred, and_
from runtrack.domain.phases import Phase, parse_phase
from runtrack.errors import InvalidArgument
from runtrack.service.delete import MAX_BULK_DELETE, DeleteService
from runtrack.service.stats import StatsService
from runtrack.storage.fleet import RETENTION_LOCK_KEY

log = logging.getLogger("runtrack.retention")


@dataclass(frozen=True, slots=True)
class GcResult:
    matched: int
    deleted: int
    dry_run: bool
    cutoff: datetime


def expired_filter(older_than: timedelta, phases: Iterable[str | Phase], now: datetime) -> Node:
    """``created_at < now - older_than AND phase IN phases`` (terminal phases only)."""
    parsed = parse_phases(phases)
    if not parsed:
        raise InvalidArgument("phases: at least one phase is required")
    active = [p.name for p in parsed if not p.terminal]
    if active:
        raise InvalidArgument(f"phases: only terminal phases expire, not {', '.join(active)}")
    if older_than <= timedelta(0):
        raise InvalidArgument("older_than: must be a positive duration")
    node = and_(Pred("created_at", Op.LT, now - older_than), Pred("phase", Op.IN, parsed))
    assert node is not None
    return node


def parse_phases(phases: Iterable[str | Phase]) -> tuple[Phase, ...]:
    """Phase names (also comma-separated) or phases, deduplicated and ordered."""
    out: set[Phase] = set()
    for p in phases:
        if isinstance(p, Phase):
            out.add(p)
            continue
        out.update(parse_phase(part.strip(), field="phases") for part in p.split(",") if part.strip())
    return tuple(sorted(out))


class RetentionService:
    def __init__(self, deletes: DeleteService, stats: StatsService) -> None:
        self.deletes = deletes
        self.stats = stats

    async def count_expired(self, node: Node) -> int:
        return (await self.stats.uncached(node)).total_runs

    async def gc(
        self,
        older_than: timedelta,
        phases: Iterable[str | Phase],
        *,
        dry_run: bool = False,
        batch: int = MAX_BULK_DELETE,
        exclusive: bool = False,
        on_start: Callable[[int], None] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> GcResult:
        """Delete expired runs in batches until none is left (or, ``exclusive``, another replica
        holds the retention lock). ``on_start`` gets the number matched, ``on_batch`` each batch's."""
        now = utcnow()
        node = expired_filter(older_than, phases, now)
        matched = await self.count_expired(node)
        if on_start is not None:
            on_start(matched)
        if dry_run:
            return GcResult(matched, 0, True, now - older_than)
        deleted = 0
        while True:
            result = await self.deletes.bulk_delete(
                node, limit=batch, by="retention", lock_key=RETENTION_LOCK_KEY if exclusive else None
            )
            if not result.deleted:
                break
            deleted += len(result.deleted)
            if on_batch is not None:
                on_batch(len(result.deleted))
        return GcResult(matched, deleted, False, now - older_than)

    async def run_round(self, policy: Retention) -> int:
        """One background round of the configured policy; the number of runs deleted."""
        result = await self.gc(policy.older_than, policy.phases, exclusive=True)
        if result.deleted:
            log.info("expired runs deleted", extra={"fields": {"count": result.deleted}})
        return result.deleted
