"""The service container: built once at start-up from settings, handed to the transports."""

from __future__ import annotations

from dataclasses import dataclass, field

from runtrack.config import Settings
from runtrack.service.cleanup import LogCleanup
from runtrack.service.delete import DeleteService
from runtrack.service.executor import ExecutorService
from runtrack.service.fanout_local import LocalNotifier
from runtrack.service.fanout_pg import PgNotifier
from runtrack.service.notifier import Notifier
from runtrack.service.queries import QueriesService
from runtrack.service.retention import RetentionService
from runtrack.service.runs import RunsService
from runtrack.service.stats import StatsService
from runtrack.service.tasks import TasksService
from runtrack.service.watch import WatchHub
from runtrack.service.watch_streams import WatchService
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
    tasks: TasksService
    fanout: LocalNotifier | PgNotifier
    watch: WatchService
    executor: ExecutorService = field(init=False)
    stats: StatsService = field(init=False)
    deletes: DeleteService = field(init=False)
    log_cleanup: LogCleanup = field(init=False)
    retention: RetentionService = field(init=False)

    def __post_init__(self) -> None:
        # The notifier is looked up at publish time, so a fan-out wired in later is used.
        self.executor = ExecutorService(self.db, self.repo, self.settings, lambda: self.notifier)
        fleet = FleetStore()
        self.stats = StatsService(
            self.db, fleet, ttl_s=self.settings.stats_cache_ttl.total_seconds(), max_size=self.settings.stats_cache_size
        )
        self.log_cleanup = LogCleanup(self.db, CleanupStore(), delay=self.settings.log_cleanup_delay)
        self.deletes = DeleteService(
            self.db,
            fleet,
            lambda: self.notifier,
            aborter=self.executor,
            admitter=self.executor,
            on_deleted=(self.log_cleanup.wake, self.stats.invalidate),
        )
        self.retention = RetentionService(self.deletes, self.stats)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = create_database(settings)
        repo = Repository()
        queries = QueriesService(db)
        hub = WatchHub()
        fanout: LocalNotifier | PgNotifier = LocalNotifier(hub)
        if db.is_postgres:
            fanout = PgNotifier(hub, settings.database_url)
        return cls(
            settings=settings,
            db=db,
            repo=repo,
            runs=RunsService(db, repo),
            notifier=fanout,
            queries=queries,
            tasks=TasksService(db),
            fanout=fanout,
            watch=WatchService(db, repo, hub, list_runs=queries.list_runs),
        )

    async def close(self) -> None:
        await self.fanout.stop()
        await self.db.dispose()
