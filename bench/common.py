"""Shared benchmark helpers: timing over HTTP (server time from ``Server-Timing``) and raw SQL,
medians and percentiles, machine facts, and writing sections of ``bench/RESULTS.md``."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_TIMING = re.compile(r"app;dur=([0-9.]+)")


@dataclass
class Sample:
    name: str
    server_ms: list[float]
    client_ms: list[float]
    baseline_ms: list[float] | None = None
    note: str = ""

    def row(self) -> list[str]:
        med, p95 = median_p95(self.server_ms)
        cmed, _ = median_p95(self.client_ms)
        if self.baseline_ms:
            bmed, _ = median_p95(self.baseline_ms)
            base, ratio = f"{bmed:.2f}", f"{med / bmed:.1f}x" if bmed > 0 else "-"
        else:
            base, ratio = "-", "-"
        return [self.name, f"{med:.2f}", f"{p95:.2f}", f"{cmed:.2f}", base, ratio, self.note]


HEADER = ["scenario", "server median ms", "server p95 ms", "client median ms", "raw SQL median ms",
          "ratio", "note"]


def median_p95(xs: Sequence[float]) -> tuple[float, float]:
    if not xs:
        return float("nan"), float("nan")
    s = sorted(xs)
    return statistics.median(s), s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


def server_ms(resp: httpx.Response) -> float:
    m = _TIMING.search(resp.headers.get("server-timing", ""))
    if not m:
        raise RuntimeError(f"no Server-Timing header on {resp.request.url}")
    return float(m.group(1))


async def time_requests(
    client: httpx.AsyncClient, make: Callable[[int], Awaitable[httpx.Response]], n: int, warmup: int = 5
) -> tuple[list[float], list[float]]:
    """Run ``make(i)`` n times sequentially; return (server ms, client ms)."""
    for i in range(warmup):
        (await make(i)).raise_for_status()
    srv, cli = [], []
    for i in range(n):
        t0 = time.perf_counter()
        resp = await make(i)
        cli.append((time.perf_counter() - t0) * 1000)
        resp.raise_for_status()
        srv.append(server_ms(resp))
    return srv, cli


async def time_sql(conn: Any, sql: str, params: Callable[[int], Sequence[Any]], n: int, warmup: int = 5) -> list[float]:
    """Time a raw asyncpg query (fetch all rows) n times; ``params(i)`` gives its arguments."""
    for i in range(warmup):
        await conn.fetch(sql, *params(i))
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await conn.fetch(sql, *params(i))
        out.append((time.perf_counter() - t0) * 1000)
    return out


def asyncpg_dsn(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+asyncpg)?://", "postgresql://", url)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    pg = ""
    try:
        pg = subprocess.run(["psql", "--version"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}; Python {platform.python_version()}; {pg}"


def table(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_section(key: str, title: str, body: str) -> None:
    """Replace (or append) the section ``key`` of RESULTS.md."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{start}\n## {title}\n\n_Measured {stamp} on {machine()}._\n\n{body.strip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
