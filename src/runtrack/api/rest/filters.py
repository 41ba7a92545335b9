"""REST front doors of the filter language: the ``filter_query`` JSON and the simple query parameters.

``run_filter`` is a FastAPI dependency: every endpoint that selects runs (list, count, stats,
bulk delete, watch) declares ``flt: RunFilter = Depends(run_filter)`` and so takes exactly the
same parameters, documented once in OpenAPI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Query

from runtrack.api.rest.common import caller
from runtrack.domain.filters import RUN_FIELDS, And, Node, Not, Op, Or, Pred, and_, prepare, validate
from runtrack.domain.phases import Phase, parse_status
from runtrack.errors import InvalidArgument

SYSTEM_PREFIX = "system/"
SYSTEM_KEYS: dict[str, str] = {
    "system/run.org": "org",
    "system/run.project": "project",
    "system/run.domain": "domain",
    "system/run.name": "name",
    "system/run.phase": "phase",
    "system/run.status": "status",
    "system/run.created_by": "created_by",
    "system/run.created_at": "created_at",
    "system/run.updated_at": "updated_at",
    "system/run.started_at": "started_at",
    "system/run.ended_at": "ended_at",
    "system/run.duration": "duration_ms",
    "system/run.duration_ms": "duration_ms",
    "system/run.task_name": "task_name",
    "system/run.task_version": "task_version",
    "system/run.trigger_name": "trigger_name",
}
_TIME_FIELDS = {"created_at", "updated_at", "started_at", "ended_at"}

# predicate name → (required members, optional members)
_FORMS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "value_equals": (frozenset({"key", "value"}), frozenset()),
    "value_contains": (frozenset({"key", "value_substring"}), frozenset()),
    "value_in": (frozenset({"key", "values"}), frozenset()),
    "key_exists": (frozenset({"key"}), frozenset()),
    "time_range": (frozenset({"key"}), frozenset({"start_time", "end_time"})),
}
_GROUPS = ("and", "or")
_MAX_DEPTH = 16


class _Parser:
    def __init__(self, caller: str | None) -> None:
        self.caller = caller

    def fail(self, path: str, message: str) -> InvalidArgument:
        return InvalidArgument(f"filter_query: {path}: {message}")

    def field(self, path: str, key: Any) -> str:
        if not isinstance(key, str) or not key:
            raise self.fail(path, f"'key' must be a non-empty string, got {key!r}")
        if key.startswith(SYSTEM_PREFIX):
            field = SYSTEM_KEYS.get(key)
            if field is None:
                raise self.fail(path, f"unknown system key {key!r} (known: {', '.join(SYSTEM_KEYS)})")
            return field
        return "labels." + key

    def leaf(self, path: str, pred: Pred) -> Node:
        try:
            checked = validate(pred, RUN_FIELDS)
        except InvalidArgument as exc:
            raise self.fail(path, exc.message) from None
        assert checked is not None
        return checked

    def group(self, path: str, name: str, items: Any, depth: int) -> Node:
        if not isinstance(items, list) or not items:
            raise self.fail(path, f"'{name}' must be a non-empty list of predicates")
        nodes = tuple(self.pred(f"{path}[{i}]", item, depth + 1) for i, item in enumerate(items))
        return And(nodes) if name == "and" else Or(nodes)

    def pred(self, path: str, obj: Any, depth: int) -> Node:
        if depth > _MAX_DEPTH:
            raise self.fail(path, f"nested deeper than {_MAX_DEPTH} levels")
        if not isinstance(obj, dict) or len(obj) != 1:
            forms = ", ".join([*_FORMS, "not", *_GROUPS])
            raise self.fail(path, f"a predicate is an object with exactly one of {forms}; got {obj!r}")
        (name, body), = obj.items()
        sub = f"{path}.{name}"
        if name in _GROUPS:
            return self.group(sub, name, body, depth)
        if name == "not":
            return Not(self.pred(sub, body, depth + 1))
        if name not in _FORMS:
            raise self.fail(path, f"unknown predicate {name!r} (known: {', '.join([*_FORMS, 'not', *_GROUPS])})")
        required, optional = _FORMS[name]
        if not isinstance(body, dict):
            raise self.fail(sub, f"must be an object with {', '.join(sorted(required | optional))}")
        extra = set(body) - required - optional
        if extra:
            raise self.fail(sub, f"unexpected member(s) {', '.join(sorted(extra))}")
        missing = required - set(body)
        if missing:
            raise self.fail(sub, f"missing member(s) {', '.join(sorted(missing))}")
        field = self.field(sub, body["key"])
        node: Node = getattr(self, name)(sub, field, body)
        return node

    def value_equals(self, path: str, field: str, body: dict[str, Any]) -> Node:
        value = body["value"]
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(path, f"'value' must be a string, got {value!r}")
        return self.leaf(path, Pred(field, Op.EQ, value))

    def value_contains(self, path: str, field: str, body: dict[str, Any]) -> Node:
        value = body["value_substring"]
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"'value_substring' must be a non-empty string, got {value!r}")
        return self.leaf(path, Pred(field, Op.CONTAINS, value))

    def value_in(self, path: str, field: str, body: dict[str, Any]) -> Node:
        values = body["values"]
        if not isinstance(values, list) or not values:
            raise self.fail(path, f"'values' must be a non-empty list, got {values!r}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, str | int) or v == "":
                raise self.fail(path, f"'values' must hold non-empty strings, got {v!r}")
        return self.leaf(path, Pred(field, Op.IN, tuple(values)))

    def key_exists(self, path: str, field: str, body: dict[str, Any]) -> Node:
        return self.leaf(path, Pred(field, Op.EXISTS))

    def time_range(self, path: str, field: str, body: dict[str, Any]) -> Node:
        if field not in _TIME_FIELDS:
            raise self.fail(path, f"key {body['key']!r} is not a time (time keys: created_at, updated_at, "
                                  "started_at, ended_at under system/run.)")
        start, end = body.get("start_time"), body.get("end_time")
        if start is None and end is None:
            raise self.fail(path, "needs 'start_time', 'end_time' or both")
        parts: list[Node] = []
        if start is not None:
            parts.append(self.leaf(f"{path}.start_time", Pred(field, Op.GTE, start)))
        if end is not None:
            parts.append(self.leaf(f"{path}.end_time", Pred(field, Op.LT, end)))
        if len(parts) == 2:
            lo, hi = parts
            assert isinstance(lo, Pred) and isinstance(hi, Pred)
            if lo.value > hi.value:
                raise self.fail(path, f"start_time {start!r} is after end_time {end!r}")
        return parts[0] if len(parts) == 1 else And(tuple(parts))


def parse_filter_query(text: str, *, caller: str | None = None) -> Node:
    """The ``filter_query`` JSON → a validated, ``me``-resolved filter tree."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"filter_query: malformed JSON: {exc}") from None
    if not isinstance(obj, dict) or len(obj) != 1 or next(iter(obj)) not in _GROUPS:
        raise InvalidArgument('filter_query: the root must be an object with exactly one "and" or "or" list')
    parser = _Parser(caller)
    (name, items), = obj.items()
    node = parser.group(name, name, items, 0)
    resolved = prepare(node, caller)
    assert resolved is not None
    return resolved


def status_node(words: list[str], *, field: str = "status") -> Node | None:
    """Repeatable status words (groups or phase names; commas allowed) → ``phase IN (...)``; any matches."""
    phases: set[Phase] = set()
    for item in words:
        for word in item.split(","):
            if word.strip():
                phases |= parse_status(word, field=field)
    if not phases:
        return None
    values = tuple(sorted(phases))
    return Pred("phase", Op.EQ, values[0]) if len(values) == 1 else Pred("phase", Op.IN, values)


def label_node(items: list[str]) -> Node | None:
    nodes: list[Node] = []
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not key:
            raise InvalidArgument(f"label: {item!r} has no key (use key or key=value)")
        nodes.append(Pred("labels." + key, Op.EQ, value) if eq else Pred("labels." + key, Op.EXISTS))
    return and_(*nodes)


@dataclass(frozen=True, slots=True)
class RunFilter:
    """The parsed filter of a request: validated, ``me`` resolved to ``caller``."""

    node: Node | None
    caller: str | None


def build_run_filter(
    *,
    status: list[str] | None = None,
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    created_by: str | None = None,
    name: str | None = None,
    label: list[str] | None = None,
    filter_query: str | None = None,
    caller: str | None = None,
) -> RunFilter:
    """The AND of every given parameter (the dependency below, callable without FastAPI)."""
    parts: list[Node | None] = [
        Pred("org", Op.EQ, org) if org else None,
        Pred("project", Op.EQ, project) if project else None,
        Pred("domain", Op.EQ, domain) if domain else None,
        Pred("created_by", Op.EQ, created_by) if created_by else None,
        Pred("name", Op.ICONTAINS, name) if name else None,
        status_node(status or []),
        label_node(label or []),
    ]
    node = prepare(and_(*parts), caller)
    if filter_query and filter_query.strip():
        node = and_(node, parse_filter_query(filter_query, caller=caller))
    return RunFilter(node=node, caller=caller)


async def run_filter(
    status: list[str] = Query(
        [],
        description="Phase names or status groups (pending, running, succeeded/completed, failed, "
        "cancelled/aborted); repeatable, any of them matches. Commas also separate words.",
    ),
    phase: list[str] = Query([], description="Same as `status`; both lists are combined."),
    org: str | None = Query(None, description="Exact organisation."),
    project: str | None = Query(None, description="Exact project."),
    domain: str | None = Query(None, description="Exact domain."),
    created_by: str | None = Query(None, description="Exact creator; `me` is the caller (`current_user`)."),
    name: str | None = Query(None, description="Substring of the run name (case-insensitive)."),
    label: list[str] = Query([], description="`key` (the label exists) or `key=value`; repeatable, all must hold."),
    filter_query: str | None = Query(
        None,
        description='JSON predicates with one "and"/"or" root: value_equals {key, value}, value_contains '
        "{key, value_substring}, value_in {key, values}, key_exists {key}, time_range {key, start_time?, "
        "end_time?}, not, nesting. Keys: system/run.<field> or label keys. See docs/queries.md.",
    ),
    current_user: str | None = Depends(caller),
) -> RunFilter:
    """FastAPI dependency: every run selection parameter, ANDed into one validated filter."""
    return build_run_filter(
        status=[*status, *phase],
        org=org,
        project=project,
        domain=domain,
        created_by=created_by,
        name=name,
        label=label,
        filter_query=filter_query,
        caller=current_user,
    )
