"""Two ``runtrack serve`` processes on one PostgreSQL database: changes reach watchers on both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.api.test_watch_sse import sse
from tests.api.watch_client import create_run, report
from tests.conftest import require_db
from tests.support import ServerProcess, database_url, pg_admin_url


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    require_db("postgres")
    with database_url("postgres", tmp_path) as url:
        a = ServerProcess(url, log_path=tmp_path / "a.log").wait_ready()
        b = ServerProcess(url, log_path=tmp_path / "b.log").wait_ready()
        try:
            yield a, b
        finally:
            a.stop()
            b.stop()


async def test_a_write_through_one_replica_reaches_a_watcher_on_the_other(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = replicas
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as ca, httpx.AsyncClient(
        base_url=b.url, timeout=30
    ) as cb:
        await create_run(cb, "x1")
        async with sse(ca, "?snapshot=0") as stream:
            await stream.until("ready")
            for phase in ("INITIALIZING", "RUNNING", "SUCCEEDED"):
                t0 = time.perf_counter()
                await report(cb, [("x1", phase, None)])
                async with asyncio.timeout(1.0):
                    while True:
                        ev = (await stream.until("run"))[-1]
                        if ev.json["name"] == "x1" and ev.json["phase"] == phase:
                            break
                print(f"{phase}: seen on the other replica after {(time.perf_counter() - t0) * 1000:.1f} ms")


async def test_a_lost_listener_connection_resynchronises_its_watchers(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = replicas
    dbname = a.db_url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as ca, httpx.AsyncClient(
        base_url=b.url, timeout=30
    ) as cb:
        await create_run(cb, "y1")
        # After a lost listener the server cannot tell which runs were deleted meanwhile: it sends
        # ``reset`` and a fresh snapshot (here of up to 5 runs), which holds the missed change.
        async with sse(ca, "?snapshot=5&keepalive=1") as stream:
            await stream.until("ready")
            admin = await asyncpg.connect(pg_admin_url())
            try:
                killed = await admin.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND application_name = 'runtrack-listener'",
                    dbname,
                )
            finally:
                await admin.close()
            assert len(killed) == 2  # one listener per replica
            # Written while the listeners are away: no notification will ever carry it.
            await report(cb, [("y1", "RUNNING", None)])
            async with asyncio.timeout(15):
                while True:
                    ev = await stream.next()
                    if ev.event == "run" and ev.json["name"] == "y1" and ev.json["phase"] == "RUNNING":
                        break
