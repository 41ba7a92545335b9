"""``runtrack runs watch``: follow the server-sent events of ``GET /api/v1/watch``."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import typer

from runtrack.cli_runs import ApiClient, fail


def _line(event: str, data: dict[str, Any]) -> str:
    if event == "run":
        ident = f"{data['org']}/{data['project']}/{data['domain']}/{data['name']}"
        return f"{data.get('updated_at', '')[:23]:23}  {data['phase']:<22} {ident}  v{data.get('version', '')}"
    if event == "deleted":
        return f"{'':23}  {'DELETED':<22} {data['org']}/{data['project']}/{data['domain']}/{data['name']}"
    if event == "reset":
        return "-- the server could not resume: a fresh snapshot follows --"
    return "-- watching for changes --"


def _emit(event: str, data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"event": event, "data": data}))
    else:
        typer.echo(_line(event, data))


def follow(client: ApiClient, params: list[tuple[str, Any]], *, as_json: bool) -> None:
    """Print events until interrupted; after a dropped connection, reconnect with ``Last-Event-ID``."""
    last_id: str | None = None
    failures = 0
    while True:
        headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": last_id} if last_id else {})
        try:
            with client.http.stream(
                "GET", "/api/v1/watch", params=client._params(params), headers=headers,
                timeout=httpx.Timeout(10.0, read=None),
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    try:
                        message = resp.json()["error"]["message"]
                    except (ValueError, KeyError, TypeError):
                        message = resp.text[:200]
                    fail(f"{resp.status_code}: {message}", 2 if resp.status_code < 500 else 1)
                failures = 0
                event, data = "message", ""
                for line in resp.iter_lines():
                    if line.startswith("id:"):
                        last_id = line[3:].strip()
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].strip()
                    elif line == "":
                        if data:
                            _emit(event, json.loads(data), as_json)
                        event, data = "message", ""
        except KeyboardInterrupt:
            return
        except httpx.HTTPError as exc:
            failures += 1
            if failures > 5:
                fail(f"cannot reach {client.base}: {exc}")
        time.sleep(min(0.5 * 2 ** max(failures - 1, 0), 10))
