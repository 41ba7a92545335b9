"""Run use cases: create, read."""

from __future__ import annotations

from dataclasses import replace

from runtrack.clock import utcnow
from runtrack.domain.models import Action, NewRun, Run, RunId
from runtrack.errors import AlreadyExists
from runtrack.service.run_names import generate_run_name
from runtrack.storage import run_details
from runtrack.storage.db import Database
from runtrack.storage.repository import Repository


class RunsService:
    def __init__(self, db: Database, repo: Repository) -> None:
        self.db = db
        self.repo = repo

    async def create_run(self, new: NewRun) -> Run:
        async with self.db.write() as conn:
            return await self.repo.runs.insert_run(conn, new, utcnow())

    async def create_run_generated_name(self, new: NewRun, *, attempts: int = 5) -> Run:
        """Create ``new`` under a freshly generated name (its ``id.name`` is ignored); retried on a
        name collision."""
        for attempt in range(attempts):
            candidate = replace(new, id=replace(new.id, name=generate_run_name()))
            try:
                return await self.create_run(candidate)
            except AlreadyExists:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    async def get_run(self, run_id: RunId) -> Run:
        async with self.db.read() as conn:
            return await self.repo.runs.get_run(conn, run_id)

    async def get_run_with_root(self, run_id: RunId) -> tuple[Run, Action]:
        """A run and its root action (with attempts), read in one transaction."""
        async with self.db.read() as conn:
            return await run_details.get_run_with_root(conn, self.repo.runs, run_id)

    async def get_action(self, run_id: RunId, name: str) -> Action:
        async with self.db.read() as conn:
            return await self.repo.runs.get_action(conn, run_id, name)

    async def list_actions(self, run_id: RunId, *, limit: int = 1000, after_pk: int = 0) -> list[Action]:
        async with self.db.read() as conn:
            return await self.repo.runs.list_actions(conn, run_id, limit=limit, after_pk=after_pk)
