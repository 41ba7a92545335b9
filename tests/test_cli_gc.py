"""``runtrack gc`` as a real command against a real database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from tests.fleet_seed import days_ago, seed_run, total_rows
from tests.support import REPO


@pytest.fixture
def db(services: Services) -> Services:
    return services


async def gc(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "120"}
    env.pop("RUNTRACK_CONFIG", None)
    cmd = [sys.executable, "-m", "runtrack", "gc", "--database-url", db_url, *args]
    return await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True, timeout=120)


async def test_gc_deletes_expired_runs_and_their_logs(db: Services, db_url: str) -> None:
    for i in range(5):
        await seed_run(db, f"old{i}", phase=(Phase.SUCCEEDED, Phase.FAILED)[i % 2], created_at=days_ago(40 + i))
    await seed_run(db, "old-running", phase=Phase.RUNNING, created_at=days_ago(50))
    await seed_run(db, "young", created_at=days_ago(3))

    dry = await gc(db_url, "--older-than", "30d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete 5 run(s)" in dry.stdout
    assert (await total_rows(db))["runs"] == 7

    only_failed = await gc(db_url, "--older-than", "30d", "--phase", "FAILED")
    assert only_failed.returncode == 0, only_failed.stderr
    assert "deleted 2 run(s)" in only_failed.stdout and "removed 8 log line(s)" in only_failed.stdout

    rest = await gc(db_url, "--older-than", "30d")
    assert rest.returncode == 0, rest.stderr
    assert "deleted 3 run(s)" in rest.stdout
    totals = await total_rows(db)
    assert totals["runs"] == 2 and totals["cleanup_jobs"] == 0 and totals["log_lines"] == 8


async def test_gc_rejects_bad_input(db: Services, db_url: str) -> None:
    bad_phase = await gc(db_url, "--older-than", "30d", "--phase", "RUNNING")
    assert bad_phase.returncode == 2 and "only terminal phases" in bad_phase.stderr
    bad_age = await gc(db_url, "--older-than", "soon")
    assert bad_age.returncode == 2 and "not a duration" in bad_age.stderr
    missing = await gc(db_url)
    assert missing.returncode == 2 and "--older-than" in missing.stderr
