"""REST executor endpoints against a real server on both databases: the acceptance scenarios."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.executor_support import srv
from tests.support import ServerProcess

__all__ = ["srv"]

_names = itertools.count(1)


@pytest.fixture
def api(srv: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url + "/api/v1", timeout=30) as client:
        yield client


def new_run(api: httpx.Client, **extra: Any) -> dict[str, Any]:
    body = {"org": "acme", "project": "proj", "domain": "dev", "name": f"run-{next(_names)}", **extra}
    r = api.post("/runs", json=body, params={"current_user": "alice"})
    assert r.status_code == 201, r.text
    run: dict[str, Any] = r.json()
    return run


def ref(run: dict[str, Any]) -> dict[str, str]:
    return {k: run[k] for k in ("org", "project", "domain", "name")}


def path(run: dict[str, Any], action: str = "a0") -> str:
    return f"/runs/{run['org']}/{run['project']}/{run['domain']}/{run['name']}/actions/{action}"


def event(run: dict[str, Any], phase: str, attempt: int = 1, action: str = "a0", **kw: Any) -> dict[str, Any]:
    return {"run": ref(run), "action": action, "attempt": attempt, "phase": phase, **kw}


def send(api: httpx.Client, *events: dict[str, Any]) -> list[dict[str, Any]]:
    r = api.post("/events", json={"events": list(events)})
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    assert len(results) == len(events)
    return results


def get_run(api: httpx.Client, run: dict[str, Any]) -> dict[str, Any]:
    r = api.get(f"/runs/{run['org']}/{run['project']}/{run['domain']}/{run['name']}")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def transitions(api: httpx.Client, run: dict[str, Any], action: str = "a0") -> list[list[str]]:
    r = api.get(path(run, action))
    assert r.status_code == 200, r.text
    return [[t["phase"] for t in a["transitions"]] for a in r.json()["attempt_list"]]


def test_create_run(api: httpx.Client) -> None:
    run = new_run(api, labels={"team": "ml"}, task={"name": "wf.main", "version": "v1"})
    assert run["created_by"] == "alice" and run["phase"] == "QUEUED" and run["labels"] == {"team": "ml"}
    again = api.post("/runs", json=ref(run))
    assert again.status_code == 409 and run["name"] in again.json()["error"]["message"]
    a = api.post("/runs", json={"org": "acme", "project": "proj", "domain": "dev"})
    b = api.post("/runs", json={"org": "acme", "project": "proj", "domain": "dev"})
    assert a.status_code == b.status_code == 201 and a.json()["name"] != b.json()["name"]
    bad = api.post("/runs", json={"org": "acme", "project": "proj", "domain": "dev", "colour": "red"})
    assert bad.status_code == 400 and "colour" in bad.json()["error"]["message"]


def test_late_running_after_failed_is_ignored(api: httpx.Client) -> None:
    run = new_run(api)
    assert [r["outcome"] for r in send(api, event(run, "running"), event(run, "Failed"))] == ["applied", "applied"]
    failed = get_run(api, run)
    assert failed["phase"] == "FAILED" and failed["ended_at"]
    [late] = send(api, event(run, "RUNNING"))
    assert late["outcome"] == "ignored"
    after = get_run(api, run)
    assert after["phase"] == "FAILED" and after["ended_at"] == failed["ended_at"]
    assert after["version"] == failed["version"]


def test_status_running_after_failed_is_409(api: httpx.Client) -> None:
    run = new_run(api)
    assert api.put(path(run) + "/status", json={"phase": "FAILED", "attempt": 1}).status_code == 200
    before = get_run(api, run)
    r = api.put(path(run) + "/status", json={"phase": "RUNNING", "attempt": 1})
    assert r.status_code == 409
    msg = r.json()["error"]["message"]
    assert "FAILED" in msg and "RUNNING" in msg
    assert get_run(api, run) == before


def test_failed_twice_and_succeeded_then_failed(api: httpx.Client) -> None:
    run = new_run(api)
    send(api, event(run, "RUNNING"), event(run, "FAILED"))
    before, trans = get_run(api, run), transitions(api, run)
    [dup] = send(api, event(run, "FAILED"))
    assert (dup["outcome"], dup["reason"]) == ("ignored", "duplicate")
    assert api.put(path(run) + "/status", json={"phase": "failed", "attempt": 1}).status_code == 200
    assert transitions(api, run) == trans and get_run(api, run) == before

    ok = new_run(api)
    assert api.put(path(ok) + "/status", json={"phase": "SUCCEEDED", "attempt": 1}).status_code == 200
    r = api.put(path(ok) + "/status", json={"phase": "FAILED", "attempt": 1})
    assert r.status_code == 409 and "SUCCEEDED" in r.json()["error"]["message"]


def test_retry_and_late_event_for_old_attempt(api: httpx.Client) -> None:
    run = new_run(api)
    send(api, event(run, "RUNNING"), event(run, "FAILED", error={"kind": "USER", "message": "oops"}))
    [retry] = send(api, event(run, "RUNNING", attempt=2))
    assert retry["outcome"] == "applied" and retry["attempts"] == 2
    now = get_run(api, run)
    assert now["phase"] == "RUNNING" and now["attempts"] == 2 and now["ended_at"] is None
    [late] = send(api, event(run, "SUCCEEDED", attempt=1))
    assert (late["outcome"], late["reason"]) == ("ignored", "stale_attempt")
    assert transitions(api, run) == [["RUNNING", "FAILED"], ["RUNNING"]]


def test_retry_after_succeeded_is_conflict(api: httpx.Client) -> None:
    run = new_run(api)
    send(api, event(run, "SUCCEEDED"))
    [r] = send(api, event(run, "RUNNING", attempt=2))
    assert r["outcome"] == "rejected"
    put = api.put(path(run) + "/status", json={"phase": "RUNNING", "attempt": 2})
    assert put.status_code == 409 and "SUCCEEDED" in put.json()["error"]["message"]
    assert get_run(api, run)["phase"] == "SUCCEEDED"


def test_versions(api: httpx.Client) -> None:
    run = new_run(api)
    [a] = send(api, event(run, "RUNNING", version=5))
    [b] = send(api, event(run, "SUCCEEDED", version=4))
    assert a["outcome"] == "applied" and (b["outcome"], b["reason"]) == ("ignored", "stale_version")


def test_malformed_events_change_nothing(api: httpx.Client) -> None:
    run = new_run(api)
    r = api.post("/events", json={"events": [event(run, "RUNNING"), event(run, "SPRINTING")]})
    assert r.status_code == 400 and "SPRINTING" in r.json()["error"]["message"]
    assert get_run(api, run)["phase"] == "QUEUED"
    for body in (
        {"events": [event(run, "RUNNING", start_time="2026-01-01T00:00:00")]},  # naive time
        {"events": [{**event(run, "RUNNING"), "extra": 1}]},
        {"events": [event(run, "RUNNING", attempt=0)]},
        {"evnts": []},
    ):
        bad = api.post("/events", json=body)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_argument", body
    attempt0 = api.post("/events", json={"events": [event(run, "RUNNING", attempt=0)]}).json()["error"]["message"]
    assert attempt0.startswith("events.0.attempt:"), attempt0
    assert api.post("/events", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    assert get_run(api, run)["phase"] == "QUEUED"
    [missing] = send(api, event({**run, "name": "nope"}, "RUNNING"))
    assert missing["outcome"] == "rejected" and missing["reason"] == "not_found"


def test_status_errors(api: httpx.Client) -> None:
    run = new_run(api)
    bad = api.put(path(run) + "/status", json={"phase": "WALKING", "attempt": 1})
    assert bad.status_code == 400 and "WALKING" in bad.json()["error"]["message"]
    assert api.put(path(run, "zz") + "/status", json={"phase": "RUNNING", "attempt": 1}).status_code == 404
    gone = {**run, "name": "nope"}
    assert api.put(path(gone) + "/status", json={"phase": "RUNNING", "attempt": 1}).status_code == 404


def test_heartbeat_endpoint(api: httpx.Client) -> None:
    run = new_run(api)
    assert api.post(path(run) + "/attempts/1/heartbeat").status_code == 404
    send(api, event(run, "RUNNING"))
    assert api.post(path(run) + "/attempts/1/heartbeat").status_code == 204
    attempt = api.get(path(run)).json()["attempt_list"][0]
    assert attempt["last_heartbeat_at"]


def test_logs_paged_and_followed(api: httpx.Client) -> None:
    run = new_run(api)
    send(api, event(run, "RUNNING"))
    logs = path(run) + "/attempts/1/logs"
    lines = [{"ts": f"2026-01-01T00:00:{i:02d}Z", "message": f"line {i}"} for i in range(5)]
    r = api.post(logs, json={"lines": lines})
    assert r.status_code == 200 and r.json() == {"appended": 5}
    page = api.get(logs, params={"limit": 3}).json()
    assert [ln["message"] for ln in page["lines"]] == ["line 0", "line 1", "line 2"] and not page["terminal"]
    rest = api.get(logs, params={"after": page["next_after"]}).json()
    assert [ln["message"] for ln in rest["lines"]] == ["line 3", "line 4"]
    send(api, event(run, "SUCCEEDED"))
    got: list[str] = []
    with api.stream("GET", logs, params={"follow": "true"}) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data: ") and line != "data: {}":
                got.append(json.loads(line[6:])["message"])
    assert got == [f"line {i}" for i in range(5)]  # the stream ended: the attempt is terminal
    assert api.get(path(run, "zz") + "/attempts/1/logs").status_code == 404


def test_concurrency_limit(api: httpx.Client) -> None:
    key = f"gpu-{next(_names)}"
    r = api.post("/concurrency_limits", json={"project": "proj", "key": key, "slots": 2})
    assert r.status_code == 201, r.text
    runs = [new_run(api, labels={"concurrency_key": key}) for _ in range(3)]
    results = [send(api, event(run, "RUNNING"))[0] for run in runs]
    assert [r["phase"] for r in results] == ["RUNNING", "RUNNING", "WAITING_FOR_RESOURCES"]
    assert results[2]["reason"] == "waiting_for_resources"
    limit = api.get(f"/concurrency_limits/proj/{key}").json()
    assert sorted(h["run"] for h in limit["holders"]) == sorted(r["name"] for r in runs[:2])
    assert [w["run"] for w in limit["waiting"]] == [runs[2]["name"]]
    send(api, event(runs[0], "SUCCEEDED"))
    assert get_run(api, runs[2])["phase"] == "RUNNING"
    limit = api.get("/concurrency_limits", params={"project": "proj"}).json()["limits"]
    [mine] = [lim for lim in limit if lim["key"] == key]
    assert sorted(h["run"] for h in mine["holders"]) == sorted(r["name"] for r in runs[1:])
    assert api.delete(f"/concurrency_limits/proj/{key}").status_code == 204
    assert api.delete(f"/concurrency_limits/proj/{key}").status_code == 404


def test_heartbeat_timeout_fails_the_attempt(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "runtrack.yaml"
    config.write_text("runs:\n  heartbeatTimeout: 1s\n  sweepInterval: 200ms\n")
    proc = ServerProcess(db_url, config=str(config), log_path=tmp_path / "server.log").wait_ready()
    try:
        with httpx.Client(base_url=proc.url + "/api/v1", timeout=30) as api:
            run = new_run(api)
            send(api, event(run, "RUNNING"))
            assert api.post(path(run) + "/attempts/1/heartbeat").status_code == 204
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and get_run(api, run)["phase"] != "FAILED":
                time.sleep(0.2)
            failed = get_run(api, run)
            assert failed["phase"] == "FAILED" and failed["error"]["kind"] == "HEARTBEAT_TIMEOUT"
    finally:
        proc.stop()


def test_decisions_are_counted(api: httpx.Client, srv: ServerProcess) -> None:
    run = new_run(api)
    send(api, event(run, "SUCCEEDED"), event(run, "FAILED"), event(run, "SUCCEEDED"))
    text = httpx.get(srv.url + "/metrics").text
    for outcome, reason in (("applied", "new_attempt"), ("rejected", "terminal_conflict"), ("ignored", "duplicate")):
        assert f'outcome="{outcome}",path="events",reason="{reason}"' in text, outcome
