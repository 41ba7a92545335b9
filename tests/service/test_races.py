"""Real concurrency: writers in several OS threads, each with its own event loop and connections."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import sqlalchemy as sa

from runtrack.config import Settings
from runtrack.domain.models import NewRun, RunId
from runtrack.domain.phases import TERMINAL, Phase
from runtrack.domain.reports import ActionReport
from runtrack.domain.transitions import Outcome
from runtrack.errors import Conflict
from runtrack.service.container import Services
from runtrack.storage.tables import phase_transitions

T = TypeVar("T")
RID = RunId("acme", "proj", "dev", "r-race")
THREADS = 10
PER_THREAD = 5  # 50 writers in all


def in_threads(settings: Settings, n: int, work: Callable[[Services, int], Awaitable[T]]) -> list[T]:
    """Run ``work(services, i)`` in ``n`` threads, each with its own loop and its own engine."""
    results: list[T] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)
    lock = threading.Lock()

    def thread(i: int) -> None:
        async def main() -> None:
            svc = Services.build(settings)
            try:
                async with svc.db.read() as conn:  # connect before the start line
                    await conn.execute(sa.text("SELECT 1"))
                barrier.wait()
                out = await work(svc, i)
                with lock:
                    results.append(out)
            finally:
                await svc.close()

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


async def terminal_transitions(svc: Services) -> list[int]:
    async with svc.db.read() as conn:
        rows = await conn.execute(
            sa.select(phase_transitions.c.phase).where(phase_transitions.c.phase.in_([int(p) for p in TERMINAL]))
        )
        return [int(p) for p in rows.scalars()]


async def test_fifty_racing_writers_leave_one_terminal_transition(services: Services) -> None:
    await services.executor.create_run(NewRun(id=RID))
    phases = [Phase.SUCCEEDED, Phase.FAILED, Phase.RUNNING, Phase.TIMED_OUT, Phase.ABORTED]

    async def work(svc: Services, i: int) -> list[str]:
        async def one(j: int) -> str:
            phase = phases[(i * PER_THREAD + j) % len(phases)]
            rep = ActionReport(RID, "a0", 1, phase)
            if j % 2:
                [r] = await svc.executor.record_events([rep])
                return r.outcome.value
            try:
                return (await svc.executor.update_status(rep)).outcome.value
            except Conflict:
                return Outcome.REJECT.value

        return list(await asyncio.gather(*(one(j) for j in range(PER_THREAD))))

    outcomes = [o for batch in in_threads(services.settings, THREADS, work) for o in batch]
    assert len(outcomes) == THREADS * PER_THREAD
    assert len(await terminal_transitions(services)) == 1
    run = await services.runs.get_run(RID)
    assert run.phase.terminal and run.ended_at is not None
    action = await services.runs.get_action(RID, "a0")
    assert action.attempt_list[0].phase is run.phase


async def test_replicas_sweeping_fail_each_attempt_once(services: Services) -> None:
    ex = services.executor
    names = [f"r-hb-{i}" for i in range(5)]
    for name in names:
        rid = RunId("acme", "proj", "dev", name)
        await ex.create_run(NewRun(id=rid))
        await ex.record_events([ActionReport(rid, "a0", 1, Phase.RUNNING)])
        await ex.heartbeat(rid, "a0", 1)
    await asyncio.sleep(0.3)
    settings = Settings(database_url=services.settings.database_url, heartbeat_timeout=timedelta(milliseconds=100))

    async def sweep(svc: Services, _i: int) -> int:
        return await svc.executor.sweep_heartbeats()

    failed = in_threads(settings, 4, sweep)
    assert sum(failed) == len(names)
    assert len(await terminal_transitions(services)) == len(names)
    for name in names:
        run = await services.runs.get_run(RunId("acme", "proj", "dev", name))
        assert run.phase is Phase.FAILED and run.error is not None and run.error.kind == "HEARTBEAT_TIMEOUT"
