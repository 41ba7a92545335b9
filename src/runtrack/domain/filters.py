"""The filter language's AST: and / or / not over leaf predicates, against a field allowlist.

Every front door (Connect ``ListRequest.filters``, REST ``filter_query``, REST query parameters)
parses into these nodes; ``storage/filter_sql.py`` compiles them to SQL in one place. Status words
are not a field of their own: front doors expand them to ``phase IN (...)``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

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
    "created_by": Kind.STRING,
    "created_at": Kind.TIME,
    "updated_at": Kind.TIME,
    "started_at": Kind.TIME,
    "ended_at": Kind.TIME,
    "duration_ms": Kind.INT,
    "task_name": Kind.STRING,
    "task_version": Kind.STRING,
    "trigger_name": Kind.STRING,
}
LABEL_PREFIX = "labels."


def field_kind(name: str, allowed: dict[str, Kind] = RUN_FIELDS) -> Kind:
    """The kind of an allowed field; InvalidArgument naming it otherwise."""
    if name.startswith(LABEL_PREFIX) and len(name) > len(LABEL_PREFIX):
        return Kind.LABEL
    kind = allowed.get(name)
    if kind is None:
        raise InvalidArgument(f"unknown filter field {name!r} (allowed: {', '.join(sorted(allowed))}, labels.<key>)")
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
