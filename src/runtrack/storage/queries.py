"""Listing and counting with the filter language: keyset pages, offset jumps, counts.

Pages are ordered by the sort key then the row's unique id (both in the sort's direction; NULL
sort keys last). A page reads ``limit + 1`` rows: the extra row only says whether a next page
exists. The next cursor is the keyset of the page's last row, so a deep page costs what the first
costs, and rows inserted between two pages are neither skipped nor repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runtrack.domain.cursor import Cursor, decode_cursor, encode_cursor
from runtrack.domain.filters import Node, filter_hash
from runtrack.domain.models import Action, Run, RunId, Task
from runtrack.domain.query import Page, RunQuery, Sort
from runtrack.errors import InvalidArgument, NotFound
from runtrack.storage import rows
from runtrack.storage.filter_sql import ACTIONS_TARGET, RUNS_TARGET, TASKS_TARGET, compile_filter
from runtrack.storage.repository import run_key
from runtrack.storage.tables import actions, runs, tasks

T = TypeVar("T")


@dataclass(frozen=True)
class SortSpec:
    """How one table sorts on one field: the column, whether it may be NULL, its Python type."""

    column: sa.ColumnElement[Any]
    nullable: bool
    kind: type


RUN_SORTS: dict[str, SortSpec] = {
    "created_at": SortSpec(runs.c.created_at, False, datetime),
    "updated_at": SortSpec(runs.c.updated_at, False, datetime),
    "ended_at": SortSpec(runs.c.ended_at, True, datetime),
    "name": SortSpec(runs.c.name, False, str),
    "phase": SortSpec(runs.c.phase, False, int),
    "duration_ms": SortSpec(runs.c.duration_ms, True, int),
}
ACTION_SORTS: dict[str, SortSpec] = {
    "created_at": SortSpec(actions.c.created_at, False, datetime),
    "updated_at": SortSpec(actions.c.updated_at, False, datetime),
    "name": SortSpec(actions.c.name, False, str),
    "phase": SortSpec(actions.c.phase, False, int),
}
TASK_SORTS: dict[str, SortSpec] = {
    "created_at": SortSpec(tasks.c.deployed_at, False, datetime),
    "deployed_at": SortSpec(tasks.c.deployed_at, False, datetime),
    "name": SortSpec(tasks.c.name, False, str),
    "version": SortSpec(tasks.c.version, False, str),
}


def _key_of(spec: SortSpec) -> Callable[[Any], tuple[Any, int]]:
    name = str(spec.column.key)

    def key_of(r: Any) -> tuple[Any, int]:
        return getattr(r, name), int(r.id)

    return key_of


def _spec(sorts: dict[str, SortSpec], sort: Sort) -> SortSpec:
    spec = sorts.get(sort.field)
    if spec is None:
        raise InvalidArgument(f"sort: unknown field {sort.field!r} (allowed: {', '.join(sorts)})")
    return spec


def order_by(spec: SortSpec, tie: sa.ColumnElement[Any], descending: bool) -> list[sa.ColumnElement[Any]]:
    """ORDER BY for a sort: NULL keys last, then the key, then the unique tie-breaker."""
    key = spec.column.desc() if descending else spec.column.asc()
    tb = tie.desc() if descending else tie.asc()
    return [spec.column.is_(None).asc(), key, tb] if spec.nullable else [key, tb]


def after(spec: SortSpec, tie: sa.ColumnElement[Any], descending: bool, cur: Cursor) -> sa.ColumnElement[bool]:
    """Rows strictly after the cursor's (key, pk) in the page order."""
    col = spec.column
    if cur.value is None:
        if not spec.nullable:
            raise InvalidArgument("cursor: not a valid page cursor for this sort")
        return sa.and_(col.is_(None), tie < cur.pk if descending else tie > cur.pk)
    if not isinstance(cur.value, spec.kind) or isinstance(cur.value, bool):
        raise InvalidArgument("cursor: not a valid page cursor for this sort")
    v = sa.bindparam(None, cur.value, type_=col.type)
    k = sa.bindparam(None, cur.pk, type_=tie.type)
    keyset = sa.tuple_(col, tie) < sa.tuple_(v, k) if descending else sa.tuple_(col, tie) > sa.tuple_(v, k)
    return sa.or_(col.is_(None), keyset) if spec.nullable else keyset


async def keyset_page(
    conn: AsyncConnection,
    stmt: sa.Select[Any],
    *,
    sorts: dict[str, SortSpec],
    tie: sa.ColumnElement[Any],
    sort: Sort,
    limit: int,
    cursor: str | None,
    offset: int | None,
    hash_: str,
    convert: Callable[[Any], T],
    key_of: Callable[[Any], tuple[Any, int]],
) -> Page[T]:
    """One page of ``stmt`` (already filtered) in sort order, with the next cursor."""
    spec = _spec(sorts, sort)
    if cursor:
        stmt = stmt.where(after(spec, tie, sort.descending, decode_cursor(cursor, hash_)))
    if offset:
        if offset < 0:
            raise InvalidArgument(f"offset: must not be negative, got {offset}")
        stmt = stmt.offset(offset)
    stmt = stmt.order_by(*order_by(spec, tie, sort.descending)).limit(limit + 1)
    found: Sequence[Any] = (await conn.execute(stmt)).all()
    more = len(found) > limit
    found = found[:limit]
    next_cursor = None
    if more and found:
        value, pk = key_of(found[-1])
        next_cursor = encode_cursor(value, pk, hash_)
    return Page(items=[convert(r) for r in found], next_cursor=next_cursor)


def run_query_hash(q: RunQuery) -> str:
    """The hash a cursor of this query carries: the resolved filter and the sort."""
    return filter_hash(q.filter, q.sort.field, q.sort.descending)


# Listings leave out the run's spec and inputs (large JSON that no listing shows).
_LIST_COLUMNS = [
    *(c for c in runs.c if c.key not in ("spec", "inputs")),
    sa.null().label("spec"),
    sa.null().label("inputs"),
]


async def list_runs(conn: AsyncConnection, q: RunQuery) -> Page[Run]:
    """A page of runs matching a validated, ``me``-resolved filter (``spec`` and ``inputs`` left as None)."""
    spec = _spec(RUN_SORTS, q.sort)
    stmt = sa.select(*_LIST_COLUMNS).where(compile_filter(q.filter, RUNS_TARGET))
    key_of = _key_of(spec)
    return await keyset_page(
        conn, stmt, sorts=RUN_SORTS, tie=runs.c.id, sort=q.sort, limit=q.limit, cursor=q.cursor,
        offset=q.offset, hash_=run_query_hash(q), convert=rows.run_from_row, key_of=key_of,
    )


async def count_runs(conn: AsyncConnection, node: Node | None) -> int:
    stmt = sa.select(sa.func.count()).select_from(runs).where(compile_filter(node, RUNS_TARGET))
    return int((await conn.execute(stmt)).scalar_one())


async def list_actions(
    conn: AsyncConnection, run_id: RunId, q: RunQuery
) -> Page[Action]:
    """A page of one run's actions (default order: creation, i.e. ``created_at`` ascending)."""
    run_pk = (await conn.execute(sa.select(runs.c.id).where(run_key(run_id)))).scalar_one_or_none()
    if run_pk is None:
        raise NotFound(f"run {run_id} not found")
    spec = _spec(ACTION_SORTS, q.sort)
    stmt = sa.select(actions).where(actions.c.run_id == run_pk, compile_filter(q.filter, ACTIONS_TARGET))
    key_of = _key_of(spec)
    return await keyset_page(
        conn, stmt, sorts=ACTION_SORTS, tie=actions.c.id, sort=q.sort, limit=q.limit, cursor=q.cursor,
        offset=q.offset, hash_=filter_hash(q.filter, "actions", str(run_id), q.sort.field, q.sort.descending),
        convert=lambda r: rows.action_from_row(run_id, r), key_of=key_of,
    )


async def count_tasks(conn: AsyncConnection, node: Node | None) -> int:
    stmt = sa.select(sa.func.count()).select_from(tasks).where(compile_filter(node, TASKS_TARGET))
    return int((await conn.execute(stmt)).scalar_one())


async def list_tasks(
    conn: AsyncConnection, q: RunQuery, *, latest_only: bool = False
) -> Page[Task]:
    """A page of deployed task versions matching a validated filter over ``TASK_FIELDS``.

    ``latest_only`` keeps only the newest version of each (org, project, domain, name).
    """
    spec = _spec(TASK_SORTS, q.sort)
    stmt = sa.select(tasks).where(compile_filter(q.filter, TASKS_TARGET))
    if latest_only:
        newer = sa.alias(tasks, "newer")
        stmt = stmt.where(
            ~sa.exists().where(
                newer.c.org == tasks.c.org,
                newer.c.project == tasks.c.project,
                newer.c.domain == tasks.c.domain,
                newer.c.name == tasks.c.name,
                sa.tuple_(newer.c.deployed_at, newer.c.id) > sa.tuple_(tasks.c.deployed_at, tasks.c.id),
            )
        )
    key_of = _key_of(spec)
    return await keyset_page(
        conn, stmt, sorts=TASK_SORTS, tie=tasks.c.id, sort=q.sort, limit=q.limit, cursor=q.cursor,
        offset=q.offset, hash_=filter_hash(q.filter, "tasks", latest_only, q.sort.field, q.sort.descending),
        convert=rows.task_from_row, key_of=key_of,
    )
