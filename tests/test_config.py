"""Configuration: the YAML shape, environment variables, defaults and clear failures."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from runtrack.config import load_settings
from runtrack.errors import ConfigError
from tests.support import REPO

FULL = """
runs:
  server: {host: "0.0.0.0", port: 9001, watchBufferSize: 50}
  database:
    postgres:
      host: db.internal
      port: 5433
      dbname: runs
      username: runs
      password: "s3cret/x"
      extraOptions: "sslmode=disable"
      maxIdleConnections: 4
      maxOpenConnections: 12
      connMaxLifeTime: 1h
logger: {level: 5, show-source: true}
"""


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return str(p)


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(None, {})
    assert s.database_url == "sqlite+aiosqlite:///runtrack.db"
    assert (s.host, s.port) == ("127.0.0.1", 8090)
    assert s.heartbeat_timeout == timedelta(seconds=360)
    assert s.retention is None


def test_original_yaml_shape(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, FULL), {})
    assert s.database_url == "postgresql+asyncpg://runs:s3cret%2Fx@db.internal:5433/runs"
    assert (s.host, s.port, s.watch_buffer_size) == ("0.0.0.0", 9001, 50)
    assert (s.pool_size, s.max_overflow, s.pool_recycle_s) == (4, 8, 3600.0)
    assert (s.log_level, s.log_show_source) == (5, True)


def test_sqlite_block_and_env_overrides(tmp_path: Path) -> None:
    cfg = write(tmp_path, f"runs:\n  database:\n    sqlite: {{file: '{tmp_path}/x.db'}}\n")
    assert load_settings(cfg, {}).database_url == f"sqlite+aiosqlite:///{tmp_path}/x.db"
    env = {"RUNTRACK_DATABASE_URL": "postgresql://u@h/d", "RUNTRACK_HOST": "0.0.0.0", "RUNTRACK_PORT": "9"}
    s = load_settings(cfg, env)
    assert (s.database_url, s.host, s.port) == ("postgresql+asyncpg://u@h/d", "0.0.0.0", 9)


def test_retention_block(tmp_path: Path) -> None:
    cfg = write(tmp_path, "runs:\n  retention: {olderThan: 30d, phases: [SUCCEEDED], interval: 1h}\n")
    r = load_settings(cfg, {}).retention
    assert r is not None and r.older_than == timedelta(days=30) and r.phases == ("SUCCEEDED",)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("runs:\n  server: {prot: 1}\n", "runs.server.prot"),
        ("runs:\n  server: {port: abc}\n", "runs.server.port"),
        ("runs:\n  database:\n    sqlite: {file: a.db}\n    postgres: {host: x}\n", "runs.database"),
        ("runs:\n  database:\n    sqlite: {file: /no/such/dir/a.db}\n", "runs.database.sqlite.file"),
        ("runs:\n  heartbeatTimeout: soon\n", "runs.heartbeatTimeout"),
        ("bogus: 1\n", "bogus"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), {})
    assert info.value.key.startswith(key.split(".")[0])
    assert key.replace("heartbeatTimeout", "heartbeat") in str(info.value).replace("heartbeatTimeout", "heartbeat")


def test_bad_env(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RUNTRACK_PORT"):
        load_settings(None, {"RUNTRACK_PORT": "eighty"})
    with pytest.raises(ConfigError, match="RUNTRACK_DATABASE_URL"):
        load_settings(None, {"RUNTRACK_DATABASE_URL": "mysql://x"})


def test_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    cfg = write(tmp_path, "runs:\n  server: {prot: 1}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "runtrack", "serve", "--config", cfg],
        capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "runs.server.prot" in lines[0] and "unknown key" in lines[0]
