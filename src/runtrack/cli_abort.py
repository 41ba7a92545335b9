"""``runtrack runs abort ORG/PROJECT/DOMAIN/NAME``: abort a run on a running server."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from runtrack.cli_runs import DEFAULT_URL, ApiClient, UrlOpt, UserOpt, fail, runs_app


@runs_app.command("abort")
def abort(
    run: Annotated[str, typer.Argument(help="ORG/PROJECT/DOMAIN/NAME")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded on the run).")] = "",
    action: Annotated[str | None, typer.Option("--action", help="Abort only this action and its children.")] = None,
    url: UrlOpt = DEFAULT_URL,
    user: UserOpt = None,
) -> None:
    """Abort a run (every unfinished action becomes ABORTED). An already finished run is left alone."""
    parts = run.split("/")
    if len(parts) != 4 or not all(parts):
        fail(f"expected ORG/PROJECT/DOMAIN/NAME, got {run!r}", 2)
    path = "/runs/" + "/".join(quote(p, safe="") for p in parts)
    if action:
        path += f"/actions/{quote(action, safe='')}"
    out = ApiClient(url, user=user).request("POST", path + "/abort", body={"reason": reason})
    aborted = out.get("aborted", []) if isinstance(out, dict) else []
    if aborted:
        typer.echo(f"aborted {run}: {', '.join(aborted)}")
    else:
        typer.echo(f"{run} had already ended; nothing to abort")
