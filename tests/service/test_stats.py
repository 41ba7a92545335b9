"""Run stats: counts agree with counting, and the cache (hit, TTL, LRU, ``me``, single-flight)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from runtrack.domain.filters import Node, Not, Op, Or, Pred, and_, prepare
from runtrack.domain.phases import STATUS_NAMES, Phase
from runtrack.service.container import Services
from runtrack.service.stats import StatsService, TTLCache
from tests.fleet_seed import days_ago, seed_run

PHASES = [Phase.QUEUED, Phase.INITIALIZING, Phase.RUNNING, Phase.PAUSED, Phase.SUCCEEDED, Phase.FAILED,
          Phase.TIMED_OUT, Phase.ABORTED, Phase.RECOVERED, Phase.WAITING_FOR_RESOURCES]


async def seed_mixed(svc: Services, n: int = 30) -> None:
    for i in range(n):
        await seed_run(
            svc,
            f"r{i}",
            phase=PHASES[i % len(PHASES)],
            project=("alpha", "beta", "gamma")[i % 3],
            created_by=("alice", "bob")[i % 2],
            labels={"team": ("ml", "infra")[i % 2]} if i % 4 else {},
            actions_n=1,
            logs_per_action=0,
            created_at=days_ago(i),
        )


@contextmanager
def grouped_counts(svc: Services) -> Iterator[list[str]]:
    """Record every ``... GROUP BY phase`` statement the engine sends."""
    seen: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "GROUP BY" in statement.upper() and "COUNT" in statement.upper():
            seen.append(statement)

    engine = svc.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def generated_filters() -> list[Node | None]:
    t = days_ago(10)
    return [
        None,
        Pred("project", Op.EQ, "alpha"),
        Pred("status", Op.IN, ("running", "failed")),
        Pred("phase", Op.EQ, "SUCCEEDED"),
        Pred("created_by", Op.EQ, "me"),
        Pred("labels.team", Op.EQ, "ml"),
        Pred("labels.team", Op.EXISTS),
        Not(Pred("labels.team", Op.EXISTS)),
        and_(Pred("project", Op.IN, ("beta", "gamma")), Pred("created_at", Op.GTE, t)),
        Or((Pred("name", Op.CONTAINS, "1"), Pred("status", Op.EQ, "pending"))),
        Not(Pred("status", Op.IN, ("succeeded", "cancelled"))),
        Pred("project", Op.EQ, "nope"),
    ]


async def test_counts_sum_to_total_and_total_matches_count(services: Services) -> None:
    await seed_mixed(services)
    for raw in generated_filters():
        node = prepare(raw, "alice")
        stats = await services.stats.uncached(node)
        assert sum(stats.counts_by_status.values()) == stats.total_runs, raw
        assert sum(stats.counts_by_phase.values()) == stats.total_runs, raw
        assert stats.total_runs == await services.queries.count_runs(node), raw
        assert list(stats.counts_by_status) == list(STATUS_NAMES)
    everything = await services.stats.uncached(None)
    assert everything.total_runs == 30
    # Status groups follow the design: PAUSED is running, TIMED_OUT failed, RECOVERED succeeded.
    assert everything.counts_by_status == {"PENDING": 9, "RUNNING": 6, "SUCCEEDED": 6, "FAILED": 6, "CANCELLED": 3}
    assert everything.counts_by_phase["PAUSED"] == 3 and everything.counts_by_phase["QUEUED"] == 3


async def test_second_call_within_ttl_does_not_query(services: Services) -> None:
    await seed_mixed(services, 6)
    with grouped_counts(services) as seen:
        first = await services.stats.stats(None)
        second = await services.stats.stats(None)
        assert len(seen) == 1
        assert second == first and second.cached_at == first.cached_at
        other = await services.stats.stats(Pred("project", Op.EQ, "alpha"))
        assert len(seen) == 2 and other.total_runs == 2


async def test_after_the_ttl_it_queries_again(services: Services) -> None:
    now = [1000.0]
    svc = services.stats
    svc.cache = TTLCache(30.0, 16, clock=lambda: now[0])
    await seed_run(services, "one", actions_n=1)
    with grouped_counts(services) as seen:
        first = await svc.stats(None)
        now[0] += 29.9
        assert (await svc.stats(None)).cached_at == first.cached_at and len(seen) == 1
        await seed_run(services, "two", actions_n=1)
        now[0] += 0.2
        again = await svc.stats(None)
        assert len(seen) == 2 and again.total_runs == 2 and again.cached_at > first.cached_at


async def test_ttl_zero_disables_the_cache(services: Services) -> None:
    svc = StatsService(services.db, services.stats.store, ttl_s=0, max_size=10)
    with grouped_counts(services) as seen:
        await svc.stats(None)
        await svc.stats(None)
    assert len(seen) == 2 and len(svc.cache) == 0


async def test_me_is_resolved_before_the_cache_key(services: Services) -> None:
    await seed_mixed(services, 6)
    mine = Pred("created_by", Op.EQ, "me")
    with grouped_counts(services) as seen:
        alice = await services.stats.stats(prepare(mine, "alice"))
        bob = await services.stats.stats(prepare(mine, "bob"))
        assert len(seen) == 2 and len(services.stats.cache) == 2
        assert alice.total_runs == 3 and bob.total_runs == 3
        await services.stats.stats(prepare(mine, "alice"))
        assert len(seen) == 2


async def test_twenty_concurrent_cold_calls_run_one_query(services: Services) -> None:
    await seed_mixed(services, 6)
    with grouped_counts(services) as seen:
        results = await asyncio.gather(*(services.stats.stats(None) for _ in range(20)))
    assert len(seen) == 1
    assert len({r.cached_at for r in results}) == 1 and results[0].total_runs == 6


async def test_the_cache_is_bounded_least_recently_used_out(services: Services) -> None:
    svc = StatsService(services.db, services.stats.store, ttl_s=60, max_size=2)
    a, b, c = (Pred("project", Op.EQ, p) for p in ("a", "b", "c"))
    with grouped_counts(services) as seen:
        await svc.stats(a)
        await svc.stats(b)
        await svc.stats(a)  # hit; b is now the least recently used
        await svc.stats(c)  # evicts b
        assert len(seen) == 3 and len(svc.cache) == 2
        await svc.stats(a)
        assert len(seen) == 3
        await svc.stats(b)
        assert len(seen) == 4


async def test_a_failed_load_is_not_cached_and_reaches_every_waiter() -> None:
    cache: TTLCache[int] = TTLCache(60, 4)
    calls = 0

    async def boom() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("db down")

    results = await asyncio.gather(*(cache.get_or_load("k", boom) for _ in range(5)), return_exceptions=True)
    assert calls == 1 and all(isinstance(r, RuntimeError) for r in results)

    async def ok() -> int:
        return 7

    assert await cache.get_or_load("k", ok) == 7 and len(cache) == 1


async def test_a_bad_filter_is_invalid_argument(services: Services) -> None:
    from runtrack.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="nope"):
        await services.stats.stats(Pred("nope", Op.EQ, "x"))
    with pytest.raises(InvalidArgument):
        await services.stats.stats(Pred("status", Op.EQ, "sleeping"))


def test_cache_keys_ignore_how_a_filter_was_spelled() -> None:
    from runtrack.domain.filters import And, filter_hash
    from runtrack.service.stats import canonical

    a, b, c = Pred("project", Op.EQ, "a"), Pred("org", Op.EQ, "o"), Pred("name", Op.EQ, "n")
    same = [And((a, b, c)), And((c, And((b, a)))), And((And((a,)), b, c))]
    assert len({filter_hash(canonical(n)) for n in same}) == 1
    assert canonical(And((a,))) == a
    assert filter_hash(canonical(Or((a, b)))) != filter_hash(canonical(And((a, b))))
    assert filter_hash(canonical(Not(And((a, b))))) == filter_hash(canonical(Not(And((b, a)))))


async def test_a_delete_here_drops_cached_stats(services: Services) -> None:
    await seed_mixed(services, 5)
    assert (await services.stats.stats(None)).total_runs == 5
    assert (await services.deletes.bulk_delete(Pred("name", Op.EQ, "r4"))).deleted  # r4 SUCCEEDED
    assert (await services.stats.stats(None)).total_runs == 4


async def test_a_load_begun_before_clear_is_not_kept() -> None:
    cache: TTLCache[int] = TTLCache(60, 4)
    gate = asyncio.Event()

    async def slow() -> int:
        await gate.wait()
        return 1

    pending = asyncio.ensure_future(cache.get_or_load("k", slow))
    await asyncio.sleep(0)
    cache.clear()
    gate.set()
    assert await pending == 1 and len(cache) == 0
