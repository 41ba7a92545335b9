"""REST: run stats, bulk delete and deleting one run.

Stats and bulk delete take exactly the filters of ``GET /api/v1/runs`` (the ``run_filter``
dependency; bulk delete accepts the same fields in its JSON body, through ``build_run_filter``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from runtrack.api.rest.common import caller, iso, run_id_path, services
from runtrack.api.rest.filters import RunFilter, build_run_filter, run_filter
from runtrack.api.rest.schemas import ErrorResponse
from runtrack.domain.models import RunId
from runtrack.service.container import Services
from runtrack.service.delete import MAX_BULK_DELETE, DeleteResult

router = APIRouter(prefix="/api/v1", tags=["fleet"])
RUN_PATH = "/runs/{org}/{project}/{domain}/{name}"
_errors: dict[int | str, dict[str, Any]] = {400: {"model": ErrorResponse}}


class RunStatsOut(BaseModel):
    total_runs: int
    counts_by_status: dict[str, int] = Field(
        description="PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED (the status groups); they sum to total_runs."
    )
    counts_by_phase: dict[str, int] = Field(description="Every phase by name; they sum to total_runs.")
    cached_at: str = Field(description="When these counts were read from the database (UTC).")


class BulkDeleteIn(BaseModel):
    """Which runs (the filters of GET /api/v1/runs, ANDed; at least one is required) and how."""

    model_config = ConfigDict(extra="forbid")

    filter_query: dict[str, Any] | str | None = Field(
        None, description='JSON predicates with one "and"/"or" root, as an object (or its JSON text).'
    )
    status: list[str] | str | None = Field(None, description="Phase names or status groups; any matches.")
    phase: list[str] | str | None = Field(None, description="Same as status.")
    org: str | None = None
    project: str | None = None
    domain: str | None = None
    created_by: str | None = Field(None, description="Exact creator; `me` is the caller (`current_user`).")
    name: str | None = Field(None, description="Substring of the run name (case-insensitive).")
    label: list[str] | str | None = Field(None, description="`key` or `key=value`; all must hold.")
    limit: int = Field(MAX_BULK_DELETE, ge=1, le=MAX_BULK_DELETE, description="At most this many runs (1-200).")
    dry_run: bool = Field(False, description="Only say what would be deleted.")
    force: bool = Field(False, description="Abort runs that are not terminal, then delete them too.")


class SkippedOut(BaseModel):
    run: str
    reason: str


class BulkDeleteOut(BaseModel):
    deleted: list[str] = Field(description="Ids (org/project/domain/name) of the runs deleted, newest first.")
    skipped: list[SkippedOut]
    dry_run: bool


def _words(v: list[str] | str | None) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else v


def _bulk_filter(body: BulkDeleteIn, current_user: str | None) -> RunFilter:
    fq = body.filter_query
    return build_run_filter(
        status=[*_words(body.status), *_words(body.phase)],
        org=body.org,
        project=body.project,
        domain=body.domain,
        created_by=body.created_by,
        name=body.name,
        label=_words(body.label),
        filter_query=json.dumps(fq) if isinstance(fq, dict) else fq,
        caller=current_user,
    )


def _result_out(r: DeleteResult) -> BulkDeleteOut:
    return BulkDeleteOut(
        deleted=[str(x) for x in r.deleted],
        skipped=[SkippedOut(run=str(s.run), reason=s.reason) for s in r.skipped],
        dry_run=r.dry_run,
    )


@router.get("/runs/stats", response_model=RunStatsOut, responses=_errors)
async def run_stats(flt: RunFilter = Depends(run_filter), svc: Services = Depends(services)) -> RunStatsOut:
    """Counts by status and by phase of the runs matching the filters (cached for a few seconds)."""
    s = await svc.stats.stats(flt.node)
    return RunStatsOut(
        total_runs=s.total_runs,
        counts_by_status=s.counts_by_status,
        counts_by_phase=s.counts_by_phase,
        cached_at=iso(s.cached_at) or "",
    )


@router.post("/runs/bulk_delete", response_model=BulkDeleteOut, responses=_errors)
async def bulk_delete(
    body: BulkDeleteIn,
    current_user: str | None = Depends(caller),
    svc: Services = Depends(services),
) -> BulkDeleteOut:
    """Delete at most `limit` matching runs, newest first; runs not yet terminal are skipped unless
    `force`. Their log lines are removed shortly after, in the background."""
    flt = _bulk_filter(body, current_user)
    result = await svc.deletes.bulk_delete(
        flt.node, limit=body.limit, dry_run=body.dry_run, force=body.force, by=current_user or ""
    )
    return _result_out(result)


@router.delete(
    RUN_PATH,
    status_code=204,
    response_class=Response,
    responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
)
async def delete_run(
    run_id: RunId = Depends(run_id_path),
    force: bool = Query(False, description="Abort the run first if it is not terminal."),
    current_user: str | None = Depends(caller),
    svc: Services = Depends(services),
) -> Response:
    """Delete one run with everything it owns: 404 if missing, 409 if not terminal (unless `force`)."""
    await svc.deletes.delete_run(run_id, force=force, by=current_user or "")
    return Response(status_code=204)
