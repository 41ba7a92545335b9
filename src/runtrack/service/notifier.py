"""Change notifications: write paths publish what changed after their transaction commits.

Payloads carry identities and versions only; watchers read the rows themselves. The in-process
notifier is the SQLite fan-out; the PostgreSQL one (LISTEN/NOTIFY) also reaches other replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from runtrack.domain.models import RunId


@dataclass(frozen=True, slots=True)
class Change:
    run_pk: int
    run_id: RunId
    run_version: int
    action: str | None = None  # None: the run row itself changed (its root action may have, too)
    deleted: bool = False


class Notifier(Protocol):
    async def publish(self, changes: Sequence[Change]) -> None: ...


class NullNotifier:
    """Publishes to nobody (the default until a fan-out is wired)."""

    async def publish(self, changes: Sequence[Change]) -> None:
        return None
