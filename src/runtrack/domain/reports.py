"""What executors report about actions, and what the server answers (pure records, no I/O)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtrack.domain.models import ClusterEvent, ErrorInfo, RunId
from runtrack.domain.phases import Phase
from runtrack.domain.transitions import Outcome

HEARTBEAT_TIMEOUT = "HEARTBEAT_TIMEOUT"  # error kind of attempts failed by the heartbeat sweeper
WAITING_FOR_SLOT = "waiting_for_resources"  # result reason: RUNNING was held back, no concurrency slot


@dataclass(frozen=True, slots=True)
class ActionReport:
    """One claim about one attempt of one action (an event or a status update)."""

    run: RunId
    action: str
    attempt: int
    phase: Phase
    version: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    reported_at: datetime | None = None  # when the executor observed it (the transition's time)
    error: ErrorInfo | None = None
    outputs: Any = None
    log_info: Any = None
    cluster: str | None = None
    cluster_events: tuple[ClusterEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportResult:
    """The answer to one report: applied, ignored (stale or duplicate) or rejected (conflict)."""

    outcome: Outcome
    reason: str
    message: str
    phase: Phase | None = None  # the action's phase after the report
    attempts: int = 0

    @property
    def applied(self) -> bool:
        return self.outcome is Outcome.APPLY


@dataclass(frozen=True, slots=True)
class NewAction:
    """A child action registered under its parent (``RecordAction``)."""

    run: RunId
    name: str
    parent: str | None = None
    group: str | None = None
    action_type: str = "task"
    task_name: str | None = None
    task_version: str | None = None
    spec: Any = None
    inputs: Any = None
    concurrency_key: str | None = None


@dataclass(frozen=True, slots=True)
class AbortOutcome:
    """What an abort changed: the actions that became ABORTED (empty when all were terminal)."""

    run: RunId
    aborted: tuple[str, ...] = ()
    run_version: int = 0


@dataclass(frozen=True, slots=True)
class LogLine:
    ts: datetime
    message: str
    stream: str = "stdout"
    id: int = 0


@dataclass(frozen=True, slots=True)
class LogPage:
    lines: tuple[LogLine, ...]
    next_after: int  # pass as ``after`` to read the following lines
    terminal: bool  # the attempt has ended (no more lines are expected once drained)


@dataclass(frozen=True, slots=True)
class SlotHolder:
    run: RunId
    action: str
    since: datetime


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    project: str
    key: str
    slots: int
    created_at: datetime
    holders: tuple[SlotHolder, ...] = ()
    waiting: tuple[SlotHolder, ...] = field(default_factory=tuple)


def concurrency_key_of(spec: Any, labels: dict[str, str] | None = None) -> str | None:
    """The concurrency key an action carries: ``spec.concurrency_key``, else the label ``concurrency_key``."""
    if isinstance(spec, dict):
        value = spec.get("concurrency_key") or spec.get("concurrencyKey")
        if isinstance(value, str) and value:
            return value
    if labels:
        value = labels.get("concurrency_key") or labels.get("runtrack/concurrency_key")
        if value:
            return value
    return None


def event_fingerprint(e: ClusterEvent) -> str:
    """Identity of a cluster event: an identical event re-sent has the same fingerprint."""
    raw = json.dumps(
        [e.occurred_at.isoformat(), e.message, e.type, e.reason, e.source, e.count], separators=(",", ":")
    )
    return hashlib.sha256(raw.encode()).hexdigest()
