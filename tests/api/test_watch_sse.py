"""GET /api/v1/watch (server-sent events) and Connect watch streams on a real server, both databases."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
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


async def test_idle_streams_get_keep_alives_that_advance_the_id(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with client.stream("GET", "/api/v1/watch?snapshot=0&keepalive=0.2") as resp:
            lines: list[str] = []
            async with asyncio.timeout(10):
                async for line in resp.aiter_lines():
                    lines.append(line)
                    if sum(1 for x in lines if x.startswith("id: ")) >= 3:
                        break
        ids = [int(x[4:]) for x in lines if x.startswith("id: ")]
        assert lines.count(": keep-alive") >= 2  # after the ready event, two keep-alives
        assert ids == sorted(ids) and ids[-1] > ids[0]


async def test_shutdown_ends_open_streams_instead_of_waiting_for_them(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with sse(client, "?snapshot=0") as stream:
            await stream.until("ready")
            t0 = time.monotonic()
            await asyncio.to_thread(server.stop)
            took = time.monotonic() - t0
            with pytest.raises((EOFError, httpx.HTTPError)):
                await stream.next()
    print(f"stopped in {took:.2f}s with a watcher connected")
    assert took < 10  # the grace period is 30 s; the stream must not hold the shutdown


async def test_a_failure_after_the_headers_ends_the_stream_with_an_error_event() -> None:
    from starlette.types import Message

    from runtrack.api.rest.watch import EventStream
    from runtrack.errors import Unavailable
    from runtrack.service.watch_streams import Disconnect

    async def frames(_stop: Disconnect) -> AsyncIterator[bytes]:
        yield b"id: 1\nevent: ready\ndata: {}\n\n"
        raise Unavailable("database unavailable: ConnectionRefusedError")

    sent: list[Message] = []
    never = asyncio.Event()

    async def receive() -> Message:
        await never.wait()  # the client stays
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    before = len(asyncio.all_tasks())
    await EventStream(frames)({"type": "http"}, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 200
    assert (b"content-length", b"0") not in sent[0]["headers"]
    bodies = [m["body"] for m in sent[1:]]
    assert bodies[0].startswith(b"id: 1\nevent: ready")
    error = b'{"code":"unavailable","message":"database unavailable: ConnectionRefusedError"}'
    assert bodies[1] == b"event: error\ndata: " + error + b"\n\n"
    assert bodies[2] == b"" and sent[-1]["more_body"] is False
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) <= before  # the disconnect watcher is gone
