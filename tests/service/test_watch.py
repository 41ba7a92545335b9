"""Watch streams against both databases: snapshot then changes, terminal ends, coalescing, cleanup."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa

from runtrack.domain.models import ROOT_ACTION, Run
from runtrack.domain.phases import Phase
from runtrack.service.container import Services
from runtrack.service.notifier import Change
from runtrack.service.watch import WatchHub
from runtrack.service.watch_streams import KEEPALIVE, Disconnect
from runtrack.storage.tables import actions, runs
from tests.seed import seed_run


async def set_phase(svc: Services, run: Run, phase: Phase) -> None:
    """A committed change of a run's phase (run row and root action), then its notification."""
    now = datetime.now(UTC)
    async with svc.db.write() as conn:
        version = (
            await conn.execute(
                sa.update(runs)
                .where(runs.c.id == run.pk)
                .values(phase=int(phase), version=runs.c.version + 1, updated_at=now)
                .returning(runs.c.version)
            )
        ).scalar_one()
        await conn.execute(
            sa.update(actions)
            .where(actions.c.run_id == run.pk, actions.c.name == ROOT_ACTION)
            .values(phase=int(phase), updated_at=now)
        )
    await svc.notifier.publish([Change(run.pk, run.id, int(version))])


async def test_run_details_snapshot_changes_and_terminal_end(services: Services) -> None:
    await services.fanout.start()
    run = await seed_run(services, "r1", phase=Phase.QUEUED)
    stream = services.watch.run_details(run.id)
    first = await anext(stream)
    assert not isinstance(first, type(KEEPALIVE))
    assert first.run.phase is Phase.QUEUED
    assert services.watch.hub.subscription_count == 1
    await set_phase(services, run, Phase.RUNNING)
    second = await asyncio.wait_for(anext(stream), 5)
    assert second.run.phase is Phase.RUNNING  # type: ignore[union-attr]
    await set_phase(services, run, Phase.SUCCEEDED)
    third = await asyncio.wait_for(anext(stream), 5)
    assert third.run.phase is Phase.SUCCEEDED  # type: ignore[union-attr]
    assert third.root.phase is Phase.SUCCEEDED  # type: ignore[union-attr]
    # The stream ends by itself after the terminal state, releasing its subscription.
    rest = [x async for x in stream]
    assert rest == []
    assert services.watch.hub.subscription_count == 0


async def test_action_details_of_a_terminal_action_ends_after_one_message(services: Services) -> None:
    run = await seed_run(services, "r2", phase=Phase.QUEUED)
    await set_phase(services, run, Phase.FAILED)
    got = [x async for x in services.watch.action_details(run.id, ROOT_ACTION)]
    assert [a.phase for a in got] == [Phase.FAILED]  # type: ignore[union-attr]
    assert services.watch.hub.subscription_count == 0


async def test_slow_watcher_gets_the_newest_state_of_every_run(services: Services) -> None:
    seeded = [await seed_run(services, f"s{i}") for i in range(20)]
    stream = services.watch.runs(None, snapshot_limit=0, keepalive_s=30)
    assert [ev.kind for ev in await anext(stream)] == ["ready"]
    phases = [Phase.WAITING_FOR_RESOURCES, Phase.INITIALIZING, Phase.RUNNING, Phase.SUCCEEDED]
    for phase in phases:  # the watcher does not read meanwhile
        for run in seeded:
            await set_phase(services, run, phase)
    hub = services.watch.hub
    await hub.delivered()
    assert hub.stats["coalesced"] >= len(seeded) * (len(phases) - 1)
    final: dict[str, Phase] = {}
    while len(final) < len(seeded) or any(p is not Phase.SUCCEEDED for p in final.values()):
        for ev in await asyncio.wait_for(anext(stream), 5):
            if ev.kind == "run":
                assert ev.run is not None
                final[ev.run.id.name] = ev.run.phase
    assert set(final) == {r.id.name for r in seeded}
    await stream.aclose()
    assert hub.subscription_count == 0


async def test_disconnect_ends_idle_streams_and_releases_everything(services: Services) -> None:
    run = await seed_run(services, "r3", phase=Phase.RUNNING)
    hub = services.watch.hub
    before = len(asyncio.all_tasks())
    stops = [Disconnect() for _ in range(200)]

    async def consume(stop: Disconnect) -> int:
        n = 0
        async for _ in services.watch.action_details(run.id, ROOT_ACTION, stop):
            n += 1
        return n

    tasks = [asyncio.create_task(consume(s)) for s in stops]
    for _ in range(1000):
        if hub.subscription_count == len(stops):
            break
        await asyncio.sleep(0.01)
    for s in stops:
        s.fire()
    counts = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert counts == [1] * len(stops)
    assert hub.subscription_count == 0
    assert len(asyncio.all_tasks()) <= before


def test_pending_map_is_bounded_and_overflow_is_visible() -> None:
    async def main() -> None:
        hub = WatchHub(max_pending=10)
        sub = hub.subscribe()
        from runtrack.domain.models import RunId

        for i in range(50):
            hub.dispatch([Change(i, RunId("o", "p", "d", f"n{i}"), 1)])
        batch = await sub.next_batch(0.1)
        assert batch is not None and batch.resync
        assert len(batch.items) < 10
        assert hub.stats["overflows"] >= 1
        hub.unsubscribe(sub)
        assert hub.subscription_count == 0

    asyncio.run(main())


def test_prefetch_reads_each_batch_once_before_waking_watchers() -> None:
    from runtrack.domain.models import RunId
    from runtrack.service.watch import FreshReads

    async def main() -> None:
        hub = WatchHub()
        reads = FreshReads(hub)
        calls: list[tuple[int, list[int]]] = []

        async def prefetch(seq: int, pks: list[int]) -> None:
            calls.append((seq, pks))
            await asyncio.sleep(0.01)  # a database round trip: more changes queue up meanwhile
            for pk in pks:
                reads.put(("run", pk), seq, f"run {pk} read at {seq}")

        hub.set_prefetch(prefetch)
        subs = [hub.subscribe() for _ in range(3)]
        hub.dispatch([Change(1, RunId("o", "p", "d", "a"), 1)])
        await asyncio.sleep(0)  # the delivery task starts its read
        assert calls == [(1, [1])]
        assert all(not s.pending for s in subs)  # nobody is woken before the read is done
        hub.dispatch([Change(2, RunId("o", "p", "d", "b"), 1), Change(1, RunId("o", "p", "d", "a"), 2)])
        hub.dispatch([Change(3, RunId("o", "p", "d", "c"), 1, deleted=True)])
        await hub.delivered()
        # The first batch alone, then everything that queued during its read in one statement.
        assert calls == [(1, [1]), (2, [1, 2])]
        loads = 0

        async def load() -> str:
            nonlocal loads
            loads += 1
            return "loaded"

        for sub in subs:
            batch = await sub.next_batch(0.1)
            assert batch is not None
            by_pk = {p.change.run_pk: p for p in batch.items}
            assert sorted(by_pk) == [1, 2, 3] and by_pk[1].change.run_version == 2
            assert await reads.get(("run", 1), by_pk[1].seq, load) == "run 1 read at 2"
        assert loads == 0  # every watcher was served the read done ahead
        assert await reads.get(("run", 1), hub.seq + 1, load) == "loaded"  # a newer change: read again

    asyncio.run(main())
