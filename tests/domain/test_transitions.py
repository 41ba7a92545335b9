"""The transition rules, table-driven over every (stored phase, reported phase) pair."""

from __future__ import annotations

import pytest

from runtrack.domain.phases import REPORTABLE, TERMINAL, Phase
from runtrack.domain.transitions import Outcome, Reason, Report, StoredState, decide, decide_abort

# Column order of the tables below: the reported phase.
ORDER = [
    Phase.QUEUED,
    Phase.WAITING_FOR_RESOURCES,
    Phase.INITIALIZING,
    Phase.RUNNING,
    Phase.PAUSED,
    Phase.SUCCEEDED,
    Phase.FAILED,
    Phase.ABORTED,
    Phase.TIMED_OUT,
    Phase.RECOVERED,
]
A, I, R = Outcome.APPLY, Outcome.IGNORE, Outcome.REJECT  # noqa: E741
CODE = {"A": A, "I": I, "R": R}

# Same attempt, event ingestion (strict=False). Rows: the stored phase of the newest attempt.
SAME_ATTEMPT_EVENTS = {
    #                          Q W I R P S F A T V
    Phase.QUEUED:              "A A A A A A A A A A",
    Phase.WAITING_FOR_RESOURCES: "I A A A A A A A A A",
    Phase.INITIALIZING:        "I I A A A A A A A A",
    Phase.RUNNING:             "I I I A A A A A A A",
    Phase.PAUSED:              "I I I A A A A A A A",
    Phase.SUCCEEDED:           "I I I I I I R R R R",
    Phase.FAILED:              "I I I I I R I R R R",
    Phase.ABORTED:             "I I I I I R R I R R",
    Phase.TIMED_OUT:           "I I I I I R R R I R",
    Phase.RECOVERED:           "I I I I I R R R R I",
}

# Same attempt, status update (strict=True): a terminal attempt contradicted is a conflict.
SAME_ATTEMPT_STRICT = {
    #                          Q W I R P S F A T V
    Phase.QUEUED:              "A A A A A A A A A A",
    Phase.WAITING_FOR_RESOURCES: "I A A A A A A A A A",
    Phase.INITIALIZING:        "I I A A A A A A A A",
    Phase.RUNNING:             "I I I A A A A A A A",
    Phase.PAUSED:              "I I I A A A A A A A",
    Phase.SUCCEEDED:           "R R R R R I R R R R",
    Phase.FAILED:              "R R R R R R I R R R",
    Phase.ABORTED:             "R R R R R R R I R R",
    Phase.TIMED_OUT:           "R R R R R R R R I R",
    Phase.RECOVERED:           "R R R R R R R R R I",
}


def _cases(table: dict[Phase, str]) -> list[tuple[Phase, Phase, Outcome]]:
    out = []
    for stored, row in table.items():
        cells = row.split()
        assert len(cells) == len(ORDER)
        out += [(stored, rep, CODE[c]) for rep, c in zip(ORDER, cells, strict=True)]
    return out


def test_tables_cover_every_pair() -> None:
    assert set(ORDER) == set(REPORTABLE)
    assert set(SAME_ATTEMPT_EVENTS) == set(REPORTABLE) == set(SAME_ATTEMPT_STRICT)


@pytest.mark.parametrize(("stored", "reported", "expected"), _cases(SAME_ATTEMPT_EVENTS))
def test_same_attempt_events(stored: Phase, reported: Phase, expected: Outcome) -> None:
    state = StoredState(action_phase=stored, attempt=2, attempt_phase=stored)
    d = decide(state, Report(attempt=2, phase=reported), strict=False)
    assert d.outcome is expected, d.message
    if stored.terminal and reported is stored:
        assert d.reason is Reason.DUPLICATE
    if stored.terminal and reported is not stored:
        assert stored.name in d.message and reported.name in d.message


@pytest.mark.parametrize(("stored", "reported", "expected"), _cases(SAME_ATTEMPT_STRICT))
def test_same_attempt_strict(stored: Phase, reported: Phase, expected: Outcome) -> None:
    state = StoredState(action_phase=stored, attempt=1, attempt_phase=stored)
    d = decide(state, Report(attempt=1, phase=reported), strict=True)
    assert d.outcome is expected, d.message
    if expected is R:
        assert d.reason is Reason.TERMINAL_CONFLICT
        assert f"already {stored.name}; reported {reported.name}" in d.message


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("stored", REPORTABLE)
@pytest.mark.parametrize("reported", REPORTABLE)
def test_older_attempt_is_always_stale(stored: Phase, reported: Phase, strict: bool) -> None:
    state = StoredState(action_phase=stored, attempt=3, attempt_phase=stored)
    d = decide(state, Report(attempt=2, phase=reported), strict=strict)
    assert (d.outcome, d.reason) == (I, Reason.STALE_ATTEMPT)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("stored", REPORTABLE)
@pytest.mark.parametrize("reported", REPORTABLE)
def test_newer_attempt_only_after_failed_or_timed_out(stored: Phase, reported: Phase, strict: bool) -> None:
    state = StoredState(action_phase=stored, attempt=1, attempt_phase=stored)
    d = decide(state, Report(attempt=2, phase=reported), strict=strict)
    if stored in (Phase.FAILED, Phase.TIMED_OUT):
        assert (d.outcome, d.reason) == (A, Reason.NEW_ATTEMPT)
        assert d.new_attempt and d.phase_changed
    else:
        assert (d.outcome, d.reason) == (R, Reason.RETRY_NOT_ALLOWED)
        assert stored.name in d.message


@pytest.mark.parametrize("reported", REPORTABLE)
def test_first_attempt_starts_any_phase(reported: Phase) -> None:
    state = StoredState(action_phase=Phase.QUEUED)
    d = decide(state, Report(attempt=1, phase=reported))
    assert (d.outcome, d.reason) == (A, Reason.NEW_ATTEMPT)


def test_attempt_gaps_are_conflicts() -> None:
    assert decide(StoredState(Phase.QUEUED), Report(2, Phase.RUNNING)).reason is Reason.ATTEMPT_GAP
    failed = StoredState(Phase.FAILED, 1, Phase.FAILED)
    assert decide(failed, Report(3, Phase.RUNNING)).outcome is R


@pytest.mark.parametrize("reported", REPORTABLE)
def test_action_aborted_before_any_attempt(reported: Phase) -> None:
    state = StoredState(action_phase=Phase.ABORTED)
    d = decide(state, Report(1, reported))
    assert d.outcome is (I if reported is Phase.ABORTED else R)


def test_versions() -> None:
    state = StoredState(Phase.RUNNING, 1, Phase.RUNNING, version=5)
    assert decide(state, Report(1, Phase.SUCCEEDED, version=4)).reason is Reason.STALE_VERSION
    assert decide(state, Report(1, Phase.RUNNING, version=5)).reason is Reason.DUPLICATE
    assert decide(state, Report(1, Phase.SUCCEEDED, version=5)).outcome is A
    assert decide(state, Report(1, Phase.SUCCEEDED, version=6)).outcome is A
    assert decide(state, Report(1, Phase.SUCCEEDED)).outcome is A  # unversioned reports follow phases
    assert decide(state, Report(1, Phase.QUEUED, version=9)).reason is Reason.STALE_PHASE
    # A version belongs to its attempt: a retry starts afresh.
    failed = StoredState(Phase.FAILED, 1, Phase.FAILED, version=7)
    assert decide(failed, Report(2, Phase.RUNNING, version=1)).outcome is A


def test_refresh_and_pause_resume() -> None:
    running = StoredState(Phase.RUNNING, 1, Phase.RUNNING)
    d = decide(running, Report(1, Phase.RUNNING))
    assert (d.outcome, d.reason, d.phase_changed) == (A, Reason.REFRESH, False)
    paused = StoredState(Phase.PAUSED, 1, Phase.PAUSED)
    assert decide(paused, Report(1, Phase.RUNNING)).reason is Reason.ADVANCE
    assert decide(paused, Report(1, Phase.INITIALIZING)).reason is Reason.STALE_PHASE


def test_invalid_reports() -> None:
    state = StoredState(Phase.QUEUED)
    assert decide(state, Report(0, Phase.RUNNING)).reason is Reason.INVALID
    assert decide(state, Report(1, Phase.UNSPECIFIED)).reason is Reason.INVALID


@pytest.mark.parametrize("phase", REPORTABLE)
def test_abort(phase: Phase) -> None:
    d = decide_abort(StoredState(phase, 1, phase))
    assert d.outcome is (I if phase in TERMINAL else A)
    assert decide_abort(StoredState(Phase.QUEUED)).outcome is A
