"""The real flyte SDK against a real server: ``run.wait()`` and ``Run.watch()`` over WatchActionDetails."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api.watch_client import DOMAIN, ORG, PROJECT, create_run, report, wait_metric
from tests.support import REPO, ServerProcess

DRIVER = Path(__file__).with_name("watch_sdk_driver.py")


class Driver:
    def __init__(self, url: str, mode: str, name: str) -> None:
        env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), url, ORG, PROJECT, DOMAIN, mode, name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd="/tmp",
        )

    async def line(self, within: float = 30) -> str:
        assert self.proc.stdout is not None
        out = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), within)
        if not out:
            raise EOFError(self.proc.stderr.read() if self.proc.stderr else "")
        return out.strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


async def test_run_wait_returns_within_a_second_of_success(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await create_run(client, "waited")
        await report(client, [("waited", "RUNNING", None)])
        driver = Driver(server.url, "wait", "waited")
        try:
            assert await driver.line() == "READY"
            # wait() holds a WatchActionDetails stream now
            assert await wait_metric(client, "runtrack_watch_subscriptions", lambda v: v >= 1) >= 1
            await asyncio.sleep(0.3)
            t0 = time.time()
            await report(client, [("waited", "SUCCEEDED", None)])
            done = await driver.line(10)
            assert done.startswith("DONE "), done
            _, phase, at = done.split(" ")
            assert "SUCCEEDED" in phase
            elapsed = float(at) - t0
            print(f"run.wait() returned {elapsed * 1000:.0f} ms after the SUCCEEDED report")
            assert elapsed < 1.0
        finally:
            driver.close()
        # The stream ended at the terminal phase and released its subscription.
        assert await wait_metric(client, "runtrack_watch_subscriptions", lambda v: v == 0) == 0


async def test_run_watch_yields_the_phases_in_order(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await create_run(client, "watched")
        driver = Driver(server.url, "watch", "watched")
        try:
            assert await driver.line() == "READY"
            phases = [await driver.line()]
            assert phases == ["PHASE queued"] or "QUEUED" in phases[0].upper()
            for phase in ("INITIALIZING", "RUNNING", "SUCCEEDED"):
                await report(client, [("watched", phase, None)])
                phases.append(await driver.line(10))
            done = await driver.line(10)
            assert done.startswith("DONE "), done
        finally:
            driver.close()
        names = [p.split(" ", 1)[1].upper() for p in phases]
        order = ["QUEUED", "INITIALIZING", "RUNNING", "SUCCEEDED"]
        assert [next(o for o in order if o in n) for n in names] == order
