"""Single events on PostgreSQL: one read (or the state this process last wrote), then one write
guarded by the run version of that state.

The guard is what keeps the unlocked read safe: a write of someone else that commits between the
read and the write makes the guarded statement write nothing, and the event is decided again under
locks. The timeline entries collected with the row updates must come out the same on both paths.
"""

from __future__ import annotations

from typing import Any

import pytest

from runtrack.domain.models import ErrorInfo, NewRun, RunId
from runtrack.domain.phases import Phase
from runtrack.domain.reports import ActionReport
from runtrack.domain.transitions import Outcome
from runtrack.service.container import Services
from tests.support import Recorder

RID = RunId("acme", "proj", "dev", "r-guard")


@pytest.fixture
async def svc(services: Services) -> Services:
    services.notifier = Recorder()
    await services.executor.create_run(NewRun(id=RID, created_by="alice"))
    return services


def ev(phase: Phase, attempt: int = 1, **kw: Any) -> ActionReport:
    return ActionReport(RID, "a0", attempt, phase, **kw)


class Spy:
    """Counts guarded reads and flushes, and can run a competing write right after a read."""

    def __init__(self, svc: Services) -> None:
        self.reads = 0
        self.guarded: list[bool] = []
        self.between: Any = None
        writes = svc.executor.writes
        read, flush = writes.read_action, writes.flush

        async def read_action(*a: Any) -> Any:
            self.reads += 1
            got = await read(*a)
            if self.between is not None:
                between, self.between = self.between, None
                await between()
            return got

        async def guarded_flush(*a: Any, expect_run_version: int | None = None) -> bool:
            ok = await flush(*a, expect_run_version=expect_run_version)
            if expect_run_version is not None:
                self.guarded.append(ok)
            return ok

        writes.read_action = read_action  # type: ignore[method-assign]
        writes.flush = guarded_flush  # type: ignore[method-assign]


async def test_single_events_keep_versions_timeline_and_notifications(svc: Services) -> None:
    ex = svc.executor
    spy = Spy(svc)
    await ex.record_events([ev(Phase.RUNNING, version=1)])  # a new attempt: the locked path
    start = await svc.runs.get_run(RID)
    published = len(svc.notifier.published)  # type: ignore[attr-defined]
    [r1] = await ex.record_events([ev(Phase.RUNNING, version=2)])
    [r2] = await ex.record_events([ev(Phase.SUCCEEDED, version=3, outputs={"o": 1})])
    assert r1.outcome is Outcome.APPLY and r2.outcome is Outcome.APPLY
    [dup] = await ex.record_events([ev(Phase.SUCCEEDED, version=3)])
    assert (dup.outcome, dup.reason) == (Outcome.IGNORE, "duplicate")
    run = await svc.runs.get_run(RID)
    assert run.phase is Phase.SUCCEEDED and run.version == start.version + 2 and run.ended_at is not None
    action = await svc.runs.get_action(RID, "a0")
    [attempt] = action.attempt_list
    assert attempt.outputs == {"o": 1} and attempt.phase is Phase.SUCCEEDED
    assert [t.phase for t in attempt.transitions] == [Phase.RUNNING, Phase.SUCCEEDED]
    assert attempt.transitions[0].end_time == attempt.transitions[1].start_time
    assert attempt.transitions[1].end_time is None
    changes = svc.notifier.published[published:]  # type: ignore[attr-defined]
    assert sorted({c.run_version for c in changes}) == [start.version + 1, start.version + 2]
    if svc.db.is_postgres:  # read once, then the written state is remembered; the duplicate is read again
        assert spy.reads == 3 and spy.guarded == [True, True]
    else:
        assert spy.reads == 0


@pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)
async def test_a_write_committed_between_read_and_write_wins_over_a_stale_decision(
    svc: Services, replica: Services
) -> None:
    """The read sees RUNNING, another replica then fails the action; the late RUNNING decided on
    the stale read must not be written: the guard fails, and under locks it is ignored."""
    ex = svc.executor
    await ex.record_events([ev(Phase.RUNNING, version=1)])
    spy = Spy(svc)

    async def fail_it() -> None:
        [r] = await replica.executor.record_events([ev(Phase.FAILED, version=2, error=ErrorInfo("USER", "boom"))])
        assert r.outcome is Outcome.APPLY

    spy.between = fail_it
    failed_version = (await svc.runs.get_run(RID)).version + 1
    [late] = await ex.record_events([ev(Phase.RUNNING, version=3)])
    assert spy.guarded == [False]
    assert (late.outcome, late.reason) == (Outcome.IGNORE, "stale_phase")
    run = await svc.runs.get_run(RID)
    assert run.phase is Phase.FAILED and run.version == failed_version
    [attempt] = (await svc.runs.get_action(RID, "a0")).attempt_list
    assert attempt.phase is Phase.FAILED and attempt.version == 2
    assert [t.phase for t in attempt.transitions] == [Phase.RUNNING, Phase.FAILED]


@pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)
async def test_a_guard_that_fails_is_decided_again_and_applied(svc: Services, replica: Services) -> None:
    ex = svc.executor
    await ex.record_events([ev(Phase.RUNNING, version=1)])
    spy = Spy(svc)

    async def bump() -> None:
        await replica.executor.record_events([ev(Phase.RUNNING, version=2)])

    spy.between = bump
    before = await svc.runs.get_run(RID)
    r = await ex.update_status(ev(Phase.SUCCEEDED, version=3))
    assert spy.guarded == [False] and r.outcome is Outcome.APPLY
    run = await svc.runs.get_run(RID)
    assert run.phase is Phase.SUCCEEDED and run.version == before.version + 2
    [attempt] = (await svc.runs.get_action(RID, "a0")).attempt_list
    assert attempt.version == 3
    assert [t.phase for t in attempt.transitions] == [Phase.RUNNING, Phase.SUCCEEDED]


async def test_two_moves_of_one_attempt_in_one_batch_leave_a_closed_timeline(svc: Services) -> None:
    ex = svc.executor
    await ex.record_events([ev(Phase.INITIALIZING)])
    results = await ex.record_events([ev(Phase.RUNNING), ev(Phase.SUCCEEDED)])
    assert [r.outcome for r in results] == [Outcome.APPLY, Outcome.APPLY]
    [attempt] = (await svc.runs.get_action(RID, "a0")).attempt_list
    ts = attempt.transitions
    assert [t.phase for t in ts] == [Phase.INITIALIZING, Phase.RUNNING, Phase.SUCCEEDED]
    assert ts[0].end_time == ts[1].start_time and ts[1].end_time == ts[2].start_time
    assert ts[2].end_time is None


@pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)
async def test_a_remembered_state_another_replica_moved_on_is_read_again(svc: Services, replica: Services) -> None:
    ex = svc.executor
    await ex.record_events([ev(Phase.RUNNING, version=1)])
    await ex.record_events([ev(Phase.RUNNING, version=2)])  # read, written, remembered
    spy = Spy(svc)
    [failed] = await replica.executor.record_events([ev(Phase.FAILED, version=3)])
    assert failed.outcome is Outcome.APPLY
    [late] = await ex.record_events([ev(Phase.RUNNING, version=4)])
    assert spy.guarded == [False] and spy.reads == 1
    assert (late.outcome, late.reason) == (Outcome.IGNORE, "stale_phase")
    assert (await svc.runs.get_run(RID)).phase is Phase.FAILED
    [attempt] = (await svc.runs.get_action(RID, "a0")).attempt_list
    assert attempt.version == 3 and [t.phase for t in attempt.transitions] == [Phase.RUNNING, Phase.FAILED]


@pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)
async def test_a_deleted_run_is_not_written_from_memory(svc: Services) -> None:
    ex = svc.executor
    await ex.record_events([ev(Phase.RUNNING, version=1)])
    [done] = await ex.record_events([ev(Phase.SUCCEEDED, version=2)])
    assert done.outcome is Outcome.APPLY and ex.recent.get((RID, "a0")) is not None
    await svc.deletes.delete_run(RID)
    await ex.create_run(NewRun(id=RID, created_by="bob"))  # the same name, a new run
    [r] = await ex.record_events([ev(Phase.RUNNING, version=1)])
    assert (r.outcome, r.reason) == (Outcome.APPLY, "new_attempt")
    run = await svc.runs.get_run(RID)
    assert run.phase is Phase.RUNNING and run.created_by == "bob" and run.attempts == 1
