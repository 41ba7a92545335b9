"""A plain-Python evaluation of a validated filter against a run.

It states the meaning of the filter language in a few lines, and the SQL compiler is checked
against it. Semantics: a missing value (NULL, an absent label) never equals, compares or contains
anything, and always counts as "not equal" / "not in"; every predicate is true or false, so
``not`` is plain negation.
"""

from __future__ import annotations

from typing import Any

from runtrack.domain.filters import LABEL_PREFIX, And, Node, Not, Op, Or, Pred
from runtrack.domain.models import Run


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


def matches(node: Node | None, run: Run) -> bool:
    """Whether ``run`` satisfies the (validated, ``me``-resolved) filter."""
    if node is None:
        return True
    if isinstance(node, And):
        return all(matches(i, run) for i in node.items)
    if isinstance(node, Or):
        return any(matches(i, run) for i in node.items)
    if isinstance(node, Not):
        return not matches(node.item, run)
    assert isinstance(node, Pred)
    v = run_value(run, node.field)
    if node.field.startswith(LABEL_PREFIX) and node.op is Op.EXISTS:
        return v is not None  # a label with an empty value exists
    return _leaf(node.op, v, node.value)
