"""``runtrack runs watch`` against a real server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.api.watch_client import create_run, report
from tests.support import REPO, ServerProcess


def _spawn(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runtrack", "runs", "watch", "--url", url, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
async def test_runs_watch_prints_the_snapshot_then_changes(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await create_run(client, "c1")
        proc = _spawn(server.url, "--project", "proj", "--json")
        assert proc.stdout is not None

        async def line() -> dict[str, object]:
            text = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)  # type: ignore[union-attr]
            assert text, proc.stderr.read() if proc.stderr else ""
            out: dict[str, object] = json.loads(text)
            return out

        try:
            first = await line()
            assert first["event"] == "run" and first["data"]["name"] == "c1"  # type: ignore[index]
            assert (await line())["event"] == "ready"
            await report(client, [("c1", "RUNNING", None)])
            change = await line()
            assert change["data"]["phase"] == "RUNNING"  # type: ignore[index]
        finally:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
def test_runs_watch_rejects_a_bad_filter(server: ServerProcess) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "runtrack", "runs", "watch", "--url", server.url, "--status", "bogus"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 2
    assert "bogus" in proc.stderr
