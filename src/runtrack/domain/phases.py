"""Phases (flyteidl2 ``ActionPhase``, same numbers) and the status words built on them."""

from __future__ import annotations

from enum import IntEnum

from runtrack.errors import InvalidArgument


class Phase(IntEnum):
    UNSPECIFIED = 0
    QUEUED = 1
    WAITING_FOR_RESOURCES = 2
    INITIALIZING = 3
    RUNNING = 4
    SUCCEEDED = 5
    FAILED = 6
    ABORTED = 7
    TIMED_OUT = 8
    PAUSED = 9
    RECOVERED = 10

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def rank(self) -> int:
        """Order within one attempt: QUEUED < WAITING < INITIALIZING < RUNNING = PAUSED < terminal."""
        return _RANK[self]


TERMINAL: frozenset[Phase] = frozenset(
    {Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED, Phase.TIMED_OUT, Phase.RECOVERED}
)
RETRYABLE: frozenset[Phase] = frozenset({Phase.FAILED, Phase.TIMED_OUT})
REPORTABLE: tuple[Phase, ...] = tuple(p for p in Phase if p is not Phase.UNSPECIFIED)

_RANK = {
    Phase.UNSPECIFIED: 0,
    Phase.QUEUED: 1,
    Phase.WAITING_FOR_RESOURCES: 2,
    Phase.INITIALIZING: 3,
    Phase.RUNNING: 4,
    Phase.PAUSED: 4,
    Phase.SUCCEEDED: 5,
    Phase.FAILED: 5,
    Phase.ABORTED: 5,
    Phase.TIMED_OUT: 5,
    Phase.RECOVERED: 5,
}

# The status groups every front door accepts (DESIGN.md section 3). The keys of STATUS_OF are
# the status names the API reports for a phase.
STATUS_GROUPS: dict[str, frozenset[Phase]] = {
    "pending": frozenset({Phase.QUEUED, Phase.WAITING_FOR_RESOURCES, Phase.INITIALIZING}),
    "running": frozenset({Phase.RUNNING, Phase.PAUSED}),
    "succeeded": frozenset({Phase.SUCCEEDED, Phase.RECOVERED}),
    "completed": frozenset({Phase.SUCCEEDED, Phase.RECOVERED}),
    "failed": frozenset({Phase.FAILED, Phase.TIMED_OUT}),
    "cancelled": frozenset({Phase.ABORTED}),
    "aborted": frozenset({Phase.ABORTED}),
}

STATUS_NAMES: tuple[str, ...] = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")


def status_of(phase: Phase) -> str:
    """The status group name (upper case) a phase belongs to; ``UNKNOWN`` for UNSPECIFIED."""
    for name in STATUS_NAMES:
        if phase in STATUS_GROUPS[name.lower()]:
            return name
    return "UNKNOWN"


def parse_phase(value: str | int, *, field: str = "phase") -> Phase:
    """Accept ``SUCCEEDED``, ``succeeded``, ``ACTION_PHASE_SUCCEEDED``, ``"5"`` or ``5``."""
    if isinstance(value, bool):
        raise InvalidArgument(f"{field}: unknown phase {value!r}")
    if isinstance(value, int):
        try:
            phase = Phase(value)
        except ValueError:
            raise InvalidArgument(f"{field}: unknown phase {value!r}") from None
    else:
        text = value.strip().upper()
        if text.isdigit():
            return parse_phase(int(text), field=field)
        text = text.removeprefix("ACTION_PHASE_")
        try:
            phase = Phase[text]
        except KeyError:
            raise InvalidArgument(f"{field}: unknown phase {value!r}") from None
    if phase is Phase.UNSPECIFIED:
        raise InvalidArgument(f"{field}: phase must be specified")
    return phase


def parse_status(word: str, *, field: str = "status") -> frozenset[Phase]:
    """A status word: a group (``running``, ``failed``, …) or a single phase name."""
    key = word.strip().lower()
    if key in STATUS_GROUPS:
        return STATUS_GROUPS[key]
    try:
        return frozenset({parse_phase(word, field=field)})
    except InvalidArgument:
        groups = ", ".join(sorted(STATUS_GROUPS))
        raise InvalidArgument(
            f"{field}: unknown status {word!r} (use a phase name or one of {groups})"
        ) from None
