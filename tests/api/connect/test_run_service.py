"""RunService over the Connect protocol: binary gzip through connectrpc, JSON, GET; a live server."""

from __future__ import annotations

import base64
import gzip
import json

import httpx
from connectrpc.code import Code
from flyteidl2.common import identifier_pb2, list_pb2
from flyteidl2.task import common_pb2, run_pb2, task_definition_pb2
from flyteidl2.workflow import run_service_pb2 as rs
from google.protobuf import json_format

from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from tests.api.connect.clients import CURL_HEADERS, code_of, post_json, project_id, run_client, run_id
from tests.api.connect.states import DOMAIN, ORG, PROJECT, put_child, put_run
from tests.support import ServerProcess

F = list_pb2.Filter


def _task_spec(name: str = "env.hello", type_: str = "python") -> task_definition_pb2.TaskSpec:
    spec = task_definition_pb2.TaskSpec(short_name=name.split(".")[-1])
    spec.task_template.id.name = name
    spec.task_template.id.version = "v1"
    spec.task_template.type = type_
    return spec


def _inputs() -> common_pb2.Inputs:
    inputs = common_pb2.Inputs()
    lit = inputs.literals.add()
    lit.name = "x"
    lit.value.scalar.primitive.integer = 42
    return inputs


def test_create_run_and_read_it_back(server: ServerProcess) -> None:
    run_spec = run_pb2.RunSpec()
    run_spec.labels.values["team"] = "ml"
    run_spec.envs.values.add(key="A", value="1")
    with run_client(server.url) as client:
        created = client.create_run(
            rs.CreateRunRequest(
                run_id=_rid("first"),
                task_spec=_task_spec(),
                inputs=_inputs(),
                run_spec=run_spec,
                source="RUN_SOURCE_CLI",
            ),
            headers={"x-runtrack-user": "alice"},
        )
        action = created.run.action
        assert action.id.run.name == "first" and action.id.name == "a0"
        assert action.status.phase == Phase.QUEUED
        assert action.metadata.task.id.name == "env.hello" and action.metadata.task.task_type == "python"
        assert created.run.labels["team"] == "ml"

        details = client.get_run_details(rs.GetRunDetailsRequest(run_id=action.id.run)).details
        assert details.run_spec == run_spec  # stored as given
        assert details.action.metadata.executed_by.user.id.subject == "alice"
        assert details.action.metadata.source == 2  # RUN_SOURCE_CLI
        assert details.action.task == _task_spec()

        data = client.get_action_data(rs.GetActionDataRequest(action_id=action.id))
        assert data.inputs == _inputs()

        code, message = code_of(lambda: client.create_run(
            rs.CreateRunRequest(run_id=action.id.run, task_spec=_task_spec())
        ))
        assert code is Code.ALREADY_EXISTS and "first" in message

        # Only a project: the server names the run, uniquely and readably.
        names = set()
        for _ in range(3):
            r = client.create_run(
                rs.CreateRunRequest(project_id=identifier_pb2.ProjectIdentifier(**project_id()), task_spec=_task_spec())
            )
            name = r.run.action.id.run.name
            assert 1 <= len(name) <= 30 and name.isalnum() and name.islower()
            names.add(name)
        assert len(names) == 3

        # By task id: the task must be deployed.
        tid = task_definition_pb2.TaskIdentifier(org=ORG, project=PROJECT, domain=DOMAIN, name="env.t", version="v9")
        code, _ = code_of(lambda: client.create_run(
            rs.CreateRunRequest(run_id=_rid("bytask"), task_id=tid)
        ))
        assert code is Code.NOT_FOUND
    deployed = httpx.post(
        server.url + "/flyteidl2.task.TaskService/DeployTask",
        json={"taskId": json_format.MessageToDict(tid), "spec": json_format.MessageToDict(_task_spec("env.t", "spk"))},
        headers=CURL_HEADERS,
    )
    assert deployed.status_code == 200, deployed.text
    with run_client(server.url) as client:
        r = client.create_run(rs.CreateRunRequest(run_id=_rid("bytask"), task_id=tid))
        assert r.run.action.metadata.task.task_type == "spk"
        assert r.run.action.metadata.task.id.version == "v9"


def test_json_post_and_connect_get(server: ServerProcess) -> None:
    spec = json_format.MessageToDict(_task_spec())
    assert post_json(server.url, "CreateRun", {"runId": run_id("one"), "taskSpec": spec}).status_code == 200
    # A plain JSON POST with curl-like headers.
    r = post_json(server.url, "ListRuns", {"projectId": project_id()})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert [x["action"]["id"]["run"]["name"] for x in body["runs"]] == ["one"]
    assert body["runs"][0]["action"]["status"]["phase"] == "ACTION_PHASE_QUEUED"
    assert "server-timing" in r.headers

    # A gzip-compressed JSON body.
    raw = gzip.compress(json.dumps({"runId": run_id("one")}).encode())
    r = httpx.post(
        server.url + "/flyteidl2.workflow.RunService/GetRunDetails",
        content=raw, headers={**CURL_HEADERS, "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200 and r.json()["details"]["action"]["id"]["name"] == "a0"

    # Connect GET for a read-only method: JSON and base64 binary.
    msg = json.dumps({"runId": run_id("one")})
    r = httpx.get(
        server.url + "/flyteidl2.workflow.RunService/GetRunDetails",
        params={"connect": "v1", "encoding": "json", "message": msg},
    )
    assert r.status_code == 200 and r.json()["details"]["action"]["status"]["phase"] == "ACTION_PHASE_QUEUED"
    binary = rs.GetRunDetailsRequest(run_id=_rid("one")).SerializeToString()
    r = httpx.get(
        server.url + "/flyteidl2.workflow.RunService/GetRunDetails",
        params={"connect": "v1", "encoding": "proto", "base64": "1",
                "message": base64.urlsafe_b64encode(binary).decode().rstrip("=")},
    )
    assert r.status_code == 200
    assert rs.GetRunDetailsResponse.FromString(r.content).details.action.id.run.name == "one"
    with run_client(server.url) as client:
        got = client.get_run_details(
            rs.GetRunDetailsRequest(run_id=_rid("one")), use_get=True
        )
        assert got.details.action.status.phase == Phase.QUEUED
        listed = client.list_runs(rs.ListRunsRequest(project_id=identifier_pb2.ProjectIdentifier(**project_id())))
        assert [x.action.id.run.name for x in listed.runs] == ["one"]


def _rid(name: str) -> identifier_pb2.RunIdentifier:
    return identifier_pb2.RunIdentifier(**run_id(name))


def _list(client: object, **kw: object) -> rs.ListRunsResponse:
    return client.list_runs(rs.ListRunsRequest(**kw))  # type: ignore[attr-defined, no-any-return]


def _names(resp: rs.ListRunsResponse) -> list[str]:
    return [r.action.id.run.name for r in resp.runs]


async def test_list_runs_scopes_filters_sorting_and_paging(services: Services, server: ServerProcess) -> None:
    phases = [Phase.SUCCEEDED, Phase.FAILED, Phase.RUNNING, Phase.QUEUED, Phase.PAUSED]
    for i in range(55):
        await put_run(
            services, f"r{i:02d}", phases[i % 5], minute=i, task="env.a" if i % 2 else "env.b",
            version="v2" if i % 4 == 1 else "v1", trigger="nightly" if i % 10 == 0 else None,
        )
    await put_run(services, "x-other", Phase.SUCCEEDED, minute=100, project="other")
    proj = identifier_pb2.ProjectIdentifier(**project_id())
    with run_client(server.url) as client:
        # limit 0 means 50; the default order is newest first
        first = _list(client, project_id=proj)
        assert len(first.runs) == 50 and first.token
        assert _names(first)[:2] == ["r54", "r53"]
        rest = _list(client, project_id=proj, request=list_pb2.ListRequest(token=first.token))
        assert _names(rest) == ["r04", "r03", "r02", "r01", "r00"] and rest.token == ""

        # the filter is applied before the limit; pages follow the token
        succeeded = F(field="phase", function=F.VALUE_IN, values=["5"])
        seen: list[str] = []
        token = ""
        while True:
            page = _list(client, project_id=proj, request=list_pb2.ListRequest(
                limit=4, token=token, filters=[succeeded],
                sort_by=list_pb2.Sort(key="created_at", direction=list_pb2.Sort.ASCENDING),
            ))
            assert len(page.runs) <= 4
            seen += _names(page)
            token = page.token
            if not token:
                break
        assert seen == [f"r{i:02d}" for i in range(0, 55, 5)]

        # sort_by_fields (the non-deprecated form)
        by_name = _list(client, project_id=proj, request=list_pb2.ListRequest(
            limit=3, sort_by_fields=[list_pb2.Sort(key="name", direction=list_pb2.Sort.ASCENDING)]
        ))
        assert _names(by_name) == ["r00", "r01", "r02"]

        # scopes
        assert "x-other" in _names(_list(client, org=ORG, request=list_pb2.ListRequest(limit=200)))
        by_task = _list(client, task_name=task_definition_pb2.TaskName(
            org=ORG, project=PROJECT, domain=DOMAIN, name="env.a"), request=list_pb2.ListRequest(limit=200))
        assert sorted(_names(by_task)) == [f"r{i:02d}" for i in range(1, 55, 2)]
        everything = list_pb2.ListRequest(limit=200)
        by_task_id = _list(client, task_id=task_definition_pb2.TaskIdentifier(
            org=ORG, project=PROJECT, domain=DOMAIN, name="env.a", version="v2"), request=everything)
        assert sorted(_names(by_task_id)) == [f"r{i:02d}" for i in range(1, 55, 4)]
        by_trigger = _list(client, trigger_name=identifier_pb2.TriggerName(
            org=ORG, project=PROJECT, domain=DOMAIN, name="nightly", task_name="env.b"), request=everything)
        assert sorted(_names(by_trigger)) == [f"r{i:02d}" for i in range(0, 55, 10)]
        paused = _list(client, project_id=proj, paused_actions_only=True, request=list_pb2.ListRequest(limit=200))
        assert sorted(_names(paused)) == [f"r{i:02d}" for i in range(4, 55, 5)]

        # labels, created_by and time filters as the SDK sends them
        since = _list(client, project_id=proj, request=list_pb2.ListRequest(limit=200, filters=[
            F(field="created_at", function=F.GREATER_THAN_OR_EQUAL, values=["2026-01-01T00:50:00+00:00"]),
            F(field="created_by", function=F.EQUAL, values=["alice"]),
        ]))
        assert sorted(_names(since)) == [f"r{i:02d}" for i in range(50, 55)]


async def test_list_actions_pages_and_filters(services: Services, server: ServerProcess) -> None:
    await put_run(services, "parent", Phase.RUNNING)
    for i in range(5):
        await put_child(services, "parent", f"c{i}" + "x" * i, Phase.SUCCEEDED if i % 2 else Phase.RUNNING)
    rid = _rid("parent")
    with run_client(server.url) as client:
        names: list[str] = []
        token = ""
        while True:
            req = list_pb2.ListRequest(limit=2, token=token)
            page = client.list_actions(rs.ListActionsRequest(run_id=rid, request=req))
            assert len(page.actions) <= 2
            names += [a.id.name for a in page.actions]
            token = page.token
            if not token:
                break
        assert names == ["a0", "c0", "c1x", "c2xx", "c3xxx", "c4xxxx"]
        done = client.list_actions(rs.ListActionsRequest(run_id=rid, request=list_pb2.ListRequest(
            filters=[F(field="phase", function=F.EQUAL, values=["5"])])))
        assert [a.id.name for a in done.actions] == ["c1x", "c3xxx"]
        child = done.actions[0]
        assert child.metadata.parent == "a0" and child.metadata.task.id.name == "env.child"
        assert child.status.phase == Phase.SUCCEEDED and child.status.attempts == 1
        code, _ = code_of(lambda: client.list_actions(
            rs.ListActionsRequest(run_id=_rid("nope"))))
        assert code is Code.NOT_FOUND


async def test_abort_not_found_and_terminal(services: Services, server: ServerProcess) -> None:
    await put_run(services, "live", Phase.RUNNING)
    await put_child(services, "live", "kid", Phase.RUNNING)
    await put_run(services, "finished", Phase.SUCCEEDED)
    with run_client(server.url) as client:
        missing = _rid("missing")
        assert code_of(lambda: client.abort_run(rs.AbortRunRequest(run_id=missing)))[0] is Code.NOT_FOUND
        code, _ = code_of(lambda: client.abort_action(rs.AbortActionRequest(
            action_id=identifier_pb2.ActionIdentifier(run=_rid("live"), name="nope"))))
        assert code is Code.NOT_FOUND
        client.abort_action(rs.AbortActionRequest(
            action_id=identifier_pb2.ActionIdentifier(run=_rid("live"), name="kid"),
            reason="just this one",
        ))
        kid = client.get_action_details(rs.GetActionDetailsRequest(action_id=identifier_pb2.ActionIdentifier(
            run=_rid("live"), name="kid"))).details
        assert kid.status.phase == Phase.ABORTED and kid.abort_info.reason == "just this one"
        root = client.get_run_details(rs.GetRunDetailsRequest(run_id=_rid("live")))
        assert root.details.action.status.phase == Phase.RUNNING
        client.abort_run(rs.AbortRunRequest(run_id=_rid("finished"), reason="x"))
        done = client.get_run_details(rs.GetRunDetailsRequest(run_id=_rid("finished")))
        assert done.details.action.status.phase == Phase.SUCCEEDED
