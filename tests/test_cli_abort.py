"""``runtrack runs abort`` and the REST abort endpoints against a real server, both databases."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from runtrack.cli import app
from tests.api.executor_support import srv
from tests.support import ServerProcess

__all__ = ["srv"]
runner = CliRunner()


def test_runs_abort(srv: ServerProcess) -> None:
    api = httpx.Client(base_url=srv.url + "/api/v1", timeout=30)
    run = {"org": "acme", "project": "proj", "domain": "dev", "name": "to-abort"}
    assert api.post("/runs", json=run).status_code == 201
    events = [{"run": run, "action": "a0", "attempt": 1, "phase": "RUNNING"}]
    assert api.post("/events", json={"events": events}).status_code == 200

    out = runner.invoke(app, ["runs", "abort", "acme/proj/dev/to-abort", "--reason", "wrong inputs",
                              "--user", "carol", "--url", srv.url])
    assert out.exit_code == 0, out.output
    assert "aborted acme/proj/dev/to-abort: a0" in out.stdout
    got = api.get("/runs/acme/proj/dev/to-abort").json()
    assert (got["phase"], got["abort_reason"], got["aborted_by"]) == ("ABORTED", "wrong inputs", "carol")
    assert got["ended_at"]

    again = runner.invoke(app, ["runs", "abort", "acme/proj/dev/to-abort", "--url", srv.url])
    assert again.exit_code == 0 and "nothing to abort" in again.stdout
    missing = runner.invoke(app, ["runs", "abort", "acme/proj/dev/nope", "--url", srv.url])
    assert missing.exit_code == 2 and "not found" in missing.output
    bad = runner.invoke(app, ["runs", "abort", "acme/proj/nope", "--url", srv.url])
    assert bad.exit_code == 2

    # REST: aborting an action aborts its subtree; a terminal run answers 200 with nothing aborted
    run2 = {**run, "name": "abort-action"}
    assert api.post("/runs", json=run2).status_code == 201
    r = api.post("/runs/acme/proj/dev/abort-action/actions/a0/abort", json={"reason": "x"})
    assert r.status_code == 200 and r.json()["aborted"] == ["a0"]
    assert api.post("/runs/acme/proj/dev/abort-action/abort").json()["aborted"] == []
    assert api.post("/runs/acme/proj/dev/abort-action/actions/zz/abort").status_code == 404
