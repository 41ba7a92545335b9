"""A plain-Python evaluation of a validated filter against a run or an action.

It states the meaning of the filter language in a few lines, and the SQL compiler is checked
against it. Semantics: a missing value (NULL, an absent label) never equals, compares or contains
anything, and always counts as "not equal" / "not in"; every predicate is true or false, so
``not`` is plain negation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtrack.domain.filters import LABEL_PREFIX, And, Node, Not, Op, Or
from runtrack.domain.models import Action, Run


def run_value(run: Run, field: str) -> Any:
    """The value of an allowlisted field on a run (None when missing)."""
    if field.startswith(LABEL_PREFIX):
        return run.labels.get(field[len(LABEL_PREFIX) :])
    if field in ("org", "project", "domain", "name"):
        return getattr(run.id, field)
    if field == "task_name":
        return run.task.name if run.task else None
    if field == "task_version":
        return run.task.version if run.task else None
    return getattr(run, field)


def _leaf(op: Op, v: Any, want: Any) -> bool:
    if op is Op.NE:
        return v is None or v != want
    if op is Op.NOT_IN:
        return v is None or v not in want
    if v is None:
        return False
    if op is Op.EXISTS:
        return v != "" if isinstance(v, str) else True
    if op is Op.EQ:
        return bool(v == want)
    if op is Op.IN:
        return v in want
    if op is Op.LT:
        return bool(v < want)
    if op is Op.LTE:
        return bool(v <= want)
    if op is Op.GT:
        return bool(v > want)
    if op is Op.GTE:
        return bool(v >= want)
    if op is Op.CONTAINS:
        return want in v
    if op is Op.ICONTAINS:
        return str(want).lower() in str(v).lower()
    if op is Op.ENDS_WITH:
        return str(v).endswith(want)
    raise AssertionError(op)


def action_value(action: Action, field: str) -> Any:
    """The value of an ACTION_FIELDS field on an action (None when missing)."""
    if field == "parent_name":
        return action.parent
    if field == "task_name":
        return action.task.name if action.task else None
    if field == "task_version":
        return action.task.version if action.task else None
    return getattr(action, field, None)


def _evaluate(node: Node | None, value_of: Callable[[str], Any]) -> bool:
    if node is None:
        return True
    if isinstance(node, And):
        return all(_evaluate(i, value_of) for i in node.items)
    if isinstance(node, Or):
        return any(_evaluate(i, value_of) for i in node.items)
    if isinstance(node, Not):
        return not _evaluate(node.item, value_of)
    v = value_of(node.field)
    if node.field.startswith(LABEL_PREFIX) and node.op is Op.EXISTS:
        return v is not None  # a label with an empty value exists
    return _leaf(node.op, v, node.value)


def matches(node: Node | None, run: Run) -> bool:
    """Whether ``run`` satisfies the (validated, ``me``-resolved) filter."""
    return _evaluate(node, lambda field: run_value(run, field))


def action_matches(node: Node | None, action: Action) -> bool:
    """Whether ``action`` satisfies a filter validated against ACTION_FIELDS."""
    return _evaluate(node, lambda field: action_value(action, field))
