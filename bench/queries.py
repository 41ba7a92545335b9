"""Query benchmarks against a running server, each beside the raw SQL of the same query.

Scenarios: the first page and the Nth cursor page (default 1,000th) of ``status=failed``, an
offset page (default 100,000 rows deep), and count with and without filters. Server time comes
from the ``Server-Timing`` header; the raw-SQL baseline runs the equivalent statement through
asyncpg on the same database.

    python bench/load.py --database-url postgresql://postgres@127.0.0.1:5432/bench -n 1000000
    runtrack serve --database-url postgresql://postgres@127.0.0.1:5432/bench &
    python bench/queries.py --url http://127.0.0.1:8090 \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench --write "Queries (1,000,000 runs)"
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.common import Sample, asyncpg_dsn, table, time_requests, time_sql, write_section  # noqa: E402
from runtrack.domain.cursor import decode_cursor  # noqa: E402

FAILED = [6, 8]  # status=failed: FAILED, TIMED_OUT
PAGE = 50
SELECT_RUNS = "SELECT * FROM runs"


async def walk_to_page(client: httpx.AsyncClient, params: dict[str, Any], page: int) -> tuple[str | None, int]:
    """The cursor that opens page ``page`` (1-based) of a listing, and the page actually reached."""
    cursor: str | None = None
    reached = 1
    while reached < page:
        resp = await client.get("/api/v1/runs", params={**params, **({"cursor": cursor} if cursor else {})})
        resp.raise_for_status()
        nxt = resp.json()["next_cursor"]
        if nxt is None:
            break
        cursor = nxt
        reached += 1
    return cursor, reached


async def run(url: str, db_url: str, n: int, deep_page: int, offset: int) -> list[Sample]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    samples: list[Sample] = []
    try:
        total = await conn.fetchval("SELECT count(*) FROM runs")
        project = await conn.fetchval("SELECT project FROM runs ORDER BY id LIMIT 1")
        failed = {"status": "failed", "limit": PAGE}
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            srv, cli = await time_requests(client, lambda i: client.get("/api/v1/runs", params=failed), n)
            base = await time_sql(
                conn, f"{SELECT_RUNS} WHERE phase = ANY($1) ORDER BY created_at DESC, id DESC LIMIT {PAGE + 1}",
                lambda i: (FAILED,), n,
            )
            samples.append(Sample("first page, status=failed, limit 50", srv, cli, base))

            cursor, reached = await walk_to_page(client, failed, deep_page)
            if cursor is not None:
                cur = decode_cursor(cursor, _hash_of(cursor))
                srv, cli = await time_requests(
                    client, lambda i: client.get("/api/v1/runs", params={**failed, "cursor": cursor}), n
                )
                base = await time_sql(
                    conn,
                    f"{SELECT_RUNS} WHERE phase = ANY($1) AND (created_at, id) < ($2, $3) "
                    f"ORDER BY created_at DESC, id DESC LIMIT {PAGE + 1}",
                    lambda i: (FAILED, cur.value, cur.pk), n,
                )
                note = "" if reached == deep_page else f"only {reached} pages exist"
                samples.append(Sample(f"cursor page {reached:,}, status=failed, limit 50", srv, cli, base, note))

            deep = {"limit": PAGE, "offset": offset}
            srv, cli = await time_requests(client, lambda i: client.get("/api/v1/runs", params=deep), max(5, n // 10),
                                           warmup=1)
            base = await time_sql(
                conn, f"{SELECT_RUNS} ORDER BY created_at DESC, id DESC LIMIT {PAGE + 1} OFFSET {offset}",
                lambda i: (), max(5, n // 10), warmup=1,
            )
            samples.append(Sample(f"offset page {offset:,} deep, limit 50", srv, cli, base))

            for name, params, sql, args in (
                ("count, no filter", {}, "SELECT count(*) FROM runs", ()),
                ("count, status=failed", {"status": "failed"}, "SELECT count(*) FROM runs WHERE phase = ANY($1)",
                 (FAILED,)),
                (f"count, project={project} + status=failed", {"project": project, "status": "failed"},
                 "SELECT count(*) FROM runs WHERE project = $1 AND phase = ANY($2)", (project, FAILED)),
            ):
                reps = max(5, n // 10)
                srv, cli = await time_requests(
                    client, lambda i, p=params: client.get("/api/v1/runs/count", params=p), reps, warmup=1  # type: ignore[misc]
                )
                base = await time_sql(conn, sql, lambda i, a=args: a, reps, warmup=1)  # type: ignore[misc]
                samples.append(Sample(name, srv, cli, base))
        print(f"database holds {total:,} runs")
        return samples
    finally:
        await conn.close()


def _hash_of(cursor: str) -> str:
    """The filter hash a cursor carries (the benchmark reads it back to build the raw-SQL twin)."""
    import base64
    import json

    return str(json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["h"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8090", help="a running runtrack server")
    ap.add_argument("--database-url", required=True, help="its PostgreSQL database, for the raw-SQL baseline")
    ap.add_argument("-n", type=int, default=200, help="timed requests per page scenario (counts use n/10)")
    ap.add_argument("--deep-page", type=int, default=1000, help="which cursor page to time")
    ap.add_argument("--offset", type=int, default=100_000, help="rows skipped by the offset scenario")
    ap.add_argument("--write", metavar="TITLE", help="write the table into RESULTS.md under this title")
    args = ap.parse_args()
    samples = asyncio.run(run(args.url, args.database_url, args.n, args.deep_page, args.offset))
    md = table([s.row() for s in samples])
    print(md)
    if args.write:
        write_section("queries", args.write, md)


if __name__ == "__main__":
    main()
