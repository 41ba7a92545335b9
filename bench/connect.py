"""Connect RunService latency: ListRuns (first page, limit 50; with and without a phase filter) and
GetRunDetails, as the flyte SDK sends them (binary proto over Connect), beside the raw SQL of the
same queries on the same database.

Server time comes from the ``Server-Timing: app;dur=<ms>`` header of every response.

    python bench/connect.py --url http://127.0.0.1:8090 \
        --database-url postgresql://postgres@127.0.0.1:5432/bench -n 300 [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from flyteidl2.common import identifier_pb2, list_pb2
from flyteidl2.workflow import run_service_pb2 as rs

from bench.common import Sample, asyncpg_dsn, table, time_requests, time_sql, write_section

SERVICE = "/flyteidl2.workflow.RunService/"
HEADERS = {"content-type": "application/proto", "connect-protocol-version": "1"}
F = list_pb2.Filter

LIST_SQL = (
    "SELECT * FROM runs WHERE org=$1 AND project=$2 AND domain=$3 {phase}"
    "ORDER BY created_at DESC, id DESC LIMIT 51"
)
RUN_SQL = "SELECT * FROM runs WHERE org=$1 AND project=$2 AND domain=$3 AND name=$4"
ROOT_SQL = (
    "SELECT actions.* FROM actions JOIN runs ON runs.id = actions.run_id "
    "WHERE runs.org=$1 AND runs.project=$2 AND runs.domain=$3 AND runs.name=$4 AND actions.name='a0'"
)
ATTEMPTS_SQL = "SELECT * FROM attempts WHERE action_id=$1 ORDER BY attempt"
TRANSITIONS_SQL = "SELECT * FROM phase_transitions WHERE attempt_id = ANY($1) ORDER BY id"
EVENTS_SQL = "SELECT * FROM cluster_events WHERE attempt_id = ANY($1) ORDER BY occurred_at, id"


def _post(client: httpx.AsyncClient, method: str, message: Any) -> Any:
    return client.post(SERVICE + method, content=message.SerializeToString(), headers=HEADERS)


async def _details_sql(conn: Any, key: tuple[str, str, str, str]) -> None:
    """The statements GetRunDetails runs: the run, its root action, attempts, transitions, events."""
    await conn.fetch(RUN_SQL, *key)
    root = await conn.fetchrow(ROOT_SQL, *key)
    atts = await conn.fetch(ATTEMPTS_SQL, root["id"])
    ids = [a["id"] for a in atts]
    if ids:
        await conn.fetch(TRANSITIONS_SQL, ids)
        await conn.fetch(EVENTS_SQL, ids)


async def run(url: str, db_url: str, n: int) -> tuple[int, list[Sample]]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        total = await conn.fetchval("SELECT count(*) FROM runs")
        org, project, domain = await conn.fetchrow(
            "SELECT org, project, domain FROM runs ORDER BY created_at DESC LIMIT 1"
        )
        keys = [
            (r["org"], r["project"], r["domain"], r["name"])
            for r in await conn.fetch("SELECT org, project, domain, name FROM runs ORDER BY random() LIMIT 300")
        ]
        scope = identifier_pb2.ProjectIdentifier(organization=org, name=project, domain=domain)
        first_page = rs.ListRunsRequest(project_id=scope, request=list_pb2.ListRequest(limit=50))
        phase_page = rs.ListRunsRequest(project_id=scope, request=list_pb2.ListRequest(
            limit=50, filters=[F(field="phase", function=F.VALUE_IN, values=["5", "6"])]))
        samples: list[Sample] = []
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            srv, cli = await time_requests(client, lambda i: _post(client, "ListRuns", first_page), n)
            base = await time_sql(conn, LIST_SQL.format(phase=""), lambda i: (org, project, domain), n)
            samples.append(Sample("ListRuns first page, limit 50 (project scope)", srv, cli, base))

            srv, cli = await time_requests(client, lambda i: _post(client, "ListRuns", phase_page), n)
            base = await time_sql(
                conn, LIST_SQL.format(phase="AND phase = ANY($4) "), lambda i: (org, project, domain, [5, 6]), n
            )
            samples.append(Sample("ListRuns first page, limit 50, phase IN (SUCCEEDED, FAILED)", srv, cli, base))

            def details(i: int) -> Any:
                o, p, d, name = keys[i % len(keys)]
                req = rs.GetRunDetailsRequest(
                    run_id=identifier_pb2.RunIdentifier(org=o, project=p, domain=d, name=name)
                )
                return _post(client, "GetRunDetails", req)

            srv, cli = await time_requests(client, details, n)
            raw: list[float] = []
            for i in range(n + 5):
                t0 = time.perf_counter()
                await _details_sql(conn, keys[i % len(keys)])
                if i >= 5:
                    raw.append((time.perf_counter() - t0) * 1000)
            samples.append(Sample("GetRunDetails (run, root action, attempts)", srv, cli, raw))
        return int(total), samples
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="a running runtrack server")
    ap.add_argument("--database-url", required=True, help="its PostgreSQL database (for the raw-SQL baseline)")
    ap.add_argument("-n", type=int, default=300, help="requests per scenario")
    ap.add_argument("--write", action="store_true", help="record the table in bench/RESULTS.md")
    args = ap.parse_args()
    total, samples = asyncio.run(run(args.url, args.database_url, args.n))
    body = f"{total:,} runs in the database; {args.n} sequential requests per scenario.\n\n"
    body += table([s.row() for s in samples])
    print(body)
    if args.write:
        write_section(f"connect-{total}", f"Connect RunService at {total:,} runs (PostgreSQL)", body)


if __name__ == "__main__":
    main()
