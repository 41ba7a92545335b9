"""REST: creating runs and the two executor write paths (events, status), plus heartbeats."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from runtrack.api.rest.common import caller, run_id_path, services
from runtrack.api.rest.executor_schemas import (
    AbortIn,
    AbortOut,
    CreateRunIn,
    EventsIn,
    EventsOut,
    ResultOut,
    StatusIn,
    result_out,
)
from runtrack.api.rest.schemas import ErrorResponse, RunOut, run_out
from runtrack.domain.models import NewRun, RunId, TaskRef
from runtrack.service.container import Services

router = APIRouter(prefix="/api/v1", tags=["executor"])
RUN_PATH = "/runs/{org}/{project}/{domain}/{name}"
ACTION_PATH = RUN_PATH + "/actions/{action}"
_errors: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
}


@router.post("/runs", status_code=201, response_model=RunOut, responses=_errors)
async def create_run(
    body: CreateRunIn, user: str | None = Depends(caller), svc: Services = Depends(services)
) -> RunOut:
    """Create a run and its root action `a0` (QUEUED). Without a name, a unique one is generated."""
    new = NewRun(
        id=RunId(body.org, body.project, body.domain, body.name or ""),
        created_by=user or "",
        task=TaskRef(name=body.task.name, version=body.task.version) if body.task else None,
        source="rest",
        labels=dict(body.labels),
        spec=body.spec,
        inputs=body.inputs,
    )
    return run_out(await svc.executor.create_run(new))


_EVENTS_IN = EventsIn.model_json_schema(ref_template="#/components/schemas/{model}")
# Schemas the events endpoint documents itself (it reads its body itself), for the OpenAPI document.
OPENAPI_SCHEMAS: dict[str, Any] = {
    **_EVENTS_IN.get("$defs", {}), "EventsIn": {k: v for k, v in _EVENTS_IN.items() if k != "$defs"}
}


@router.post(
    "/events", response_model=EventsOut, responses=_errors,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/EventsIn"}}}}},
)
async def record_events(request: Request) -> Response:
    """Fire-and-forget ingestion: one result per event (applied, ignored or rejected), always 200.

    Malformed input (an unknown phase, a naive time, a missing field) is a 400 and changes nothing.

    The busiest endpoint reads and answers its JSON itself (pydantic validates the raw bytes; the
    answer is encoded once): FastAPI's parameter solving and response validation were about a tenth
    of a one-event request's server CPU.
    """
    try:
        body = EventsIn.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    reports = [e.report(e.run.to_domain(), e.action, where=f"events[{i}].phase") for i, e in enumerate(body.events)]
    svc: Services = request.app.state.services
    results = await svc.executor.record_events(reports)
    out = EventsOut(results=[result_out(r) for r in results])
    return Response(out.model_dump_json(), media_type="application/json")


@router.put(ACTION_PATH + "/status", response_model=ResultOut, responses=_errors)
async def update_status(
    action: str, body: StatusIn, run_id: RunId = Depends(run_id_path), svc: Services = Depends(services)
) -> ResultOut:
    """The strict path: 200 when applied or an exact duplicate, 409 on a conflict."""
    return result_out(await svc.executor.update_status(body.report(run_id, action)))


@router.post(RUN_PATH + "/abort", response_model=AbortOut, responses=_errors)
async def abort_run(
    body: AbortIn | None = None, user: str | None = Depends(caller), run_id: RunId = Depends(run_id_path),
    svc: Services = Depends(services),
) -> AbortOut:
    """Abort the run: every action not yet finished becomes ABORTED. An ended run is left as it is (200)."""
    out = await svc.executor.abort_run(run_id, reason=body.reason if body else "", by=user or "")
    return AbortOut(aborted=list(out.aborted), run_version=out.run_version)


@router.post(ACTION_PATH + "/abort", response_model=AbortOut, responses=_errors)
async def abort_action(
    action: str, body: AbortIn | None = None, user: str | None = Depends(caller),
    run_id: RunId = Depends(run_id_path), svc: Services = Depends(services),
) -> AbortOut:
    """Abort one action and its descendants (`a0` aborts the whole run)."""
    out = await svc.executor.abort_action(run_id, action, reason=body.reason if body else "", by=user or "")
    return AbortOut(aborted=list(out.aborted), run_version=out.run_version)


@router.post(ACTION_PATH + "/attempts/{attempt}/heartbeat", status_code=204, responses=_errors)
async def heartbeat(
    action: str, attempt: int, run_id: RunId = Depends(run_id_path), svc: Services = Depends(services)
) -> Response:
    """The attempt is alive. Silence longer than `heartbeatTimeout` fails it with HEARTBEAT_TIMEOUT."""
    await svc.executor.heartbeat(run_id, action, attempt)
    return Response(status_code=204)
