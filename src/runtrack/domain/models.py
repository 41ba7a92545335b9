"""Domain records. Plain frozen dataclasses, free of storage and transport types."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtrack.domain.phases import Phase, status_of

ROOT_ACTION = "a0"


@dataclass(frozen=True, slots=True, order=True)
class RunId:
    org: str
    project: str
    domain: str
    name: str

    def __str__(self) -> str:
        return f"{self.org}/{self.project}/{self.domain}/{self.name}"


@dataclass(frozen=True, slots=True)
class TaskRef:
    name: str
    version: str = ""
    project: str | None = None
    domain: str | None = None
    type: str = ""  # the task type (e.g. "python"), as the task spec's template names it


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    kind: str = ""
    message: str = ""
    code: str = ""


@dataclass(frozen=True, slots=True)
class AbortInfo:
    reason: str = ""
    aborted_by: str = ""


@dataclass(frozen=True, slots=True)
class Run:
    id: RunId
    phase: Phase
    created_at: datetime
    updated_at: datetime
    created_by: str = ""
    attempts: int = 0
    task: TaskRef | None = None
    trigger_name: str | None = None
    source: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    spec: Any = None
    inputs: Any = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None
    error: ErrorInfo | None = None
    abort: AbortInfo | None = None
    version: int = 1
    pk: int = 0  # storage identity; the tie-breaker of cursors

    @property
    def status(self) -> str:
        return status_of(self.phase)


@dataclass(frozen=True, slots=True)
class PhaseTransition:
    phase: Phase
    start_time: datetime
    end_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    occurred_at: datetime
    message: str = ""
    type: str = ""
    reason: str = ""
    source: str = ""
    count: int = 1


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    phase: Phase
    start_time: datetime | None = None
    end_time: datetime | None = None
    error: ErrorInfo | None = None
    outputs: Any = None
    log_info: Any = None
    cluster: str = ""
    version: int | None = None
    last_heartbeat_at: datetime | None = None
    transitions: tuple[PhaseTransition, ...] = ()
    cluster_events: tuple[ClusterEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Action:
    run: RunId
    name: str
    phase: Phase
    created_at: datetime
    updated_at: datetime
    parent: str | None = None
    group: str | None = None
    action_type: str = "task"
    task: TaskRef | None = None
    spec: Any = None
    inputs: Any = None
    outputs: Any = None
    attempts: int = 0
    version: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: ErrorInfo | None = None
    abort: AbortInfo | None = None
    concurrency_key: str | None = None
    attempt_list: tuple[Attempt, ...] = ()
    pk: int = 0

    @property
    def status(self) -> str:
        return status_of(self.phase)


@dataclass(frozen=True, slots=True)
class NewRun:
    """What creating a run needs; the root action ``a0`` is created with it, QUEUED."""

    id: RunId
    created_by: str = ""
    task: TaskRef | None = None
    trigger_name: str | None = None
    source: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    spec: Any = None
    inputs: Any = None
    action_spec: Any = None


def children_phase_counts(actions: Iterable[Action]) -> dict[str, dict[Phase, int]]:
    """For each action that has children among ``actions``: how many of them are in each phase."""
    out: dict[str, dict[Phase, int]] = {}
    for a in actions:
        if a.parent is not None:
            counts = out.setdefault(a.parent, {})
            counts[a.phase] = counts.get(a.phase, 0) + 1
    return out


@dataclass(frozen=True, slots=True)
class Task:
    org: str
    project: str
    domain: str
    name: str
    version: str
    spec: Any
    deployed_at: datetime
    deployed_by: str = ""
    pk: int = 0
