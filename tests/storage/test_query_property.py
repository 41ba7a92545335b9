"""Property: for generated runs and filters, SQL agrees with the plain-Python meaning of the filter.

For each example the database is refilled with generated runs; then for a few generated filters
and sorts, paging through everything (small pages) must list exactly the runs the Python
evaluator accepts, in the Python sort order, and ``count`` must equal the number listed.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtrack.config import Settings
from runtrack.domain.filter_eval import matches, run_value
from runtrack.domain.filters import And, Node, Not, Op, Or, Pred, prepare
from runtrack.domain.models import Run
from runtrack.domain.phases import STATUS_GROUPS, Phase
from runtrack.domain.query import RunQuery, Sort
from runtrack.service.container import Services
from runtrack.storage import migrate
from runtrack.storage.tables import runs
from tests.seed import T0, seed_run

WORDS = ["ab", "abc", "b", "ca", "x"]
USERS = ["alice", "bob", ""]
KEYS = ["team", "env"]
VALUES = ["ml", "web", "", "m"]
PHASES = [p for p in Phase if p is not Phase.UNSPECIFIED]
SORTS = ["created_at", "updated_at", "ended_at", "name", "phase", "duration_ms"]


def minutes(n: int) -> Any:
    return T0 + timedelta(minutes=n)


run_specs = st.lists(
    st.fixed_dictionaries(
        {
            "word": st.sampled_from(WORDS),
            "project": st.sampled_from(["p1", "p2"]),
            "phase": st.sampled_from(PHASES),
            "created_by": st.sampled_from(USERS),
            "minute": st.integers(0, 6),  # few values: plenty of ties
            "duration_ms": st.none() | st.integers(0, 3),
            "labels": st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2),
            "task": st.none() | st.sampled_from(["t.a", "t.b"]),
        }
    ),
    max_size=14,
)

str_fields = st.sampled_from(["name", "project", "created_by", "task_name", *(f"labels.{k}" for k in KEYS)])
text = st.sampled_from(WORDS + VALUES + USERS + ["p1", "t.a", "a", "B", "-1"])
text_nonempty = st.sampled_from(["a", "b", "ab", "B", "m", "1", "t.", "p"])
leaf = st.one_of(
    st.builds(Pred, str_fields, st.sampled_from([Op.EQ, Op.NE]), text),
    st.builds(Pred, str_fields, st.sampled_from([Op.IN, Op.NOT_IN]), st.lists(text, min_size=1, max_size=3).map(tuple)),
    st.builds(Pred, str_fields, st.sampled_from([Op.CONTAINS, Op.ICONTAINS, Op.ENDS_WITH]), text_nonempty),
    st.builds(Pred, str_fields, st.just(Op.EXISTS)),
    st.builds(Pred, st.just("status"), st.sampled_from([Op.EQ, Op.NE]), st.sampled_from(sorted(STATUS_GROUPS))),
    st.builds(Pred, st.just("phase"), st.sampled_from([Op.IN, Op.NOT_IN]),
              st.lists(st.sampled_from([str(int(p)) for p in PHASES]), min_size=1, max_size=3).map(tuple)),
    st.builds(Pred, st.sampled_from(["created_at", "ended_at"]),
              st.sampled_from([Op.LT, Op.LTE, Op.GT, Op.GTE, Op.EQ, Op.NE]),
              st.integers(0, 7).map(lambda m: minutes(m).isoformat())),
    st.builds(Pred, st.just("ended_at"), st.just(Op.EXISTS)),
    st.builds(Pred, st.just("duration_ms"), st.sampled_from([Op.LT, Op.GTE, Op.EQ, Op.NE, Op.IN]), st.integers(0, 3))
    .map(lambda p: Pred(p.field, p.op, (p.value,)) if p.op is Op.IN else p),
)
filters: st.SearchStrategy[Node] = st.recursive(
    leaf,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: Or(tuple(xs))),
        children.map(Not),
    ),
    max_leaves=6,
)
queries = st.lists(
    st.tuples(filters, st.sampled_from(SORTS), st.booleans(), st.integers(1, 5)), min_size=1, max_size=4
)


def python_order(items: list[Run], sort: Sort) -> list[str]:
    def key(r: Run) -> Any:
        v = run_value(r, sort.field)
        if v is None:
            return (1, 0)
        return (0, v)

    non_null = [r for r in items if run_value(r, sort.field) is not None]
    nulls = [r for r in items if run_value(r, sort.field) is None]
    non_null.sort(key=lambda r: (key(r)[1], r.pk), reverse=sort.descending)
    nulls.sort(key=lambda r: r.pk, reverse=sort.descending)
    return [r.id.name for r in non_null + nulls]


def test_listing_agrees_with_python(db_url: str) -> None:
    loop = asyncio.new_event_loop()
    svc = Services.build(Settings(database_url=db_url))
    loop.run_until_complete(migrate.upgrade(svc.db))

    async def load(specs: list[dict[str, Any]]) -> list[Run]:
        async with svc.db.write() as conn:
            await conn.execute(sa.delete(runs))
        made = []
        for i, s in enumerate(specs):
            d = s["duration_ms"]
            made.append(
                await seed_run(
                    svc, f"{s['word']}{i}", project=s["project"], phase=s["phase"], created_by=s["created_by"],
                    minute=s["minute"], labels=s["labels"], task=s["task"], duration_ms=d,
                    ended_at=None if d is None else minutes(s["minute"] + d),
                )
            )
        return made

    async def page_all(q: RunQuery) -> list[str]:
        out: list[str] = []
        cursor = None
        while True:
            page = await svc.queries.list_runs(RunQuery(filter=q.filter, sort=q.sort, limit=q.limit, cursor=cursor))
            out += [r.id.name for r in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return out
            assert len(out) <= 100, "paging did not end"

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(specs=run_specs, qs=queries)
    def check(specs: list[dict[str, Any]], qs: list[tuple[Node, str, bool, int]]) -> None:
        made = loop.run_until_complete(load(specs))
        for raw, field, desc, limit in qs:
            node = prepare(raw, "alice")
            sort = Sort(field, desc)
            expected = python_order([r for r in made if matches(node, r)], sort)
            listed = loop.run_until_complete(page_all(RunQuery(filter=node, sort=sort, limit=limit)))
            assert listed == expected, (node, sort)
            assert loop.run_until_complete(svc.queries.count_runs(node)) == len(listed)

    try:
        check()
    finally:
        loop.run_until_complete(svc.close())
        loop.close()
