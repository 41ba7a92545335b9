"""Query shapes shared by every front door: sort, paging, the page of results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from runtrack.domain.filters import Node

T = TypeVar("T")

RUN_SORT_FIELDS = ("created_at", "updated_at", "ended_at", "name", "phase", "duration_ms")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Sort:
    field: str = "created_at"
    descending: bool = True


@dataclass(frozen=True, slots=True)
class RunQuery:
    """A listing of runs: the filter (``me`` already resolved), the order and the page."""

    filter: Node | None = None
    sort: Sort = Sort()
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None
