"""``runtrack runs …``: commands that talk to a running server over its REST API.

Every command takes ``--url`` (default http://127.0.0.1:8090, or ``RUNTRACK_URL``) and uses
:class:`ApiClient`, which turns HTTP errors into one line on stderr and exit code 1 (2 for a
rejected request). New subcommands register on ``runs_app``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer

runs_app = typer.Typer(name="runs", help="List, inspect and manage runs on a runtrack server.", no_args_is_help=True)

DEFAULT_URL = "http://127.0.0.1:8090"
UrlOpt = Annotated[str, typer.Option("--url", help="Server base URL.", envvar="RUNTRACK_URL")]
UserOpt = Annotated[
    str | None, typer.Option("--user", help="Who is calling (resolves `me`).", envvar="RUNTRACK_USER")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"runtrack: {message}", err=True)
    raise typer.Exit(code)


class ApiClient:
    """A small synchronous client for the REST API; errors become a message and an exit code."""

    def __init__(self, url: str, *, user: str | None = None, timeout: float = 30.0) -> None:
        self.base = url.rstrip("/")
        self.user = user
        self.http = httpx.Client(base_url=self.base, timeout=timeout)

    def _params(self, params: Any) -> list[tuple[str, Any]]:
        items = list(params.items()) if isinstance(params, dict) else list(params or [])
        out = [(k, v) for k, v in items if v is not None and v != []]
        if self.user:
            out.append(("current_user", self.user))
        return out

    def request(self, method: str, path: str, *, params: Any = None, body: Any = None) -> Any:
        try:
            resp = self.http.request(method, "/api/v1" + path, params=self._params(params), json=body)
        except httpx.HTTPError as exc:
            fail(f"cannot reach {self.base}: {exc}")
        if resp.status_code >= 400:
            try:
                message = resp.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = resp.text[:200]
            fail(f"{resp.status_code}: {message}", 2 if resp.status_code < 500 else 1)
        return resp.json() if resp.content else None

    def get(self, path: str, params: Any = None) -> Any:
        return self.request("GET", path, params=params)


def filter_params(
    status: list[str] | None,
    project: str | None,
    domain: str | None,
    org: str | None,
    created_by: str | None,
    name: str | None,
    label: list[str] | None,
    filter_query: str | None,
) -> list[tuple[str, Any]]:
    """The shared run-selection parameters as REST query parameters."""
    params: list[tuple[str, Any]] = [("status", s) for s in status or []]
    params += [("label", x) for x in label or []]
    for key, value in (("project", project), ("domain", domain), ("org", org), ("created_by", created_by),
                       ("name", name), ("filter_query", filter_query)):
        if value is not None:
            params.append((key, value))
    return params


StatusOpt = Annotated[
    list[str] | None, typer.Option("--status", "-s", help="Phase or status group (pending, running, succeeded, "
                                   "failed, cancelled); repeatable.")
]
ProjectOpt = Annotated[str | None, typer.Option("--project", "-p")]
DomainOpt = Annotated[str | None, typer.Option("--domain", "-d")]
OrgOpt = Annotated[str | None, typer.Option("--org")]
CreatedByOpt = Annotated[str | None, typer.Option("--created-by", help="Creator; `me` is --user.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Substring of the run name.")]
LabelOpt = Annotated[list[str] | None, typer.Option("--label", "-l", help="key or key=value; repeatable.")]
FilterQueryOpt = Annotated[str | None, typer.Option("--filter-query", help="filter_query JSON (docs/queries.md).")]


def _short_time(t: str | None) -> str:
    return "" if not t else t.replace("T", " ")[:19]


def _duration(ms: int | None) -> str:
    if ms is None:
        return ""
    return f"{ms / 1000:.1f}s" if ms < 60_000 else f"{ms / 60_000:.1f}m"


def print_runs(runs: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("NAME", "STATUS", "PHASE", "ORG/PROJECT/DOMAIN", "CREATED BY", "CREATED", "DURATION"):
        table.add_column(col)
    for r in runs:
        table.add_row(
            r["name"], r["status"], r["phase"], f"{r['org']}/{r['project']}/{r['domain']}", r["created_by"],
            _short_time(r["created_at"]), _duration(r.get("duration_ms")),
        )
    Console(width=200).print(table)


@runs_app.command("ls")
def ls(
    status: StatusOpt = None,
    project: ProjectOpt = None,
    domain: DomainOpt = None,
    org: OrgOpt = None,
    created_by: CreatedByOpt = None,
    name: NameOpt = None,
    label: LabelOpt = None,
    filter_query: FilterQueryOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Page size (1-200).")] = 50,
    sort: Annotated[str, typer.Option("--sort", help="Field, `-` prefix for descending.")] = "-created_at",
    cursor: Annotated[str | None, typer.Option("--cursor", help="Continue from a previous page.")] = None,
    url: UrlOpt = DEFAULT_URL,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first; filters combine with AND (repeated --status values with OR)."""
    client = ApiClient(url, user=user)
    params = filter_params(status, project, domain, org, created_by, name, label, filter_query)
    params += [("limit", limit), ("sort", sort)] + ([("cursor", cursor)] if cursor else [])
    page = client.get("/runs", params)
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    print_runs(page["runs"])
    if page.get("next_cursor"):
        typer.echo(f"more: --cursor {page['next_cursor']}", err=True)


@runs_app.command("get")
def get(
    run: Annotated[str, typer.Argument(help="ORG/PROJECT/DOMAIN/NAME")],
    url: UrlOpt = DEFAULT_URL,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one run and its actions."""
    parts = run.split("/")
    if len(parts) != 4 or not all(parts):
        fail(f"expected ORG/PROJECT/DOMAIN/NAME, got {run!r}", 2)
    client = ApiClient(url, user=user)
    path = "/runs/" + "/".join(quote(p, safe="") for p in parts)
    data = client.get(path)
    actions = client.get(path + "/actions", {"limit": 200})["actions"]
    if as_json:
        typer.echo(json.dumps({**data, "actions": actions}, indent=2))
        return
    for key in ("org", "project", "domain", "name", "status", "phase", "created_by", "created_at",
                "started_at", "ended_at", "duration_ms", "attempts"):
        typer.echo(f"{key + ':':<12} {'' if data.get(key) is None else data[key]}")
    if data.get("task"):
        typer.echo(f"{'task:':<12} {data['task']['name']} {data['task']['version']}".rstrip())
    if data.get("labels"):
        typer.echo(f"{'labels:':<12} " + ", ".join(f"{k}={v}" for k, v in sorted(data["labels"].items())))
    if data.get("error"):
        typer.echo(f"{'error:':<12} {data['error']['kind']}: {data['error']['message']}")
    typer.echo("actions:")
    for a in actions:
        typer.echo(f"  {a['name']:<24} {a['status']:<10} {a['phase']:<22} attempts={a['attempts']}")


@runs_app.command("watch")
def watch(
    status: StatusOpt = None,
    project: ProjectOpt = None,
    domain: DomainOpt = None,
    org: OrgOpt = None,
    created_by: CreatedByOpt = None,
    name: NameOpt = None,
    label: LabelOpt = None,
    filter_query: FilterQueryOpt = None,
    snapshot: Annotated[int, typer.Option("--snapshot", help="Matching runs to show first (0-200).")] = 20,
    url: UrlOpt = DEFAULT_URL,
    user: UserOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
) -> None:
    """Follow changes of matching runs as they happen (GET /api/v1/watch); reconnects and resumes."""
    from runtrack.cli_watch import follow

    client = ApiClient(url, user=user)
    params = filter_params(status, project, domain, org, created_by, name, label, filter_query)
    follow(client, [*params, ("snapshot", snapshot)], as_json=as_json)
