"""REST response shapes (pydantic, for OpenAPI) and domain → JSON conversion."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from runtrack.api.rest.common import iso
from runtrack.domain.models import Action, Attempt, ErrorInfo, Run


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class ErrorOut(BaseModel):
    kind: str
    message: str


class TaskOut(BaseModel):
    name: str
    version: str


class RunOut(BaseModel):
    org: str
    project: str
    domain: str
    name: str
    phase: str
    status: str
    created_by: str
    labels: dict[str, str] = Field(default_factory=dict)
    task: TaskOut | None = None
    trigger_name: str | None = None
    created_at: str
    updated_at: str
    started_at: str | None = None
    ended_at: str | None = None
    duration_ms: int | None = None
    attempts: int
    error: ErrorOut | None = None
    abort_reason: str | None = None
    aborted_by: str | None = None
    version: int


class TransitionOut(BaseModel):
    phase: str
    start_time: str | None
    end_time: str | None


class ClusterEventOut(BaseModel):
    occurred_at: str | None
    message: str
    type: str
    reason: str
    source: str
    count: int


class AttemptOut(BaseModel):
    attempt: int
    phase: str
    start_time: str | None = None
    end_time: str | None = None
    error: ErrorOut | None = None
    outputs: Any = None
    log_info: Any = None
    cluster: str = ""
    version: int | None = None
    last_heartbeat_at: str | None = None
    transitions: list[TransitionOut] = Field(default_factory=list)
    cluster_events: list[ClusterEventOut] = Field(default_factory=list)


class ActionOut(BaseModel):
    name: str
    parent: str | None = None
    group: str | None = None
    type: str
    phase: str
    status: str
    attempts: int
    created_at: str
    updated_at: str
    started_at: str | None = None
    ended_at: str | None = None
    error: ErrorOut | None = None
    abort_reason: str | None = None
    concurrency_key: str | None = None
    task: TaskOut | None = None
    attempt_list: list[AttemptOut] | None = None


def _err(e: ErrorInfo | None) -> ErrorOut | None:
    return None if e is None else ErrorOut(kind=e.kind, message=e.message)


def run_out(r: Run) -> RunOut:
    return RunOut(
        org=r.id.org,
        project=r.id.project,
        domain=r.id.domain,
        name=r.id.name,
        phase=r.phase.name,
        status=r.status,
        created_by=r.created_by,
        labels=r.labels,
        task=TaskOut(name=r.task.name, version=r.task.version) if r.task else None,
        trigger_name=r.trigger_name,
        created_at=iso(r.created_at) or "",
        updated_at=iso(r.updated_at) or "",
        started_at=iso(r.started_at),
        ended_at=iso(r.ended_at),
        duration_ms=r.duration_ms,
        attempts=r.attempts,
        error=_err(r.error),
        abort_reason=r.abort.reason if r.abort else None,
        aborted_by=r.abort.aborted_by if r.abort else None,
        version=r.version,
    )


def attempt_out(a: Attempt) -> AttemptOut:
    return AttemptOut(
        attempt=a.attempt,
        phase=a.phase.name,
        start_time=iso(a.start_time),
        end_time=iso(a.end_time),
        error=_err(a.error),
        outputs=a.outputs,
        log_info=a.log_info,
        cluster=a.cluster,
        version=a.version,
        last_heartbeat_at=iso(a.last_heartbeat_at),
        transitions=[
            TransitionOut(phase=t.phase.name, start_time=iso(t.start_time), end_time=iso(t.end_time))
            for t in a.transitions
        ],
        cluster_events=[
            ClusterEventOut(
                occurred_at=iso(e.occurred_at),
                message=e.message,
                type=e.type,
                reason=e.reason,
                source=e.source,
                count=e.count,
            )
            for e in a.cluster_events
        ],
    )


def action_out(a: Action, *, details: bool = False) -> ActionOut:
    return ActionOut(
        name=a.name,
        parent=a.parent,
        group=a.group,
        type=a.action_type,
        phase=a.phase.name,
        status=a.status,
        attempts=a.attempts,
        created_at=iso(a.created_at) or "",
        updated_at=iso(a.updated_at) or "",
        started_at=iso(a.started_at),
        ended_at=iso(a.ended_at),
        error=_err(a.error),
        abort_reason=a.abort.reason if a.abort else None,
        concurrency_key=a.concurrency_key,
        task=TaskOut(name=a.task.name, version=a.task.version) if a.task else None,
        attempt_list=[attempt_out(x) for x in a.attempt_list] if details else None,
    )


def run_dict(r: Run) -> dict[str, Any]:
    """The JSON of a run as plain data (the shape of ``RunOut``), for listings serialised in bulk."""
    return {
        "org": r.id.org,
        "project": r.id.project,
        "domain": r.id.domain,
        "name": r.id.name,
        "phase": r.phase.name,
        "status": r.status,
        "created_by": r.created_by,
        "labels": r.labels,
        "task": {"name": r.task.name, "version": r.task.version} if r.task else None,
        "trigger_name": r.trigger_name,
        "created_at": iso(r.created_at) or "",
        "updated_at": iso(r.updated_at) or "",
        "started_at": iso(r.started_at),
        "ended_at": iso(r.ended_at),
        "duration_ms": r.duration_ms,
        "attempts": r.attempts,
        "error": {"kind": r.error.kind, "message": r.error.message} if r.error else None,
        "abort_reason": r.abort.reason if r.abort else None,
        "aborted_by": r.abort.aborted_by if r.abort else None,
        "version": r.version,
    }


class RunListOut(BaseModel):
    runs: list[RunOut]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last page.")


class CountOut(BaseModel):
    count: int


class ActionListOut(BaseModel):
    actions: list[ActionOut]
    next_cursor: str | None = None
