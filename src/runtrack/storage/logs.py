"""Log lines of attempts: executors append them, readers page through or tail them by line id."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runtrack.domain.models import RunId
from runtrack.domain.phases import TERMINAL, Phase
from runtrack.domain.reports import LogLine
from runtrack.errors import NotFound
from runtrack.storage.repository import run_key
from runtrack.storage.tables import actions, attempts, log_lines, runs


class LogStore:
    async def locate(self, conn: AsyncConnection, run_id: RunId, action: str) -> int:
        """The run's pk, after checking that the action exists (NotFound names what is missing)."""
        row = (
            await conn.execute(
                sa.select(runs.c.id, actions.c.id.label("action_pk"))
                .select_from(runs.outerjoin(actions, sa.and_(actions.c.run_id == runs.c.id, actions.c.name == action)))
                .where(run_key(run_id))
            )
        ).first()
        if row is None:
            raise NotFound(f"run {run_id} not found")
        if row.action_pk is None:
            raise NotFound(f"action {action!r} of run {run_id} not found")
        return int(row.id)

    async def append(
        self, conn: AsyncConnection, run_pk: int, action: str, attempt: int, lines: Sequence[LogLine]
    ) -> int:
        if not lines:
            return 0
        await conn.execute(
            log_lines.insert(),
            [
                {
                    "run_id": run_pk,
                    "action_name": action,
                    "attempt": attempt,
                    "ts": ln.ts,
                    "stream": ln.stream,
                    "message": ln.message,
                }
                for ln in lines
            ],
        )
        return len(lines)

    async def read(
        self, conn: AsyncConnection, run_pk: int, action: str, attempt: int, *, after: int, limit: int
    ) -> list[LogLine]:
        result = await conn.execute(
            sa.select(log_lines.c.id, log_lines.c.ts, log_lines.c.stream, log_lines.c.message)
            .where(
                log_lines.c.run_id == run_pk,
                log_lines.c.action_name == action,
                log_lines.c.attempt == attempt,
                log_lines.c.id > after,
            )
            .order_by(log_lines.c.id)
            .limit(limit)
        )
        return [LogLine(ts=r.ts, message=r.message, stream=r.stream, id=r.id) for r in result]

    async def attempt_finished(self, conn: AsyncConnection, run_pk: int, action: str, attempt: int) -> bool:
        """The attempt has ended: its phase is terminal, or the action ended without it."""
        row = (
            await conn.execute(
                sa.select(actions.c.phase, actions.c.attempts, attempts.c.phase.label("attempt_phase"))
                .select_from(
                    actions.outerjoin(
                        attempts, sa.and_(attempts.c.action_id == actions.c.id, attempts.c.attempt == attempt)
                    )
                )
                .where(actions.c.run_id == run_pk, actions.c.name == action)
            )
        ).one_or_none()
        if row is None:
            return True
        if row.attempt_phase is not None:
            return Phase(row.attempt_phase) in TERMINAL
        return Phase(row.phase) in TERMINAL and row.attempts < attempt
