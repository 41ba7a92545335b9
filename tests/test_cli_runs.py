"""``runtrack runs ls|get`` against a real server."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from runtrack.cli import app
from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from tests.seed import seed_run
from tests.support import ServerProcess

runner = CliRunner()


async def test_runs_ls_and_get(services: Services, server: ServerProcess) -> None:
    await seed_run(services, "f1", phase=Phase.FAILED, minute=1, created_by="alice", labels={"team": "ml"})
    await seed_run(services, "r2", phase=Phase.RUNNING, minute=2, created_by="bob", task="wf.main")
    await seed_run(services, "f3", phase=Phase.FAILED, minute=3, created_by="bob")

    out = runner.invoke(app, ["runs", "ls", "--url", server.url, "--status", "failed", "--json"])
    assert out.exit_code == 0, out.output
    assert [r["name"] for r in json.loads(out.stdout)["runs"]] == ["f3", "f1"]

    out = runner.invoke(app, ["runs", "ls", "--url", server.url, "-s", "running", "-s", "failed", "--created-by",
                              "me", "--user", "bob", "--limit", "1", "--json"])
    page = json.loads(out.stdout)
    assert [r["name"] for r in page["runs"]] == ["f3"] and page["next_cursor"]

    out = runner.invoke(app, ["runs", "ls", "--url", server.url, "--label", "team=ml", "--sort", "name"])
    assert out.exit_code == 0 and "f1" in out.stdout and "FAILED" in out.stdout and "r2" not in out.stdout

    out = runner.invoke(app, ["runs", "ls", "--url", server.url, "--status", "bogus"])
    assert out.exit_code == 2 and "bogus" in out.output

    out = runner.invoke(app, ["runs", "get", "acme/proj/dev/r2", "--url", server.url])
    assert out.exit_code == 0, out.output
    assert "wf.main" in out.stdout and "a0" in out.stdout and "RUNNING" in out.stdout
    out = runner.invoke(app, ["runs", "get", "acme/proj/dev/r2", "--url", server.url, "--json"])
    assert json.loads(out.stdout)["actions"][0]["name"] == "a0"

    out = runner.invoke(app, ["runs", "get", "acme/proj/dev/missing", "--url", server.url])
    assert out.exit_code == 2 and "not found" in out.output
    out = runner.invoke(app, ["runs", "get", "bad-id", "--url", server.url])
    assert out.exit_code == 2 and "ORG/PROJECT/DOMAIN/NAME" in out.output
