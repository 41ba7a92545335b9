"""Domain → flyteidl2 conversion of runs (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flyteidl2.workflow import run_definition_pb2 as rd

from runtrack.api.connect import convert_runs as conv
from runtrack.domain.models import Run, RunId, TaskRef
from runtrack.domain.phases import Phase

T = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def _run(**kw: object) -> Run:
    base: dict[str, object] = dict(
        id=RunId("o", "p", "d", "r1"), phase=Phase.SUCCEEDED, created_at=T, updated_at=T,
        created_by="alice", attempts=2, task=TaskRef("env.fn", "v3", "p", "d", "python"),
        labels={"a": "b"}, started_at=T + timedelta(seconds=1), ended_at=T + timedelta(seconds=61),
        duration_ms=60_000, source="cli", trigger_name="nightly",
    )
    base.update(kw)
    return Run(**base)  # type: ignore[arg-type]


def test_run_pb_matches_its_parts() -> None:
    for run in (
        _run(),
        _run(phase=Phase.QUEUED, attempts=0, started_at=None, ended_at=None, duration_ms=None, task=None,
             created_by="", labels={}, source="", trigger_name=None),
        _run(phase=Phase.RUNNING, ended_at=None, duration_ms=None),
    ):
        expected = rd.Run(
            action=rd.Action(
                id=conv.action_id_pb(run.id, "a0"), metadata=conv.run_metadata_pb(run), status=conv.run_status_pb(run)
            ),
            labels=run.labels,
        )
        assert conv.run_pb(run) == expected


def test_status_is_never_unspecified_and_times_are_exact() -> None:
    pb = conv.run_pb(_run())
    st = pb.action.status
    assert st.phase == Phase.SUCCEEDED and st.attempts == 2 and st.duration_ms == 60_000
    assert st.start_time.ToDatetime(tzinfo=UTC) == T + timedelta(seconds=1)
    assert st.end_time.ToDatetime(tzinfo=UTC) == T + timedelta(seconds=61)
    queued = conv.run_pb(_run(phase=Phase.QUEUED, attempts=0, started_at=None, ended_at=None)).action.status
    assert queued.phase == Phase.QUEUED and queued.attempts == 1
    assert queued.start_time.ToDatetime(tzinfo=UTC) == T and not queued.HasField("end_time")
    meta = pb.action.metadata
    assert meta.task.id.name == "env.fn" and meta.task.task_type == "python" and meta.task.short_name == "fn"
    assert meta.executed_by.user.id.subject == "alice" and meta.source == rd.RUN_SOURCE_CLI
