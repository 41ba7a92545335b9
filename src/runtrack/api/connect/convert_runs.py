"""RunService conversion: flyteidl2 messages ↔ domain records.

Outgoing messages carry every field the flyte SDK and CLI read: the root action of a run always,
a phase that is never UNSPECIFIED, the task id/name and type, start/end times, attempts, duration.
Stored JSON (specs, inputs, outputs, log info) is protobuf JSON (``google.protobuf.json_format``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flyteidl2.common import identifier_pb2, identity_pb2
from flyteidl2.core import execution_pb2
from flyteidl2.task import common_pb2, run_pb2, task_definition_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from google.protobuf import json_format, timestamp_pb2

from runtrack.domain.models import (
    ROOT_ACTION,
    AbortInfo,
    Action,
    Attempt,
    ErrorInfo,
    Run,
    RunId,
    TaskRef,
)
from runtrack.domain.phases import Phase

# ---------------------------------------------------------------- shared helpers


def to_json(message: Any) -> Any:
    """A protobuf message as a JSON value (None for None)."""
    if message is None:
        return None
    return json_format.MessageToDict(message)


def from_json(value: Any, message: Any) -> Any:
    """Fill ``message`` from stored protobuf JSON; unknown or damaged content is left out."""
    if isinstance(value, dict):
        try:
            json_format.ParseDict(value, message, ignore_unknown_fields=True)
        except json_format.ParseError:
            pass
    return message


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def set_ts(target: timestamp_pb2.Timestamp, value: datetime) -> None:
    """Set a Timestamp in place from an aware datetime (faster than ``FromDatetime``)."""
    delta = value - _EPOCH
    target.seconds = delta.days * 86400 + delta.seconds
    target.nanos = delta.microseconds * 1000


def ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    set_ts(out, value)
    return out


def identity(subject: str) -> identity_pb2.EnrichedIdentity | None:
    if not subject:
        return None
    return identity_pb2.EnrichedIdentity(
        user=identity_pb2.User(id=identifier_pb2.UserIdentifier(subject=subject))
    )


def run_id_pb(rid: RunId) -> identifier_pb2.RunIdentifier:
    return identifier_pb2.RunIdentifier(org=rid.org, project=rid.project, domain=rid.domain, name=rid.name)


def action_id_pb(rid: RunId, name: str) -> identifier_pb2.ActionIdentifier:
    return identifier_pb2.ActionIdentifier(run=run_id_pb(rid), name=name)


def run_id_from_pb(pb: identifier_pb2.RunIdentifier) -> RunId:
    return RunId(pb.org, pb.project, pb.domain, pb.name)


def phase_pb(phase: Phase) -> int:
    # The numbers are flyteidl2's ActionPhase numbers.
    return int(phase)


SOURCES = {
    rd.RUN_SOURCE_WEB: "web",
    rd.RUN_SOURCE_CLI: "cli",
    rd.RUN_SOURCE_SCHEDULE_TRIGGER: "schedule_trigger",
    rd.RUN_SOURCE_TRACKED: "tracked",
    rd.RUN_SOURCE_ARTIFACT_TRIGGER: "artifact_trigger",
}
_SOURCE_PB = {v: k for k, v in SOURCES.items()}

_ERROR_KINDS = {"USER": rd.ErrorInfo.KIND_USER, "SYSTEM": rd.ErrorInfo.KIND_SYSTEM}
_ACTION_TYPES = {
    "task": rd.ACTION_TYPE_TASK,
    "trace": rd.ACTION_TYPE_TRACE,
    "condition": rd.ACTION_TYPE_CONDITION,
}


def error_pb(err: ErrorInfo | None) -> rd.ErrorInfo | None:
    if err is None:
        return None
    kind = _ERROR_KINDS.get(err.kind.upper(), rd.ErrorInfo.KIND_SYSTEM if err.kind else rd.ErrorInfo.KIND_UNSPECIFIED)
    return rd.ErrorInfo(message=err.message, kind=kind, code=err.code or err.kind)


def abort_pb(abort: AbortInfo | None) -> rd.AbortInfo | None:
    if abort is None:
        return None
    return rd.AbortInfo(reason=abort.reason, aborted_by=identity(abort.aborted_by))


def _duration_ms(start: datetime | None, end: datetime | None, stored: int | None) -> int:
    if stored is not None:
        return int(stored)
    if start is not None and end is not None:
        return max(0, int((end - start).total_seconds() * 1000))
    return 0


def status_pb(
    phase: Phase,
    created_at: datetime,
    started_at: datetime | None,
    ended_at: datetime | None,
    attempts: int,
    duration_ms: int | None,
) -> rd.ActionStatus:
    start = started_at or created_at
    status = rd.ActionStatus(
        phase=phase_pb(phase if phase is not Phase.UNSPECIFIED else Phase.QUEUED),
        start_time=ts(start),
        attempts=max(1, attempts),
        duration_ms=_duration_ms(start, ended_at, duration_ms),
    )
    if ended_at is not None and phase.terminal:
        status.end_time.CopyFrom(ts(ended_at))
    return status


def _short_name(task_name: str) -> str:
    return task_name.rsplit(".", 1)[-1]


def task_metadata_pb(rid: RunId, task: TaskRef | None, fallback_name: str) -> rd.TaskActionMetadata:
    name = task.name if task else fallback_name
    return rd.TaskActionMetadata(
        id=task_definition_pb2.TaskIdentifier(
            org=rid.org,
            project=(task.project if task and task.project else rid.project),
            domain=(task.domain if task and task.domain else rid.domain),
            name=name,
            version=task.version if task else "",
        ),
        task_type=(task.type if task and task.type else "python"),
        short_name=_short_name(name),
    )


# ---------------------------------------------------------------- runs


def run_metadata_pb(run: Run) -> rd.ActionMetadata:
    meta = rd.ActionMetadata(
        action_type=rd.ACTION_TYPE_TASK,
        task=task_metadata_pb(run.id, run.task, run.id.name),
        executed_by=identity(run.created_by),
        source=_SOURCE_PB.get(run.source, rd.RUN_SOURCE_UNSPECIFIED),
    )
    if run.trigger_name:
        meta.trigger_name = run.trigger_name
    return meta


def run_status_pb(run: Run) -> rd.ActionStatus:
    return status_pb(run.phase, run.created_at, run.started_at, run.ended_at, run.attempts, run.duration_ms)


def run_pb(run: Run) -> rd.Run:
    """A run in a listing: its root action (id, metadata, status) and labels.

    Built in place (listings convert up to 200 runs per request).
    """
    out = rd.Run()
    action = out.action
    rid = run.id
    r = action.id.run
    r.org, r.project, r.domain, r.name = rid.org, rid.project, rid.domain, rid.name
    action.id.name = ROOT_ACTION
    meta = action.metadata
    meta.action_type = rd.ACTION_TYPE_TASK
    task = run.task
    name = task.name if task else rid.name
    tm = meta.task
    tid = tm.id
    tid.org = rid.org
    tid.project = task.project if task and task.project else rid.project
    tid.domain = task.domain if task and task.domain else rid.domain
    tid.name = name
    if task and task.version:
        tid.version = task.version
    tm.task_type = task.type if task and task.type else "python"
    tm.short_name = _short_name(name)
    if run.created_by:
        meta.executed_by.user.id.subject = run.created_by
    source = _SOURCE_PB.get(run.source)
    if source:
        meta.source = source
    if run.trigger_name:
        meta.trigger_name = run.trigger_name
    st = action.status
    phase = run.phase if run.phase is not Phase.UNSPECIFIED else Phase.QUEUED
    st.phase = int(phase)
    start = run.started_at or run.created_at
    set_ts(st.start_time, start)
    st.attempts = max(1, run.attempts)
    st.duration_ms = _duration_ms(start, run.ended_at, run.duration_ms)
    if run.ended_at is not None and phase.terminal:
        set_ts(st.end_time, run.ended_at)
    if run.labels:
        out.labels.update(run.labels)
    return out


def run_spec_pb(run: Run) -> run_pb2.RunSpec:
    spec = from_json(run.spec, run_pb2.RunSpec())
    if run.labels and not spec.labels.values:
        spec.labels.values.update(run.labels)
    return spec


def run_details_pb(run: Run, root: Action) -> rd.RunDetails:
    """A run's details: its spec and the root action's details, with the run's own status."""
    details = action_details_pb(root, run=run)
    return rd.RunDetails(run_spec=run_spec_pb(run), action=details)


# ---------------------------------------------------------------- actions


def action_metadata_pb(action: Action, run: Run | None = None) -> rd.ActionMetadata:
    if run is not None and action.name == ROOT_ACTION:
        return run_metadata_pb(run)
    meta = rd.ActionMetadata(
        parent=action.parent or "",
        group=action.group or "",
        action_type=_ACTION_TYPES.get(action.action_type, rd.ACTION_TYPE_TASK),
    )
    if action.action_type == "trace":
        meta.trace.name = action.task.name if action.task else action.name
    elif action.action_type == "condition":
        meta.condition.name = action.name
    else:
        meta.task.CopyFrom(task_metadata_pb(action.run, action.task, action.name))
    return meta


def action_status_pb(action: Action) -> rd.ActionStatus:
    return status_pb(action.phase, action.created_at, action.started_at, action.ended_at, action.attempts, None)


def action_pb(action: Action) -> rd.Action:
    return rd.Action(
        id=action_id_pb(action.run, action.name),
        metadata=action_metadata_pb(action),
        status=action_status_pb(action),
    )


def _log_info(value: Any) -> list[execution_pb2.TaskLog]:
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    return [from_json(item, execution_pb2.TaskLog()) for item in items if isinstance(item, dict)]


def attempt_pb(att: Attempt) -> rd.ActionAttempt:
    logs = _log_info(att.log_info)
    out = rd.ActionAttempt(
        phase=phase_pb(att.phase),
        attempt=att.attempt,
        start_time=ts(att.start_time),
        end_time=ts(att.end_time),
        error_info=error_pb(att.error),
        log_info=logs,
        logs_available=bool(logs),
        cluster=att.cluster,
        outputs=from_json(att.outputs, common_pb2.OutputReferences()) if _is_refs(att.outputs) else None,
        phase_transitions=[
            rd.PhaseTransition(phase=phase_pb(t.phase), start_time=ts(t.start_time), end_time=ts(t.end_time))
            for t in att.transitions
        ],
        cluster_events=[
            rd.ClusterEvent(
                occurred_at=ts(e.occurred_at),
                message=e.message,
                type=_EVENT_TYPES.get(e.type.upper(), rd.ClusterEvent.TYPE_UNSPECIFIED),
                reason=e.reason,
                source_component=e.source,
                count=e.count,
            )
            for e in att.cluster_events
        ],
    )
    return out


_EVENT_TYPES = {
    "NORMAL": rd.ClusterEvent.TYPE_NORMAL,
    "TYPE_NORMAL": rd.ClusterEvent.TYPE_NORMAL,
    "WARNING": rd.ClusterEvent.TYPE_WARNING,
    "TYPE_WARNING": rd.ClusterEvent.TYPE_WARNING,
}


def _is_refs(value: Any) -> bool:
    return isinstance(value, dict) and any(k in value for k in ("outputUri", "output_uri", "reportUri", "report_uri"))


def action_details_pb(action: Action, *, run: Run | None = None) -> rd.ActionDetails:
    """An action's details; for the root action of ``run`` the run's status and metadata are used."""
    is_root = run is not None and action.name == ROOT_ACTION
    status = run_status_pb(run) if is_root and run is not None else action_status_pb(action)
    details = rd.ActionDetails(
        id=action_id_pb(action.run, action.name),
        metadata=action_metadata_pb(action, run),
        status=status,
        attempts=[attempt_pb(a) for a in action.attempt_list],
    )
    error = (run.error if is_root and run is not None else None) or action.error
    if error is None and action.attempt_list and action.attempt_list[-1].phase.terminal:
        error = action.attempt_list[-1].error  # the newest attempt's error is the action's
    abort = (run.abort if is_root and run is not None else None) or action.abort
    if error is not None:
        details.error_info.CopyFrom(error_pb(error))
    if abort is not None:
        details.abort_info.CopyFrom(abort_pb(abort))
    spec = from_json(action.spec, rd.ActionSpec())
    if spec.HasField("task") and spec.task.HasField("spec"):
        details.task.CopyFrom(spec.task.spec)
    elif spec.HasField("trace") and spec.trace.HasField("spec"):
        details.trace.CopyFrom(spec.trace.spec)
    elif spec.HasField("condition"):
        details.condition.CopyFrom(spec.condition)
    return details


def action_data(action: Action) -> tuple[common_pb2.Inputs, common_pb2.Outputs]:
    """The stored inputs and outputs of an action."""
    inputs = from_json(action.inputs, common_pb2.Inputs())
    outputs = from_json(action.outputs, common_pb2.Outputs())
    if not action.outputs:
        for att in reversed(action.attempt_list):
            if isinstance(att.outputs, dict) and not _is_refs(att.outputs):
                outputs = from_json(att.outputs, common_pb2.Outputs())
                break
    return inputs, outputs
