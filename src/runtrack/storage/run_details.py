"""A run and its root action (with attempts) read together: what a run's details page needs.

One statement fetches the run joined to its root action; the attempts (with their transitions and
cluster events) follow only when there are any.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runtrack.domain.models import ROOT_ACTION, Action, Run, RunId
from runtrack.errors import NotFound
from runtrack.storage import rows
from runtrack.storage.repository import RunStore, run_key
from runtrack.storage.tables import actions, runs

_RUN_COLS = [c.label(f"r_{c.key}") for c in runs.c]
_ACTION_COLS = [c.label(f"a_{c.key}") for c in actions.c]
_STMT = sa.select(*_RUN_COLS, *_ACTION_COLS).select_from(
    runs.join(actions, sa.and_(actions.c.run_id == runs.c.id, actions.c.name == ROOT_ACTION))
)


async def get_run_with_root(conn: AsyncConnection, store: RunStore, run_id: RunId) -> tuple[Run, Action]:
    row = (await conn.execute(_STMT.where(run_key(run_id)))).one_or_none()
    if row is None:
        raise NotFound(f"run {run_id} not found")
    m = row._mapping
    run_row = {c.key: m[f"r_{c.key}"] for c in runs.c}
    action_row = {c.key: m[f"a_{c.key}"] for c in actions.c}
    attempt_list = await store.attempts_of(conn, action_row["id"])
    return rows.run_from_row(run_row), rows.action_from_row(run_id, action_row, attempt_list)
