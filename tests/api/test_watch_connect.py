"""Connect watch streams through a real connectrpc client: WatchRunDetails, WatchActionDetails,
WatchActions, WatchRuns and WatchClusterEvents, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from flyteidl2.common import identifier_pb2 as idf
from flyteidl2.common import phase_pb2
from flyteidl2.workflow import internal_run_service_pb2 as irs
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow.internal_run_service_connect import InternalRunServiceClient
from flyteidl2.workflow.run_service_connect import RunServiceClient

from tests.api.watch_client import DOMAIN, ORG, PROJECT, create_run, report, run_ref
from tests.support import ServerProcess

RUNNING = phase_pb2.ACTION_PHASE_RUNNING
SUCCEEDED = phase_pb2.ACTION_PHASE_SUCCEEDED
QUEUED = phase_pb2.ACTION_PHASE_QUEUED


def run_id(name: str) -> idf.RunIdentifier:
    return idf.RunIdentifier(org=ORG, project=PROJECT, domain=DOMAIN, name=name)


async def take(stream: AsyncIterator[Any], n: int = 1, within: float = 10) -> list[Any]:
    out = []
    async with asyncio.timeout(within):
        for _ in range(n):
            out.append(await anext(stream))
    return out


async def test_watch_run_details_streams_until_terminal(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await create_run(http, "d1")
        client = RunServiceClient(server.url)
        stream = client.watch_run_details(rs.WatchRunDetailsRequest(run_id=run_id("d1")))
        [first] = await take(stream)
        assert first.details.action.status.phase == QUEUED
        await report(http, [("d1", "RUNNING", None)])
        [second] = await take(stream)
        assert second.details.action.status.phase == RUNNING
        await report(http, [("d1", "SUCCEEDED", None)])
        rest = [m async for m in stream]
        assert [m.details.action.status.phase for m in rest] == [SUCCEEDED]


async def test_watch_action_details_of_a_missing_run_is_not_found(server: ServerProcess) -> None:
    client = RunServiceClient(server.url)
    req = rs.WatchActionDetailsRequest(action_id=idf.ActionIdentifier(run=run_id("nope"), name="a0"))
    with pytest.raises(ConnectError) as err:
        [m async for m in client.watch_action_details(req)]
    assert err.value.code == Code.NOT_FOUND


async def test_watch_actions_and_cluster_events(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await create_run(http, "e1")
        client = RunServiceClient(server.url)
        actions = client.watch_actions(rs.WatchActionsRequest(run_id=run_id("e1")))
        [snap] = await take(actions)
        assert [e.action.id.name for e in snap.enriched_actions] == ["a0"]
        assert all(e.meets_filter for e in snap.enriched_actions)
        events = client.watch_cluster_events(
            rs.WatchClusterEventsRequest(id=idf.ActionIdentifier(run=run_id("e1"), name="a0"), attempt=1)
        )
        [empty] = await take(events)
        assert list(empty.cluster_events) == []
        now = datetime.now(UTC).isoformat()
        body = {"events": [{
            "run": run_ref("e1"), "action": "a0", "attempt": 1, "phase": "RUNNING",
            "cluster_events": [{"occurred_at": now, "message": "pulled image", "type": "NORMAL", "reason": "Pulled"}],
        }]}
        assert (await http.post("/api/v1/events", json=body)).status_code == 200
        [changed] = await take(actions)
        assert [(e.action.id.name, e.action.status.phase) for e in changed.enriched_actions] == [("a0", RUNNING)]
        [got] = await take(events)
        assert [e.message for e in got.cluster_events] == ["pulled image"]
        await report(http, [("e1", "SUCCEEDED", None)])
        # The attempt is terminal: the stream ends, with no message (no new cluster event).
        async with asyncio.timeout(10):
            assert [m async for m in events] == []
        await actions.aclose()  # type: ignore[attr-defined]


async def test_watch_actions_counts_children_by_phase_and_resends_the_parent(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await create_run(http, "e2")
        internal = InternalRunServiceClient(server.url)
        for child in ("c1", "c2"):
            req = irs.RecordActionRequest(action_id=idf.ActionIdentifier(run=run_id("e2"), name=child), parent="a0")
            req.task.id.name, req.task.id.version = "wf.child", "v1"
            await internal.record_action(req)
        client = RunServiceClient(server.url)
        actions = client.watch_actions(rs.WatchActionsRequest(run_id=run_id("e2")))
        [snap] = await take(actions)
        by_name = {e.action.id.name: e for e in snap.enriched_actions}
        assert sorted(by_name) == ["a0", "c1", "c2"]
        assert dict(by_name["a0"].children_phase_counts) == {QUEUED: 2}
        assert dict(by_name["c1"].children_phase_counts) == {}
        body = {"events": [{"run": run_ref("e2"), "action": "c1", "attempt": 1, "phase": "RUNNING"}]}
        assert (await http.post("/api/v1/events", json=body)).status_code == 200
        [changed] = await take(actions)
        by_name = {e.action.id.name: e for e in changed.enriched_actions}
        assert sorted(by_name) == ["a0", "c1"]  # the changed child and its parent, with new counts
        assert by_name["c1"].action.status.phase == RUNNING
        assert dict(by_name["a0"].children_phase_counts) == {QUEUED: 1, RUNNING: 1}
        await actions.aclose()  # type: ignore[attr-defined]


async def test_watch_runs_of_a_project(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await create_run(http, "w1")
        client = RunServiceClient(server.url)
        req = rs.WatchRunsRequest(project_id=idf.ProjectIdentifier(organization=ORG, name=PROJECT, domain=DOMAIN))
        stream = client.watch_runs(req)
        [snap] = await take(stream)
        assert [r.action.id.run.name for r in snap.runs] == ["w1"]
        await create_run(http, "w2")
        await report(http, [("w1", "RUNNING", None)])
        seen: dict[str, int] = {}
        async with asyncio.timeout(10):
            while seen.get("w1") != RUNNING or "w2" not in seen:
                for r in (await anext(stream)).runs:
                    seen[r.action.id.run.name] = r.action.status.phase
        other = rs.WatchRunsRequest(project_id=idf.ProjectIdentifier(organization=ORG, name="other", domain=DOMAIN))
        [empty] = await take(client.watch_runs(other))
        assert list(empty.runs) == []
