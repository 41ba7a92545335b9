"""Event ingestion throughput: ``POST /api/v1/events`` with 1, 10 and 100 events per request.

Creates ``--runs`` runs through the REST API, then for each batch size lets ``--clients``
concurrent clients send requests for ``--seconds`` seconds. Each client owns its own runs (as
executors own their actions); every event moves its action's version forward, so every event is
an applied write (attempt, action, run and, the first time, the phase-transition timeline).

Prints events/s and requests/s, and the server time per request (``Server-Timing``) beside the
raw SQL of the same writes (asyncpg, one transaction per request) when ``--database-url`` is a
PostgreSQL URL. The load comes from a minimal keep-alive HTTP/1.1 client (one connection per
client) so that, on a machine shared with the server, the load generator costs as little as it
can; the CPU time of the server processes (found by their listening port), of PostgreSQL and of
this client is reported per request, to show where a saturated machine spends its cores.

    python bench/ingest.py --url http://127.0.0.1:8090 \\
        --database-url postgresql://postgres@127.0.0.1/bench --runs 2000 --clients 8 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import asyncpg_dsn, median_p95, table, write_section

HEADER = ["events/request", "clients", "requests", "events", "events/s", "requests/s",
          "server median ms", "server p95 ms", "client median ms", "raw SQL median ms", "ratio",
          "CPU ms/request: server / PostgreSQL / client"]
RAW_SQL = [
    "UPDATE attempts SET version = $2, updated_at = now() WHERE action_id = $1 AND attempt = 1",
    "UPDATE actions SET version = $2, updated_at = now() WHERE id = $1",
    "UPDATE runs SET version = version + 1, updated_at = now() WHERE id = $1",
]


async def create_runs(client: httpx.AsyncClient, n: int, prefix: str) -> list[dict[str, str]]:
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> dict[str, str]:
        body = {"org": "bench", "project": "ingest", "domain": "dev", "name": f"{prefix}-{i}"}
        async with sem:
            (await client.post("/api/v1/runs", json=body)).raise_for_status()
        return body

    return list(await asyncio.gather(*(one(i) for i in range(n))))


class KeepAlive:
    """One HTTP/1.1 keep-alive connection posting JSON (responses must carry Content-Length)."""

    def __init__(self, url: str) -> None:
        u = urlparse(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, float]:
        """(status, server ms from Server-Timing)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length, timing = 0, float("nan")
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"server-timing":
                m = re.search(rb"dur=([0-9.]+)", value)
                timing = float(m.group(1)) if m else timing
        await self.reader.readexactly(length)
        return status, timing

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def client_loop(
    url: str, runs: list[dict[str, str]], size: int, deadline: float,
    versions: dict[str, int], srv: list[float], cli: list[float],
) -> int:
    cycle = itertools.cycle(runs)
    sent = 0
    conn = KeepAlive(url)
    try:
        while time.monotonic() < deadline:
            events = []
            for _ in range(size):
                run = next(cycle)
                versions[run["name"]] += 1
                events.append({"run": run, "action": "a0", "attempt": 1, "phase": "RUNNING",
                               "version": versions[run["name"]]})
            body = json.dumps({"events": events}, separators=(",", ":")).encode()
            t0 = time.perf_counter()
            status, ms = await conn.post("/api/v1/events", body)
            cli.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"POST /api/v1/events answered {status}")
            srv.append(ms)
            sent += 1
    finally:
        conn.close()
    return sent


def _cpu_of(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def cpu_groups(url: str) -> dict[str, list[psutil.Process]]:
    """The server's processes (listening on the URL's port, with their children), PostgreSQL's, ours."""
    port = urlparse(url).port or 80
    server: list[psutil.Process] = []
    for c in psutil.net_connections("tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            p = psutil.Process(c.pid)
            server += [p, *p.children(recursive=True)]
    server = list({p.pid: p for p in server}.values())
    postgres = [p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")]
    return {"server": server, "postgres": postgres, "client": [psutil.Process()]}


async def analyze(db_url: str) -> None:
    """Refresh the planner's statistics after creating the runs, as autovacuum would: with it off
    (as on the benchmark machine) the new project looks empty to the planner, which then resolves
    a batch's run names through the project's created_at index instead of the unique name index."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        await conn.execute("ANALYZE runs, actions, attempts")
    finally:
        await conn.close()


async def raw_sql(db_url: str, prefix: str, size: int, n: int) -> list[float]:
    """The same writes in raw SQL (three UPDATEs per event, one transaction per request)."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        rows = await conn.fetch(
            "SELECT a.id AS action_id, r.id AS run_id FROM runs r JOIN actions a ON a.run_id = r.id "
            "WHERE r.name LIKE $1 AND a.name = 'a0' ORDER BY r.id", f"{prefix}-%")
        if not rows:
            return []
        out = []
        version = 10**9
        for i in range(n):
            batch = [rows[(i * size + j) % len(rows)] for j in range(size)]
            t0 = time.perf_counter()
            async with conn.transaction():
                await conn.fetch(
                    "SELECT r.id FROM runs r JOIN actions a ON a.run_id = r.id WHERE a.id = ANY($1::bigint[]) "
                    "ORDER BY r.id FOR UPDATE", [r["action_id"] for r in batch])
                for r in batch:
                    version += 1
                    await conn.execute(RAW_SQL[0], r["action_id"], version)
                    await conn.execute(RAW_SQL[1], r["action_id"], version)
                    await conn.execute(RAW_SQL[2], r["run_id"])
            out.append((time.perf_counter() - t0) * 1000)
        return out
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> list[list[str]]:
    prefix = f"ing{uuid.uuid4().hex[:6]}"
    rows = []
    limits = httpx.Limits(max_connections=args.clients * 2)
    async with httpx.AsyncClient(base_url=args.url, timeout=120, limits=limits) as client:
        runs = await create_runs(client, args.runs, prefix)
        versions = {r["name"]: 0 for r in runs}
        # The first event of each run starts its attempt (a new attempt row and timeline entry).
        for i in range(0, len(runs), 100):
            chunk = runs[i : i + 100]
            events = [{"run": r, "action": "a0", "attempt": 1, "phase": "RUNNING", "version": 0} for r in chunk]
            (await client.post("/api/v1/events", json={"events": events})).raise_for_status()
        if args.database_url and args.database_url.startswith("postgres"):
            await analyze(args.database_url)
        groups = cpu_groups(args.url)
        for size in args.sizes:
            srv: list[float] = []
            cli: list[float] = []
            per_client = [runs[k :: args.clients] for k in range(args.clients)]
            deadline = time.monotonic() + args.seconds
            cpu0 = {k: _cpu_of(v) for k, v in groups.items()}
            t0 = time.perf_counter()
            counts = await asyncio.gather(*(
                client_loop(args.url, mine, size, deadline, versions, srv, cli) for mine in per_client
            ))
            wall = time.perf_counter() - t0
            requests = sum(counts)
            later = cpu_groups(args.url)  # processes started during the run count in full
            known = {k: {p.pid for p in v} for k, v in groups.items()}
            cpu = {
                k: (_cpu_of(v) - cpu0[k] + _cpu_of([p for p in later[k] if p.pid not in known[k]]))
                * 1000 / max(1, requests)
                for k, v in groups.items()
            }
            groups = later
            events = requests * size
            med, p95 = median_p95(srv)
            cmed, _ = median_p95(cli)
            base, ratio = "-", "-"
            if args.database_url and args.database_url.startswith("postgres"):
                raw = await raw_sql(args.database_url, prefix, size, max(20, min(200, requests)))
                if raw:
                    bmed, _ = median_p95(raw)
                    base, ratio = f"{bmed:.2f}", f"{med / bmed:.1f}x"
            rows.append([str(size), str(args.clients), str(requests), str(events), f"{events / wall:,.0f}",
                         f"{requests / wall:,.0f}", f"{med:.2f}", f"{p95:.2f}", f"{cmed:.2f}", base, ratio,
                         f"{cpu['server']:.2f} / {cpu['postgres']:.2f} / {cpu['client']:.2f}"])
            print(" | ".join(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8090", help="a running runtrack server")
    ap.add_argument("--database-url", default="", help="its PostgreSQL database, for the raw-SQL baseline")
    ap.add_argument("--runs", type=int, default=1000, help="runs to create and report on")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients")
    ap.add_argument("--seconds", type=float, default=15.0, help="duration per batch size")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10, 100],
                    help="events per request, comma-separated")
    ap.add_argument("--write", metavar="TITLE", help="write the table into bench/RESULTS.md under this title")
    ap.add_argument("--key", default="ingest", help="RESULTS.md section key (e.g. ingest-postgres)")
    args = ap.parse_args()
    rows: list[list[str]] = asyncio.run(run(args))
    md = table(rows, HEADER)
    print()
    print(md)
    if args.write:
        write_section(args.key, args.write, md)


if __name__ == "__main__":
    main()
