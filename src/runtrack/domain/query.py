"""Query shapes shared by every front door: sort, paging, the page of results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from runtrack.domain.filters import Node
from runtrack.errors import InvalidArgument

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


# Sort names the front doors accept for runs, mapped to the field they order by.
RUN_SORT_ALIASES: dict[str, str] = {
    "created_at": "created_at",
    "updated_at": "updated_at",
    "ended_at": "ended_at",
    "name": "name",
    "phase": "phase",
    "duration": "duration_ms",
    "duration_ms": "duration_ms",
}
ACTION_SORT_ALIASES: dict[str, str] = {k: k for k in ("created_at", "updated_at", "name", "phase")}
TASK_SORT_ALIASES: dict[str, str] = {
    "created_at": "created_at",
    "deployed_at": "deployed_at",
    "name": "name",
    "version": "version",
}


def parse_sort(text: str | None, *, aliases: dict[str, str] | None = None, default: Sort = Sort()) -> Sort:
    """``created_at`` (ascending) or ``-created_at`` (descending); InvalidArgument for an unknown field."""
    if text is None or not text.strip():
        return default
    names = RUN_SORT_ALIASES if aliases is None else aliases
    raw = text.strip()
    descending = raw.startswith("-")
    key = raw.lstrip("-+").strip()
    if key not in names:
        raise InvalidArgument(f"sort: unknown field {key!r} (allowed: {', '.join(names)}; prefix '-' to descend)")
    return Sort(field=names[key], descending=descending)


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit: must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit
