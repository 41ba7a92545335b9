"""Shared REST pieces: the caller, the run identity path, time formatting."""

from __future__ import annotations

from datetime import datetime

from fastapi import Query, Request

from runtrack.domain.models import RunId
from runtrack.service.container import Services


async def caller(
    current_user: str | None = Query(
        None, description="Who is calling (until authentication exists). Resolves `me` and sets created_by."
    ),
) -> str | None:
    return current_user or None


async def run_id_path(org: str, project: str, domain: str, name: str) -> RunId:
    return RunId(org, project, domain, name)


def iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return t.isoformat().replace("+00:00", "Z")


async def services(request: Request) -> Services:
    """The service container of the running app."""
    svc: Services = request.app.state.services
    return svc
