"""Settings: the YAML file (the ``runs:`` shape) plus ``RUNTRACK_*`` environment variables.

Settings are built once at start-up by :func:`load_settings` and passed down; nothing here runs at
import time. Precedence, lowest first: built-in defaults, the YAML file, environment variables,
command-line flags (applied by the CLI through :func:`Settings.with_overrides`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runtrack.errors import ConfigError

DEFAULT_SQLITE_FILE = "./runtrack.db"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> timedelta:
    """``90``, ``"90s"``, ``"15m"``, ``"1h"``, ``"30d"``, ``"250ms"`` → timedelta (bare numbers are seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 1h, 30d)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ServerBlock(_Strict):
    host: str = DEFAULT_HOST
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    watch_buffer_size: int = Field(100, alias="watchBufferSize", ge=1)


class SqliteBlock(_Strict):
    file: str


class PostgresBlock(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(5432, ge=1, le=65535)
    dbname: str = "runtrack"
    username: str = "postgres"
    password: str = ""
    extra_options: str = Field("", alias="extraOptions")
    max_idle_connections: int = Field(10, alias="maxIdleConnections", ge=0)
    max_open_connections: int = Field(20, alias="maxOpenConnections", ge=1)
    conn_max_life_time: str = Field("1h", alias="connMaxLifeTime")

    @field_validator("conn_max_life_time")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v


class DatabaseBlock(_Strict):
    sqlite: SqliteBlock | None = None
    postgres: PostgresBlock | None = None


class RetentionBlock(_Strict):
    older_than: str = Field("30d", alias="olderThan")
    phases: list[str] = Field(default_factory=lambda: ["SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"])
    interval: str = "1h"
    enabled: bool = True

    @field_validator("older_than", "interval")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v


class RunsBlock(_Strict):
    server: ServerBlock = ServerBlock()
    database: DatabaseBlock = DatabaseBlock()
    heartbeat_timeout: str = Field("360s", alias="heartbeatTimeout")
    sweep_interval: str = Field("30s", alias="sweepInterval")
    stats_cache_ttl: str = Field("30s", alias="statsCacheTTL")
    stats_cache_size: int = Field(1024, alias="statsCacheSize", ge=1)
    log_cleanup_delay: str = Field("0s", alias="logCleanupDelay")
    retention: RetentionBlock | None = None

    @field_validator("heartbeat_timeout", "sweep_interval", "stats_cache_ttl", "log_cleanup_delay")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v


class LoggerBlock(_Strict):
    level: int = Field(4, ge=0, le=6)
    show_source: bool = Field(False, alias="show-source")
    format: Literal["text", "json"] = "json"


class FileConfig(_Strict):
    runs: RunsBlock = RunsBlock()
    logger: LoggerBlock = LoggerBlock()


@dataclasses.dataclass(frozen=True)
class Retention:
    older_than: timedelta
    phases: tuple[str, ...]
    interval: timedelta


@dataclasses.dataclass(frozen=True)
class Settings:
    """The resolved settings every component receives."""

    database_url: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    watch_buffer_size: int = 100
    pool_size: int = 10
    max_overflow: int = 10
    pool_recycle_s: float = 3600.0
    heartbeat_timeout: timedelta = timedelta(seconds=360)
    sweep_interval: timedelta = timedelta(seconds=30)
    stats_cache_ttl: timedelta = timedelta(seconds=30)
    stats_cache_size: int = 1024
    log_cleanup_delay: timedelta = timedelta(0)
    retention: Retention | None = None
    log_level: int = 4
    log_show_source: bool = False
    log_format: str = "json"
    migrate_on_start: bool = True

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _first_error(exc: ValidationError, prefix: str = "") -> ConfigError:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(root)"
    key = f"{prefix}{key}"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return ConfigError(key, msg)


def _sqlite_url(file: str) -> str:
    path = Path(file).expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise ConfigError("runs.database.sqlite.file", f"directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigError("runs.database.sqlite.file", f"directory {str(parent)!r} is not writable")
    return f"sqlite+aiosqlite:///{path}"


def _postgres_url(pg: PostgresBlock) -> str:
    user = quote(pg.username, safe="")
    auth = f"{user}:{quote(pg.password, safe='')}@" if pg.password else f"{user}@"
    url = f"postgresql+asyncpg://{auth}{pg.host}:{pg.port}/{quote(pg.dbname, safe='')}"
    opts = [o for o in re.split(r"[\s&]+", pg.extra_options.strip()) if o]
    # asyncpg does not understand libpq's sslmode=disable; it is the default here anyway.
    opts = [o for o in opts if o != "sslmode=disable"]
    if opts:
        url += "?" + "&".join(opts)
    return url


def normalize_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` and ``sqlite:///`` URLs and pick the async drivers."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite:///")):
        return url
    raise ConfigError("RUNTRACK_DATABASE_URL", f"unsupported database URL {url!r} (use postgresql:// or sqlite:///)")


def load_settings(config_path: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from an optional YAML file and the environment. Raises :class:`ConfigError`."""
    env = os.environ if environ is None else environ
    config_path = config_path or env.get("RUNTRACK_CONFIG") or None
    raw: Any = {}
    if config_path:
        try:
            with open(config_path, encoding="utf-8") as fh:
                raw = yaml.safe_load(fh) or {}
        except FileNotFoundError:
            raise ConfigError("--config", f"file {config_path!r} not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError("--config", f"not valid YAML: {exc}".splitlines()[0]) from None
        if not isinstance(raw, dict):
            raise ConfigError("(root)", "the config file must hold a mapping")
    try:
        cfg = FileConfig.model_validate(raw)
    except ValidationError as exc:
        raise _first_error(exc) from None

    runs = cfg.runs
    db = runs.database
    if db.sqlite is not None and db.postgres is not None:
        raise ConfigError("runs.database", "set either sqlite or postgres, not both")

    pool_size, max_overflow, recycle = 10, 10, 3600.0
    if env.get("RUNTRACK_DATABASE_URL"):
        url = normalize_database_url(env["RUNTRACK_DATABASE_URL"])
        if url.startswith("sqlite"):
            _sqlite_url(url.split(":///", 1)[1])
    elif db.postgres is not None:
        url = _postgres_url(db.postgres)
        pool_size = max(1, db.postgres.max_idle_connections)
        max_overflow = max(0, db.postgres.max_open_connections - pool_size)
        recycle = parse_duration(db.postgres.conn_max_life_time).total_seconds()
    else:
        url = _sqlite_url(db.sqlite.file if db.sqlite else DEFAULT_SQLITE_FILE)

    host = env.get("RUNTRACK_HOST") or runs.server.host
    port = runs.server.port
    if env.get("RUNTRACK_PORT"):
        try:
            port = int(env["RUNTRACK_PORT"])
        except ValueError:
            raise ConfigError("RUNTRACK_PORT", f"not a port number: {env['RUNTRACK_PORT']!r}") from None
        if not 0 <= port <= 65535:
            raise ConfigError("RUNTRACK_PORT", f"out of range: {port}")

    retention = None
    if runs.retention is not None and runs.retention.enabled:
        retention = Retention(
            older_than=parse_duration(runs.retention.older_than),
            phases=tuple(p.upper() for p in runs.retention.phases),
            interval=parse_duration(runs.retention.interval),
        )
    log_level = cfg.logger.level
    if env.get("RUNTRACK_LOG_LEVEL"):
        log_level = _log_level_from_env(env["RUNTRACK_LOG_LEVEL"])

    return Settings(
        database_url=url,
        host=host,
        port=port,
        watch_buffer_size=runs.server.watch_buffer_size,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle_s=recycle,
        heartbeat_timeout=parse_duration(runs.heartbeat_timeout),
        sweep_interval=parse_duration(runs.sweep_interval),
        stats_cache_ttl=parse_duration(runs.stats_cache_ttl),
        stats_cache_size=runs.stats_cache_size,
        log_cleanup_delay=parse_duration(runs.log_cleanup_delay),
        retention=retention,
        log_level=log_level,
        log_show_source=cfg.logger.show_source,
        log_format=cfg.logger.format,
    )


_LEVEL_WORDS = {"error": 2, "warn": 3, "warning": 3, "info": 4, "debug": 5}


def _log_level_from_env(value: str) -> int:
    v = value.strip().lower()
    if v in _LEVEL_WORDS:
        return _LEVEL_WORDS[v]
    if v.isdigit() and 0 <= int(v) <= 6:
        return int(v)
    raise ConfigError("RUNTRACK_LOG_LEVEL", f"unknown level {value!r} (error, warn, info, debug or 0-6)")
