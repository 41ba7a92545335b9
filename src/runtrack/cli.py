"""The ``runtrack`` command line: serve, migrate, and the operator commands."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, NoReturn

import typer

import runtrack.cli_abort  # noqa: F401  (registers `runs abort`)
from runtrack import cli_fleet, cli_gc
from runtrack.cli_runs import runs_app
from runtrack.config import Settings, load_settings
from runtrack.errors import ConfigError, RuntrackError

app = typer.Typer(
    name="runtrack",
    help="runtrack: a runs service for workflow runs, their actions and attempts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(runs_app, name="runs")

ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="YAML config file (the `runs:` shape).", envvar="RUNTRACK_CONFIG")
]
DbOpt = Annotated[
    str | None, typer.Option("--database-url", help="Overrides the database (postgresql://… or sqlite:///…).")
]


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"runtrack: {message}", err=True)
    raise typer.Exit(code)


def settings_from(config: str | None, database_url: str | None = None, **overrides: object) -> Settings:
    """Load settings or exit 2 with one line naming the bad key."""
    import os

    env = dict(os.environ)
    if database_url:
        env["RUNTRACK_DATABASE_URL"] = database_url
    try:
        settings = load_settings(config, env)
    except ConfigError as exc:
        _fail(f"bad configuration: {exc.message}")
    return settings.with_overrides(**overrides)


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8090).")] = None,
    database_url: DbOpt = None,
    no_migrate: Annotated[bool, typer.Option("--no-migrate", help="Do not apply migrations on start.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="RUNTRACK_WORKERS",
            help="Server processes sharing the port (PostgreSQL only; each is a replica). Default 1.",
        ),
    ] = 1,
) -> None:
    """Serve the Connect API, the REST API and the dashboard on one port."""
    from runtrack.logs import setup_logging
    from runtrack.serve import run_server, run_workers

    settings = settings_from(config, database_url, host=host, port=port)
    if no_migrate:
        settings = settings.with_overrides(migrate_on_start=False)
    if workers > 1 and not settings.database_url.startswith("postgresql"):
        _fail("--workers above 1 needs PostgreSQL (on SQLite, watchers are fed within one process)")
    setup_logging(settings.log_level, show_source=settings.log_show_source, fmt=settings.log_format)
    if workers == 1:
        code = run_server(settings)
    else:
        try:
            code = run_workers(settings, workers)
        except OSError as exc:
            _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}", 1)
    if code:
        sys.exit(code)


@app.command()
def migrate(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Apply pending schema migrations and exit."""
    from runtrack.storage import migrate as mig
    from runtrack.storage.db import create_database

    settings = settings_from(config, database_url)

    async def run() -> tuple[str | None, str]:
        db = create_database(settings)
        try:
            return await mig.upgrade(db)
        finally:
            await db.dispose()

    try:
        before, after = asyncio.run(run())
    except RuntrackError as exc:
        _fail(exc.message, 1)
    except OSError as exc:
        _fail(f"database unavailable: {exc}", 1)
    if before == after:
        typer.echo(f"schema already at {after}")
    else:
        typer.echo(f"schema migrated from {before or 'empty'} to {after}")


cli_gc.register(app, settings_from)
cli_fleet.register(runs_app)


def main() -> None:
    app()
