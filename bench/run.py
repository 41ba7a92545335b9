"""Baseline scenarios against a running server, each beside the raw SQL of the same query.

    python bench/run.py --url http://127.0.0.1:8090 --database-url postgresql://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Sample, asyncpg_dsn, table, time_requests, time_sql, write_section


async def run(url: str, db_url: str, n: int) -> list[Sample]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        total = await conn.fetchval("SELECT count(*) FROM runs")
        rows = await conn.fetch("SELECT name FROM runs ORDER BY random() LIMIT 200")
        names = [r["name"] for r in rows]
        scopes = {
            r["name"]: (r["org"], r["project"], r["domain"])
            for r in await conn.fetch("SELECT org, project, domain, name FROM runs WHERE name = ANY($1)", names)
        }
        samples = []
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            def get_run(i: int) -> object:
                name = names[i % len(names)]
                org, project, domain = scopes[name]
                return client.get(f"/api/v1/runs/{org}/{project}/{domain}/{name}")

            srv, cli = await time_requests(client, get_run, n)  # type: ignore[arg-type]
            base = await time_sql(
                conn,
                "SELECT * FROM runs WHERE org=$1 AND project=$2 AND domain=$3 AND name=$4",
                lambda i: (*scopes[names[i % len(names)]], names[i % len(names)]),
                n,
            )
            samples.append(Sample("GET /api/v1/runs/{org}/{project}/{domain}/{name}", srv, cli, base))
            srv, cli = await time_requests(client, lambda i: client.get("/healthz"), n)
            samples.append(Sample("GET /healthz (framework floor)", srv, cli, None))
        print(f"database holds {total:,} runs")
        return samples
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8090")
    ap.add_argument("--database-url", required=True)
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--write", metavar="TITLE", help="write the table into RESULTS.md under this title")
    args = ap.parse_args()
    samples = asyncio.run(run(args.url, args.database_url, args.n))
    md = table([s.row() for s in samples])
    print(md)
    if args.write:
        write_section("baseline", args.write, md)


if __name__ == "__main__":
    main()
