"""REST: reading runs and their actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from runtrack.api.rest.common import run_id_path, services
from runtrack.api.rest.schemas import ActionOut, ErrorResponse, RunOut, action_out, run_out
from runtrack.domain.models import RunId
from runtrack.service.container import Services

router = APIRouter(prefix="/api/v1", tags=["runs"])
RUN_PATH = "/runs/{org}/{project}/{domain}/{name}"
_errors: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}, 400: {"model": ErrorResponse}}


@router.get(RUN_PATH, response_model=RunOut, responses=_errors)
async def get_run(run_id: RunId = Depends(run_id_path), svc: Services = Depends(services)) -> RunOut:
    return run_out(await svc.runs.get_run(run_id))


@router.get(RUN_PATH + "/actions/{action}", response_model=ActionOut, responses=_errors)
async def get_action(
    action: str, run_id: RunId = Depends(run_id_path), svc: Services = Depends(services)
) -> ActionOut:
    return action_out(await svc.runs.get_action(run_id, action), details=True)
