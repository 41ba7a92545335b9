"""Run the real flyte SDK (in a child process) and the real flyte CLI against a test server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.api.connect.states import DOMAIN, ORG, PROJECT

DRIVER = Path(__file__).with_name("sdk_driver.py")
REPO = Path(__file__).resolve().parents[3]
FLYTE = Path(sys.executable).with_name("flyte")


def sdk(url: str, *ops: dict[str, Any], project: str = PROJECT) -> list[dict[str, Any]]:
    """Results of the operations, in order (see sdk_driver.py)."""
    proc = subprocess.run(
        [sys.executable, str(DRIVER), url, ORG, project, DOMAIN, json.dumps(list(ops))],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results: list[dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


def ok(result: dict[str, Any]) -> Any:
    assert "ok" in result, result
    return result["ok"]


def cli(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``flyte --endpoint URL --insecure --org ORG -c {} <args>`` with a pinned empty config."""
    config = tmp_path / "flyte-config.yaml"
    config.write_text("{}\n")
    env = {**os.environ, "FLYTECTL_CONFIG": str(config), "COLUMNS": "400", "NO_COLOR": "1"}
    return subprocess.run(
        [str(FLYTE), "--endpoint", url, "--insecure", "--org", ORG, "-c", str(config), *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
