"""Fleet REST endpoints against a real ``runtrack serve`` process: stats, bulk delete, delete one.

One server per database serves the whole module (starting one is the slow part); every test works
in an organisation of its own, so the tests do not see each other's runs.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from tests.conftest import require_db
from tests.fleet_seed import days_ago, hold_slot, rows_of, seed_run
from tests.support import ServerProcess, database_url

PHASES = [Phase.QUEUED, Phase.RUNNING, Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED, Phase.TIMED_OUT,
          Phase.PAUSED, Phase.WAITING_FOR_RESOURCES, Phase.RECOVERED]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    kind: str = request.param
    require_db(kind)
    tmp = tmp_path_factory.mktemp(f"fleet-{kind}")
    with database_url(kind, tmp) as url:
        proc = ServerProcess(url, log_path=tmp / "server.log").wait_ready()
        try:
            yield proc
        finally:
            proc.stop()


@pytest.fixture
def org() -> str:
    return "o" + uuid.uuid4().hex[:10]


@pytest.fixture
def db(server_services: Services) -> Services:
    return server_services


@pytest.fixture
async def client(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url + "/api/v1", timeout=30) as c:
        yield c


def fq(*preds: dict[str, Any], root: str = "and") -> str:
    return json.dumps({root: list(preds)})


GENERATED: list[dict[str, Any]] = [
    {},
    {"project": "alpha"},
    {"status": ["running", "failed"]},
    {"status": "pending", "project": "beta"},
    {"created_by": "me", "current_user": "alice"},
    {"created_by": "me", "current_user": "bob", "status": "succeeded"},
    {"created_by": "me"},
    {"label": "team=ml"},
    {"label": "team"},
    {"name": "1"},
    {"filter_query": fq({"value_in": {"key": "system/run.phase", "values": ["SUCCEEDED", "FAILED"]}})},
    {"filter_query": fq({"not": {"key_exists": {"key": "team"}}})},
    {"filter_query": fq({"value_equals": {"key": "system/run.project", "value": "gamma"}},
                        {"value_contains": {"key": "system/run.name", "value_substring": "r2"}}, root="or")},
    {"filter_query": fq({"time_range": {"key": "system/run.created_at", "start_time": days_ago(8).isoformat()}}),
     "project": "alpha"},
]


async def test_stats_agree_with_count_for_generated_filters(
    db: Services, client: httpx.AsyncClient, org: str
) -> None:
    for i in range(27):
        await seed_run(db, f"r{i}", org=org, phase=PHASES[i % len(PHASES)], project=("alpha", "beta", "gamma")[i % 3],
                       created_by=("alice", "bob", "carol")[i % 3], labels={"team": "ml"} if i % 2 else {},
                       actions_n=1, logs_per_action=0, created_at=days_ago(i))
    for extra in GENERATED:
        params = {**extra, "org": org}
        stats = (await client.get("/runs/stats", params=params)).json()
        count = (await client.get("/runs/count", params=params)).json()["count"]
        assert sum(stats["counts_by_status"].values()) == stats["total_runs"], params
        assert sum(stats["counts_by_phase"].values()) == stats["total_runs"], params
        assert stats["total_runs"] == count, params
        assert set(stats["counts_by_status"]) == {"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"}
        assert stats["cached_at"].endswith("Z")
    everything = (await client.get("/runs/stats", params={"org": org})).json()
    assert everything["total_runs"] == 27
    assert everything["counts_by_status"] == {"PENDING": 6, "RUNNING": 6, "SUCCEEDED": 6, "FAILED": 6, "CANCELLED": 3}
    unfiltered = (await client.get("/runs/stats")).json()
    assert unfiltered["total_runs"] >= 27 and sum(unfiltered["counts_by_status"].values()) == unfiltered["total_runs"]


async def test_stats_reject_bad_filters(client: httpx.AsyncClient) -> None:
    for params in ({"status": "sleeping"}, {"filter_query": "{not json"}, {"filter_query": fq({"nope": {}})}):
        r = await client.get("/runs/stats", params=params)
        assert r.status_code == 400, params
        assert r.json()["error"]["code"] == "invalid_argument"


async def test_bulk_delete_two_of_three_by_name(db: Services, client: httpx.AsyncClient, org: str) -> None:
    pks = [await seed_run(db, f"b{i}", org=org, created_at=days_ago(3 - i), labels={"k": "v"}) for i in range(3)]
    keep = await rows_of(db, pks[2])
    body = {"org": org,
            "filter_query": {"and": [{"value_in": {"key": "system/run.name", "values": ["b0", "b1", "ghost"]}}]}}
    r = await client.post("/runs/bulk_delete", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted": [f"{org}/proj/dev/b1", f"{org}/proj/dev/b0"], "skipped": [], "dry_run": False}
    for name in ("b0", "b1"):
        assert (await client.get(f"/runs/{org}/proj/dev/{name}")).status_code == 404
    assert (await client.get(f"/runs/{org}/proj/dev/b2")).status_code == 200
    assert (await client.get(f"/runs/{org}/proj/dev/b2/actions")).json()["actions"]
    assert await rows_of(db, pks[2]) == keep
    # The server's cleanup removes the deleted runs' logs shortly after the response.
    await wait_for(lambda: logs_of(db, pks[:2]), 0)
    assert (await rows_of(db, pks[2]))["logs"] == keep["logs"] == 4


async def test_bulk_delete_limit_dry_run_and_validation(db: Services, client: httpx.AsyncClient, org: str) -> None:
    pks = [await seed_run(db, f"l{i}", org=org, project="five", created_at=days_ago(5 - i), actions_n=1)
           for i in range(5)]
    for bad in ({"org": org, "limit": 0}, {"org": org, "limit": 201}, {}, {"limit": 5},
                {"filter_query": {"and": []}}, {"org": org, "bogus": 1}, {"org": org, "limit": "many"}):
        r = await client.post("/runs/bulk_delete", json=bad)
        assert r.status_code == 400, (bad, r.text)
    before = [await rows_of(db, pk) for pk in pks]
    dry = (await client.post("/runs/bulk_delete", json={"org": org, "limit": 2, "dry_run": True})).json()
    assert dry == {"deleted": [f"{org}/five/dev/l4", f"{org}/five/dev/l3"], "skipped": [], "dry_run": True}
    assert [await rows_of(db, pk) for pk in pks] == before
    real = (await client.post("/runs/bulk_delete", json={"org": org, "limit": 2})).json()
    assert real["deleted"] == dry["deleted"]
    assert (await client.get("/runs/count", params={"org": org})).json()["count"] == 3


async def test_running_run_is_skipped_unless_forced(db: Services, client: httpx.AsyncClient, org: str) -> None:
    await seed_run(db, "ok", org=org)
    await seed_run(db, "busy", org=org, phase=Phase.RUNNING)
    r = (await client.post("/runs/bulk_delete", json={"org": org})).json()
    assert r["deleted"] == [f"{org}/proj/dev/ok"]
    assert [s["run"] for s in r["skipped"]] == [f"{org}/proj/dev/busy"] and "RUNNING" in r["skipped"][0]["reason"]
    r = (await client.post("/runs/bulk_delete", params={"current_user": "ops"},
                           json={"org": org, "status": "running", "force": True})).json()
    assert r == {"deleted": [f"{org}/proj/dev/busy"], "skipped": [], "dry_run": False}
    assert (await client.get(f"/runs/{org}/proj/dev/busy")).status_code == 404


async def test_delete_one_run(db: Services, client: httpx.AsyncClient, org: str) -> None:
    pk = await seed_run(db, "single", org=org)
    await seed_run(db, "live", org=org, phase=Phase.INITIALIZING)
    held = await seed_run(db, "held", org=org, phase=Phase.RUNNING)
    await hold_slot(db, held, key=f"gpu-{org}")
    r = await client.delete(f"/runs/{org}/proj/dev/single")
    assert r.status_code == 204 and r.content == b""
    assert (await client.delete(f"/runs/{org}/proj/dev/single")).status_code == 404
    conflict = await client.delete(f"/runs/{org}/proj/dev/live")
    assert conflict.status_code == 409 and "INITIALIZING" in conflict.json()["error"]["message"]
    assert (await client.delete(f"/runs/{org}/proj/dev/live", params={"force": "true"})).status_code == 204
    assert (await client.delete(f"/runs/{org}/proj/dev/held", params={"force": "true"})).status_code == 204
    assert (await rows_of(db, held))["slots"] == 0
    await wait_for(lambda: logs_of(db, [pk, held]), 0)


async def test_openapi_documents_the_fleet_endpoints(client: httpx.AsyncClient, server: ServerProcess) -> None:
    doc = (await client.get(server.url + "/openapi.json")).json()
    assert "get" in doc["paths"]["/api/v1/runs/stats"]
    assert "post" in doc["paths"]["/api/v1/runs/bulk_delete"]
    assert "delete" in doc["paths"]["/api/v1/runs/{org}/{project}/{domain}/{name}"]


async def logs_of(db: Services, pks: list[int]) -> int:
    return sum([(await rows_of(db, pk))["logs"] for pk in pks])


async def wait_for(probe: Any, expected: Any, within_s: float = 20.0) -> None:
    """Poll ``await probe()`` until it returns ``expected`` (a functional deadline, not a timing claim)."""
    deadline = asyncio.get_running_loop().time() + within_s
    value = None
    while asyncio.get_running_loop().time() < deadline:
        value = await probe()
        if value == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still {value!r}, expected {expected!r} after {within_s}s")
