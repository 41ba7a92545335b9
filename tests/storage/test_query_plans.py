"""On PostgreSQL with 200,000 runs, first pages of the common filters are served by an index.

The data is loaded with one ``INSERT ... SELECT generate_series`` per table, then analysed; the
plan of each first-page query (as the storage layer builds it) must not sequentially scan ``runs``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from runtrack.domain.filters import And, Node, Op, Pred, prepare
from runtrack.domain.query import RunQuery, Sort
from runtrack.service.container import Services
from runtrack.storage.filter_sql import compile_filter
from runtrack.storage.queries import RUN_SORTS, order_by
from runtrack.storage.tables import runs

pytestmark = pytest.mark.postgres
N = 200_000

LOAD = f"""
INSERT INTO runs (org, project, domain, name, phase, attempts, created_by, task_name, task_version, source,
                  labels, created_at, updated_at, version)
SELECT 'org' || (g % 3), 'proj' || (g % 50), CASE WHEN g % 2 = 0 THEN 'dev' ELSE 'prod' END, 'run-' || g,
       (ARRAY[1,2,3,4,5,5,5,6,7,8])[1 + g % 10], 1, 'user' || (g % 400), 'task' || (g % 100), 'v1', 'api',
       CASE WHEN g % 100 = 0 THEN '{{"team": "t' || (g % 700) || '"}}' ELSE '{{}}' END::jsonb,
       timestamptz '2026-01-01' + g * interval '10 seconds',
       timestamptz '2026-01-01' + g * interval '10 seconds' + interval '1 minute', 1
FROM generate_series(1, {N}) AS g;
INSERT INTO run_labels (run_id, key, value)
SELECT id, 'team', labels->>'team' FROM runs WHERE labels ? 'team';
INSERT INTO run_labels (run_id, key, value)
SELECT id, 'env', CASE WHEN id % 2 = 0 THEN 'prod' ELSE 'staging' END FROM runs;
ANALYZE runs;
ANALYZE run_labels;
"""


def first_page_sql(node: Node | None) -> str:
    q = RunQuery(filter=prepare(node, None), sort=Sort())
    spec = RUN_SORTS[q.sort.field]
    stmt = (
        sa.select(runs)
        .where(compile_filter(q.filter))
        .order_by(*order_by(spec, runs.c.id, q.sort.descending))
        .limit(q.limit + 1)
    )
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def scans(plan: Any) -> list[tuple[str, str]]:
    """(node type, relation or index) of every scan in a JSON plan."""
    out: list[tuple[str, str]] = []
    stack = [plan]
    while stack:
        node = stack.pop()
        if "Scan" in node["Node Type"]:
            out.append((node["Node Type"], node.get("Index Name") or node.get("Relation Name", "")))
        stack.extend(node.get("Plans", []))
    return out


CASES: dict[str, Node] = {
    "project scope": And((Pred("org", Op.EQ, "org1"), Pred("project", Op.EQ, "proj7"), Pred("domain", Op.EQ, "prod"))),
    "project + phase": And((Pred("org", Op.EQ, "org1"), Pred("project", Op.EQ, "proj7"),
                            Pred("domain", Op.EQ, "prod"), Pred("status", Op.EQ, "failed"))),
    "project only": Pred("project", Op.EQ, "proj7"),
    "status": Pred("status", Op.EQ, "failed"),
    "created_by": Pred("created_by", Op.EQ, "user42"),
    "label equality": Pred("labels.team", Op.EQ, "t300"),
    "created_at range": And((Pred("created_at", Op.GTE, "2026-01-10T00:00:00Z"),
                             Pred("created_at", Op.LT, "2026-01-11T00:00:00Z"))),
    "task name": Pred("task_name", Op.EQ, "task7"),
}


@pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)
async def test_first_pages_use_an_index(services: Services) -> None:
    async with services.db.write() as conn:
        for stmt in LOAD.split(";\n"):
            if stmt.strip():
                await conn.execute(sa.text(stmt))
    async with services.db.read() as conn:
        assert (await conn.execute(sa.text("SELECT count(*) FROM runs"))).scalar_one() == N
        for name, node in CASES.items():
            raw = (await conn.execute(sa.text("EXPLAIN (FORMAT JSON) " + first_page_sql(node)))).scalar_one()
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            found = scans(plan)
            assert ("Seq Scan", "runs") not in found, (name, found)
            assert any(kind != "Seq Scan" for kind, _ in found), (name, found)
    # and the service answers them (a sanity check that the SQL above is what runs)
    for node in CASES.values():
        page = await services.queries.list_runs(RunQuery(filter=prepare(node, None)))
        assert page.items
