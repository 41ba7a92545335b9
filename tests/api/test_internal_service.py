"""Connect InternalRunService and RunLogsService.TailLogs against a real server, both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from connectrpc.code import Code
from connectrpc.codec import proto_json_codec
from connectrpc.errors import ConnectError
from flyteidl2.common import identifier_pb2 as idl
from flyteidl2.workflow import internal_run_service_pb2 as irs
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_logs_service_pb2 as rls
from flyteidl2.workflow.internal_run_service_connect import InternalRunServiceClient
from flyteidl2.workflow.run_logs_service_connect import RunLogsServiceClient
from google.protobuf.timestamp_pb2 import Timestamp

from tests.api.executor_support import srv
from tests.support import ServerProcess

__all__ = ["srv"]
RUN = {"org": "acme", "project": "proj", "domain": "dev", "name": "r-connect"}


def aid(name: str = "a0") -> idl.ActionIdentifier:
    return idl.ActionIdentifier(run=idl.RunIdentifier(**RUN), name=name)


def ev(phase: int, attempt: int = 1, name: str = "a0", version: int = 0) -> rd.ActionEvent:
    return rd.ActionEvent(id=aid(name), attempt=attempt, phase=phase, version=version)


def status(phase: int, attempt: int = 1, name: str = "a0") -> irs.UpdateActionStatusRequest:
    return irs.UpdateActionStatusRequest(action_id=aid(name), status=rd.ActionStatus(phase=phase, attempts=attempt))


async def http(method: str, url: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.request(method, url, **kw)


async def rest_run(server: ServerProcess, action: str | None = None) -> dict[str, Any]:
    base = f"{server.url}/api/v1/runs/{RUN['org']}/{RUN['project']}/{RUN['domain']}/{RUN['name']}"
    r = await http("get", base if action is None else f"{base}/actions/{action}")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


@pytest.fixture
def server(srv: ServerProcess, request: pytest.FixtureRequest) -> ServerProcess:
    """The module's server; each test works on its own run."""
    RUN["name"] = f"r-{request.node.originalname.removeprefix('test_').replace('_', '-')}"[:30]
    return srv


async def test_internal_run_service(server: ServerProcess) -> None:
    assert (await http("post", f"{server.url}/api/v1/runs", json=RUN)).status_code == 201
    client = InternalRunServiceClient(server.url)
    json_client = InternalRunServiceClient(server.url, codec=proto_json_codec())

    ts = Timestamp()
    ts.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC))
    event = ev(4)
    event.cluster_events.add(occurred_at=ts, message="scheduled", reason="Scheduled")
    event.cluster_events.add(occurred_at=ts, message="scheduled", reason="Scheduled")
    resp = await client.record_action_events(irs.RecordActionEventsRequest(events=[event]))
    assert resp.status.code == 0 and "1 applied" in resp.status.message
    assert (await rest_run(server))["phase"] == "RUNNING"

    req = irs.RecordActionRequest(action_id=aid("c1"), parent="a0", group="g", input_uri="s3://in")
    req.task.id.name, req.task.id.version = "wf.child", "v1"
    assert (await client.record_action(req)).status.message == "recorded"
    assert (await json_client.record_action(req)).status.message == "already recorded"
    assert (await rest_run(server, "c1"))["parent"] == "a0"

    failed = 6
    assert (await client.update_action_status(status(failed))).status.code == 0
    assert (await client.update_action_status(status(failed))).status.code == 0  # idempotent
    with pytest.raises(ConnectError) as info:
        await client.update_action_status(status(4))
    assert info.value.code is Code.FAILED_PRECONDITION
    assert "FAILED" in info.value.message and "RUNNING" in info.value.message
    with pytest.raises(ConnectError) as info:
        await client.update_action_status(status(failed, name="nope"))
    assert info.value.code is Code.NOT_FOUND
    with pytest.raises(ConnectError) as info:
        await client.record_action_events(irs.RecordActionEventsRequest(events=[ev(0)]))
    assert info.value.code is Code.INVALID_ARGUMENT

    # a late RUNNING event after FAILED: success, nothing changes
    late = await json_client.record_action_events(irs.RecordActionEventsRequest(events=[ev(4)]))
    assert late.status.code == 0 and "1 ignored" in late.status.message
    run = await rest_run(server)
    assert run["phase"] == "FAILED"
    action = await rest_run(server, "a0")
    assert len(action["attempt_list"][0]["cluster_events"]) == 1


async def test_streaming_variants(server: ServerProcess) -> None:
    assert (await http("post", f"{server.url}/api/v1/runs", json=RUN)).status_code == 201
    client = InternalRunServiceClient(server.url)

    async def statuses() -> AsyncIterator[irs.UpdateActionStatusStreamRequest]:
        yield irs.UpdateActionStatusStreamRequest(request=status(4), nonce=1)
        yield irs.UpdateActionStatusStreamRequest(request=status(5), nonce=2)
        yield irs.UpdateActionStatusStreamRequest(request=status(6), nonce=3)

    got = [(r.nonce, r.response.status.code) async for r in client.update_action_status_stream(statuses())]
    assert got == [(1, 0), (2, 0), (3, 9)]  # the last contradicts SUCCEEDED: FAILED_PRECONDITION

    async def events() -> AsyncIterator[irs.RecordActionEventStreamRequest]:
        yield irs.RecordActionEventStreamRequest(request=irs.RecordActionEventRequest(event=ev(4)), nonce=7)

    answers = [r async for r in client.record_action_event_stream(events())]
    assert [a.nonce for a in answers] == [7] and "ignored" in answers[0].response.status.message


async def test_tail_logs(server: ServerProcess) -> None:
    assert (await http("post", f"{server.url}/api/v1/runs", json=RUN)).status_code == 201
    base = f"{server.url}/api/v1/runs/acme/proj/dev/{RUN['name']}/actions/a0"
    assert (await http("put", f"{base}/status", json={"phase": "RUNNING", "attempt": 1})).status_code == 200
    lines = [{"ts": "2026-01-01T00:00:00Z", "message": f"hello {i}"} for i in range(3)]
    assert (await http("post", f"{base}/attempts/1/logs", json={"lines": lines})).status_code == 200
    assert (await http("put", f"{base}/status", json={"phase": "SUCCEEDED", "attempt": 1})).status_code == 200
    client = RunLogsServiceClient(server.url)
    got = [
        line.message
        async for resp in client.tail_logs(rls.TailLogsRequest(action_id=aid(), attempt=1))
        for logs in resp.logs
        for line in logs.lines
    ]
    assert got == ["hello 0", "hello 1", "hello 2"]
    with pytest.raises(ConnectError) as info:
        async for _ in client.tail_logs(rls.TailLogsRequest(action_id=aid("zz"), attempt=1)):
            pass
    assert info.value.code is Code.NOT_FOUND
