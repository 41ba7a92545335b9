"""``runtrack gc``: delete expired runs on demand, directly on the database.

It reads the database from the config file / ``--database-url`` (like ``migrate``), so it works
while no server runs (e.g. from a scheduled job), and it uses the same service code as the
server's retention loop: batches of at most 200, each its own transaction, runs not yet terminal
never touched. The deleted runs' log lines are cleaned before it exits (servers would also pick up
anything left, e.g. after an interrupted gc).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runtrack.config import Settings, parse_duration
from runtrack.errors import InvalidArgument, RuntrackError

DEFAULT_PHASES = ("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT")


def _older_than(value: str | None, settings: Settings) -> timedelta:
    if value is None:
        if settings.retention is None:
            raise typer.BadParameter("give --older-than (no retention is configured)", param_hint="--older-than")
        return settings.retention.older_than
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None


async def _gc(settings: Settings, older_than: timedelta, phases: list[str], dry_run: bool, console: Console) -> int:
    from runtrack.service.container import Services

    svc = Services.build(settings)
    try:
        with Progress(
            TextColumn("[bold]deleting expired runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=dry_run,
            disable=dry_run,
        ) as progress:
            task = progress.add_task("gc", total=None)
            result = await svc.retention.gc(
                older_than,
                phases,
                dry_run=dry_run,
                on_start=lambda n: progress.update(task, total=n),
                on_batch=lambda n: progress.advance(task, n),
            )
        cutoff = result.cutoff.isoformat().replace("+00:00", "Z")
        if dry_run:
            console.print(f"would delete {result.matched} run(s) created before {cutoff} in {', '.join(phases)}")
            return 0
        lines_before = svc.log_cleanup.deleted_lines
        await svc.log_cleanup.drain()
        console.print(
            f"deleted {result.deleted} run(s) created before {cutoff}; "
            f"removed {svc.log_cleanup.deleted_lines - lines_before} log line(s)"
        )
        return 0
    finally:
        await svc.close()


def register(app: typer.Typer, settings_from: Callable[[str | None, str | None], Settings]) -> None:
    """Add ``gc`` to the top-level command group."""

    @app.command()
    def gc(
        older_than: Annotated[
            str | None, typer.Option("--older-than", help="Delete runs created longer ago than this (e.g. 30d, 12h).")
        ] = None,
        phase: Annotated[
            list[str] | None,
            typer.Option("--phase", help="Terminal phase to delete (repeatable; default SUCCEEDED, FAILED, "
                         "ABORTED, TIMED_OUT or the configured retention phases)."),
        ] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be deleted.")] = False,
        config: Annotated[str | None, typer.Option("--config", "-c", help="YAML config file.",
                                                   envvar="RUNTRACK_CONFIG")] = None,
        database_url: Annotated[str | None, typer.Option("--database-url", help="Overrides the database.")] = None,
    ) -> None:
        """Delete expired terminal runs (and their logs) in batches, directly on the database."""
        settings = settings_from(config, database_url)
        phases = list(phase or (settings.retention.phases if settings.retention else DEFAULT_PHASES))
        console = Console(stderr=False)
        try:
            code = asyncio.run(_gc(settings, _older_than(older_than, settings), phases, dry_run, console))
        except RuntrackError as exc:
            typer.echo(f"runtrack: {exc.message}", err=True)
            raise typer.Exit(2 if isinstance(exc, InvalidArgument) else 1) from None
        except OSError as exc:
            typer.echo(f"runtrack: database unavailable: {exc}", err=True)
            raise typer.Exit(1) from None
        raise typer.Exit(code)
