"""Repository conformance: runs unchanged against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runtrack.domain.models import NewRun, RunId, TaskRef
from runtrack.domain.phases import Phase
from runtrack.errors import AlreadyExists, NotFound
from runtrack.service.container import Services

RID = RunId("acme", "proj", "dev", "r-1")


async def test_create_and_read_run(services: Services) -> None:
    new = NewRun(
        id=RID,
        created_by="alice",
        task=TaskRef(name="wf.main", version="v1"),
        labels={"team": "ml", "tier": ""},
        spec={"k": [1, 2]},
        inputs={"x": 1},
    )
    run = await services.runs.create_run(new)
    assert run.id == RID and run.phase is Phase.QUEUED and run.created_by == "alice"
    assert run.labels == {"team": "ml", "tier": ""}
    assert run.spec == {"k": [1, 2]} and run.task == TaskRef(name="wf.main", version="v1")
    assert run.created_at.tzinfo is not None
    assert abs(run.created_at - datetime.now(UTC)) < timedelta(seconds=30)
    got = await services.runs.get_run(RID)
    assert got == run
    root = await services.runs.get_action(RID, "a0")
    assert root.phase is Phase.QUEUED and root.attempts == 0 and root.attempt_list == ()
    assert [a.name for a in await services.runs.list_actions(RID)] == ["a0"]


async def test_duplicate_run_is_already_exists(services: Services) -> None:
    await services.runs.create_run(NewRun(id=RID))
    with pytest.raises(AlreadyExists, match="r-1"):
        await services.runs.create_run(NewRun(id=RID))
    # The failed insert left nothing behind and the original is intact.
    assert (await services.runs.get_run(RID)).phase is Phase.QUEUED


async def test_not_found(services: Services) -> None:
    with pytest.raises(NotFound, match="run acme/proj/dev/missing not found"):
        await services.runs.get_run(RunId("acme", "proj", "dev", "missing"))
    await services.runs.create_run(NewRun(id=RID))
    with pytest.raises(NotFound, match="action 'nope'"):
        await services.runs.get_action(RID, "nope")
    with pytest.raises(NotFound, match="run acme/proj/dev/other"):
        await services.runs.get_action(RunId("acme", "proj", "dev", "other"), "a0")


async def test_same_name_in_other_scope_is_a_different_run(services: Services) -> None:
    await services.runs.create_run(NewRun(id=RID))
    other = RunId("acme", "proj", "prod", "r-1")
    await services.runs.create_run(NewRun(id=other))
    assert (await services.runs.get_run(other)).id == other
