"""A watcher that reads nothing for 10 s while 10,000 updates to 100 runs happen, then reads."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import psutil

from tests.api.test_watch_sse import sse
from tests.api.watch_client import create_run, metric, report
from tests.support import ServerProcess

N_RUNS, ROUNDS, WRITERS = 100, 100, 4


def _p(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


async def _write_rounds(client: httpx.AsyncClient, names: list[str], versions: range) -> list[float]:
    """Report each version for ``names`` (one request per round); the request times."""
    times = []
    for v in versions:
        phase = "SUCCEEDED" if v == ROUNDS else "RUNNING"
        t = time.perf_counter()
        await report(client, [(n, phase, v) for n in names])
        times.append(time.perf_counter() - t)
    return times


async def test_a_watcher_that_does_not_read_gets_every_final_state(server: ServerProcess) -> None:
    names = [f"s{i:03d}" for i in range(N_RUNS)]
    groups = [names[i::WRITERS] for i in range(WRITERS)]
    proc = psutil.Process(server.proc.pid)
    # A small receive buffer: the server's socket fills up quickly and its stream has to wait.
    small = httpx.AsyncHTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)])
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client, httpx.AsyncClient(
        base_url=server.url, timeout=60, transport=small
    ) as slow_client:
        for n in names:
            await create_run(client, n)
        await report(client, [(n, "RUNNING", 1) for n in names])
        # Writers alone first (versions 2-5), for comparison.
        parts = await asyncio.gather(*(_write_rounds(client, g, range(2, 6)) for g in groups))
        alone = [t for p in parts for t in p]
        rss_before = proc.memory_info().rss
        async with sse(slow_client, "?snapshot=0&keepalive=1") as stream:
            await stream.until("ready")
            t0 = time.perf_counter()
            parts = await asyncio.gather(*(_write_rounds(client, g, range(6, ROUNDS + 1)) for g in groups))
            write_s = time.perf_counter() - t0
            watched = [t for p in parts for t in p]
            await asyncio.sleep(max(0.0, 10 - write_s))  # not reading for at least 10 s
            rss_after_writes = proc.memory_info().rss
            final: dict[str, str] = {}
            received = 0
            t1 = time.perf_counter()
            async with asyncio.timeout(60):
                while len(final) < N_RUNS or any(p != "SUCCEEDED" for p in final.values()):
                    ev = await stream.next()
                    if ev.event == "run":
                        received += 1
                        final[ev.json["name"]] = ev.json["phase"]
            read_s = time.perf_counter() - t1
        updates = N_RUNS * (ROUNDS - 1)
        print(
            f"\n{updates} updates by {WRITERS} writers in {write_s:.1f}s while the watcher read nothing; "
            f"request of {N_RUNS // WRITERS} events: p50 {_p(watched, 0.5):.1f} ms, p95 {_p(watched, 0.95):.1f} ms "
            f"(before the watcher: p50 {_p(alone, 0.5):.1f} ms, p95 {_p(alone, 0.95):.1f} ms); "
            f"then read {received} run events in {read_s:.2f}s; server RSS {rss_before / 2**20:.0f} -> "
            f"{rss_after_writes / 2**20:.0f} MiB; coalesced {await metric(client, 'runtrack_watch_coalesced'):.0f}"
        )
        assert set(final) == set(names)
        assert all(p == "SUCCEEDED" for p in final.values())
        assert received < updates  # coalesced: intermediate states were skipped, not queued
        assert rss_after_writes - rss_before < 100 * 2**20  # bounded, not one queued message per update
