"""GET /api/v1/watch (server-sent events) and Connect watch streams on a real server, both databases."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import psutil
from flyteidl2.common import identifier_pb2
from flyteidl2.workflow import run_service_pb2 as rs

from tests.api.watch_client import (
    DOMAIN,
    ORG,
    PROJECT,
    SSE,
    abort,
    create_run,
    envelope,
    metric,
    raw_stream,
    report,
)
from tests.support import ServerProcess


@asynccontextmanager
async def sse(client: httpx.AsyncClient, query: str = "", headers: dict[str, str] | None = None) -> AsyncIterator[SSE]:
    async with client.stream("GET", f"/api/v1/watch{query}", headers=headers or {}) as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        yield SSE(resp)


async def test_snapshot_then_changes_for_the_filter(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await create_run(client, "r1")
        await create_run(client, "r2")
        await report(client, [("r1", "RUNNING", None)])
        async with sse(client, "?status=running&keepalive=1") as stream:
            first = await stream.until("ready")
            runs = [e.json for e in first if e.event == "run"]
            assert [r["name"] for r in runs] == ["r1"]
            assert all(e.id for e in first)
            await report(client, [("r2", "RUNNING", None)])
            ev = (await stream.until("run"))[-1]
            assert (ev.json["name"], ev.json["phase"]) == ("r2", "RUNNING")
            assert ev.json["version"] >= 2


async def test_bad_filters_are_400_not_a_stream(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        r = await client.get("/api/v1/watch?status=bogus")
        assert r.status_code == 400
        assert "bogus" in r.json()["error"]["message"]


async def test_last_event_id_resumes_without_a_gap(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await create_run(client, "g1")
        await create_run(client, "g2")
        async with sse(client, "?snapshot=0") as stream:
            await stream.until("ready")
            last = stream.last_id
        assert last
        # Changes while no one is connected ...
        await report(client, [("g1", "RUNNING", None), ("g2", "INITIALIZING", None)])
        async with sse(client, "?snapshot=0", {"Last-Event-ID": last}) as stream:
            events = await stream.until("ready")
        kinds = [e.event for e in events]
        assert "reset" not in kinds
        got = {e.json["name"]: e.json["phase"] for e in events if e.event == "run"}
        assert got == {"g1": "RUNNING", "g2": "INITIALIZING"}
        # An id from before this server started: it cannot tell what changed, so a fresh snapshot.
        async with sse(client, "?snapshot=5", {"Last-Event-ID": "1000000"}) as stream:
            events = await stream.until("ready")
        assert events[0].event == "reset"
        assert {e.json["name"] for e in events if e.event == "run"} == {"g1", "g2"}


def _watch_action_request(name: str) -> bytes:
    req = rs.WatchActionDetailsRequest(
        action_id=identifier_pb2.ActionIdentifier(
            run=identifier_pb2.RunIdentifier(org=ORG, project=PROJECT, domain=DOMAIN, name=name), name="a0"
        )
    )
    return envelope(req.SerializeToString())


async def test_a_thousand_abrupt_disconnects_leave_nothing_behind(server: ServerProcess) -> None:
    host, port = "127.0.0.1", server.port
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        await create_run(client, "busy")
        await report(client, [("busy", "RUNNING", None)])
        base_tasks = await metric(client, "runtrack_asyncio_tasks")
        assert await metric(client, "runtrack_watch_subscriptions") == 0
        body = _watch_action_request("busy")
        connect_headers = {"Content-Type": "application/connect+proto", "Connect-Protocol-Version": "1"}
        socks: list[socket.socket] = []
        sem = asyncio.Semaphore(100)

        async def open_one(i: int) -> None:
            async with sem:
                if i % 2:
                    s = await raw_stream(host, port, "/api/v1/watch?snapshot=1", wait_for=b"event: ready")
                else:
                    s = await raw_stream(
                        host, port, "/flyteidl2.workflow.RunService/WatchActionDetails",
                        method="POST", body=body, headers=connect_headers, wait_for=b"busy",
                    )
                socks.append(s)

        await asyncio.gather(*(open_one(i) for i in range(1000)))
        assert await metric(client, "runtrack_watch_subscriptions") == 1000
        for s in socks:
            abort(s)
        deadline = time.monotonic() + 30
        subs = tasks = -1.0
        while time.monotonic() < deadline:
            subs = await metric(client, "runtrack_watch_subscriptions")
            tasks = await metric(client, "runtrack_asyncio_tasks")
            if subs == 0 and tasks <= base_tasks:
                break
            await asyncio.sleep(0.2)
        print(f"after 1000 abrupt disconnects: subscriptions={subs:.0f} tasks={tasks:.0f} (before: {base_tasks:.0f})")
        assert subs == 0
        assert tasks <= base_tasks
        # The server still serves watchers afterwards.
        async with sse(client, "?snapshot=1") as stream:
            assert (await stream.until("ready"))[0].json["name"] == "busy"


async def test_a_watcher_that_does_not_read_gets_every_final_state(server: ServerProcess) -> None:
    """10,000 updates to 100 runs while one watcher reads nothing for 10 s; then it reads."""
    n_runs, rounds = 100, 100
    names = [f"s{i:03d}" for i in range(n_runs)]
    proc = psutil.Process(server.proc.pid)
    tiny = httpx.AsyncHTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client, httpx.AsyncClient(
        base_url=server.url, timeout=60, transport=tiny
    ) as slow_client:
        for n in names:
            await create_run(client, n)
        await report(client, [(n, "RUNNING", 1) for n in names])

        async def write_all() -> list[float]:
            times = []
            for v in range(2, rounds + 1):
                t = time.perf_counter()
                phase = "SUCCEEDED" if v == rounds else "RUNNING"
                await report(client, [(n, phase, v) for n in names])
                times.append(time.perf_counter() - t)
            return times

        baseline = await write_all_timed(client, names)
        rss_before = proc.memory_info().rss
        async with sse(slow_client, "?snapshot=0&keepalive=1") as stream:
            await stream.until("ready")
            t0 = time.perf_counter()
            times = await write_all()  # 9,900 updates + 100 final ones; the watcher reads nothing
            write_s = time.perf_counter() - t0
            await asyncio.sleep(max(0.0, 10 - write_s))
            rss_during = proc.memory_info().rss
            final: dict[str, dict[str, object]] = {}
            received = 0
            async with asyncio.timeout(60):
                while len(final) < n_runs or any(r["phase"] != "SUCCEEDED" for r in final.values()):
                    ev = await stream.next()
                    if ev.event == "run":
                        received += 1
                        final[ev.json["name"]] = ev.json
        assert set(final) == set(names)
        assert all(r["phase"] == "SUCCEEDED" for r in final.values())
        times.sort()
        print(
            f"\n{(rounds - 1) * n_runs} updates in {write_s:.2f}s while the watcher slept; "
            f"batch of 100 p50={times[len(times) // 2] * 1000:.1f}ms p95={times[int(len(times) * 0.95)] * 1000:.1f}ms "
            f"(without a watcher: p50={baseline * 1000:.1f}ms); watcher received {received} run events; "
            f"server RSS {rss_before / 2**20:.0f} -> {rss_during / 2**20:.0f} MiB; "
            f"coalesced={await metric(client, 'runtrack_watch_coalesced'):.0f}"
        )
        assert rss_during - rss_before < 200 * 2**20  # bounded: not one queued message per update


async def write_all_timed(client: httpx.AsyncClient, names: list[str]) -> float:
    """Median time of a batch of 100 no-op writes (the same RUNNING again) with no watcher."""
    times = []
    for _ in range(10):
        t = time.perf_counter()
        await report(client, [(n, "RUNNING", None) for n in names])
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


if os.environ.get("RUNTRACK_SKIP_SLOW_WATCH"):
    del test_a_watcher_that_does_not_read_gets_every_final_state
