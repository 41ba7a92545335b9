"""Connect clients for the tests: connectrpc's own (binary proto, gzip request bodies) and raw HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from flyteidl2.task.task_service_connect import TaskServiceClientSync
from flyteidl2.workflow.run_service_connect import RunServiceClientSync

from tests.api.connect.states import DOMAIN, ORG, PROJECT

CURL_HEADERS = {"Content-Type": "application/json", "Accept": "*/*", "User-Agent": "curl/8.5.0"}


@contextmanager
def run_client(url: str) -> Iterator[RunServiceClientSync]:
    client = RunServiceClientSync(url)  # binary proto; requests gzip-compressed by default
    try:
        yield client
    finally:
        client.close()


@contextmanager
def task_client(url: str) -> Iterator[TaskServiceClientSync]:
    client = TaskServiceClientSync(url)
    try:
        yield client
    finally:
        client.close()


def code_of(call: Any) -> tuple[Code, str]:
    """The Connect code and message ``call()`` fails with."""
    try:
        call()
    except ConnectError as exc:
        return exc.code, exc.message
    raise AssertionError("the call succeeded")


def post_json(
    url: str, method: str, body: Any, service: str = "flyteidl2.workflow.RunService", **kw: Any
) -> httpx.Response:
    return httpx.post(f"{url}/{service}/{method}", json=body, headers=CURL_HEADERS, timeout=30, **kw)


def run_id(name: str, project: str = PROJECT) -> dict[str, str]:
    return {"org": ORG, "project": project, "domain": DOMAIN, "name": name}


def project_id(project: str = PROJECT) -> dict[str, str]:
    return {"organization": ORG, "name": project, "domain": DOMAIN}
