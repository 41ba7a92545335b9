"""flyteidl2 ``ListRequest`` → the filter AST, the sort and the page (pure conversion).

Filters are ANDed, as flyteidl2 defines. Values come as the flyte SDK sends them: phases as
numeric strings (``"5"``) or names (``"SUCCEEDED"``, ``"ACTION_PHASE_SUCCEEDED"``), times as ISO
8601 text, ``labels.<key>`` with EQUAL or EXISTS. Anything unknown is InvalidArgument naming the
field, function or value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flyteidl2.common import list_pb2

from runtrack.domain.filters import RUN_FIELDS, Kind, Node, Not, Op, Pred, and_, field_kind, prepare
from runtrack.domain.query import DEFAULT_LIMIT, MAX_LIMIT, RUN_SORT_ALIASES, RunQuery, Sort
from runtrack.errors import InvalidArgument

F = list_pb2.Filter

# flyteidl2 Filter.Function → (operator, negated, how many values: 1, "many" or 0)
_FUNCTIONS: dict[int, tuple[Op, bool, int | str]] = {
    F.EQUAL: (Op.EQ, False, 1),
    F.NOT_EQUAL: (Op.NE, False, 1),
    F.GREATER_THAN: (Op.GT, False, 1),
    F.GREATER_THAN_OR_EQUAL: (Op.GTE, False, 1),
    F.LESS_THAN: (Op.LT, False, 1),
    F.LESS_THAN_OR_EQUAL: (Op.LTE, False, 1),
    F.CONTAINS: (Op.CONTAINS, False, 1),
    F.CONTAINS_CASE_INSENSITIVE: (Op.ICONTAINS, False, 1),
    F.VALUE_IN: (Op.IN, False, "many"),
    F.VALUE_NOT_IN: (Op.NOT_IN, False, "many"),
    F.ENDS_WITH: (Op.ENDS_WITH, False, 1),
    F.NOT_ENDS_WITH: (Op.ENDS_WITH, True, 1),
    F.EXISTS: (Op.EXISTS, False, 0),
    F.NOT_EXISTS: (Op.EXISTS, True, 0),
}

# Field names other clients use for the same thing.
_FIELD_ALIASES = {"duration": "duration_ms", "created_by_subject": "created_by", "run_name": "name"}


def _function_name(fn: int) -> str:
    try:
        return str(F.Function.Name(fn))
    except ValueError:
        return str(fn)


def filter_to_node(f: Any, allowed: dict[str, Kind] = RUN_FIELDS) -> Node:
    """One flyteidl2 ``Filter`` → a predicate (not yet validated)."""
    field = _FIELD_ALIASES.get(f.field, f.field)
    if not field:
        raise InvalidArgument(f"filters: a filter with function {_function_name(f.function)} has no field")
    kind = field_kind(field, allowed)
    spec = _FUNCTIONS.get(f.function)
    if spec is None:
        raise InvalidArgument(f"filters: unknown function {_function_name(f.function)} on field {field!r}")
    op, negated, arity = spec
    values = list(f.values)
    name = _function_name(f.function)
    if arity == 0:
        if values:
            raise InvalidArgument(f"filters: {name} on {field!r} takes no values, got {values!r}")
        pred = Pred(field, op)
    elif arity == 1:
        if kind in (Kind.PHASE, Kind.STATUS) and len(values) > 1 and all(len(v) == 1 for v in values):
            # ``values="10"`` (a string where a list belongs) reaches us as ["1", "0"]
            values = ["".join(values)]
        if len(values) != 1:
            raise InvalidArgument(f"filters: {name} on {field!r} takes exactly one value, got {values!r}")
        pred = Pred(field, op, values[0])
    else:
        if not values:
            raise InvalidArgument(f"filters: {name} on {field!r} needs at least one value")
        pred = Pred(field, op, tuple(values))
    return Not(pred) if negated else pred


def filters_to_node(filters: Iterable[Any], allowed: dict[str, Kind] = RUN_FIELDS) -> Node | None:
    """The AND of ``ListRequest.filters`` (not yet validated)."""
    return and_(*(filter_to_node(f, allowed) for f in filters))


def _sort_one(s: Any, aliases: dict[str, str]) -> Sort:
    key = s.key.strip()
    if key not in aliases:
        raise InvalidArgument(f"sort_by: unknown field {key!r} (allowed: {', '.join(aliases)})")
    return Sort(field=aliases[key], descending=s.direction == list_pb2.Sort.DESCENDING)


def request_sort(req: Any, *, aliases: dict[str, str] = RUN_SORT_ALIASES, default: Sort = Sort()) -> Sort:
    """``sort_by`` (or the first of ``sort_by_fields``) → Sort; the default when neither is set.

    Only one sort key is honoured (the row id breaks ties); later ``sort_by_fields`` are ignored.
    """
    if req.HasField("sort_by") and req.sort_by.key:
        return _sort_one(req.sort_by, aliases)
    fields: Sequence[Any] = [s for s in req.sort_by_fields if s.key]
    if fields:
        return _sort_one(fields[0], aliases)
    return default


def list_request_to_query(
    req: Any,
    *,
    caller: str | None = None,
    allowed: dict[str, Kind] = RUN_FIELDS,
    sort_aliases: dict[str, str] = RUN_SORT_ALIASES,
    default_sort: Sort = Sort(),
    extra: Node | None = None,
) -> RunQuery:
    """A flyteidl2 ``ListRequest`` → a validated, ``me``-resolved query.

    ``extra`` is ANDed with the request's filters (e.g. the project scope of ``ListRunsRequest``).
    ``limit`` 0 means the default (50); above 200 it is capped at 200; ``token`` is the cursor.
    ``raw_filters`` are not supported (InvalidArgument).
    """
    if req is None:
        return RunQuery(filter=prepare(extra, caller, allowed), sort=default_sort)
    if len(req.raw_filters):
        raise InvalidArgument("raw_filters: not supported; use filters")
    if req.limit < 0:
        raise InvalidArgument(f"limit: must not be negative, got {req.limit}")
    limit = DEFAULT_LIMIT if req.limit == 0 else min(req.limit, MAX_LIMIT)
    node = and_(extra, filters_to_node(req.filters, allowed))
    return RunQuery(
        filter=prepare(node, caller, allowed),
        sort=request_sort(req, aliases=sort_aliases, default=default_sort),
        limit=limit,
        cursor=req.token or None,
    )
