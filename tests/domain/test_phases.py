from __future__ import annotations

import pytest

from runtrack.domain.phases import Phase, parse_phase, parse_status, status_of
from runtrack.errors import InvalidArgument


@pytest.mark.parametrize("text", ["SUCCEEDED", "succeeded", "ACTION_PHASE_SUCCEEDED", "5", 5, " Succeeded "])
def test_parse_phase_forms(text: str | int) -> None:
    assert parse_phase(text) is Phase.SUCCEEDED


@pytest.mark.parametrize("bad", ["bogus", "0", 0, 11, "ACTION_PHASE_UNSPECIFIED", "", True])
def test_parse_phase_rejects(bad: str | int) -> None:
    with pytest.raises(InvalidArgument):
        parse_phase(bad)


def test_status_groups() -> None:
    assert parse_status("running") == {Phase.RUNNING, Phase.PAUSED}
    assert parse_status("failed") == {Phase.FAILED, Phase.TIMED_OUT}
    assert parse_status("cancelled") == parse_status("aborted") == {Phase.ABORTED}
    assert parse_status("pending") == {Phase.QUEUED, Phase.WAITING_FOR_RESOURCES, Phase.INITIALIZING}
    assert parse_status("completed") == parse_status("succeeded")
    assert parse_status("TIMED_OUT") == {Phase.TIMED_OUT}
    with pytest.raises(InvalidArgument, match="'bogus'"):
        parse_status("bogus")


def test_every_phase_has_one_status() -> None:
    assert status_of(Phase.RECOVERED) == "SUCCEEDED"
    assert status_of(Phase.TIMED_OUT) == "FAILED"
    assert status_of(Phase.PAUSED) == "RUNNING"
    assert status_of(Phase.ABORTED) == "CANCELLED"
