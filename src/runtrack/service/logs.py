"""Attempt logs: executors append lines, readers page through them or follow them live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from runtrack.domain.models import RunId
from runtrack.domain.reports import LogLine, LogPage
from runtrack.errors import InvalidArgument
from runtrack.storage.db import Database
from runtrack.storage.logs import LogStore

MAX_PAGE = 5000


class LogService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.store = LogStore()

    async def append(self, run_id: RunId, action: str, attempt: int, lines: Sequence[LogLine]) -> int:
        _check_attempt(attempt)
        async with self.db.write() as conn:
            run_pk = await self.store.locate(conn, run_id, action)
            return await self.store.append(conn, run_pk, action, attempt, lines)

    async def read(self, run_id: RunId, action: str, attempt: int, *, after: int = 0, limit: int = 500) -> LogPage:
        _check_attempt(attempt)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        if after < 0:
            raise InvalidArgument(f"after must be 0 or more, got {after}")
        async with self.db.read() as conn:
            run_pk = await self.store.locate(conn, run_id, action)
            terminal = await self.store.attempt_finished(conn, run_pk, action, attempt)
            lines = await self.store.read(conn, run_pk, action, attempt, after=after, limit=limit)
        next_after = lines[-1].id if lines else after
        return LogPage(lines=tuple(lines), next_after=next_after, terminal=terminal and len(lines) < limit)

    async def follow(
        self, run_id: RunId, action: str, attempt: int, *, after: int = 0, poll_s: float = 0.2
    ) -> AsyncIterator[LogLine]:
        """Every line after ``after``, then new ones as they arrive; ends once the attempt has ended."""
        while True:
            page = await self.read(run_id, action, attempt, after=after, limit=MAX_PAGE)
            for line in page.lines:
                yield line
            after = page.next_after
            if page.terminal:
                return
            if not page.lines:
                await asyncio.sleep(poll_s)


def _check_attempt(attempt: int) -> None:
    if attempt < 1:
        raise InvalidArgument(f"attempt must be 1 or more, got {attempt}")
