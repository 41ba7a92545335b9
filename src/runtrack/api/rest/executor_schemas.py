"""REST request and response shapes of the executor endpoints (pydantic, ``extra="forbid"``)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from runtrack.api.rest.common import iso
from runtrack.domain.models import ClusterEvent, ErrorInfo, RunId
from runtrack.domain.phases import parse_phase
from runtrack.domain.reports import ActionReport, ConcurrencyLimit, LogLine, ReportResult, SlotHolder


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunRef(_In):
    org: str = Field(min_length=1, max_length=63)
    project: str = Field(min_length=1, max_length=63)
    domain: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=30)

    def to_domain(self) -> RunId:
        return RunId(self.org, self.project, self.domain, self.name)


class TaskIn(_In):
    name: str = Field(min_length=1, max_length=255)
    version: str = Field("", max_length=255)


class CreateRunIn(_In):
    org: str = Field(min_length=1, max_length=63)
    project: str = Field(min_length=1, max_length=63)
    domain: str = Field(min_length=1, max_length=63)
    name: str | None = Field(None, min_length=1, max_length=30, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    task: TaskIn | None = None
    spec: Any = None
    inputs: Any = None
    labels: dict[str, str] = Field(default_factory=dict)


class ErrorIn(_In):
    kind: str = Field("", max_length=64)
    message: str = ""

    def to_domain(self) -> ErrorInfo:
        return ErrorInfo(kind=self.kind, message=self.message)


class ClusterEventIn(_In):
    occurred_at: AwareDatetime
    message: str = ""
    type: str = Field("", max_length=32)
    reason: str = Field("", max_length=255)
    source: str = Field("", max_length=255)
    count: int = Field(1, ge=0)

    def to_domain(self) -> ClusterEvent:
        return ClusterEvent(self.occurred_at, self.message, self.type, self.reason, self.source, self.count)


class _ReportFields(_In):
    attempt: int = Field(ge=1)
    phase: str | int = Field(description="A phase name without prefix (SUCCEEDED, TIMED_OUT, ...); any case.")
    version: int | None = Field(None, ge=0)
    start_time: AwareDatetime | None = None
    end_time: AwareDatetime | None = None
    reported_at: AwareDatetime | None = None
    error: ErrorIn | None = None
    outputs: Any = None
    log_info: Any = None
    cluster: str | None = Field(None, max_length=255)
    cluster_events: list[ClusterEventIn] = Field(default_factory=list, max_length=1000)

    def report(self, run: RunId, action: str, where: str = "phase") -> ActionReport:
        return ActionReport(
            run=run,
            action=action,
            attempt=self.attempt,
            phase=parse_phase(self.phase, field=where),
            version=self.version,
            start_time=self.start_time,
            end_time=self.end_time,
            reported_at=self.reported_at,
            error=self.error.to_domain() if self.error else None,
            outputs=self.outputs,
            log_info=self.log_info,
            cluster=self.cluster,
            cluster_events=tuple(e.to_domain() for e in self.cluster_events),
        )


class EventIn(_ReportFields):
    run: RunRef
    action: str = Field(min_length=1, max_length=255)


class EventsIn(_In):
    events: list[EventIn] = Field(max_length=10000)


class StatusIn(_ReportFields):
    pass


class AbortIn(_In):
    reason: str = Field("", max_length=10000)


class AbortOut(BaseModel):
    aborted: list[str] = Field(description="The actions this call moved to ABORTED (empty if all had ended).")
    run_version: int


class ResultOut(BaseModel):
    outcome: str = Field(description="applied, ignored (stale or duplicate) or rejected (conflict)")
    reason: str
    message: str
    phase: str | None = None
    attempts: int = 0


class EventsOut(BaseModel):
    results: list[ResultOut]


def result_out(r: ReportResult) -> ResultOut:
    return ResultOut(
        outcome=r.outcome.value, reason=r.reason, message=r.message,
        phase=r.phase.name if r.phase is not None else None, attempts=r.attempts,
    )


class LogLineIn(_In):
    ts: AwareDatetime
    stream: str = Field("stdout", max_length=16)
    message: str

    def to_domain(self) -> LogLine:
        return LogLine(ts=self.ts, message=self.message, stream=self.stream)


class LogsIn(_In):
    lines: list[LogLineIn] = Field(max_length=10000)


class AppendedOut(BaseModel):
    appended: int


class LogLineOut(BaseModel):
    id: int
    ts: str
    stream: str
    message: str


class LogPageOut(BaseModel):
    lines: list[LogLineOut]
    next_after: int = Field(description="Pass as `after` to read the following lines.")
    terminal: bool = Field(description="The attempt has ended and every line has been read.")


def log_line_out(ln: LogLine) -> LogLineOut:
    return LogLineOut(id=ln.id, ts=iso(ln.ts) or "", stream=ln.stream, message=ln.message)


class LimitIn(_In):
    project: str = Field(min_length=1, max_length=63)
    key: str = Field(min_length=1, max_length=255)
    slots: int = Field(ge=0)


class HolderOut(BaseModel):
    org: str
    project: str
    domain: str
    run: str
    action: str
    since: str


class LimitOut(BaseModel):
    project: str
    key: str
    slots: int
    created_at: str
    holders: list[HolderOut]
    waiting: list[HolderOut]


class LimitsOut(BaseModel):
    limits: list[LimitOut]


def _holder(h: SlotHolder) -> HolderOut:
    return HolderOut(
        org=h.run.org, project=h.run.project, domain=h.run.domain, run=h.run.name, action=h.action,
        since=iso(h.since) or "",
    )


def limit_out(lim: ConcurrencyLimit) -> LimitOut:
    return LimitOut(
        project=lim.project, key=lim.key, slots=lim.slots, created_at=iso(lim.created_at) or "",
        holders=[_holder(h) for h in lim.holders], waiting=[_holder(h) for h in lim.waiting],
    )
