"""The durable log cleanup: removes the log lines of deleted runs, after the delete has answered.

Deleting a run inserts a ``cleanup_jobs`` row in the delete's own transaction, so a crash between
the delete and the cleanup leaves work to resume, never orphaned lines. The worker removes one
run's lines and its job row in one transaction (so each run's logs are cleaned once); on
PostgreSQL jobs are claimed with ``FOR UPDATE SKIP LOCKED`` so that replicas share the queue
instead of repeating each other. It drains on start (leftovers of a crash), whenever a delete
wakes it, and every ``poll_s`` seconds (jobs queued by other replicas or by ``runtrack gc``).
With ``delay`` (config ``logCleanupDelay``) a deleted run's lines are kept that long first.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from runtrack.clock import utcnow
from runtrack.storage.db import Database
from runtrack.storage.fleet import CleanupStore

log = logging.getLogger("runtrack.cleanup")


class LogCleanup:
    def __init__(
        self, db: Database, store: CleanupStore, *, poll_s: float = 10.0, delay: timedelta = timedelta(0)
    ) -> None:
        self.db = db
        self.store = store
        self.delay = delay
        self.poll_s = min(poll_s, delay.total_seconds()) if delay > timedelta(0) else poll_s
        self._wake = asyncio.Event()
        self.cleaned_runs = 0
        self.deleted_lines = 0

    def wake(self) -> None:
        """Ask the worker to drain now (called after a delete commits)."""
        self._wake.set()

    async def clean_one(self) -> bool:
        """Clean the logs of one deleted run; False when the queue is empty (or all claimed)."""
        async with self.db.write() as conn:
            jobs = await self.store.claim(conn, 1, queued_before=utcnow() - self.delay)
            if not jobs:
                return False
            job = jobs[0]
            lines = await self.store.delete_log_lines(conn, job.run_pk)
            await self.store.finish(conn, job.id)
        self.cleaned_runs += 1
        self.deleted_lines += lines
        return True

    async def drain(self) -> int:
        """Clean until the queue is empty; the number of runs cleaned."""
        n = 0
        while await self.clean_one():
            n += 1
        if n:
            log.info("deleted runs' logs cleaned", extra={"fields": {"runs": n}})
        return n

    async def pending(self) -> int:
        async with self.db.read() as conn:
            return await self.store.pending(conn)

    async def run_forever(self) -> None:
        """The background loop: drain now (resuming leftovers), then on every wake-up or poll."""
        while True:
            self._wake.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log cleanup failed; retrying in %.0fs", self.poll_s)
            try:
                async with asyncio.timeout(self.poll_s):  # no helper task (unlike wait_for in 3.11)
                    await self._wake.wait()
            except TimeoutError:
                pass
