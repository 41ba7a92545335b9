"""Run use cases: create, read."""

from __future__ import annotations

from runtrack.clock import utcnow
from runtrack.domain.models import Action, NewRun, Run, RunId
from runtrack.storage.db import Database
from runtrack.storage.repository import Repository


class RunsService:
    def __init__(self, db: Database, repo: Repository) -> None:
        self.db = db
        self.repo = repo

    async def create_run(self, new: NewRun) -> Run:
        async with self.db.write() as conn:
            return await self.repo.runs.insert_run(conn, new, utcnow())

    async def get_run(self, run_id: RunId) -> Run:
        async with self.db.read() as conn:
            return await self.repo.runs.get_run(conn, run_id)

    async def get_action(self, run_id: RunId, name: str) -> Action:
        async with self.db.read() as conn:
            return await self.repo.runs.get_action(conn, run_id, name)

    async def list_actions(self, run_id: RunId, *, limit: int = 1000, after_pk: int = 0) -> list[Action]:
        async with self.db.read() as conn:
            return await self.repo.runs.list_actions(conn, run_id, limit=limit, after_pk=after_pk)
