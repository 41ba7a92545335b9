"""Deleting runs: bulk by filter and one by one, the cascade, slots, log cleanup, notifications."""

from __future__ import annotations

import asyncio

import pytest

from runtrack.domain.filters import And, Op, Pred, prepare
from runtrack.domain.models import NewRun
from runtrack.domain.phases import Phase
from runtrack.domain.reports import ActionReport, NewAction
from runtrack.errors import Conflict, InvalidArgument, NotFound
from runtrack.service.cleanup import LogCleanup
from runtrack.service.container import Services
from runtrack.storage.fleet import CleanupStore
from tests.fleet_seed import days_ago, hold_slot, rid, rows_of, seed_run, total_rows
from tests.support import Recorder


def names(*n: str) -> Pred:
    return Pred("name", Op.IN, n)


async def test_delete_two_of_three_by_name(services: Services) -> None:
    recorder = Recorder()
    services.notifier = recorder
    pks = [await seed_run(services, f"r{i}", created_at=days_ago(3 - i), labels={"k": "v"}) for i in range(3)]
    await hold_slot(services, pks[2])
    keep_before = await rows_of(services, pks[2])
    result = await services.deletes.bulk_delete(names("r0", "r1", "unknown-run"))
    assert result.deleted == [rid("r1"), rid("r0")]  # newest first; the unknown id is ignored
    assert result.skipped == [] and not result.dry_run
    for n in ("r0", "r1"):
        with pytest.raises(NotFound):
            await services.runs.get_run(rid(n))
    for pk in pks[:2]:
        gone = await rows_of(services, pk)
        assert {k: v for k, v in gone.items() if k not in ("logs", "cleanup_jobs")} == dict.fromkeys(
            ("runs", "actions", "attempts", "transitions", "cluster_events", "labels", "slots"), 0
        )
    assert await rows_of(services, pks[2]) == keep_before
    assert keep_before["actions"] == 2 and keep_before["logs"] == 4 and keep_before["slots"] == 1
    assert [(c.run_id, c.deleted) for c in recorder.published] == [(rid("r1"), True), (rid("r0"), True)]

    # Logs go afterwards, with the cleanup; each run once.
    assert (await rows_of(services, pks[0]))["cleanup_jobs"] == 1
    assert await services.log_cleanup.drain() == 2
    assert await services.log_cleanup.drain() == 0
    for pk in pks[:2]:
        assert await rows_of(services, pk) == dict.fromkeys(keep_before, 0)
    assert (await rows_of(services, pks[2]))["logs"] == 4
    totals = await total_rows(services)
    assert totals == {**totals, "runs": 1, "actions": 2, "attempts": 2, "log_lines": 4, "cleanup_jobs": 0}


async def test_limit_takes_the_newest(services: Services) -> None:
    for i in range(5):
        await seed_run(services, f"m{i}", project="five", created_at=days_ago(5 - i), actions_n=1)
    result = await services.deletes.bulk_delete(Pred("project", Op.EQ, "five"), limit=2)
    assert result.deleted == [rid("m4", "five"), rid("m3", "five")]
    assert await services.queries.count_runs(Pred("project", Op.EQ, "five")) == 3


@pytest.mark.parametrize("limit", [0, 201, -1])
async def test_limit_out_of_range_is_invalid(services: Services, limit: int) -> None:
    with pytest.raises(InvalidArgument, match="limit"):
        await services.deletes.bulk_delete(Pred("project", Op.EQ, "x"), limit=limit)


@pytest.mark.parametrize("node", [None, And(()), And((And(()),))])
async def test_missing_or_empty_filter_is_invalid(services: Services, node: And | None) -> None:
    await seed_run(services, "safe", actions_n=1)
    with pytest.raises(InvalidArgument, match="filter"):
        await services.deletes.bulk_delete(node)
    assert (await services.runs.get_run(rid("safe"))).phase is Phase.SUCCEEDED


async def test_dry_run_deletes_nothing(services: Services) -> None:
    await seed_run(services, "d0", created_at=days_ago(2))
    await seed_run(services, "d1", created_at=days_ago(1))
    await seed_run(services, "live", phase=Phase.RUNNING)
    before = await total_rows(services)
    result = await services.deletes.bulk_delete(Pred("project", Op.EQ, "proj"), dry_run=True)
    assert result.dry_run and result.deleted == [rid("d1"), rid("d0")]
    assert [s.run for s in result.skipped] == [rid("live")]
    assert await total_rows(services) == before
    forced = await services.deletes.bulk_delete(Pred("project", Op.EQ, "proj"), dry_run=True, force=True)
    assert forced.deleted == [rid("live"), rid("d1"), rid("d0")] and forced.skipped == []
    assert await total_rows(services) == before


async def test_running_run_is_skipped_then_deleted_with_force(services: Services) -> None:
    await seed_run(services, "done")
    await seed_run(services, "busy", phase=Phase.RUNNING)
    result = await services.deletes.bulk_delete(names("done", "busy"))
    assert result.deleted == [rid("done")]
    assert [s.run for s in result.skipped] == [rid("busy")]
    assert "RUNNING" in result.skipped[0].reason and "force" in result.skipped[0].reason
    assert (await services.runs.get_run(rid("busy"))).phase is Phase.RUNNING
    forced = await services.deletes.bulk_delete(names("busy"), force=True, by="ops")
    assert forced.deleted == [rid("busy")] and forced.skipped == []
    with pytest.raises(NotFound):
        await services.runs.get_run(rid("busy"))


async def test_delete_one_run(services: Services) -> None:
    await seed_run(services, "one")
    await seed_run(services, "active", phase=Phase.QUEUED)
    await services.deletes.delete_run(rid("one"))
    with pytest.raises(NotFound):
        await services.runs.get_run(rid("one"))
    with pytest.raises(NotFound):
        await services.deletes.delete_run(rid("one"))
    with pytest.raises(Conflict, match="QUEUED"):
        await services.deletes.delete_run(rid("active"))
    await services.deletes.delete_run(rid("active"), force=True, by="ops")
    with pytest.raises(NotFound):
        await services.runs.get_run(rid("active"))


async def test_slots_held_by_a_deleted_run_are_free(services: Services) -> None:
    pk = await seed_run(services, "holder", phase=Phase.RUNNING)
    await hold_slot(services, pk, key="gpu", slots=1)
    assert (await rows_of(services, pk))["slots"] == 1
    await services.deletes.bulk_delete(names("holder"), force=True)
    assert (await total_rows(services))["concurrency_slots"] == 0


async def test_me_resolves_to_the_caller(services: Services) -> None:
    await seed_run(services, "mine", created_by="alice")
    await seed_run(services, "theirs", created_by="bob")
    result = await services.deletes.bulk_delete(prepare(Pred("created_by", Op.EQ, "me"), "alice"))
    assert result.deleted == [rid("mine")]


async def test_concurrent_cleanup_workers_clean_each_run_once(services: Services) -> None:
    for i in range(12):
        await seed_run(services, f"c{i}", actions_n=1, logs_per_action=3)
    await services.deletes.bulk_delete(Pred("name", Op.CONTAINS, "c"))
    workers = [LogCleanup(services.db, CleanupStore()) for _ in range(3)]
    counts = await asyncio.gather(*(w.drain() for w in workers))
    assert sum(counts) == 12 and sum(w.deleted_lines for w in workers) == 36
    totals = await total_rows(services)
    assert totals["log_lines"] == 0 and totals["cleanup_jobs"] == 0


async def test_concurrent_bulk_deletes_never_delete_a_run_twice(services: Services) -> None:
    for i in range(30):
        await seed_run(services, f"p{i}", actions_n=1, logs_per_action=0, created_at=days_ago(i))
    results = await asyncio.gather(
        *(services.deletes.bulk_delete(Pred("project", Op.EQ, "proj"), limit=10) for _ in range(3))
    )
    deleted = [r for res in results for r in res.deleted]
    assert len(deleted) == len(set(deleted))
    assert len(deleted) + await services.queries.count_runs(None) == 30
    assert (await total_rows(services))["cleanup_jobs"] == len(deleted)


async def start_gpu_task(svc: Services, name: str) -> Phase:
    """A run whose child action ``t1`` (concurrency key ``gpu``) reports RUNNING; its phase after."""
    ex = svc.executor
    await ex.create_run(NewRun(id=rid(name)))
    await ex.record_events([ActionReport(rid(name), "a0", 1, Phase.RUNNING)])
    await ex.record_action(NewAction(run=rid(name), name="t1", parent="a0", concurrency_key="gpu"))
    await ex.record_events([ActionReport(rid(name), "t1", 1, Phase.RUNNING)])
    return (await svc.runs.get_action(rid(name), "t1")).phase


@pytest.mark.parametrize("force", [False, True])
async def test_deleting_a_slot_holder_admits_the_waiter(services: Services, force: bool) -> None:
    await services.executor.put_limit("proj", "gpu", 1)
    assert await start_gpu_task(services, "holder") is Phase.RUNNING
    assert await start_gpu_task(services, "waiter") is Phase.WAITING_FOR_RESOURCES
    if not force:
        # The root ended but its child still holds the slot: deleting the run frees it.
        await services.executor.record_events([ActionReport(rid("holder"), "a0", 1, Phase.SUCCEEDED)])
    result = await services.deletes.bulk_delete(names("holder"), force=force)
    assert result.deleted == [rid("holder")]
    assert (await services.runs.get_action(rid("waiter"), "t1")).phase is Phase.RUNNING
    [limit] = await services.executor.list_limits("proj")
    assert [h.run for h in limit.holders] == [rid("waiter")] and limit.waiting == ()


async def test_a_full_batch_reports_only_the_runs_it_passed_over(services: Services) -> None:
    await seed_run(services, "ancient-live", phase=Phase.RUNNING, created_at=days_ago(9), actions_n=1)
    for i in range(4):
        await seed_run(services, f"done{i}", created_at=days_ago(5 - i), actions_n=1)
    await seed_run(services, "new-live", phase=Phase.QUEUED, created_at=days_ago(0.5), actions_n=1)
    first = await services.deletes.bulk_delete(Pred("project", Op.EQ, "proj"), limit=2)
    assert first.deleted == [rid("done3"), rid("done2")] and [s.run for s in first.skipped] == [rid("new-live")]
    second = await services.deletes.bulk_delete(Pred("project", Op.EQ, "proj"), limit=5)
    assert second.deleted == [rid("done1"), rid("done0")]
    assert [s.run for s in second.skipped] == [rid("new-live"), rid("ancient-live")]
