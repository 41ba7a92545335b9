"""The service container: built once at start-up from settings, handed to the transports."""

from __future__ import annotations

from dataclasses import dataclass

from runtrack.config import Settings
from runtrack.service.cleanup import LogCleanup
from runtrack.service.delete import DeleteService
from runtrack.service.notifier import Notifier, NullNotifier
from runtrack.service.queries import QueriesService
from runtrack.service.retention import RetentionService
from runtrack.service.runs import RunsService
from runtrack.service.stats import StatsService
from runtrack.storage.db import Database, create_database
from runtrack.storage.fleet import CleanupStore, FleetStore
from runtrack.storage.repository import Repository


@dataclass
class Services:
    settings: Settings
    db: Database
    repo: Repository
    runs: RunsService
    notifier: Notifier
    queries: QueriesService
    stats: StatsService
    deletes: DeleteService
    log_cleanup: LogCleanup
    retention: RetentionService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = create_database(settings)
        repo = Repository()
        notifier: Notifier = NullNotifier()
        fleet = FleetStore()
        stats = StatsService(
            db, fleet, ttl_s=settings.stats_cache_ttl.total_seconds(), max_size=settings.stats_cache_size
        )
        log_cleanup = LogCleanup(db, CleanupStore(), delay=settings.log_cleanup_delay)
        deletes = DeleteService(db, fleet, notifier, on_deleted=log_cleanup.wake)
        return cls(
            settings=settings,
            db=db,
            repo=repo,
            runs=RunsService(db, repo),
            notifier=notifier,
            queries=QueriesService(db),
            stats=stats,
            deletes=deletes,
            log_cleanup=log_cleanup,
            retention=RetentionService(deletes, stats),
        )

    async def close(self) -> None:
        await self.db.dispose()
