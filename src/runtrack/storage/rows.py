"""Row → domain record mapping, in one place."""

from __future__ import annotations

from typing import Any

from runtrack.domain.models import (
    AbortInfo,
    Action,
    Attempt,
    ClusterEvent,
    ErrorInfo,
    PhaseTransition,
    Run,
    RunId,
    Task,
    TaskRef,
)
from runtrack.domain.phases import Phase


def _mapping(r: Any) -> Any:
    """A row's mapping view (or a plain dict): name lookups on it are several times cheaper than
    attribute access on SQLAlchemy rows."""
    return getattr(r, "_mapping", r)


def _error(kind: str | None, message: str | None) -> ErrorInfo | None:
    if not kind and not message:
        return None
    return ErrorInfo(kind=kind or "", message=message or "")


def _abort(reason: str | None, by: str | None) -> AbortInfo | None:
    if reason is None and by is None:
        return None
    return AbortInfo(reason=reason or "", aborted_by=by or "")


def run_from_row(r: Any) -> Run:
    r = _mapping(r)
    task = None
    if r["task_name"]:
        task = TaskRef(
            name=r["task_name"],
            version=r["task_version"] or "",
            project=r["task_project"],
            domain=r["task_domain"],
            type=r["task_type"] or "",
        )
    return Run(
        id=RunId(r["org"], r["project"], r["domain"], r["name"]),
        phase=Phase(r["phase"]),
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        created_by=r["created_by"] or "",
        attempts=r["attempts"],
        task=task,
        trigger_name=r["trigger_name"],
        source=r["source"] or "",
        labels=dict(r["labels"] or {}),
        spec=r["spec"],
        inputs=r["inputs"],
        started_at=r["started_at"],
        ended_at=r["ended_at"],
        duration_ms=r["duration_ms"],
        error=_error(r["error_kind"], r["error_message"]),
        abort=_abort(r["abort_reason"], r["aborted_by"]),
        version=r["version"],
        pk=r["id"],
    )


def action_from_row(run: RunId, r: Any, attempts: tuple[Attempt, ...] = ()) -> Action:
    r = _mapping(r)
    task = (
        TaskRef(name=r["task_name"], version=r["task_version"] or "", type=r["task_type"] or "")
        if r["task_name"]
        else None
    )
    return Action(
        run=run,
        name=r["name"],
        phase=Phase(r["phase"]),
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        parent=r["parent"],
        group=r["group_name"],
        action_type=r["action_type"],
        task=task,
        spec=r["spec"],
        inputs=r["inputs"],
        outputs=r["outputs"],
        attempts=r["attempts"],
        version=r["version"],
        started_at=r["started_at"],
        ended_at=r["ended_at"],
        error=_error(r["error_kind"], r["error_message"]),
        abort=_abort(r["abort_reason"], r["aborted_by"]),
        concurrency_key=r["concurrency_key"],
        attempt_list=attempts,
        pk=r["id"],
    )


def attempt_from_row(
    r: Any,
    transitions: tuple[PhaseTransition, ...] = (),
    events: tuple[ClusterEvent, ...] = (),
) -> Attempt:
    r = _mapping(r)
    return Attempt(
        attempt=r["attempt"],
        phase=Phase(r["phase"]),
        start_time=r["start_time"],
        end_time=r["end_time"],
        error=_error(r["error_kind"], r["error_message"]),
        outputs=r["outputs"],
        log_info=r["log_info"],
        cluster=r["cluster"] or "",
        version=r["version"],
        last_heartbeat_at=r["last_heartbeat_at"],
        transitions=transitions,
        cluster_events=events,
    )


def transition_from_row(r: Any) -> PhaseTransition:
    r = _mapping(r)
    return PhaseTransition(phase=Phase(r["phase"]), start_time=r["start_time"], end_time=r["end_time"])


def cluster_event_from_row(r: Any) -> ClusterEvent:
    r = _mapping(r)
    return ClusterEvent(
        occurred_at=r["occurred_at"],
        message=r["message"],
        type=r["type"],
        reason=r["reason"],
        source=r["source"],
        count=r["count"],
    )


def task_from_row(r: Any) -> Task:
    r = _mapping(r)
    return Task(
        org=r["org"],
        project=r["project"],
        domain=r["domain"],
        name=r["name"],
        version=r["version"],
        spec=r["spec"],
        deployed_at=r["deployed_at"],
        deployed_by=r["deployed_by"] or "",
        pk=r["id"],
    )
