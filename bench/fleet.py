"""Fleet benchmarks against a running server, each beside the raw SQL of the same work.

Scenarios:
* ``GET /api/v1/runs/stats`` uncached and cached, for no filter, one project and ``created_by=me``.
  Cached calls go to ``--url``. Uncached calls go to ``--uncached-url`` if given, else to a server
  this script starts itself on the same database with ``statsCacheTTL: 0`` (cache disabled).
* ``POST /api/v1/runs/bulk_delete`` of 200 runs with 5 actions each (one attempt, three phase
  transitions, two labels and three log lines per action), seeded by this script into projects of
  their own under org ``bench``; the baseline deletes an equal seeded set with raw SQL (select,
  queue the log cleanup, delete with the cascade) in one transaction.

Server time comes from the ``Server-Timing`` header; baselines run through asyncpg.

    python bench/load.py --database-url postgresql://postgres@127.0.0.1:5432/bench -n 1000000
    runtrack serve --database-url postgresql://postgres@127.0.0.1:5432/bench &
    python bench/fleet.py --url http://127.0.0.1:8090 \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench --write "Fleet (1,000,000 runs)"
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.common import Sample, asyncpg_dsn, server_ms, table, time_requests, time_sql, write_section  # noqa: E402

ORG, DOMAIN = "bench", "development"
BATCH, ACTIONS = 200, 5
STATS_SQL = "SELECT phase, count(*) FROM runs{where} GROUP BY phase"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class UncachedServer:
    """``runtrack serve`` on the same database with the stats cache disabled."""

    def __init__(self, db_url: str) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="rt-bench-")
        cfg = Path(self.dir.name) / "uncached.yaml"
        cfg.write_text("runs:\n  statsCacheTTL: 0s\n")
        self.url = f"http://127.0.0.1:{_free_port()}"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.log = open(Path(self.dir.name) / "server.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtrack", "serve", "--no-migrate", "--config", str(cfg), "--database-url",
             db_url, "--port", self.url.rsplit(":", 1)[1]],
            env=env, stdout=self.log, stderr=self.log,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (Path(self.dir.name) / "server.log").read_text()[-2000:]
                raise RuntimeError(f"uncached server exited: {log}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("uncached server not ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.dir.cleanup()


async def seed_batch(conn: asyncpg.Connection, project: str, n: int = BATCH) -> list[int]:
    """``n`` SUCCEEDED runs of ``ACTIONS`` actions each, with attempts, transitions, labels and logs."""
    async with conn.transaction():
        run_ids = [r["id"] for r in await conn.fetch(
            """INSERT INTO runs (org, project, domain, name, phase, attempts, created_by, source, labels,
                 created_at, updated_at, started_at, ended_at, duration_ms, version)
               SELECT $1, $2, $3, 'bd-' || $4 || '-' || g, 5, 1, 'bench@example.com', 'bench',
                 '{"team": "ml", "env": "dev"}'::jsonb, now() - interval '1 hour', now(), now() - interval '1 hour',
                 now(), 3600000, 3
               FROM generate_series(1, $5) g RETURNING id""",
            ORG, project, DOMAIN, uuid.uuid4().hex[:8], n,
        )]
        await conn.execute(
            "INSERT INTO run_labels (run_id, key, value) SELECT id, l.k, l.v FROM unnest($1::bigint[]) id "
            "CROSS JOIN (VALUES ('team', 'ml'), ('env', 'dev')) l(k, v)", run_ids,
        )
        actions = await conn.fetch(
            """INSERT INTO actions (run_id, name, parent, action_type, phase, attempts, created_at, updated_at,
                 started_at, ended_at)
               SELECT id, CASE WHEN k = 0 THEN 'a0' ELSE 'a' || k END, CASE WHEN k > 0 THEN 'a0' END, 'task', 5, 1,
                 now(), now(), now(), now()
               FROM unnest($1::bigint[]) id CROSS JOIN generate_series(0, $2 - 1) k RETURNING id, run_id, name""",
            run_ids, ACTIONS,
        )
        attempt_ids = [r["id"] for r in await conn.fetch(
            "INSERT INTO attempts (action_id, attempt, phase, start_time, end_time, created_at, updated_at) "
            "SELECT a, 1, 5, now(), now(), now(), now() FROM unnest($1::bigint[]) a RETURNING id",
            [a["id"] for a in actions],
        )]
        await conn.execute(
            "INSERT INTO phase_transitions (attempt_id, phase, start_time, end_time) "
            "SELECT t, p, now(), now() FROM unnest($1::bigint[]) t CROSS JOIN (VALUES (1), (4), (5)) v(p)",
            attempt_ids,
        )
        await conn.execute(
            "INSERT INTO log_lines (run_id, action_name, attempt, ts, stream, message) "
            "SELECT r, a, 1, now(), 'stdout', 'line ' || i FROM unnest($1::bigint[], $2::text[]) x(r, a) "
            "CROSS JOIN generate_series(1, 3) i",
            [a["run_id"] for a in actions], [a["name"] for a in actions],
        )
    return run_ids


async def raw_delete(conn: asyncpg.Connection, project: str) -> float:
    """The baseline: the same selection, queueing and cascade delete in one transaction; ms."""
    t0 = time.perf_counter()
    async with conn.transaction():
        ids = [r["id"] for r in await conn.fetch(
            "SELECT id FROM runs WHERE org = $1 AND project = $2 AND domain = $3 AND phase = ANY($4) "
            "ORDER BY created_at DESC, id DESC LIMIT $5 FOR UPDATE SKIP LOCKED",
            ORG, project, DOMAIN, [5, 6, 7, 8, 10], BATCH,
        )]
        await conn.execute("INSERT INTO cleanup_jobs (run_id, created_at) SELECT unnest($1::bigint[]), now()", ids)
        await conn.execute("DELETE FROM runs WHERE id = ANY($1)", ids)
    return (time.perf_counter() - t0) * 1000


async def bench_delete(client: httpx.AsyncClient, conn: asyncpg.Connection, rounds: int) -> Sample:
    srv: list[float] = []
    cli: list[float] = []
    base: list[float] = []
    for i in range(rounds):
        project = f"bench-delete-{uuid.uuid4().hex[:6]}"
        await seed_batch(conn, project)
        t0 = time.perf_counter()
        resp = await client.post("/api/v1/runs/bulk_delete",
                                 json={"org": ORG, "project": project, "domain": DOMAIN, "limit": BATCH})
        cli.append((time.perf_counter() - t0) * 1000)
        resp.raise_for_status()
        if len(resp.json()["deleted"]) != BATCH:
            raise RuntimeError(f"round {i}: deleted {len(resp.json()['deleted'])} runs, expected {BATCH}")
        srv.append(server_ms(resp))
        raw_project = project + "-raw"
        await seed_batch(conn, raw_project)
        base.append(await raw_delete(conn, raw_project))
    return Sample(f"bulk delete {BATCH} runs x {ACTIONS} actions", srv, cli, base, f"{rounds} rounds")


async def run(url: str, uncached_url: str, db_url: str, n: int, rounds: int) -> list[Sample]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    samples: list[Sample] = []
    try:
        total = await conn.fetchval("SELECT count(*) FROM runs")
        project = await conn.fetchval("SELECT project FROM runs ORDER BY id LIMIT 1") or "project-0"
        user = await conn.fetchval("SELECT created_by FROM runs ORDER BY id LIMIT 1") or "nobody"
        scenarios: list[tuple[str, dict[str, Any], str, tuple[Any, ...]]] = [
            ("no filter", {}, "", ()),
            (f"project={project}", {"project": project}, " WHERE project = $1", (project,)),
            ("created_by=me", {"created_by": "me", "current_user": user}, " WHERE created_by = $1", (user,)),
        ]
        reps_uncached = max(5, n // 10)
        async with httpx.AsyncClient(base_url=uncached_url, timeout=120) as cold, \
                httpx.AsyncClient(base_url=url, timeout=120) as warm:
            for name, params, where, args in scenarios:
                srv, cli = await time_requests(
                    cold, lambda i, p=params: cold.get("/api/v1/runs/stats", params=p),  # type: ignore[misc]
                    reps_uncached, warmup=1,
                )
                base = await time_sql(conn, STATS_SQL.format(where=where), lambda i, a=args: a,  # type: ignore[misc]
                                      reps_uncached, warmup=1)
                samples.append(Sample(f"stats uncached, {name}", srv, cli, base))
            for name, params, _where, _args in scenarios:
                srv, cli = await time_requests(
                    warm, lambda i, p=params: warm.get("/api/v1/runs/stats", params=p), n,  # type: ignore[misc]
                    warmup=2,
                )
                samples.append(Sample(f"stats cached, {name}", srv, cli, None, "within the cache TTL"))
            samples.append(await bench_delete(warm, conn, rounds))
        print(f"database holds {total:,} runs")
        return samples
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8090", help="a running runtrack server (cache enabled)")
    ap.add_argument("--uncached-url", help="a server with statsCacheTTL: 0 (default: start one)")
    ap.add_argument("--database-url", required=True, help="the server's PostgreSQL database (raw-SQL baseline)")
    ap.add_argument("-n", type=int, default=200, help="timed cached calls per scenario (uncached: n/10, at least 5)")
    ap.add_argument("--rounds", type=int, default=5, help="timed bulk deletes (each seeds 200 runs first)")
    ap.add_argument("--write", metavar="TITLE", help="write the table into RESULTS.md under this title")
    args = ap.parse_args()
    started: UncachedServer | None = None
    uncached = args.uncached_url
    if uncached is None:
        started = UncachedServer(args.database_url)
        started.wait_ready()
        uncached = started.url
    try:
        samples = asyncio.run(run(args.url, uncached, args.database_url, args.n, args.rounds))
    finally:
        if started is not None:
            started.stop()
    md = table([s.row() for s in samples])
    print(md)
    if args.write:
        write_section("fleet", args.write, md)


if __name__ == "__main__":
    main()
