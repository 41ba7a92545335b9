"""The REST read API against a real server: filters, paging, counting, errors, OpenAPI."""

from __future__ import annotations

import json
from typing import Any

import httpx

from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from tests.seed import seed_run
from tests.support import ServerProcess


async def get(server: ServerProcess, path: str, params: Any = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        return await client.get(path, params=params)


def fq(obj: Any) -> dict[str, str]:
    return {"filter_query": json.dumps(obj)}


async def seed_four(services: Services) -> None:
    await seed_run(services, "f1", phase=Phase.FAILED, minute=1, created_by="alice", labels={"team": "ml"})
    await seed_run(services, "f2", phase=Phase.FAILED, minute=2, created_by="bob", labels={"team": "web"})
    await seed_run(services, "r3", phase=Phase.RUNNING, minute=3, created_by="alice", task="wf.main")
    await seed_run(services, "f4", phase=Phase.FAILED, minute=4, created_by="alice", project="other")


def run_names(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [r["name"] for r in resp.json()["runs"]]


async def test_status_filter_before_limit_and_cursor(services: Services, server: ServerProcess) -> None:
    await seed_four(services)
    first = await get(server, "/api/v1/runs", {"status": "failed", "limit": 2})
    assert run_names(first) == ["f4", "f2"]
    cursor = first.json()["next_cursor"]
    assert cursor and "server-timing" in first.headers
    second = await get(server, "/api/v1/runs", {"status": "failed", "limit": 2, "cursor": cursor})
    assert run_names(second) == ["f1"] and second.json()["next_cursor"] is None
    # the cursor belongs to the status=failed filter
    other = await get(server, "/api/v1/runs", {"status": "running", "limit": 2, "cursor": cursor})
    assert other.status_code == 400 and "cursor" in other.json()["error"]["message"]
    garbage = await get(server, "/api/v1/runs", {"cursor": "not-a-cursor"})
    assert garbage.status_code == 400 and "cursor" in garbage.json()["error"]["message"]
    exact = await get(server, "/api/v1/runs", {"status": "failed", "limit": 3})
    assert run_names(exact) == ["f4", "f2", "f1"] and exact.json()["next_cursor"] is None


async def test_query_parameters(services: Services, server: ServerProcess) -> None:
    await seed_four(services)
    both = await get(server, "/api/v1/runs", [("status", "running"), ("status", "failed")])
    assert run_names(both) == ["f4", "r3", "f2", "f1"]
    assert run_names(await get(server, "/api/v1/runs", {"project": "other"})) == ["f4"]
    assert run_names(await get(server, "/api/v1/runs", {"created_by": "me", "current_user": "bob"})) == ["f2"]
    assert run_names(await get(server, "/api/v1/runs", {"created_by": "me"})) == []
    assert run_names(await get(server, "/api/v1/runs", {"name": "F"})) == ["f4", "f2", "f1"]
    assert run_names(await get(server, "/api/v1/runs", [("label", "team")])) == ["f2", "f1"]
    assert run_names(await get(server, "/api/v1/runs", [("label", "team=ml")])) == ["f1"]
    assert run_names(await get(server, "/api/v1/runs", {"sort": "name"})) == ["f1", "f2", "f4", "r3"]
    assert run_names(await get(server, "/api/v1/runs", {"sort": "-name", "limit": 2, "offset": 1})) == ["f4", "f2"]
    count = await get(server, "/api/v1/runs/count", [("status", "failed"), ("created_by", "alice")])
    assert count.status_code == 200 and count.json() == {"count": 2}
    assert (await get(server, "/api/v1/runs/count")).json() == {"count": 4}
    run = (await get(server, "/api/v1/runs")).json()["runs"][0]
    for key in ("org", "project", "domain", "name", "phase", "status", "created_by", "labels", "task",
                "created_at", "updated_at", "started_at", "ended_at", "duration_ms", "attempts", "error"):
        assert key in run


BAD_PARAMS: list[tuple[dict[str, Any], str]] = [
    ({"status": "bogus"}, "bogus"),
    ({"phase": "LATE"}, "LATE"),
    ({"limit": 0}, "limit"),
    ({"limit": 201}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"sort": "owner"}, "owner"),
    ({"label": "=x"}, "label"),
    ({"offset": -1}, "offset"),
]


async def test_filter_query(services: Services, server: ServerProcess) -> None:
    await seed_four(services)

    async def names_for(obj: Any, **extra: str) -> list[str]:
        return run_names(await get(server, "/api/v1/runs", {**fq(obj), **extra}))

    assert await names_for({"and": [{"value_equals": {"key": "system/run.phase", "value": "FAILED"}}]}) == [
        "f4", "f2", "f1"
    ]
    assert await names_for({"or": [{"value_equals": {"key": "team", "value": "ml"}},
                                   {"value_in": {"key": "system/run.name", "values": ["r3", "zz"]}}]}) == ["r3", "f1"]
    assert await names_for({"and": [{"key_exists": {"key": "team"}},
                                    {"not": {"value_contains": {"key": "team", "value_substring": "we"}}}]}) == ["f1"]
    assert await names_for({"and": [{"time_range": {"key": "system/run.created_at",
                                                    "start_time": "2026-01-01T00:02:00Z",
                                                    "end_time": "2026-01-01T00:04:00+00:00"}}]}) == ["r3", "f2"]
    assert await names_for({"and": [{"value_equals": {"key": "system/run.created_by", "value": "me"}},
                                    {"or": [{"value_equals": {"key": "system/run.status", "value": "running"}},
                                            {"value_equals": {"key": "team", "value": "ml"}}]}]},
                           current_user="alice") == ["r3", "f1"]
    assert await names_for({"and": [{"value_equals": {"key": "team", "value": ""}}]}) == []
    count = await get(server, "/api/v1/runs/count", fq({"and": [{"key_exists": {"key": "system/run.task_name"}}]}))
    assert count.json() == {"count": 1}


REJECTED: list[tuple[str, str]] = [
    ("{not json", "malformed JSON"),
    (json.dumps([]), "root"),
    (json.dumps({}), "root"),
    (json.dumps({"and": [], "or": []}), "root"),
    (json.dumps({"xor": [{"key_exists": {"key": "a"}}]}), "root"),
    (json.dumps({"and": []}), "non-empty"),
    (json.dumps({"and": {"key_exists": {"key": "a"}}}), "non-empty"),
    (json.dumps({"and": [{"bogus_pred": {"key": "a"}}]}), "bogus_pred"),
    (json.dumps({"and": [{"key_exists": {"key": "a"}, "value_equals": {"key": "a", "value": "b"}}]}), "exactly one"),
    (json.dumps({"and": [{"value_equals": {"key": "a"}}]}), "value"),
    (json.dumps({"and": [{"value_equals": {"key": "a", "value": "b", "extra": 1}}]}), "extra"),
    (json.dumps({"and": [{"value_equals": {"key": "a", "value": None}}]}), "value"),
    (json.dumps({"and": [{"value_equals": {"key": "", "value": "b"}}]}), "key"),
    (json.dumps({"and": [{"value_equals": {"key": "system/run.bogus", "value": "b"}}]}), "system/run.bogus"),
    (json.dumps({"and": [{"value_equals": {"key": "system/run.phase", "value": "SLEEPING"}}]}), "SLEEPING"),
    (json.dumps({"and": [{"value_contains": {"key": "a", "value_substring": ""}}]}), "value_substring"),
    (json.dumps({"and": [{"value_contains": {"key": "a", "value": "x"}}]}), "value"),
    (json.dumps({"and": [{"value_in": {"key": "a", "values": []}}]}), "values"),
    (json.dumps({"and": [{"value_in": {"key": "a", "values": ["x", ""]}}]}), "values"),
    (json.dumps({"and": [{"value_in": {"key": "a", "values": "x"}}]}), "values"),
    (json.dumps({"and": [{"key_exists": {"key": "a", "value": "x"}}]}), "value"),
    (json.dumps({"and": [{"time_range": {"key": "system/run.created_at"}}]}), "start_time"),
    (json.dumps({"and": [{"time_range": {"key": "system/run.created_at", "start_time": "2026-01-01T00:00:00"}}]}),
     "timezone"),
    (json.dumps({"and": [{"time_range": {"key": "system/run.created_at", "end_time": "yesterday"}}]}), "yesterday"),
    (json.dumps({"and": [{"time_range": {"key": "system/run.created_at", "start_time": "2026-01-02T00:00:00Z",
                                          "end_time": "2026-01-01T00:00:00Z"}}]}), "after"),
    (json.dumps({"and": [{"time_range": {"key": "system/run.name", "start_time": "2026-01-01T00:00:00Z"}}]}),
     "not a time"),
    (json.dumps({"and": [{"time_range": {"key": "system/run.created_at", "start_time": "2026-01-01T00:00:00Z",
                                          "stop": "x"}}]}), "stop"),
    (json.dumps({"and": [{"not": [{"key_exists": {"key": "a"}}]}]}), "not"),
    (json.dumps({"and": [{"not": {"key_exists": {"key": "a"}, "or": []}}]}), "not"),
    (json.dumps({"and": [{"or": [{"value_in": {"key": "system/run.phase", "values": ["RUNNING", "nope"]}}]}]}),
     "and[0].or[0].value_in"),
]


async def test_rejected_input_is_400_naming_the_bad_part(server: ServerProcess) -> None:
    cases = [(p, n) for p, n in BAD_PARAMS] + [({"filter_query": t}, n) for t, n in REJECTED]
    for params, needle in cases:
        paths = ["/api/v1/runs"] if "limit" in params or "sort" in params or "offset" in params else [
            "/api/v1/runs", "/api/v1/runs/count"]
        for path in paths:
            resp = await get(server, path, params)
            assert resp.status_code == 400, (params, resp.text)
            body = resp.json()["error"]
            assert body["code"] == "invalid_argument"
            assert needle in body["message"], (needle, body["message"])


async def test_run_actions_and_route_order(services: Services, server: ServerProcess) -> None:
    await seed_run(services, "count", minute=1)  # a run named like a fixed path
    base = "/api/v1/runs/acme/proj/dev/count"
    assert (await get(server, base)).json()["name"] == "count"
    acts = await get(server, base + "/actions", {"limit": 1})
    assert acts.status_code == 200 and [a["name"] for a in acts.json()["actions"]] == ["a0"]
    assert acts.json()["next_cursor"] is None
    assert (await get(server, base + "/actions", {"status": "running"})).json()["actions"] == []
    one = await get(server, base + "/actions/a0")
    assert one.status_code == 200 and one.json()["attempt_list"] == []
    assert (await get(server, base + "/actions/nope")).status_code == 404
    assert (await get(server, "/api/v1/runs/acme/proj/dev/missing/actions")).status_code == 404
    assert (await get(server, "/api/v1/runs/count")).json() == {"count": 1}


async def test_openapi_documents_the_parameters(server: ServerProcess) -> None:
    spec = (await get(server, "/openapi.json")).json()
    params = {p["name"] for p in spec["paths"]["/api/v1/runs"]["get"]["parameters"]}
    assert {"status", "phase", "project", "domain", "org", "created_by", "name", "label", "filter_query",
            "current_user", "limit", "cursor", "offset", "sort"} <= params
    count_params = {p["name"] for p in spec["paths"]["/api/v1/runs/count"]["get"]["parameters"]}
    assert {"status", "filter_query", "label", "created_by"} <= count_params
    assert "/api/v1/runs/{org}/{project}/{domain}/{name}/actions" in spec["paths"]
    events = spec["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    body = spec["components"]["schemas"][events["$ref"].rsplit("/", 1)[1]]
    event = spec["components"]["schemas"][body["properties"]["events"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert {"run", "action", "attempt", "phase", "version"} <= set(event["properties"])
    assert (await get(server, "/docs")).status_code == 200
