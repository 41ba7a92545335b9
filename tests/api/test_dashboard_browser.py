"""The dashboard in a real browser (headless Chromium, driven over the DevTools protocol): the list
shows the runs from the REST API, and changes arrive live through the SSE watch."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.api.watch_client import create_run, report
from tests.conftest import IN_CI
from tests.support import ServerProcess


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if IN_CI:
            pytest.fail("chromium is not installed and CI=true: the browser test must run (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


class Page:
    """One browser tab: navigate, and evaluate JavaScript expressions."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        msg_id = self.next_id
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def text(self, selector: str) -> str:
        expr = f"(document.querySelector({json.dumps(selector)}) || {{innerText: ''}}).innerText"
        got = await self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return str(got["result"].get("value", ""))

    async def wait_for_text(self, selector: str, pattern: str, within: float = 15) -> str:
        """The element's text once it matches ``pattern`` (a regular expression)."""
        text = ""
        async with asyncio.timeout(within):
            while not re.search(pattern, text):
                await asyncio.sleep(0.1)
                text = await self.text(selector)
        return text


@asynccontextmanager
async def browser_page(tmp_path: Path) -> AsyncIterator[Page]:
    proc = await asyncio.create_subprocess_exec(
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--remote-debugging-port=0", f"--user-data-dir={tmp_path / 'profile'}", "about:blank",
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "LANG": "C"},
    )
    try:
        assert proc.stderr is not None
        port = None
        for _ in range(200):  # "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..."
            async with asyncio.timeout(30):
                line = (await proc.stderr.readline()).decode(errors="replace")
            m = re.search(r"ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        assert port is not None, "chromium did not report its DevTools port"
        async with httpx.AsyncClient(timeout=10) as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with connect(ws_url, max_size=None) as ws:
            yield Page(ws)
    finally:
        proc.kill()
        await proc.wait()


async def test_the_dashboard_lists_runs_and_follows_changes_live(server: ServerProcess, tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await create_run(http, "first-run")
        async with browser_page(tmp_path) as page:
            await page.call("Page.navigate", url=server.url + "/")
            rows = await page.wait_for_text("#rows", r"first-run")
            assert "QUEUED" in rows
            # A change made after the page loaded arrives through the SSE watch, without a reload.
            await report(http, [("first-run", "RUNNING", None)])
            await page.wait_for_text("#rows", r"first-run\s+RUNNING")
            # So does a run created meanwhile.
            await create_run(http, "second-run")
            await page.wait_for_text("#rows", r"second-run")
            stats = await page.text("#cards")
            assert stats  # the stat cards rendered
