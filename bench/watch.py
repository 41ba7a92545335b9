"""Delivery latency of changes to many concurrent watchers (GET /api/v1/watch, server-sent events).

For each of ``--writes`` writes (one executor event per write, ``POST /api/v1/events`` on
``--write-url``, spaced ``--interval`` apart) it measures the time from sending the write until
each of ``--watchers`` SSE watchers on ``--url`` has received the changed run. With two different
URLs on one PostgreSQL database this is the cross-replica latency (LISTEN/NOTIFY). With
``--database-url`` of PostgreSQL it also measures the raw floor: ``pg_notify`` on one connection
to ``LISTEN`` on another, with asyncpg.

    python bench/watch.py --url http://127.0.0.1:8090 --watchers 1000 --writes 50
    python bench/watch.py --url http://A --write-url http://B --watchers 1000 \
        --database-url postgresql://postgres@127.0.0.1:5432/runtrack

Prints a markdown table (median, p95, p99, max; ms). The client runs in one asyncio process: at
1,000 watchers its own parsing is part of the figure, so run it on a separate core if you can.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import write_section

ORG, PROJECT, DOMAIN = "bench", "watch", "dev"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


class Watcher:
    """One SSE connection on a raw socket; records when each run name first arrives RUNNING."""

    def __init__(self, host: str, port: int, query: str) -> None:
        self.host, self.port, self.query = host, port, query
        self.seen: dict[str, float] = {}
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.pattern = re.compile(rb'"name":"(w[0-9a-f]+-\d+)","phase":"RUNNING"')

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        head = f"GET /api/v1/watch?{self.query} HTTP/1.1\r\nHost: {self.host}\r\nAccept: text/event-stream\r\n\r\n"
        writer.write(head.encode())
        await writer.drain()
        buf = b""
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                now = time.perf_counter()
                buf += chunk
                if not self.ready.is_set() and b"event: ready" in buf:
                    self.ready.set()
                for m in self.pattern.finditer(buf):
                    self.seen.setdefault(m.group(1).decode(), now)
                cut = buf.rfind(b"\n\n")
                if cut >= 0:
                    buf = buf[cut + 2 :]
        finally:
            writer.close()


async def raw_notify_floor(database_url: str, n: int) -> list[float]:
    import asyncpg

    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    listener = await asyncpg.connect(dsn)
    sender = await asyncpg.connect(dsn)
    got: asyncio.Queue[float] = asyncio.Queue()
    await listener.add_listener("bench_watch", lambda *_a: got.put_nowait(time.perf_counter()))
    out = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            await sender.execute("SELECT pg_notify('bench_watch', $1)", str(i))
            out.append((await asyncio.wait_for(got.get(), 5)) - t0)
            await asyncio.sleep(0.01)
    finally:
        await listener.close()
        await sender.close()
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="server the watchers connect to")
    ap.add_argument("--write-url", help="server the writes go to (default: --url)")
    ap.add_argument("--database-url", help="PostgreSQL URL for the raw LISTEN/NOTIFY floor")
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--writes", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.2, help="seconds between writes")
    ap.add_argument("--write", metavar="TITLE", help="write the table into bench/RESULTS.md under this title")
    ap.add_argument("--key", default="watch", help="RESULTS.md section key (e.g. watch-postgres-replicas)")
    args = ap.parse_args()
    write_url = args.write_url or args.url
    u = urlparse(args.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    tag = f"w{uuid.uuid4().hex[:8]}"
    names = [f"{tag}-{i}" for i in range(args.writes)]

    async with httpx.AsyncClient(base_url=write_url, timeout=60) as client:
        for n in names:
            r = await client.post("/api/v1/runs", json={"org": ORG, "project": PROJECT, "domain": DOMAIN, "name": n})
            r.raise_for_status()

        query = f"project={PROJECT}&status=running&snapshot=0&keepalive=60"
        watchers = [Watcher(host, port, query) for _ in range(args.watchers)]
        for i in range(0, len(watchers), 100):
            for w in watchers[i : i + 100]:
                w.task = asyncio.create_task(w.run())
            await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in watchers[i : i + 100])), 60)

        sent: dict[str, float] = {}
        server_ms: list[float] = []
        for n in names:
            body = {"events": [{"run": {"org": ORG, "project": PROJECT, "domain": DOMAIN, "name": n},
                                "action": "a0", "attempt": 1, "phase": "RUNNING"}]}
            sent[n] = time.perf_counter()
            r = await client.post("/api/v1/events", json=body)
            r.raise_for_status()
            m = re.search(r"dur=([0-9.]+)", r.headers.get("server-timing", ""))
            if m:
                server_ms.append(float(m.group(1)))
            await asyncio.sleep(args.interval)
        await asyncio.sleep(2)

    lat = [(w.seen[n] - sent[n]) * 1000 for w in watchers for n in names if n in w.seen]
    # per write: when the last watcher had it (one slow write shows up here, not spread out)
    last = [max((w.seen[n] - sent[n]) * 1000 for w in watchers if n in w.seen) for n in names]
    missing = args.watchers * args.writes - len(lat)
    for w in watchers:
        if w.task:
            w.task.cancel()
    await asyncio.gather(*(w.task for w in watchers if w.task), return_exceptions=True)

    kind = "across replicas" if write_url != args.url else "one replica"
    lines = [
        f"{args.watchers} SSE watchers, {args.writes} writes ({kind}); {missing} deliveries missing.",
        "",
        "| measure | samples | median ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
        f"| write → watcher ({kind}) | {len(lat)} | {statistics.median(lat):.1f} | {pct(lat, 95):.1f} | "
        f"{pct(lat, 99):.1f} | {max(lat):.1f} |",
    ]
    lines.append(
        f"| write → last of the {args.watchers} watchers | {len(last)} | {statistics.median(last):.1f} | "
        f"{pct(last, 95):.1f} | {pct(last, 99):.1f} | {max(last):.1f} |"
    )
    if server_ms:
        lines.append(
            f"| the write alone, server time | {len(server_ms)} | {statistics.median(server_ms):.1f} | "
            f"{pct(server_ms, 95):.1f} | {pct(server_ms, 99):.1f} | {max(server_ms):.1f} |"
        )
    if args.database_url and args.database_url.startswith("postgres"):
        floor = [x * 1000 for x in await raw_notify_floor(args.database_url, max(20, args.writes))]
        lines.append(
            f"| raw pg_notify → LISTEN (asyncpg) | {len(floor)} | {statistics.median(floor):.2f} | "
            f"{pct(floor, 95):.2f} | {pct(floor, 99):.2f} | {max(floor):.2f} |"
        )
        ratio = statistics.median(lat) / statistics.median(floor)
        lines += ["", f"Ratio of the median delivery to the raw NOTIFY floor: {ratio:.1f}x."]
    md = "\n".join(lines)
    print("\n" + md)
    if args.write:
        write_section(args.key, args.write, md)

if __name__ == "__main__":
    asyncio.run(main())
