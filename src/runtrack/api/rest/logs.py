"""REST: attempt logs — append, page, and follow as server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from runtrack.api.errors import classify
from runtrack.api.rest.common import run_id_path, services
from runtrack.api.rest.executor_schemas import AppendedOut, LogPageOut, LogsIn, log_line_out
from runtrack.api.rest.schemas import ErrorResponse
from runtrack.domain.models import RunId
from runtrack.service.container import Services

router = APIRouter(prefix="/api/v1", tags=["logs"])
LOGS_PATH = "/runs/{org}/{project}/{domain}/{name}/actions/{action}/attempts/{attempt}/logs"
_errors: dict[int | str, dict[str, Any]] = {400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}}


@router.post(LOGS_PATH, response_model=AppendedOut, responses=_errors)
async def append_logs(
    action: str, attempt: int, body: LogsIn, run_id: RunId = Depends(run_id_path),
    svc: Services = Depends(services),
) -> AppendedOut:
    lines = [ln.to_domain() for ln in body.lines]
    return AppendedOut(appended=await svc.executor.append_logs(run_id, action, attempt, lines))


@router.get(
    LOGS_PATH,
    response_model=LogPageOut,
    responses={**_errors, 200: {"content": {"text/event-stream": {}}}},
)
async def read_logs(
    action: str,
    attempt: int,
    after: int = Query(0, ge=0, description="Return lines after this line id (`next_after` of the previous page)."),
    limit: int = Query(500, ge=1, le=5000),
    follow: bool = Query(False, description="Stream lines as server-sent events until the attempt ends."),
    last_event_id: str | None = Header(None),
    run_id: RunId = Depends(run_id_path),
    svc: Services = Depends(services),
) -> Any:
    if not follow:
        page = await svc.executor.read_logs(run_id, action, attempt, after=after, limit=limit)
        return LogPageOut(lines=[log_line_out(ln) for ln in page.lines], next_after=page.next_after,
                          terminal=page.terminal)
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
    await svc.executor.read_logs(run_id, action, attempt, after=start, limit=1)  # 404 before streaming

    async def stream() -> AsyncIterator[str]:
        try:
            async for line in svc.executor.follow_logs(run_id, action, attempt, after=start):
                yield f"id: {line.id}\nevent: log\ndata: {log_line_out(line).model_dump_json()}\n\n"
            yield "event: end\ndata: {}\n\n"
        except Exception as exc:
            mapping, message = classify(exc)
            yield f"event: error\ndata: {json.dumps({'code': mapping.name, 'message': message})}\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
