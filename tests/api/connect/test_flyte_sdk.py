"""The real flyte SDK and CLI against a live runtrack server (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from flyteidl2.task import task_definition_pb2 as td
from flyteidl2.task import task_service_pb2 as ts

from runtrack.domain.models import RunId
from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from tests.api.connect.clients import task_client
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
    event = action["attempts"][1]["clusterEvents"][0]
    assert event["message"] == "pulled image for attempt 2" and event["type"] == "TYPE_NORMAL"
    assert event["reason"] == "Pulled" and event["sourceComponent"] == "kubelet"
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
    assert raw.returncode == 0, raw.stderr
    rows = json.loads(re.sub(r"\x1b\[[0-9;]*m", "", raw.stdout))
    assert sorted(r["action"]["id"]["run"]["name"] for r in rows) == ["rf", "rq", "rr", "rs", "rs2"]


def test_sdk_lists_tasks_after_deploy_task(server: ServerProcess) -> None:
    with task_client(server.url) as client:
        for project, name, version in (
            ("proj", "env.train", "v1"), ("proj", "env.train", "v2"), ("proj", "env.eval", "v1"),
            ("other", "env.hidden", "v1"),
        ):
            spec = td.TaskSpec(short_name=name[4:])
            spec.task_template.type = "python"
            tid = td.TaskIdentifier(org="acme", project=project, domain="dev", name=name, version=version)
            client.deploy_task(ts.DeployTaskRequest(task_id=tid, spec=spec))
    res = sdk(server.url, {"op": "tasks"}, {"op": "tasks", "kwargs": {"by_task_name": "env.train"}})
    listed = ok(res[0])
    assert sorted((t["pb"]["taskId"]["name"], t["pb"]["taskId"]["version"]) for t in listed) == [
        ("env.eval", "v1"), ("env.train", "v1"), ("env.train", "v2"),
    ]
    assert {t["pb"]["taskId"]["version"] for t in ok(res[1])} == {"v1", "v2"}


async def test_sdk_abort(services: Services, server: ServerProcess) -> None:
    await put_run(services, "running", Phase.RUNNING, minute=0)
    await put_child(services, "running", "c1", Phase.RUNNING)
    await put_run(services, "done", Phase.SUCCEEDED, minute=1)
    res = sdk(
        server.url,
        {"op": "abort", "kwargs": {"name": "running", "reason": "no longer needed"}},
        {"op": "abort", "kwargs": {"name": "done", "reason": "too late"}},
        {"op": "run_details", "kwargs": {"name": "running"}},
        {"op": "run", "kwargs": {"name": "done"}},
        {"op": "action", "kwargs": {"run_name": "running", "name": "c1"}},
    )
    assert ok(res[0]) is None and ok(res[1]) is None
    details = ok(res[2])
    assert details["pb"]["action"]["status"]["phase"] == "ACTION_PHASE_ABORTED"
    assert details["pb"]["action"]["abortInfo"]["reason"] == "no longer needed"
    assert ok(res[3])["phase"] == "succeeded"
    assert ok(res[4])["phase"] == "aborted"
    run = await services.runs.get_run(RunId("acme", "proj", "dev", "running"))
    assert run.phase is Phase.ABORTED and run.abort is not None and run.abort.reason == "no longer needed"
