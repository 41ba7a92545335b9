"""``runtrack runs stats`` and ``runtrack runs delete``: fleet commands over the REST API."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from runtrack.cli_runs import (
    DEFAULT_URL,
    ApiClient,
    CreatedByOpt,
    DomainOpt,
    FilterQueryOpt,
    JsonOpt,
    LabelOpt,
    NameOpt,
    OrgOpt,
    ProjectOpt,
    StatusOpt,
    UrlOpt,
    UserOpt,
    fail,
    filter_params,
)

MAX_BATCH = 200


def _body(params: list[tuple[str, Any]]) -> dict[str, Any]:
    """The query-parameter form of a filter as a bulk-delete body (repeatable keys become lists)."""
    body: dict[str, Any] = {}
    for key, value in params:
        if key in ("status", "label"):
            body.setdefault(key, []).append(value)
        else:
            body[key] = value
    return body


def stats(
    status: StatusOpt = None,
    project: ProjectOpt = None,
    domain: DomainOpt = None,
    org: OrgOpt = None,
    created_by: CreatedByOpt = None,
    name: NameOpt = None,
    label: LabelOpt = None,
    filter_query: FilterQueryOpt = None,
    url: UrlOpt = DEFAULT_URL,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How many runs match, by status and by phase (the server caches the answer for a few seconds)."""
    client = ApiClient(url, user=user)
    data = client.get("/runs/stats", filter_params(status, project, domain, org, created_by, name, label, filter_query))
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_header=True)
    table.add_column("STATUS")
    table.add_column("RUNS", justify="right")
    for key, n in data["counts_by_status"].items():
        table.add_row(key, str(n))
    table.add_row("TOTAL", str(data["total_runs"]))
    console = Console(width=120)
    console.print(table)
    phases = ", ".join(f"{k}={v}" for k, v in data["counts_by_phase"].items() if v)
    console.print(f"by phase: {phases or '-'}")
    console.print(f"as of {data['cached_at']}")


def delete(
    status: StatusOpt = None,
    project: ProjectOpt = None,
    domain: DomainOpt = None,
    org: OrgOpt = None,
    created_by: CreatedByOpt = None,
    name: NameOpt = None,
    label: LabelOpt = None,
    filter_query: FilterQueryOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted (one batch).")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Abort runs that are not terminal and delete them too.")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", help="Runs per request (1-200).", min=1, max=MAX_BATCH)] = MAX_BATCH,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOpt = DEFAULT_URL,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete the runs matching the filters (at least one is required), newest first, in batches.

    Runs not yet terminal are skipped unless --force. Logs of deleted runs are removed by the server
    shortly after."""
    params = filter_params(status, project, domain, org, created_by, name, label, filter_query)
    if not params:
        fail("give at least one filter (deleting everything takes an explicit filter)", 2)
    client = ApiClient(url, user=user)
    body = {**_body(params), "limit": batch, "force": force}
    matched = int(client.get("/runs/count", params)["count"])
    if dry_run:
        data = client.request("POST", "/runs/bulk_delete", body={**body, "dry_run": True})
        if as_json:
            typer.echo(json.dumps({**data, "matched": matched}, indent=2))
            return
        for run in data["deleted"]:
            typer.echo(f"would delete {run}")
        for s in data["skipped"]:
            typer.echo(f"would skip {s['run']}: {s['reason']}")
        more = f" (showing the first batch of {batch})" if matched > len(data["deleted"]) + len(data["skipped"]) else ""
        typer.echo(f"{matched} run(s) match{more}", err=True)
        return
    if matched == 0:
        typer.echo("no runs match")
        return
    if not yes and sys.stdin.isatty():
        typer.confirm(f"delete up to {matched} run(s)?", abort=True)
    deleted, skipped = _delete_batches(client, body, matched, quiet=as_json)
    if as_json:
        typer.echo(json.dumps({"deleted": deleted, "skipped": list(skipped.values())}, indent=2))
        return
    typer.echo(f"deleted {len(deleted)} run(s)")
    if skipped:
        typer.echo(f"skipped {len(skipped)} run(s) not yet terminal (use --force to abort and delete them)")


def _delete_batches(
    client: ApiClient, body: dict[str, Any], matched: int, *, quiet: bool
) -> tuple[list[str], dict[str, dict[str, str]]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    deleted: list[str] = []
    skipped: dict[str, dict[str, str]] = {}
    with Progress(
        TextColumn("[bold]deleting runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        disable=quiet, console=None,
    ) as progress:
        task = progress.add_task("delete", total=matched)
        while True:
            data = client.request("POST", "/runs/bulk_delete", body=body)
            for s in data["skipped"]:
                skipped[s["run"]] = s
            if not data["deleted"]:
                break
            deleted += data["deleted"]
            progress.update(task, advance=len(data["deleted"]), total=max(matched - len(skipped), len(deleted)))
        progress.update(task, total=len(deleted))
    return deleted, skipped


def register(runs_app: typer.Typer) -> None:
    runs_app.command("stats")(stats)
    runs_app.command("delete")(delete)
