"""REST: listing, counting and reading runs and their actions."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from runtrack.api.rest.common import run_id_path, services
from runtrack.api.rest.filters import RunFilter, run_filter, status_node
from runtrack.api.rest.schemas import (
    ActionListOut,
    ActionOut,
    CountOut,
    ErrorResponse,
    RunListOut,
    RunOut,
    action_out,
    run_dict,
    run_out,
)
from runtrack.domain.models import RunId
from runtrack.domain.query import DEFAULT_LIMIT, MAX_LIMIT, RunQuery, parse_sort
from runtrack.service.container import Services

router = APIRouter(prefix="/api/v1", tags=["runs"])
RUN_PATH = "/runs/{org}/{project}/{domain}/{name}"
_errors: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}, 400: {"model": ErrorResponse}}

LimitQ = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Page size, 1-{MAX_LIMIT}.")
CursorQ = Query(None, description="The `next_cursor` of the previous page (same filters and sort).")
OffsetQ = Query(None, ge=0, description="Skip this many rows first (to jump to a page; cursors are cheaper).")
SortQ = Query(
    "-created_at",
    description="created_at, updated_at, ended_at, name, phase or duration; prefix `-` for descending. "
    "Empty values sort last.",
)


# Fixed paths come before the run path so that no run name captures them.
@router.get("/runs", response_model=RunListOut, responses=_errors)
async def list_runs(
    flt: RunFilter = Depends(run_filter),
    limit: int = LimitQ,
    cursor: str | None = CursorQ,
    offset: int | None = OffsetQ,
    sort: str = SortQ,
    svc: Services = Depends(services),
) -> Response:
    """Runs matching every given filter, newest first by default, one page at a time."""
    q = RunQuery(filter=flt.node, sort=parse_sort(sort), limit=limit, cursor=cursor or None, offset=offset)
    page = await svc.queries.list_runs(q)
    body = {"runs": [run_dict(r) for r in page.items], "next_cursor": page.next_cursor}
    return Response(content=json.dumps(body, separators=(",", ":")), media_type="application/json")


@router.get("/runs/count", response_model=CountOut, responses=_errors)
async def count_runs(flt: RunFilter = Depends(run_filter), svc: Services = Depends(services)) -> CountOut:
    """How many runs match (the same filters as the list)."""
    return CountOut(count=await svc.queries.count_runs(flt.node))


@router.get(RUN_PATH, response_model=RunOut, responses=_errors)
async def get_run(run_id: RunId = Depends(run_id_path), svc: Services = Depends(services)) -> RunOut:
    return run_out(await svc.runs.get_run(run_id))


@router.get(RUN_PATH + "/actions", response_model=ActionListOut, responses=_errors)
async def list_actions(
    run_id: RunId = Depends(run_id_path),
    status: list[str] = Query([], description="Phase names or status groups; repeatable, any matches."),
    limit: int = Query(100, ge=1, le=MAX_LIMIT, description=f"Page size, 1-{MAX_LIMIT}."),
    cursor: str | None = CursorQ,
    svc: Services = Depends(services),
) -> ActionListOut:
    """A run's actions in creation order."""
    page = await svc.queries.list_actions(run_id, status_node(status), limit, cursor or None)
    return ActionListOut(actions=[action_out(a) for a in page.items], next_cursor=page.next_cursor)


@router.get(RUN_PATH + "/actions/{action}", response_model=ActionOut, responses=_errors)
async def get_action(
    action: str, run_id: RunId = Depends(run_id_path), svc: Services = Depends(services)
) -> ActionOut:
    """One action with its attempts, phase transitions and cluster events."""
    return action_out(await svc.runs.get_action(run_id, action), details=True)
