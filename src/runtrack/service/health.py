"""Readiness: the database answers and the schema is at the newest migration."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from runtrack.storage import migrate
from runtrack.storage.db import Database


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""


async def check_ready(db: Database, *, timeout_s: float = 3.0) -> Readiness:
    try:
        current = await asyncio.wait_for(migrate.current_revision(db), timeout=timeout_s)
    except TimeoutError:
        return Readiness(False, f"database did not answer within {timeout_s:.0f}s")
    except Exception as exc:
        return Readiness(False, f"database unavailable: {type(exc).__name__}: {exc}".splitlines()[0])
    head = migrate.head_revision()
    if current != head:
        return Readiness(False, f"schema at revision {current or 'none'}, expected {head}; run `runtrack migrate`")
    return Readiness(True, "ok")
