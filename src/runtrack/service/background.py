"""Background loops (sweepers, cleanup, retention) started with the app and stopped with it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("runtrack.background")


@dataclass
class Supervisor:
    """Runs named periodic jobs; a failing round is logged and retried next interval."""

    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def every(self, name: str, interval_s: float, job: Callable[[], Awaitable[object]]) -> None:
        async def loop() -> None:
            while True:
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("background job %s failed; retrying in %.1fs", name, interval_s)
                await asyncio.sleep(interval_s)

        self.tasks.append(asyncio.create_task(loop(), name=f"runtrack:{name}"))

    def spawn(self, name: str, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        self.tasks.append(asyncio.create_task(run(), name=f"runtrack:{name}"))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
