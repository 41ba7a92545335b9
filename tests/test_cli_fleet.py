"""``runtrack runs stats`` and ``runtrack runs delete`` as real commands against a real server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from tests.fleet_seed import days_ago, seed_run
from tests.support import REPO, ServerProcess


@pytest.fixture
def db(server_services: Services) -> Services:
    return server_services


async def runtrack(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "120", "RUNTRACK_URL": server.url}
    cmd = [sys.executable, "-m", "runtrack", "runs", *args]
    return await asyncio.to_thread(
        subprocess.run, cmd, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


async def test_runs_stats_and_delete(db: Services, server: ServerProcess) -> None:
    for i in range(7):
        await seed_run(db, f"c{i}", project="cli", created_at=days_ago(7 - i), actions_n=1, created_by="alice")
    await seed_run(db, "c-live", project="cli", phase=Phase.RUNNING, actions_n=1, created_by="bob")
    await seed_run(db, "other", project="elsewhere", actions_n=1)

    st = await runtrack(server, "stats", "--project", "cli", "--json")
    assert st.returncode == 0, st.stderr
    data = json.loads(st.stdout)
    assert data["total_runs"] == 8 and data["counts_by_status"]["SUCCEEDED"] == 7
    mine = await runtrack(server, "stats", "--created-by", "me", "--user", "bob")
    assert mine.returncode == 0 and "RUNNING" in mine.stdout and "TOTAL" in mine.stdout
    assert await runtrack(server, "stats", "--status", "sleeping") != 0

    dry = await runtrack(server, "delete", "--project", "cli", "--dry-run", "--batch", "3")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[:3] == [f"would delete acme/cli/dev/c{i}" for i in (6, 5, 4)]
    assert "8 run(s) match" in dry.stderr

    nothing = await runtrack(server, "delete")
    assert nothing.returncode == 2 and "at least one filter" in nothing.stderr

    out = await runtrack(server, "delete", "--project", "cli", "--batch", "3")
    assert out.returncode == 0, out.stderr
    assert "deleted 7 run(s)" in out.stdout and "skipped 1 run(s)" in out.stdout
    left = json.loads((await runtrack(server, "stats", "--project", "cli", "--json")).stdout)
    assert left["total_runs"] == 1 and left["counts_by_status"]["RUNNING"] == 1

    forced = await runtrack(server, "delete", "--project", "cli", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout) == {"deleted": ["acme/cli/dev/c-live"], "skipped": []}
    assert json.loads((await runtrack(server, "stats", "--json")).stdout)["total_runs"] == 1
