"""Retention: expired terminal runs go in batches; replicas do not work the same round twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from runtrack.config import Retention
from runtrack.domain.phases import Phase
from runtrack.errors import InvalidArgument, NotFound
from runtrack.service.container import Services
from runtrack.storage.fleet import RETENTION_LOCK_KEY
from tests.fleet_seed import days_ago, rid, seed_run, total_rows

TERMINAL = ["SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"]
DAYS_30 = timedelta(days=30)


async def seed_ages(svc: Services) -> None:
    for i, phase in enumerate([Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED, Phase.TIMED_OUT, Phase.SUCCEEDED]):
        await seed_run(svc, f"old{i}", phase=phase, created_at=days_ago(40 + i), actions_n=1)
    await seed_run(svc, "old-running", phase=Phase.RUNNING, created_at=days_ago(60), actions_n=1)
    await seed_run(svc, "old-recovered", phase=Phase.RECOVERED, created_at=days_ago(60), actions_n=1)
    await seed_run(svc, "young", phase=Phase.SUCCEEDED, created_at=days_ago(29), actions_n=1)


async def test_gc_deletes_expired_terminal_runs_in_batches(services: Services) -> None:
    await seed_ages(services)
    batches: list[int] = []
    started: list[int] = []
    result = await services.retention.gc(DAYS_30, TERMINAL, batch=2, on_start=started.append,
                                         on_batch=batches.append)
    assert result.matched == 5 and result.deleted == 5 and batches == [2, 2, 1] and started == [5]
    for i in range(5):
        with pytest.raises(NotFound):
            await services.runs.get_run(rid(f"old{i}"))
    for kept in ("old-running", "old-recovered", "young"):
        await services.runs.get_run(rid(kept))
    assert (await total_rows(services))["cleanup_jobs"] == 5
    await services.log_cleanup.drain()
    assert (await total_rows(services))["log_lines"] == 3 * 2


async def test_gc_dry_run_counts_and_deletes_nothing(services: Services) -> None:
    await seed_ages(services)
    before = await total_rows(services)
    result = await services.retention.gc(DAYS_30, ["succeeded,failed"], dry_run=True)
    assert result.dry_run and result.matched == 3 and result.deleted == 0
    assert await total_rows(services) == before


@pytest.mark.parametrize(
    ("phases", "older", "match"),
    [(["RUNNING"], DAYS_30, "only terminal"), (["SLEEPING"], DAYS_30, "SLEEPING"), ([], DAYS_30, "at least one"),
     (TERMINAL, timedelta(0), "positive")],
)
async def test_gc_rejects_bad_policies(services: Services, phases: list[str], older: timedelta, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        await services.retention.gc(older, phases)


async def test_a_round_yields_to_a_replica_holding_the_lock(services: Services) -> None:
    if not services.db.is_postgres:
        pytest.skip("SQLite has one writer at a time; the advisory lock is PostgreSQL's")
    await seed_ages(services)
    policy = Retention(older_than=DAYS_30, phases=tuple(TERMINAL), interval=timedelta(hours=1))
    holding = asyncio.Event()
    release = asyncio.Event()

    async def other_replica() -> None:
        async with services.db.write() as conn:
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(RETENTION_LOCK_KEY)))
            holding.set()
            await release.wait()

    task = asyncio.create_task(other_replica())
    await holding.wait()
    assert await services.retention.run_round(policy) == 0
    release.set()
    await task
    assert await services.retention.run_round(policy) == 5


async def test_concurrent_rounds_delete_each_run_once(services: Services) -> None:
    for i in range(25):
        await seed_run(services, f"e{i}", created_at=days_ago(31 + i), actions_n=1, logs_per_action=0)
    policy = Retention(older_than=DAYS_30, phases=tuple(TERMINAL), interval=timedelta(hours=1))
    rounds = await asyncio.gather(*(services.retention.run_round(policy) for _ in range(3)))
    left = await services.queries.count_runs(None)
    # A round that found the lock taken ends early; what is left is picked up by the next round.
    rest = await services.retention.run_round(policy)
    assert sum(rounds) + rest == 25 and left == 25 - sum(rounds)
    assert (await total_rows(services))["cleanup_jobs"] == 25
