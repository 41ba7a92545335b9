"""flyteidl2 ↔ domain conversion for the executor services (InternalRunService, RunLogsService)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flyteidl2.common import identifier_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.workflow import internal_run_service_pb2 as irs
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_logs_service_pb2 as rls
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import status_pb2

from runtrack.domain.models import ClusterEvent, ErrorInfo, RunId
from runtrack.domain.phases import Phase
from runtrack.domain.reports import ActionReport, LogLine, NewAction, ReportResult, concurrency_key_of
from runtrack.errors import InvalidArgument


def run_id_of(aid: identifier_pb2.ActionIdentifier, where: str = "action_id") -> tuple[RunId, str]:
    run = aid.run
    for part in ("org", "project", "domain", "name"):
        if not getattr(run, part):
            raise InvalidArgument(f"{where}.run.{part} must not be empty")
    if not aid.name:
        raise InvalidArgument(f"{where}.name must not be empty")
    return RunId(run.org, run.project, run.domain, run.name), aid.name


def _time(msg: Any, name: str) -> datetime | None:
    if not msg.HasField(name):
        return None
    ts: Timestamp = getattr(msg, name)
    value: datetime = ts.ToDatetime(tzinfo=UTC)
    return value


def _phase(value: int, where: str) -> Phase:
    try:
        phase = Phase(value)
    except ValueError:
        raise InvalidArgument(f"{where}: unknown phase {value}") from None
    if phase is Phase.UNSPECIFIED:
        raise InvalidArgument(f"{where}: phase must be specified")
    return phase


def _dict(msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = MessageToDict(msg, preserving_proto_field_name=True)
    return out


def error_of(e: rd.ErrorInfo) -> ErrorInfo:
    kind = rd.ErrorInfo.Kind.Name(e.kind).removeprefix("KIND_") if e.kind else ""
    return ErrorInfo(kind=kind, message=e.message, code=e.code)


def cluster_event_of(e: rd.ClusterEvent) -> ClusterEvent:
    return ClusterEvent(
        occurred_at=_time(e, "occurred_at") or datetime.fromtimestamp(0, UTC),
        message=e.message,
        type=rd.ClusterEvent.Type.Name(e.type).removeprefix("TYPE_") if e.type else "",
        reason=e.reason,
        source=e.source_component,
        count=e.count or 1,
    )


def report_of_event(ev: rd.ActionEvent, where: str = "event") -> ActionReport:
    """An ActionEvent. Unset (0) attempt means attempt 1; unset (0) version means unversioned."""
    run, name = run_id_of(ev.id, f"{where}.id")
    return ActionReport(
        run=run,
        action=name,
        attempt=ev.attempt or 1,
        phase=_phase(ev.phase, f"{where}.phase"),
        version=ev.version or None,
        start_time=_time(ev, "start_time"),
        end_time=_time(ev, "end_time"),
        reported_at=_time(ev, "updated_time") or _time(ev, "reported_time"),
        error=error_of(ev.error_info) if ev.HasField("error_info") else None,
        outputs=_dict(ev.outputs) if ev.HasField("outputs") else None,
        log_info=[_dict(t) for t in ev.log_info] or None,
        cluster=ev.cluster or None,
        cluster_events=tuple(cluster_event_of(e) for e in ev.cluster_events),
    )


def report_of_status(req: irs.UpdateActionStatusRequest) -> ActionReport:
    """An UpdateActionStatusRequest: the attempt is ``status.attempts`` (1 when unset)."""
    run, name = run_id_of(req.action_id)
    st = req.status
    return ActionReport(
        run=run,
        action=name,
        attempt=st.attempts or 1,
        phase=_phase(st.phase, "status.phase"),
        start_time=_time(st, "start_time"),
        end_time=_time(st, "end_time"),
        outputs=_dict(req.output) if req.HasField("output") else None,
    )


def new_action_of(req: irs.RecordActionRequest) -> NewAction:
    run, name = run_id_of(req.action_id)
    spec: dict[str, Any] | None = None
    task_name = task_version = None
    action_type = "task"
    if req.HasField("task"):
        spec = _dict(req.task)
        task_name, task_version = req.task.id.name or None, req.task.id.version or None
    elif req.HasField("trace"):
        spec, action_type = _dict(req.trace), "trace"
    elif req.HasField("condition"):
        spec, action_type = _dict(req.condition), "condition"
    return NewAction(
        run=run,
        name=name,
        parent=req.parent or None,
        group=req.group or None,
        action_type=action_type,
        task_name=task_name,
        task_version=task_version,
        spec=spec,
        inputs={"uri": req.input_uri} if req.input_uri else None,
        concurrency_key=concurrency_key_of(spec),
    )


def ok_status(message: str = "") -> status_pb2.Status:
    return status_pb2.Status(code=0, message=message)


def error_status(code: int, message: str) -> status_pb2.Status:
    return status_pb2.Status(code=code, message=message)


def result_status(r: ReportResult) -> status_pb2.Status:
    """google.rpc.Status of one event result: OK for applied/ignored, FAILED_PRECONDITION (9) for rejected."""
    code = 9 if r.outcome.value == "rejected" else 0
    return status_pb2.Status(code=code, message=f"{r.outcome.value}: {r.reason}: {r.message}")


def log_response(lines: list[LogLine]) -> rls.TailLogsResponse:
    out = []
    for ln in lines:
        ts = Timestamp()
        ts.FromDatetime(ln.ts)
        originator = payload_pb2.SYSTEM if ln.stream == "system" else payload_pb2.USER
        out.append(payload_pb2.LogLine(timestamp=ts, message=ln.message, originator=originator))
    return rls.TailLogsResponse(logs=[rls.TailLogsResponse.Logs(lines=out)])
