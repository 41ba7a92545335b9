"""The service container: built once at start-up from settings, handed to the transports."""

from __future__ import annotations

from dataclasses import dataclass, field

from runtrack.config import Settings
from runtrack.service.executor import ExecutorService
from runtrack.service.notifier import Notifier, NullNotifier
from runtrack.service.queries import QueriesService
from runtrack.service.runs import RunsService
from runtrack.service.tasks import TasksService
from runtrack.storage.db import Database, create_database
from runtrack.storage.repository import Repository


@dataclass
class Services:
    settings: Settings
    db: Database
    repo: Repository
    runs: RunsService
    notifier: Notifier
    queries: QueriesService
    tasks: TasksService
    executor: ExecutorService = field(init=False)

    def __post_init__(self) -> None:
        # The notifier is looked up at publish time, so a fan-out wired in later is used.
        self.executor = ExecutorService(self.db, self.repo, self.settings, lambda: self.notifier)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = create_database(settings)
        repo = Repository()
        notifier: Notifier = NullNotifier()
        return cls(
            settings=settings,
            db=db,
            repo=repo,
            runs=RunsService(db, repo),
            notifier=notifier,
            queries=QueriesService(db),
            tasks=TasksService(db),
        )

    async def close(self) -> None:
        await self.db.dispose()
