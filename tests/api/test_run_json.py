"""The bulk run JSON used by listings has exactly the shape of ``RunOut``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runtrack.api.rest.schemas import RunOut, run_dict, run_out
from runtrack.domain.models import AbortInfo, ErrorInfo, Run, RunId, TaskRef
from runtrack.domain.phases import Phase

T = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "run",
    [
        Run(id=RunId("o", "p", "d", "n"), phase=Phase.QUEUED, created_at=T, updated_at=T),
        Run(id=RunId("o", "p", "d", "n"), phase=Phase.ABORTED, created_at=T, updated_at=T, created_by="al",
            attempts=2, task=TaskRef("wf", "v1"), trigger_name="nightly", labels={"a": "", "b": "c"},
            started_at=T, ended_at=T, duration_ms=5, error=ErrorInfo("USER", "boom"),
            abort=AbortInfo("stop", "bob"), version=7),
    ],
)
def test_run_dict_matches_run_out(run: Run) -> None:
    assert run_dict(run) == run_out(run).model_dump()
    assert set(run_dict(run)) == set(RunOut.model_fields)
