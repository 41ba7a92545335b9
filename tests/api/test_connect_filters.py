"""flyteidl2 ListRequest → filter AST, sort and page; bad input is INVALID_ARGUMENT naming the bad part."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from connectrpc.code import Code
from flyteidl2.common import list_pb2

from runtrack.api.connect.filters import list_request_to_query
from runtrack.api.errors import classify
from runtrack.domain.filters import ACTION_FIELDS, TASK_FIELDS, And, Not, Op, Pred
from runtrack.domain.filters import scope as scope_filter
from runtrack.domain.phases import Phase
from runtrack.domain.query import ACTION_SORT_ALIASES, MAX_LIMIT, Sort
from runtrack.errors import InvalidArgument

F = list_pb2.Filter


def req(*filters: list_pb2.Filter, **kw: object) -> list_pb2.ListRequest:
    return list_pb2.ListRequest(filters=list(filters), **kw)  # type: ignore[arg-type]


def test_what_the_flyte_sdk_sends() -> None:
    q = list_request_to_query(
        req(
            F(function=F.VALUE_IN, field="phase", values=["5", "6"]),
            F(function=F.EQUAL, field="task_name", values=["wf.main"]),
            F(function=F.EQUAL, field="created_by", values=["alice"]),
            F(function=F.GREATER_THAN_OR_EQUAL, field="created_at", values=["2026-01-01T00:00:00+00:00"]),
            F(function=F.LESS_THAN, field="updated_at", values=["2026-02-01T00:00:00Z"]),
            F(function=F.EQUAL, field="labels.team", values=["ml"]),
            F(function=F.EXISTS, field="labels.env"),
            limit=100,
            token="",
            sort_by=list_pb2.Sort(key="created_at", direction=list_pb2.Sort.ASCENDING),
        )
    )
    assert q.filter == And((
        Pred("phase", Op.IN, (Phase.SUCCEEDED, Phase.FAILED)),
        Pred("task_name", Op.EQ, "wf.main"),
        Pred("created_by", Op.EQ, "alice"),
        Pred("created_at", Op.GTE, datetime(2026, 1, 1, tzinfo=UTC)),
        Pred("updated_at", Op.LT, datetime(2026, 2, 1, tzinfo=UTC)),
        Pred("labels.team", Op.EQ, "ml"),
        Pred("labels.env", Op.EXISTS),
    ))
    assert q.sort == Sort("created_at", descending=False) and q.limit == 100 and q.cursor is None


def test_phase_values_and_defaults() -> None:
    one = list_request_to_query(req(F(function=F.EQUAL, field="phase", values=["4"])))
    assert one.filter == Pred("phase", Op.EQ, Phase.RUNNING)
    assert one.sort == Sort() and one.limit == 50
    # a string given where a list belongs arrives split into characters
    ten = list_request_to_query(req(F(function=F.EQUAL, field="phase", values="10")))
    assert ten.filter == Pred("phase", Op.EQ, Phase.RECOVERED)
    named = list_request_to_query(req(F(function=F.VALUE_IN, field="phase", values=["ACTION_PHASE_FAILED", "queued"])))
    assert named.filter == Pred("phase", Op.IN, (Phase.QUEUED, Phase.FAILED))
    status = list_request_to_query(req(F(function=F.EQUAL, field="status", values=["running"])))
    assert status.filter == Pred("phase", Op.IN, (Phase.RUNNING, Phase.PAUSED))
    neg = list_request_to_query(req(F(function=F.NOT_EXISTS, field="labels.x"), F(function=F.NOT_ENDS_WITH,
                                                                                    field="name", values=["-x"])))
    assert neg.filter == And((Not(Pred("labels.x", Op.EXISTS)), Not(Pred("name", Op.ENDS_WITH, "-x"))))
    capped = list_request_to_query(req(limit=10_000, token="abc"))
    assert capped.limit == MAX_LIMIT and capped.cursor == "abc" and capped.filter is None
    me = list_request_to_query(req(F(function=F.EQUAL, field="created_by", values=["me"])), caller="bob")
    assert me.filter == Pred("created_by", Op.EQ, "bob")
    fields = list_request_to_query(
        req(sort_by_fields=[list_pb2.Sort(key="duration", direction=list_pb2.Sort.DESCENDING)])
    )
    assert fields.sort == Sort("duration_ms", True)


def test_scope_and_other_allowlists() -> None:
    scope = And((Pred("org", Op.EQ, "o"), Pred("project", Op.EQ, "p")))
    assert scope_filter("o", "p", "") == scope
    q = list_request_to_query(req(F(function=F.EQUAL, field="phase", values=["4"])), extra=scope)
    assert q.filter == And((scope, Pred("phase", Op.EQ, Phase.RUNNING)))
    acts = list_request_to_query(
        req(F(function=F.EQUAL, field="parent_name", values=["a0"])),
        allowed=ACTION_FIELDS, sort_aliases=ACTION_SORT_ALIASES, default_sort=Sort("created_at", False),
    )
    assert acts.filter == Pred("parent_name", Op.EQ, "a0") and acts.sort == Sort("created_at", False)
    tasks = list_request_to_query(req(F(function=F.CONTAINS, field="name", values=["env."])), allowed=TASK_FIELDS)
    assert tasks.filter == Pred("name", Op.CONTAINS, "env.")
    with pytest.raises(InvalidArgument, match=r"labels\.team"):
        list_request_to_query(req(F(function=F.EQUAL, field="labels.team", values=["x"])), allowed=ACTION_FIELDS)


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (req(F(function=F.EQUAL, field="phase", values=["bogus"])), "bogus"),
        (req(F(function=F.EQUAL, field="status", values=["bogus"])), "bogus"),
        (req(F(function=F.VALUE_IN, field="phase", values=["5", "0"])), "phase"),
        (req(F(function=F.EQUAL, field="owner", values=["x"])), "owner"),
        (req(F(function=F.EQUAL, field="labels.", values=["x"])), "labels."),
        (req(F(function=F.EQUAL, field="", values=["x"])), "no field"),
        (req(F(function=99, field="name", values=["x"])), "99"),  # type: ignore[arg-type]
        (req(F(function=F.GREATER_THAN, field="name", values=["x"])), "name"),
        (req(F(function=F.EQUAL, field="name", values=["a", "b"])), "exactly one"),
        (req(F(function=F.EQUAL, field="name")), "exactly one"),
        (req(F(function=F.VALUE_IN, field="name")), "at least one"),
        (req(F(function=F.EXISTS, field="labels.a", values=["x"])), "no values"),
        (req(F(function=F.GREATER_THAN, field="created_at", values=["2026-01-01T00:00:00"])), "timezone"),
        (req(F(function=F.GREATER_THAN, field="created_at", values=["soon"])), "soon"),
        (req(F(function=F.LESS_THAN, field="duration_ms", values=["fast"])), "fast"),
        (req(F(function=F.CONTAINS, field="name", values=[""])), "non-empty"),
        (req(sort_by=list_pb2.Sort(key="owner")), "owner"),
        (req(raw_filters=["phase = 4"]), "raw_filters"),
    ],
)
def test_rejected_requests_are_invalid_argument(request_: list_pb2.ListRequest, needle: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        list_request_to_query(request_)
    assert needle in info.value.message
    mapping, message = classify(info.value)
    assert mapping.connect is Code.INVALID_ARGUMENT and needle in message
