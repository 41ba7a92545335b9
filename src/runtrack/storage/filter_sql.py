"""The one compiler from the filter AST to SQL (SQLAlchemy Core), for runs, actions and tasks.

Input trees are validated (``runtrack.domain.filters.validate``): fields are allowlisted and
values have their kinds. Every compiled predicate is two-valued (never NULL), so ``not`` is plain
negation and the result agrees with ``runtrack.domain.filter_eval.matches``:

* a NULL column or an absent label never equals, compares with or contains anything, and always
  counts as "not equal" / "not in";
* labels are ``EXISTS`` subqueries on ``run_labels`` (served by its ``(key, value, run_id)`` index);
* text matching is case-sensitive on both databases (``strpos`` / ``instr``, not ``LIKE``, whose
  case rules differ between SQLite and PostgreSQL); ``icontains`` compares lower-cased text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from runtrack.domain.filters import LABEL_PREFIX, And, Node, Not, Op, Or, Pred
from runtrack.storage.tables import actions, run_labels, runs, tasks


class strpos(FunctionElement[int]):
    """Position of a substring (1-based, 0 when absent): ``strpos`` / SQLite ``instr``."""

    type = sa.Integer()
    inherit_cache = True
    name = "strpos"


@compiles(strpos)
def _strpos_default(element: strpos, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


@compiles(strpos, "sqlite")
def _strpos_sqlite(element: strpos, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@dataclass(frozen=True)
class FilterTarget:
    """What a field name means for one table: its column and whether it may be NULL."""

    columns: Mapping[str, sa.ColumnElement[Any]]
    nullable: frozenset[str]
    label_owner: sa.ColumnElement[Any] | None = None  # runs.id when ``labels.<key>`` is allowed


RUNS_TARGET = FilterTarget(
    columns={
        "org": runs.c.org,
        "project": runs.c.project,
        "domain": runs.c.domain,
        "name": runs.c.name,
        "phase": runs.c.phase,
        "created_by": runs.c.created_by,
        "created_at": runs.c.created_at,
        "updated_at": runs.c.updated_at,
        "started_at": runs.c.started_at,
        "ended_at": runs.c.ended_at,
        "duration_ms": runs.c.duration_ms,
        "task_name": runs.c.task_name,
        "task_version": runs.c.task_version,
        "trigger_name": runs.c.trigger_name,
    },
    nullable=frozenset({"started_at", "ended_at", "duration_ms", "task_name", "task_version", "trigger_name"}),
    label_owner=runs.c.id,
)

ACTIONS_TARGET = FilterTarget(
    columns={
        "name": actions.c.name,
        "phase": actions.c.phase,
        "parent_name": actions.c.parent,
        "group": actions.c.group_name,
        "action_type": actions.c.action_type,
        "task_name": actions.c.task_name,
        "task_version": actions.c.task_version,
        "created_at": actions.c.created_at,
        "updated_at": actions.c.updated_at,
        "started_at": actions.c.started_at,
        "ended_at": actions.c.ended_at,
    },
    nullable=frozenset({"parent_name", "group", "task_name", "task_version", "started_at", "ended_at"}),
)

TASKS_TARGET = FilterTarget(
    columns={
        "org": tasks.c.org,
        "project": tasks.c.project,
        "domain": tasks.c.domain,
        "name": tasks.c.name,
        "version": tasks.c.version,
        "deployed_by": tasks.c.deployed_by,
        "deployed_at": tasks.c.deployed_at,
        "created_at": tasks.c.deployed_at,
    },
    nullable=frozenset(),
)


def _bind(col: sa.ColumnElement[Any], value: Any) -> sa.BindParameter[Any]:
    return sa.bindparam(None, int(value) if col.name == "phase" else value, type_=col.type)


def _text_match(op: Op, col: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
    if op is Op.CONTAINS:
        return strpos(col, value) > 0
    if op is Op.ICONTAINS:
        return strpos(sa.func.lower(col), value.lower()) > 0
    # ENDS_WITH: compare the tail (substr clips a start before 1 on both databases)
    n = len(value)
    return sa.and_(sa.func.length(col) >= n, sa.func.substr(col, sa.func.length(col) - n + 1) == value)


def _positive(op: Op, col: sa.ColumnElement[Any], value: Any) -> sa.ColumnElement[bool]:
    """The comparison itself (NULL handling is done by the caller)."""
    if op is Op.EQ:
        return col == _bind(col, value)
    if op is Op.IN:
        return col.in_([_bind(col, v) for v in value])
    if op is Op.LT:
        return col < _bind(col, value)
    if op is Op.LTE:
        return col <= _bind(col, value)
    if op is Op.GT:
        return col > _bind(col, value)
    if op is Op.GTE:
        return col >= _bind(col, value)
    if op in (Op.CONTAINS, Op.ICONTAINS, Op.ENDS_WITH):
        return _text_match(op, col, value)
    raise AssertionError(op)


def _label(p: Pred, owner: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    key = p.field[len(LABEL_PREFIX) :]
    conds: list[sa.ColumnElement[bool]] = [run_labels.c.key == key, run_labels.c.run_id == owner]
    negate = False
    if p.op is Op.NE:
        conds.append(run_labels.c.value == p.value)
        negate = True
    elif p.op is Op.NOT_IN:
        conds.append(run_labels.c.value.in_(list(p.value)))
        negate = True
    elif p.op is not Op.EXISTS:
        conds.append(_positive(p.op, run_labels.c.value, p.value))
    exists = sa.exists().where(*conds)
    return ~exists if negate else exists


def _pred(p: Pred, target: FilterTarget) -> sa.ColumnElement[bool]:
    if p.field.startswith(LABEL_PREFIX):
        if target.label_owner is None:
            raise AssertionError(f"labels are not filterable here: {p.field}")
        return _label(p, target.label_owner)
    col = target.columns[p.field]
    nullable = p.field in target.nullable
    is_text = isinstance(col.type, sa.String)
    if p.op is Op.EXISTS:
        present = col.is_not(None)
        return sa.and_(present, col != "") if is_text else present
    if p.op in (Op.NE, Op.NOT_IN):
        pos = _positive(Op.EQ if p.op is Op.NE else Op.IN, col, p.value)
        return sa.or_(col.is_(None), ~pos) if nullable else ~pos
    pos = _positive(p.op, col, p.value)
    return sa.and_(col.is_not(None), pos) if nullable else pos


def compile_filter(node: Node | None, target: FilterTarget = RUNS_TARGET) -> sa.ColumnElement[bool]:
    """A WHERE clause for a validated filter tree (``sa.true()`` for no filter)."""
    if node is None:
        return sa.true()
    if isinstance(node, Pred):
        return _pred(node, target)
    if isinstance(node, And):
        if not node.items:
            return sa.true()
        return sa.and_(*(compile_filter(i, target) for i in node.items))
    if isinstance(node, Or):
        if not node.items:
            return sa.false()
        return sa.or_(*(compile_filter(i, target) for i in node.items))
    assert isinstance(node, Not)
    return sa.not_(compile_filter(node.item, target))
