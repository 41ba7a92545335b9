"""REST: concurrency limits (project, key → slots) and who holds or waits for their slots."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from runtrack.api.rest.common import services
from runtrack.api.rest.executor_schemas import LimitIn, LimitOut, LimitsOut, limit_out
from runtrack.api.rest.schemas import ErrorResponse
from runtrack.service.container import Services

router = APIRouter(prefix="/api/v1", tags=["concurrency"])
_errors: dict[int | str, dict[str, Any]] = {400: {"model": ErrorResponse}, 404: {"model": ErrorResponse}}


@router.post("/concurrency_limits", response_model=LimitOut, status_code=201, responses=_errors)
async def put_limit(body: LimitIn, response: Response, svc: Services = Depends(services)) -> LimitOut:
    """Create a limit (201) or change the slots of an existing one (200)."""
    limit, created = await svc.executor.put_limit(body.project, body.key, body.slots)
    if not created:
        response.status_code = 200
    return limit_out(limit)


@router.get("/concurrency_limits", response_model=LimitsOut, responses=_errors)
async def list_limits(
    project: str | None = Query(None, description="Only this project's limits."), svc: Services = Depends(services)
) -> LimitsOut:
    return LimitsOut(limits=[limit_out(lim) for lim in await svc.executor.list_limits(project)])


@router.get("/concurrency_limits/{project}/{key}", response_model=LimitOut, responses=_errors)
async def get_limit(project: str, key: str, svc: Services = Depends(services)) -> LimitOut:
    return limit_out(await svc.executor.get_limit(project, key))


@router.delete("/concurrency_limits/{project}/{key}", status_code=204, responses=_errors)
async def delete_limit(project: str, key: str, svc: Services = Depends(services)) -> Response:
    """Delete a limit; actions waiting for one of its slots are admitted."""
    await svc.executor.delete_limit(project, key)
    return Response(status_code=204)
