"""Task use cases: deploy a version, read one, list tasks and a task's versions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from runtrack.clock import utcnow
from runtrack.domain.filters import Node
from runtrack.domain.models import Task
from runtrack.storage.db import Database
from runtrack.storage.tasks import TaskKey, TaskScope, TaskStore


def spec_hash(spec: Any) -> str:
    """A stable hash of a JSON spec (key order does not matter)."""
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TaskQuery:
    scope: TaskScope
    filter: Node | None = None
    descending: bool = True
    limit: int = 50
    token: str | None = None


class TasksService:
    def __init__(self, db: Database, store: TaskStore | None = None) -> None:
        self.db = db
        self.store = store or TaskStore()

    async def deploy(self, key: TaskKey, spec: Any, *, by: str = "") -> tuple[Task, bool]:
        """Deploy ``key`` with ``spec``: ``(task, created)``; AlreadyExists for another spec."""
        async with self.db.write() as conn:
            return await self.store.deploy(conn, key, spec, spec_hash(spec), by, utcnow())

    async def get(self, key: TaskKey) -> Task:
        async with self.db.read() as conn:
            return await self.store.get(conn, key)
