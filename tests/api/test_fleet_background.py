"""The fleet's background work in real server processes: the durable log cleanup survives a
``kill -9`` between a delete and its cleanup, and configured retention deletes expired runs."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from tests.api.test_fleet import logs_of, wait_for
from tests.fleet_seed import days_ago, rows_of, seed_run, total_rows
from tests.support import ServerProcess


@pytest.fixture
def db(services: Services) -> Services:
    return services


def config(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


async def test_logs_are_cleaned_after_a_kill_between_delete_and_cleanup(
    db: Services, db_url: str, tmp_path: Path
) -> None:
    pks = [await seed_run(db, f"k{i}", actions_n=3, logs_per_action=5) for i in range(3)]
    survivor = await seed_run(db, "survivor", actions_n=2, logs_per_action=5)
    # A first server keeps deleted runs' logs for an hour, so the cleanup cannot have run yet.
    slow = config(tmp_path, "slow.yaml", "runs:\n  logCleanupDelay: 1h\n")
    first = ServerProcess(db_url, config=slow, log_path=tmp_path / "first.log").wait_ready()
    try:
        async with httpx.AsyncClient(timeout=30) as c:
            r = await c.post(first.url + "/api/v1/runs/bulk_delete", json={"name": "k"})
        assert r.status_code == 200 and len(r.json()["deleted"]) == 3
    finally:
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    # The runs are gone, their logs are not, and the work to do is recorded.
    for pk in pks:
        assert await rows_of(db, pk) == {**dict.fromkeys(await rows_of(db, pk), 0), "logs": 15, "cleanup_jobs": 1}
    # Restarted (without the delay), the server resumes the leftover cleanup by itself.
    second = ServerProcess(db_url, log_path=tmp_path / "second.log").wait_ready()
    try:
        await wait_for(lambda: logs_of(db, pks), 0)
        totals = await total_rows(db)
        assert totals["cleanup_jobs"] == 0 and totals["log_lines"] == 10
        assert (await rows_of(db, survivor))["logs"] == 10
    finally:
        second.stop()


async def test_retention_deletes_expired_runs_in_the_background(
    db: Services, db_url: str, tmp_path: Path
) -> None:
    old = [await seed_run(db, f"old{i}", created_at=days_ago(31 + i)) for i in range(4)]
    await seed_run(db, "old-running", phase=Phase.RUNNING, created_at=days_ago(90))
    await seed_run(db, "old-recovered", phase=Phase.RECOVERED, created_at=days_ago(90))
    await seed_run(db, "young", created_at=days_ago(29))
    cfg = config(
        tmp_path,
        "retention.yaml",
        "runs:\n  retention:\n    olderThan: 30d\n    phases: [SUCCEEDED, FAILED, ABORTED, TIMED_OUT]\n"
        "    interval: 1s\n",
    )
    server = ServerProcess(db_url, config=cfg, log_path=tmp_path / "server.log").wait_ready()
    try:
        async with httpx.AsyncClient(base_url=server.url + "/api/v1", timeout=10) as c:

            async def runs_left() -> int:
                return int((await c.get("/runs/count")).json()["count"])

            await wait_for(runs_left, 3)
            await wait_for(lambda: logs_of(db, old), 0)
            names = {r["name"] for r in (await c.get("/runs")).json()["runs"]}
        assert names == {"old-running", "old-recovered", "young"}
    finally:
        server.stop()
