"""Bad input answers INVALID_ARGUMENT naming the problem — never UNKNOWN or INTERNAL; a database
outage answers UNAVAILABLE."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from connectrpc.code import Code
from flyteidl2.common import identifier_pb2, list_pb2
from flyteidl2.workflow import run_service_pb2 as rs

from tests.api.connect.clients import CURL_HEADERS, code_of, post_json, project_id, run_client, run_id
from tests.conftest import require_db
from tests.support import PG_HOST, PG_PORT, ServerProcess, create_pg_database, drop_pg_database
from tests.tcp_proxy import TcpProxy

F = list_pb2.Filter
LIST = "/flyteidl2.workflow.RunService/ListRuns"

# (what is wrong, JSON body for ListRuns / GetRunDetails, words the message must contain)
BAD_JSON = [
    ("missing scope", "ListRuns", {}, ["scope_by"]),
    ("unknown phase", "ListRuns",
     {"projectId": project_id(),
      "request": {"filters": [{"field": "phase", "function": "VALUE_IN", "values": ["5", "77"]}]}},
     ["phase", "77"]),
    ("unknown phase name", "ListRuns",
     {"projectId": project_id(), "request": {"filters": [{"field": "phase", "function": "EQUAL", "values": ["DONE"]}]}},
     ["phase", "DONE"]),
    ("unknown field", "ListRuns",
     {"projectId": project_id(), "request": {"filters": [{"field": "colour", "function": "EQUAL", "values": ["x"]}]}},
     ["colour"]),
    ("limit too big", "ListRuns", {"projectId": project_id(), "request": {"limit": 201}}, ["limit", "201"]),
    ("negative limit", "ListRuns", {"projectId": project_id(), "request": {"limit": -1}}, ["limit"]),
    ("bad token", "ListRuns", {"projectId": project_id(), "request": {"token": "garbage!"}}, ["cursor"]),
    ("naive time", "ListRuns",
     {"projectId": project_id(), "request": {"filters": [
         {"field": "created_at", "function": "GREATER_THAN", "values": ["2026-01-01T00:00:00"]}]}},
     ["created_at", "timezone"]),
    ("over-long run name", "GetRunDetails", {"runId": run_id("x" * 31)}, ["run_id.name", "30"]),
    ("over-long project", "GetRunDetails", {"runId": run_id("r", project="p" * 64)}, ["run_id.project", "63"]),
    ("missing run id", "GetRunDetails", {}, ["run_id"]),
    ("empty action name", "GetActionDetails", {"actionId": {"run": run_id("r"), "name": ""}}, ["action_id.name"]),
    ("create without task", "CreateRun", {"runId": run_id("r")}, ["task"]),
    ("unknown JSON field", "ListRuns", {"projectId": project_id(), "colour": 1}, ["malformed", "colour"]),
    ("wrong JSON type", "ListRuns", {"projectId": project_id(), "request": {"limit": "many"}}, ["malformed"]),
]


def test_bad_json_requests_are_invalid_argument(server: ServerProcess) -> None:
    for what, method, body, words in BAD_JSON:
        r = post_json(server.url, method, body)
        assert r.status_code == 400, (what, r.status_code, r.text)
        err = r.json()
        assert err["code"] == "invalid_argument", (what, err)
        for word in words:
            assert word in err["message"], (what, err["message"])


def test_malformed_bodies_are_invalid_argument(server: ServerProcess) -> None:
    proto = {"Content-Type": "application/proto", "Connect-Protocol-Version": "1"}
    cases = [
        (b"{not json", CURL_HEADERS, "JSON"),
        (b"\xff\xff\xff\xff\x0f", proto, "binary"),
        (b"not gzip at all", {**proto, "Content-Encoding": "gzip"}, "gzip"),
        (gzip.compress(b"\x0a\xff\xff"), {**proto, "Content-Encoding": "gzip"}, "binary"),
    ]
    for body, headers, word in cases:
        r = httpx.post(server.url + LIST, content=body, headers=headers)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["code"] == "invalid_argument" and word in r.json()["message"], r.text
    # the server keeps serving afterwards
    assert post_json(server.url, "ListRuns", {"projectId": project_id()}).status_code == 200


def test_errors_through_the_connect_client(server: ServerProcess) -> None:
    with run_client(server.url) as client:
        code, message = code_of(lambda: client.list_runs(rs.ListRunsRequest()))
        assert code is Code.INVALID_ARGUMENT and "scope_by" in message
        code, message = code_of(lambda: client.list_runs(rs.ListRunsRequest(
            project_id=identifier_pb2.ProjectIdentifier(**project_id()),
            request=list_pb2.ListRequest(filters=[F(field="phase", function=F.EQUAL, values=["99"])]),
        )))
        assert code is Code.INVALID_ARGUMENT and "99" in message
        code, message = code_of(lambda: client.get_run_details(
            rs.GetRunDetailsRequest(run_id=identifier_pb2.RunIdentifier(**run_id("n" * 40)))))
        assert code is Code.INVALID_ARGUMENT and "run_id.name" in message
        code, _ = code_of(lambda: client.get_run_details(
            rs.GetRunDetailsRequest(run_id=identifier_pb2.RunIdentifier(**run_id("nope")))))
        assert code is Code.NOT_FOUND


@pytest.fixture
def pg_through_proxy() -> Iterator[tuple[TcpProxy, str]]:
    require_db("postgres")
    url = create_pg_database()
    proxy = TcpProxy(PG_HOST, PG_PORT)
    proxy.start()
    try:
        yield proxy, url.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{proxy.port}")
    finally:
        proxy.close()
        drop_pg_database(url)


def test_database_outage_is_unavailable(pg_through_proxy: tuple[TcpProxy, str], tmp_path: Path) -> None:
    proxy, url = pg_through_proxy
    server = ServerProcess(url, log_path=tmp_path / "server.log").wait_ready()
    try:
        with run_client(server.url) as client:
            req = rs.ListRunsRequest(project_id=identifier_pb2.ProjectIdentifier(**project_id()))
            assert list(client.list_runs(req).runs) == []
            proxy.stop()
            code, message = code_of(lambda: client.list_runs(req))
            assert code is Code.UNAVAILABLE, message
            code, _ = code_of(lambda: client.get_run_details(
                rs.GetRunDetailsRequest(run_id=identifier_pb2.RunIdentifier(**run_id("r")))))
            assert code is Code.UNAVAILABLE
    finally:
        server.stop()
