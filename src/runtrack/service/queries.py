"""Query use cases: list and count runs, list a run's actions, list tasks — one filter language.

Filters arrive as AST trees from any front door. The service validates them against the
allowlist of the listed entity (so a tree built by hand is checked as strictly as a parsed one)
and reads in one transaction.
"""

from __future__ import annotations

from dataclasses import replace

from runtrack.domain.filters import ACTION_FIELDS, RUN_FIELDS, TASK_FIELDS, Node, validate
from runtrack.domain.models import Action, Run, RunId, Task
from runtrack.domain.query import Page, RunQuery, Sort, check_limit
from runtrack.storage import queries
from runtrack.storage.db import Database

ACTIONS_DEFAULT_SORT = Sort("created_at", descending=False)
TASKS_DEFAULT_SORT = Sort("created_at", descending=True)


class QueriesService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_runs(self, q: RunQuery) -> Page[Run]:
        """A page of runs. ``q.filter`` must already have ``me`` resolved (front doors do it)."""
        check_limit(q.limit)
        q = replace(q, filter=validate(q.filter, RUN_FIELDS))
        async with self.db.read() as conn:
            return await queries.list_runs(conn, q)

    async def count_runs(self, filter: Node | None) -> int:
        node = validate(filter, RUN_FIELDS)
        async with self.db.read() as conn:
            return await queries.count_runs(conn, node)

    async def list_actions(
        self,
        run_id: RunId,
        filter: Node | None = None,
        limit: int = 100,
        cursor: str | None = None,
        *,
        sort: Sort = ACTIONS_DEFAULT_SORT,
        offset: int | None = None,
    ) -> Page[Action]:
        """A page of one run's actions (creation order by default); NotFound if the run is missing."""
        check_limit(limit)
        q = RunQuery(filter=validate(filter, ACTION_FIELDS), sort=sort, limit=limit, cursor=cursor, offset=offset)
        async with self.db.read() as conn:
            return await queries.list_actions(conn, run_id, q)

    async def count_tasks(self, filter: Node | None) -> int:
        node = validate(filter, TASK_FIELDS)
        async with self.db.read() as conn:
            return await queries.count_tasks(conn, node)

    async def list_tasks(self, q: RunQuery, *, latest_only: bool = False) -> Page[Task]:
        """A page of deployed task versions (filter fields: ``TASK_FIELDS``)."""
        check_limit(q.limit)
        q = replace(q, filter=validate(q.filter, TASK_FIELDS))
        async with self.db.read() as conn:
            return await queries.list_tasks(conn, q, latest_only=latest_only)
