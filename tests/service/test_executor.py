"""The executor write path against a real database: the rules of DESIGN.md section 2, end to end."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from runtrack.domain.models import ClusterEvent, ErrorInfo, NewRun, RunId
from runtrack.domain.phases import Phase
from runtrack.domain.reports import ActionReport, NewAction
from runtrack.domain.transitions import Outcome
from runtrack.errors import Conflict, NotFound
from runtrack.service.container import Services
from runtrack.storage.tables import cluster_events, phase_transitions
from tests.support import Recorder

RID = RunId("acme", "proj", "dev", "r-exec")


@pytest.fixture
async def svc(services: Services) -> Services:
    services.notifier = Recorder()
    await services.executor.create_run(NewRun(id=RID, created_by="alice"))
    return services


def ev(phase: Phase, attempt: int = 1, action: str = "a0", **kw: object) -> ActionReport:
    return ActionReport(RID, action, attempt, phase, **kw)  # type: ignore[arg-type]


async def transitions(svc: Services) -> int:
    async with svc.db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(phase_transitions))).scalar_one())


async def test_late_running_after_failed_is_ignored(svc: Services) -> None:
    ex = svc.executor
    [r1] = await ex.record_events([ev(Phase.RUNNING)])
    assert r1.outcome is Outcome.APPLY
    err = ErrorInfo("USER", "boom")
    [r2] = await ex.record_events([ev(Phase.FAILED, error=err)])
    assert r2.outcome is Outcome.APPLY
    run = await svc.runs.get_run(RID)
    assert run.phase is Phase.FAILED and run.ended_at is not None and run.error == err
    n, published = await transitions(svc), len(svc.notifier.published)  # type: ignore[attr-defined]
    [r3] = await ex.record_events([ev(Phase.RUNNING)])
    assert (r3.outcome, r3.reason) == (Outcome.IGNORE, "stale_phase")
    after = await svc.runs.get_run(RID)
    assert after.phase is Phase.FAILED and after.ended_at == run.ended_at and after.version == run.version
    # failed again: a duplicate writes nothing and publishes nothing
    [r4] = await ex.record_events([ev(Phase.FAILED, error=err)])
    assert (r4.outcome, r4.reason) == (Outcome.IGNORE, "duplicate")
    assert await transitions(svc) == n
    assert len(svc.notifier.published) == published  # type: ignore[attr-defined]
    with pytest.raises(Conflict, match=r"FAILED.*RUNNING"):
        await ex.update_status(ev(Phase.RUNNING))
    assert (await svc.runs.get_run(RID)).version == run.version
    assert (await ex.update_status(ev(Phase.FAILED))).outcome is Outcome.IGNORE


async def test_succeeded_then_failed_is_conflict(svc: Services) -> None:
    ex = svc.executor
    await ex.update_status(ev(Phase.SUCCEEDED))
    with pytest.raises(Conflict, match=r"SUCCEEDED.*FAILED"):
        await ex.update_status(ev(Phase.FAILED))
    [r] = await ex.record_events([ev(Phase.FAILED)])
    assert r.outcome is Outcome.REJECT
    with pytest.raises(Conflict):
        await ex.update_status(ev(Phase.RUNNING, attempt=2))


async def test_retry_then_late_event_for_old_attempt(svc: Services) -> None:
    ex = svc.executor
    await ex.record_events([ev(Phase.RUNNING), ev(Phase.FAILED)])
    [r] = await ex.record_events([ev(Phase.RUNNING, attempt=2)])
    assert r.outcome is Outcome.APPLY and r.reason == "new_attempt"
    run = await svc.runs.get_run(RID)
    assert run.phase is Phase.RUNNING and run.attempts == 2 and run.ended_at is None
    [late] = await ex.record_events([ev(Phase.SUCCEEDED, attempt=1)])
    assert (late.outcome, late.reason) == (Outcome.IGNORE, "stale_attempt")
    action = await svc.runs.get_action(RID, "a0")
    assert [a.phase for a in action.attempt_list] == [Phase.FAILED, Phase.RUNNING]
    assert [t.phase for t in action.attempt_list[0].transitions] == [Phase.RUNNING, Phase.FAILED]
    assert action.attempt_list[0].transitions[0].end_time is not None


async def test_versions(svc: Services) -> None:
    ex = svc.executor
    [a] = await ex.record_events([ev(Phase.RUNNING, version=5)])
    [b] = await ex.record_events([ev(Phase.SUCCEEDED, version=4)])
    assert a.outcome is Outcome.APPLY and (b.outcome, b.reason) == (Outcome.IGNORE, "stale_version")
    assert (await svc.runs.get_run(RID)).phase is Phase.RUNNING


async def test_cluster_events_are_appended_once(svc: Services) -> None:
    ex = svc.executor
    t = datetime(2026, 1, 1, tzinfo=UTC)
    ce = (ClusterEvent(occurred_at=t, message="pulled", reason="Pulled"),)
    await ex.record_events([ev(Phase.RUNNING, cluster_events=ce)])
    [again] = await ex.record_events([ev(Phase.RUNNING, cluster_events=ce)])
    assert again.outcome is Outcome.APPLY
    async with svc.db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(cluster_events))).scalar_one() == 1


async def test_child_actions_and_abort(svc: Services) -> None:
    ex = svc.executor
    assert await ex.record_action(NewAction(RID, "c1", parent="a0"))
    assert not await ex.record_action(NewAction(RID, "c1", parent="a0"))
    await ex.record_action(NewAction(RID, "c2", parent="c1"))
    with pytest.raises(NotFound):
        await ex.record_action(NewAction(RID, "c3", parent="nope"))
    await ex.record_events([ev(Phase.RUNNING), ev(Phase.RUNNING, action="c1"), ev(Phase.SUCCEEDED, action="c2")])
    out = await ex.abort_action(RID, "c1", reason="stop", by="bob")
    assert out.aborted == ("c1",)
    out = await ex.abort_run(RID, reason="enough", by="bob")
    assert out.aborted == ("a0",)
    run = await svc.runs.get_run(RID)
    assert run.phase is Phase.ABORTED and run.abort is not None and run.abort.reason == "enough"
    assert (await ex.abort_run(RID)).aborted == ()
    assert (await svc.runs.get_action(RID, "c2")).phase is Phase.SUCCEEDED
    with pytest.raises(NotFound):
        await ex.abort_run(RunId("acme", "proj", "dev", "missing"))


async def test_unknown_action_in_batch_is_rejected_not_fatal(svc: Services) -> None:
    [a, b] = await svc.executor.record_events([ev(Phase.RUNNING, action="zz"), ev(Phase.RUNNING)])
    assert (a.outcome, a.reason) == (Outcome.REJECT, "not_found") and b.outcome is Outcome.APPLY


async def test_slots_released_on_abort_and_limit_deletion(svc: Services) -> None:
    ex = svc.executor
    await ex.put_limit("proj", "gpu", 1)
    rids = [RunId("acme", "proj", "dev", f"r-slot-{i}") for i in range(3)]
    for rid in rids:
        await ex.create_run(NewRun(id=rid, labels={"concurrency_key": "gpu"}))
    results = [(await ex.record_events([ActionReport(rid, "a0", 1, Phase.RUNNING)]))[0] for rid in rids]
    assert [r.phase for r in results] == [Phase.RUNNING, Phase.WAITING_FOR_RESOURCES, Phase.WAITING_FOR_RESOURCES]
    [limit] = await ex.list_limits("proj")
    assert [h.run for h in limit.holders] == [rids[0]] and [w.run for w in limit.waiting] == rids[1:]
    await ex.abort_run(rids[0], reason="make room")
    assert (await svc.runs.get_run(rids[1])).phase is Phase.RUNNING  # admitted, first in line
    assert (await svc.runs.get_run(rids[2])).phase is Phase.WAITING_FOR_RESOURCES
    action = await svc.runs.get_action(rids[1], "a0")
    assert [t.phase for t in action.attempt_list[0].transitions] == [Phase.WAITING_FOR_RESOURCES, Phase.RUNNING]
    await ex.delete_limit("proj", "gpu")
    assert (await svc.runs.get_run(rids[2])).phase is Phase.RUNNING  # nothing limits it any more
    assert await ex.list_limits("proj") == []
    with pytest.raises(NotFound):
        await ex.delete_limit("proj", "gpu")


async def test_resizing_a_limit_admits_waiters(svc: Services) -> None:
    ex = svc.executor
    await ex.put_limit("proj", "db", 0)
    rid = RunId("acme", "proj", "dev", "r-resize")
    await ex.create_run(NewRun(id=rid, spec={"concurrency_key": "db"}))
    [r] = await ex.record_events([ActionReport(rid, "a0", 1, Phase.RUNNING)])
    assert r.phase is Phase.WAITING_FOR_RESOURCES and r.reason == "waiting_for_resources"
    [again] = await ex.record_events([ActionReport(rid, "a0", 1, Phase.RUNNING)])
    assert again.phase is Phase.WAITING_FOR_RESOURCES
    limit, created = await ex.put_limit("proj", "db", 1)
    assert not created and [h.run for h in limit.holders] == [rid]
    assert (await svc.runs.get_run(rid)).phase is Phase.RUNNING
