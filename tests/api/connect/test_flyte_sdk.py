"""The real flyte SDK and CLI against a live runtrack server (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from tests.api.connect.sdk import cli, ok, sdk
from tests.api.connect.states import put_child, put_run
from tests.support import ServerProcess


def _names(items: list[dict[str, object]]) -> list[object]:
    return [i["name"] for i in items]


async def _seed(services: Services) -> None:
    await put_run(services, "rq", Phase.QUEUED, minute=0)
    await put_run(services, "rs", Phase.SUCCEEDED, minute=1, labels={"team": "ml"})
    await put_run(services, "rf", Phase.FAILED, minute=2, n_attempts=2)
    await put_run(services, "rr", Phase.RUNNING, minute=3)
    await put_run(services, "rs2", Phase.SUCCEEDED, minute=4)
    await put_run(services, "elsewhere", Phase.SUCCEEDED, minute=5, project="other")
    await put_child(services, "rs", "a1", Phase.SUCCEEDED)
    await put_child(services, "rs", "a22", Phase.FAILED)


async def test_sdk_lists_and_reads_runs_and_actions(services: Services, server: ServerProcess) -> None:
    await _seed(services)
    res = sdk(
        server.url,
        {"op": "runs"},
        {"op": "runs", "kwargs": {"in_phase": ["succeeded", "failed"], "sort_by": ["created_at", "desc"]}},
        {"op": "runs", "kwargs": {"in_phase": ["succeeded"]}},
        {"op": "run", "kwargs": {"name": "rf"}},
        {"op": "run_details", "kwargs": {"name": "rf"}},
        {"op": "run", "kwargs": {"name": "missing"}},
        {"op": "actions", "kwargs": {"for_run_name": "rs"}},
        {"op": "action", "kwargs": {"run_name": "rf", "name": "a0"}},
        {"op": "action", "kwargs": {"run_name": "rs", "name": "a22"}},
        {"op": "action", "kwargs": {"run_name": "rs", "name": "nope"}},
    )
    assert _names(ok(res[0])) == ["rq", "rs", "rf", "rr", "rs2"]  # the SDK's default: oldest first
    assert _names(ok(res[1])) == ["rs2", "rf", "rs"]
    assert _names(ok(res[2])) == ["rs", "rs2"]
    assert [r["phase"] for r in ok(res[0])] == ["queued", "succeeded", "failed", "running", "succeeded"]
    assert ok(res[0])[1]["pb"]["labels"] == {"team": "ml"}

    run = ok(res[3])
    assert run["phase"] == "failed"
    status = run["pb"]["action"]["status"]
    assert status["attempts"] == 2
    assert datetime.fromisoformat(status["startTime"].replace("Z", "+00:00")).isoformat() == "2026-01-01T00:02:05+00:00"
    assert datetime.fromisoformat(status["endTime"].replace("Z", "+00:00")).isoformat() == "2026-01-01T00:03:05+00:00"
    assert run["pb"]["action"]["metadata"]["task"]["id"]["name"] == "env.main"

    details = ok(res[4])
    assert details["name"] == "rf"
    action = details["pb"]["action"]
    assert action["status"]["phase"] == "ACTION_PHASE_FAILED"
    assert [a["attempt"] for a in action["attempts"]] == [1, 2]
    assert [a["phase"] for a in action["attempts"]] == ["ACTION_PHASE_FAILED", "ACTION_PHASE_FAILED"]
    assert action["attempts"][1]["phaseTransitions"][0]["phase"] == "ACTION_PHASE_RUNNING"
    assert action["attempts"][1]["logInfo"][0]["uri"] == "http://logs/rf/2"
    assert action["errorInfo"]["message"] == "boom"

    assert res[5]["error"] == "ConnectError" and res[5]["code"] == "NOT_FOUND"
    assert _names(ok(res[6])) == ["a0", "a1", "a22"]
    assert ok(res[7])["phase"] == "failed"
    assert ok(res[8])["phase"] == "failed" and ok(res[8])["name"] == "a22"
    assert res[9]["code"] == "NOT_FOUND"


async def test_cli_get_run_lists_and_shows_runs(services: Services, server: ServerProcess, tmp_path: Path) -> None:
    await _seed(services)
    listing = cli(server.url, tmp_path, "get", "run", "-p", "proj", "-d", "dev")
    assert listing.returncode == 0, listing.stderr
    for name in ("rq", "rs", "rf", "rr", "rs2"):
        assert name in listing.stdout
    assert "elsewhere" not in listing.stdout
    assert "ACTION_PHASE_SUCCEEDED" in listing.stdout or "SUCCEEDED" in listing.stdout.upper()

    one = cli(server.url, tmp_path, "get", "run", "rf", "-p", "proj", "-d", "dev")
    assert one.returncode == 0, one.stderr
    assert "rf" in one.stdout and "ACTION_PHASE_FAILED" in one.stdout

    missing = cli(server.url, tmp_path, "get", "run", "missing", "-p", "proj", "-d", "dev")
    assert missing.returncode == 1
    assert "NOT FOUND" in missing.stderr.upper()

    raw = cli(server.url, tmp_path, "-of", "json-raw", "get", "run", "-p", "proj", "-d", "dev")
    if raw.returncode == 0 and raw.stdout.strip().startswith(("[", "{")):
        text = json.dumps(json.loads(raw.stdout)) if raw.stdout.strip() else ""
        assert "rs2" in text


async def test_sdk_lists_deployed_tasks(services: Services, server: ServerProcess) -> None:
    from runtrack.storage.tasks import TaskKey

    for name, version in (("env.train", "v1"), ("env.train", "v2"), ("env.eval", "v1")):
        spec = {"taskTemplate": {"type": "python", "id": {"name": name, "version": version}}, "shortName": name[4:]}
        await services.tasks.deploy(TaskKey("acme", "proj", "dev", name, version), spec, by="alice")
    await services.tasks.deploy(TaskKey("acme", "other", "dev", "env.hidden", "v1"), {"shortName": "x"})
    res = sdk(server.url, {"op": "tasks"}, {"op": "tasks", "kwargs": {"by_task_name": "env.train"}})
    listed = ok(res[0])
    assert sorted((t["pb"]["taskId"]["name"], t["pb"]["taskId"]["version"]) for t in listed) == [
        ("env.eval", "v1"), ("env.train", "v1"), ("env.train", "v2"),
    ]
    assert {t["pb"]["taskId"]["version"] for t in ok(res[1])} == {"v1", "v2"}
