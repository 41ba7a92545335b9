"""``runtrack serve --workers N``: worker processes share the port and behave as replicas."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import psutil
import pytest

from tests.api.test_watch_sse import sse
from tests.api.watch_client import SSE, create_run, report
from tests.conftest import require_db
from tests.support import REPO, ServerProcess, database_url


def _workers(parent: psutil.Process, expected: int, gone: int | None = None) -> list[psutil.Process]:
    """The parent's children once there are ``expected`` of them (none of them ``gone``)."""
    deadline = time.monotonic() + 30
    while True:
        children = parent.children()
        if (len(children) == expected and gone not in {c.pid for c in children}) or time.monotonic() > deadline:
            return children
        time.sleep(0.1)


def _connections_on(proc: psutil.Process, port: int) -> int:
    return sum(
        1 for c in proc.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
    )


async def _wait_running(stream: SSE, names: set[str]) -> None:
    seen: set[str] = set()
    async with asyncio.timeout(15):
        while not names <= seen:
            ev = await stream.next()
            if ev.event == "run" and ev.json["phase"] == "RUNNING":
                seen.add(ev.json["name"])


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[ServerProcess]:
    require_db("postgres")
    with database_url("postgres", tmp_path) as url:
        server = ServerProcess(url, log_path=tmp_path / "server.log", extra_args=("--workers", "2")).wait_ready()
        try:
            yield server
        finally:
            server.stop()


async def test_workers_share_the_port_see_each_others_writes_restart_and_stop(two_workers: ServerProcess) -> None:
    server = two_workers
    parent = psutil.Process(server.proc.pid)
    workers = _workers(parent, 2)
    assert len(workers) == 2, server.log_text()
    names = {f"w{i}" for i in range(8)}
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=30))
        for name in sorted(names):
            await create_run(client, name)
        streams = []
        for _ in range(16):  # each watch on a connection of its own
            own = await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=30))
            stream = await stack.enter_async_context(sse(own, "?snapshot=0"))
            await stream.until("ready")
            streams.append(stream)
        # The kernel spread the watch connections over both workers.
        spread = [_connections_on(w, server.port) for w in workers]
        assert all(n >= 1 for n in spread), spread
        for name in sorted(names):  # each write on a new connection, so on either worker
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as one:
                await report(one, [(name, "RUNNING", None)])
        await asyncio.gather(*(_wait_running(s, names) for s in streams))

    # A worker that dies after it had started is replaced.
    victim = workers[0]
    victim.kill()
    victim.wait(10)
    replaced = await asyncio.to_thread(_workers, parent, 2, victim.pid)
    assert len(replaced) == 2 and victim.pid not in {w.pid for w in replaced}, server.log_text()
    server.wait_ready()

    # SIGTERM stops every worker and the parent exits 0.
    assert server.stop(signal.SIGTERM) == 0, server.log_text()
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in replaced)


def test_workers_need_postgresql(tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    result = subprocess.run(
        [sys.executable, "-m", "runtrack", "serve", "--workers", "2", "--database-url", f"sqlite:///{db}"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert result.returncode == 2
    assert "--workers above 1 needs PostgreSQL" in result.stderr


def test_workers_that_cannot_start_stop_the_server_with_exit_1(tmp_path: Path) -> None:
    from tests.support import free_port

    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "runtrack", "serve", "--workers", "2", "--port", str(free_port()),
         "--database-url", dead],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "could not start" in result.stdout + result.stderr
