"""The phase transition rules (DESIGN.md section 2): one pure decision function.

Every write path — event ingestion, status updates, aborts, the heartbeat sweeper — asks
:func:`decide` what to do with an incoming report given the stored state, and only writes when the
answer is :attr:`Outcome.APPLY`. Nothing else in the code base decides whether a phase may change.

The two kinds of write path differ in one respect, passed as ``strict``:

* event ingestion (``strict=False``) is at-least-once and unordered, so a non-terminal report that
  arrives after its attempt ended is simply late: it is *stale* and ignored;
* a status update (``strict=True``) asserts the current phase and waits for the answer, so a
  report that contradicts a terminal attempt is a *conflict*.

Everywhere else the two agree: older attempts and lower versions are stale, the same terminal phase
again is a duplicate, a different terminal phase is a conflict, a retry is only allowed after
FAILED or TIMED_OUT.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from runtrack.domain.phases import RETRYABLE, Phase


class Outcome(Enum):
    APPLY = "applied"
    IGNORE = "ignored"
    REJECT = "rejected"


class Reason(StrEnum):
    ADVANCE = "advance"  # the phase moves forward within the attempt
    NEW_ATTEMPT = "new_attempt"  # the first attempt, or a retry after FAILED / TIMED_OUT
    REFRESH = "refresh"  # same non-terminal phase; details (logs, cluster events) may be new
    DUPLICATE = "duplicate"  # the same terminal phase (or the same versioned event) again
    STALE_ATTEMPT = "stale_attempt"  # a report for an attempt older than the newest
    STALE_VERSION = "stale_version"  # a version lower than one already applied
    STALE_PHASE = "stale_phase"  # the phase would move backwards
    TERMINAL_CONFLICT = "terminal_conflict"  # a finished attempt reported differently
    RETRY_NOT_ALLOWED = "retry_not_allowed"  # a new attempt after SUCCEEDED / ABORTED / unfinished
    ATTEMPT_GAP = "attempt_gap"  # attempt N+2 or later while N is the newest
    INVALID = "invalid"  # attempt numbers below 1, UNSPECIFIED phase


@dataclass(frozen=True, slots=True)
class StoredState:
    """What is stored for one action, as far as the rules care."""

    action_phase: Phase
    attempt: int = 0  # the newest attempt's number; 0 when no attempt exists yet
    attempt_phase: Phase | None = None  # the newest attempt's phase
    version: int | None = None  # the highest event version applied to the newest attempt


@dataclass(frozen=True, slots=True)
class Report:
    """An incoming claim about an action's attempt."""

    attempt: int
    phase: Phase
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: Reason
    message: str

    @property
    def applies(self) -> bool:
        return self.outcome is Outcome.APPLY

    @property
    def new_attempt(self) -> bool:
        return self.reason is Reason.NEW_ATTEMPT

    @property
    def phase_changed(self) -> bool:
        return self.reason in (Reason.ADVANCE, Reason.NEW_ATTEMPT)


def _apply(reason: Reason, msg: str) -> Decision:
    return Decision(Outcome.APPLY, reason, msg)


def _ignore(reason: Reason, msg: str) -> Decision:
    return Decision(Outcome.IGNORE, reason, msg)


def _reject(reason: Reason, msg: str) -> Decision:
    return Decision(Outcome.REJECT, reason, msg)


def decide(state: StoredState, report: Report, *, strict: bool = False) -> Decision:
    """Say whether ``report`` applies to ``state``, is ignored (stale/duplicate) or is a conflict."""
    rp = report.phase
    if report.attempt < 1:
        return _reject(Reason.INVALID, f"attempt must be 1 or more, got {report.attempt}")
    if rp is Phase.UNSPECIFIED:
        return _reject(Reason.INVALID, "phase must be specified")

    if report.attempt < state.attempt:
        return _ignore(
            Reason.STALE_ATTEMPT,
            f"attempt {report.attempt} is older than the newest attempt {state.attempt}",
        )

    if report.attempt > state.attempt:
        return _decide_new_attempt(state, report)

    # The same attempt as the newest one.
    stored = state.attempt_phase if state.attempt_phase is not None else state.action_phase
    if report.version is not None and state.version is not None:
        if report.version < state.version:
            return _ignore(
                Reason.STALE_VERSION,
                f"version {report.version} is older than the applied version {state.version}",
            )
        if report.version == state.version and rp is stored:
            return _ignore(Reason.DUPLICATE, f"version {report.version} ({rp.name}) was already applied")

    if stored.terminal:
        if rp is stored:
            return _ignore(Reason.DUPLICATE, f"attempt {report.attempt} is already {stored.name}")
        msg = f"attempt {report.attempt} is already {stored.name}; reported {rp.name}"
        if rp.terminal or strict:
            return _reject(Reason.TERMINAL_CONFLICT, msg)
        return _ignore(Reason.STALE_PHASE, msg)

    if rp is stored:
        return _apply(Reason.REFRESH, f"attempt {report.attempt} is still {rp.name}")
    if rp.rank > stored.rank or {rp, stored} == {Phase.RUNNING, Phase.PAUSED}:
        return _apply(Reason.ADVANCE, f"attempt {report.attempt}: {stored.name} -> {rp.name}")
    return _ignore(
        Reason.STALE_PHASE,
        f"attempt {report.attempt} is {stored.name}; {rp.name} would move backwards",
    )


def _decide_new_attempt(state: StoredState, report: Report) -> Decision:
    rp = report.phase
    if state.attempt == 0:
        if state.action_phase.terminal:
            if rp is state.action_phase:
                return _ignore(Reason.DUPLICATE, f"the action is already {rp.name}")
            return _reject(
                Reason.TERMINAL_CONFLICT,
                f"the action is already {state.action_phase.name}; reported {rp.name}",
            )
        if report.attempt != 1:
            return _reject(Reason.ATTEMPT_GAP, f"the first attempt must be 1, got {report.attempt}")
        return _apply(Reason.NEW_ATTEMPT, f"attempt 1 starts in {rp.name}")

    prev = state.attempt_phase if state.attempt_phase is not None else state.action_phase
    if prev not in RETRYABLE:
        return _reject(
            Reason.RETRY_NOT_ALLOWED,
            f"attempt {report.attempt} reported ({rp.name}) but attempt {state.attempt} is "
            f"{prev.name}; a retry follows only FAILED or TIMED_OUT",
        )
    if report.attempt != state.attempt + 1:
        return _reject(
            Reason.ATTEMPT_GAP,
            f"attempt {report.attempt} reported but the newest attempt is {state.attempt}",
        )
    return _apply(Reason.NEW_ATTEMPT, f"attempt {report.attempt} (retry) starts in {rp.name}")


def decide_abort(state: StoredState) -> Decision:
    """Abort (rule 5): a non-terminal action becomes ABORTED; a terminal one is left alone."""
    current = state.attempt_phase if state.attempt_phase is not None else state.action_phase
    if state.action_phase.terminal or current.terminal:
        return _ignore(Reason.DUPLICATE, f"already {state.action_phase.name}; nothing to abort")
    return _apply(Reason.ADVANCE, f"{current.name} -> ABORTED")
