"""The filter language's AST: and / or / not over leaf predicates, against a field allowlist.

Every front door (Connect ``ListRequest.filters``, REST ``filter_query``, REST query parameters)
parses into these nodes; ``storage/filter_sql.py`` compiles them to SQL in one place. Status words
are not a field of their own: front doors expand them to ``phase IN (...)``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from runtrack.domain.phases import Phase, parse_status
from runtrack.errors import InvalidArgument


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    CONTAINS = "contains"
    ICONTAINS = "icontains"
    IN = "in"
    NOT_IN = "not_in"
    EXISTS = "exists"
    ENDS_WITH = "ends_with"


class Kind(StrEnum):
    STRING = "string"
    PHASE = "phase"
    STATUS = "status"  # a status word or phase name; rewritten to ``phase IN (...)`` by validation
    TIME = "time"
    INT = "int"
    LABEL = "label"


# The allowlist of run fields. ``labels.<key>`` is allowed for any key (Kind.LABEL).
RUN_FIELDS: dict[str, Kind] = {
    "org": Kind.STRING,
    "project": Kind.STRING,
    "domain": Kind.STRING,
    "name": Kind.STRING,
    "phase": Kind.PHASE,
    "status": Kind.STATUS,
    "created_by": Kind.STRING,
    "created_at": Kind.TIME,
    "updated_at": Kind.TIME,
    "started_at": Kind.TIME,
    "ended_at": Kind.TIME,
    "duration_ms": Kind.INT,
    "task_name": Kind.STRING,
    "task_version": Kind.STRING,
    "trigger_name": Kind.STRING,
    "labels.<key>": Kind.LABEL,
}
LABEL_PREFIX = "labels."
LABEL_WILDCARD = "labels.<key>"  # an allowlist holding this entry accepts ``labels.<any key>``

# The allowlist of action fields (a run's actions; no labels).
ACTION_FIELDS: dict[str, Kind] = {
    "name": Kind.STRING,
    "phase": Kind.PHASE,
    "status": Kind.STATUS,
    "parent_name": Kind.STRING,
    "group": Kind.STRING,
    "action_type": Kind.STRING,
    "task_name": Kind.STRING,
    "task_version": Kind.STRING,
    "created_at": Kind.TIME,
    "updated_at": Kind.TIME,
    "started_at": Kind.TIME,
    "ended_at": Kind.TIME,
}

# The allowlist of task fields (deployed task versions; no labels).
TASK_FIELDS: dict[str, Kind] = {
    "org": Kind.STRING,
    "project": Kind.STRING,
    "domain": Kind.STRING,
    "name": Kind.STRING,
    "version": Kind.STRING,
    "deployed_by": Kind.STRING,
    "deployed_at": Kind.TIME,
    "created_at": Kind.TIME,
}


def field_kind(name: str, allowed: dict[str, Kind] = RUN_FIELDS) -> Kind:
    """The kind of an allowed field; InvalidArgument naming it otherwise."""
    if name.startswith(LABEL_PREFIX) and LABEL_WILDCARD in allowed:
        if len(name) == len(LABEL_PREFIX):
            raise InvalidArgument(f"filter field {name!r}: a label key is missing after 'labels.'")
        return Kind.LABEL
    kind = None if name == LABEL_WILDCARD else allowed.get(name)
    if kind is None:
        raise InvalidArgument(f"unknown filter field {name!r} (allowed: {', '.join(sorted(allowed))})")
    return kind


@dataclass(frozen=True, slots=True)
class Pred:
    """A leaf: ``field op value``. ``value`` is a scalar, a tuple (IN / NOT_IN) or None (EXISTS)."""

    field: str
    op: Op
    value: Any = None


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Pred | And | Or | Not

# An empty OR matches nothing; an empty AND matches everything.
NOTHING: Node = Or(())


def and_(*nodes: Node | None) -> Node | None:
    """AND of the given nodes, dropping Nones; None when nothing is left."""
    items = tuple(n for n in nodes if n is not None)
    if not items:
        return None
    return items[0] if len(items) == 1 else And(items)


def to_jsonable(node: Node | None) -> Any:
    """A canonical, JSON-serialisable form of the tree (for hashes of cursors and cache keys)."""
    if node is None:
        return None
    if isinstance(node, Pred):
        return [node.field, str(node.op), _value(node.value)]
    if isinstance(node, And):
        return ["and", [to_jsonable(i) for i in node.items]]
    if isinstance(node, Or):
        return ["or", [to_jsonable(i) for i in node.items]]
    return ["not", to_jsonable(node.item)]


def _value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, tuple | list | frozenset | set):
        vals = [_value(x) for x in v]
        return sorted(vals, key=repr) if isinstance(v, frozenset | set) else vals
    if hasattr(v, "value") and not isinstance(v, str | int):
        return v.value
    return v


def filter_hash(node: Node | None, *extra: Any) -> str:
    """A stable hash of a (resolved) filter plus anything else that shapes a result (e.g. the sort)."""
    blob = json.dumps([to_jsonable(node), [_value(e) for e in extra]], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---- validation: check every leaf against the allowlist and coerce its value to the field's kind ----

_OPS: dict[Kind, frozenset[Op]] = {
    Kind.STRING: frozenset({Op.EQ, Op.NE, Op.CONTAINS, Op.ICONTAINS, Op.IN, Op.NOT_IN, Op.EXISTS, Op.ENDS_WITH}),
    Kind.LABEL: frozenset({Op.EQ, Op.NE, Op.CONTAINS, Op.ICONTAINS, Op.IN, Op.NOT_IN, Op.EXISTS, Op.ENDS_WITH}),
    Kind.PHASE: frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN}),
    Kind.STATUS: frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN}),
    Kind.TIME: frozenset({Op.EQ, Op.NE, Op.LT, Op.LTE, Op.GT, Op.GTE, Op.EXISTS}),
    Kind.INT: frozenset({Op.EQ, Op.NE, Op.LT, Op.LTE, Op.GT, Op.GTE, Op.IN, Op.NOT_IN, Op.EXISTS}),
}
_MULTI = (Op.IN, Op.NOT_IN)


def parse_time(value: Any, *, field: str) -> datetime:
    """A timezone-aware datetime (ISO 8601 text or a datetime), normalised to UTC."""
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidArgument(f"{field}: {value!r} is not an ISO 8601 time") from None
    else:
        raise InvalidArgument(f"{field}: expected an ISO 8601 time, got {value!r}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise InvalidArgument(f"{field}: time {value!r} has no timezone (use e.g. 2026-01-01T00:00:00Z)")
    return t.astimezone(UTC)


def _int(value: Any, *, field: str) -> int:
    if isinstance(value, bool):
        raise InvalidArgument(f"{field}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidArgument(f"{field}: expected an integer, got {value!r}")


def _str(value: Any, *, field: str) -> str:
    if isinstance(value, str):
        return value
    raise InvalidArgument(f"{field}: expected a string, got {value!r}")


def _phases(value: Any, *, field: str) -> frozenset[Phase]:
    if isinstance(value, Phase):
        return frozenset({value})
    if isinstance(value, int) and not isinstance(value, bool):
        return parse_status(str(value), field=field)
    return parse_status(_str(value, field=field), field=field)


def _check_pred(p: Pred, allowed: dict[str, Kind]) -> Node:
    kind = field_kind(p.field, allowed)
    if p.op not in _OPS[kind]:
        ops = ", ".join(sorted(_OPS[kind]))
        raise InvalidArgument(f"filter on {p.field!r}: operator {p.op!s} is not allowed (allowed: {ops})")
    if p.op is Op.EXISTS:
        return Pred(p.field, Op.EXISTS, None)
    if kind in (Kind.PHASE, Kind.STATUS):
        raw = p.value if p.op in _MULTI else (p.value,)
        if not isinstance(raw, tuple | list | frozenset | set) or not raw:
            raise InvalidArgument(f"filter on {p.field!r}: {p.op!s} needs a non-empty list of phases")
        phases: set[Phase] = set()
        for v in raw:
            phases |= _phases(v, field=p.field)
        values = tuple(sorted(phases))
        negate = p.op in (Op.NE, Op.NOT_IN)
        if len(values) == 1:
            return Pred("phase", Op.NE if negate else Op.EQ, values[0])
        return Pred("phase", Op.NOT_IN if negate else Op.IN, values)
    if kind is Kind.TIME:
        return Pred(p.field, p.op, parse_time(p.value, field=p.field))
    conv = _int if kind is Kind.INT else _str
    if p.op in _MULTI:
        if not isinstance(p.value, tuple | list | frozenset | set) or not p.value:
            raise InvalidArgument(f"filter on {p.field!r}: {p.op!s} needs a non-empty list of values")
        return Pred(p.field, p.op, tuple(conv(v, field=p.field) for v in p.value))
    if p.op in (Op.CONTAINS, Op.ICONTAINS, Op.ENDS_WITH) and p.value == "":
        raise InvalidArgument(f"filter on {p.field!r}: {p.op!s} needs a non-empty value")
    return Pred(p.field, p.op, conv(p.value, field=p.field))


def validate(node: Node | None, allowed: dict[str, Kind] = RUN_FIELDS) -> Node | None:
    """Check a tree against an allowlist and coerce every value to its field's kind.

    Phase values become :class:`Phase` (status words expand to sets, ``status`` becomes ``phase``),
    times become timezone-aware UTC datetimes, integers ints. Raises InvalidArgument naming the
    bad field, operator or value.
    """
    if node is None:
        return None
    if isinstance(node, Pred):
        return _check_pred(node, allowed)
    if isinstance(node, And):
        return And(tuple(validate(i, allowed) or And(()) for i in node.items))
    if isinstance(node, Or):
        return Or(tuple(validate(i, allowed) or And(()) for i in node.items))
    return Not(validate(node.item, allowed) or And(()))


ME = "me"


def resolve_me(node: Node | None, caller: str | None) -> Node | None:
    """Replace ``created_by`` values ``me`` by the caller; with no caller such a predicate matches nothing."""
    if node is None:
        return None
    if isinstance(node, And):
        return And(tuple(resolve_me(i, caller) or And(()) for i in node.items))
    if isinstance(node, Or):
        return Or(tuple(resolve_me(i, caller) or And(()) for i in node.items))
    if isinstance(node, Not):
        return Not(resolve_me(node.item, caller) or And(()))
    if node.field != "created_by":
        return node
    if node.op in (Op.EQ, Op.NE) and node.value == ME:
        if caller is None:
            return NOTHING
        return Pred(node.field, node.op, caller)
    if node.op in _MULTI and isinstance(node.value, tuple) and ME in node.value:
        values = tuple(v for v in node.value if v != ME) + ((caller,) if caller is not None else ())
        if caller is None and not values:
            return NOTHING
        if caller is None:
            # ``me`` names nobody: it matches nothing, so only the other values remain.
            return Pred(node.field, node.op, values) if node.op is Op.IN else NOTHING
        return Pred(node.field, node.op, values)
    return node


def prepare(node: Node | None, caller: str | None, allowed: dict[str, Kind] = RUN_FIELDS) -> Node | None:
    """Validate then resolve ``me``: what every front door hands to the service layer."""
    return resolve_me(validate(node, allowed), caller)


def scope(org: str | None = None, project: str | None = None, domain: str | None = None) -> Node | None:
    """Equality on the given parts of a project scope (empty parts are left out)."""
    return and_(
        Pred("org", Op.EQ, org) if org else None,
        Pred("project", Op.EQ, project) if project else None,
        Pred("domain", Op.EQ, domain) if domain else None,
    )
