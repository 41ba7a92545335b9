"""The stats cache seen through HTTP: the app runs in this process so that the test can count
the statements its engine sends (a listener on the real engine; the database is real)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from runtrack.api.app import create_app
from runtrack.service.container import Services
from runtrack.service.stats import TTLCache
from tests.fleet_seed import seed_run


@contextmanager
def grouped_counts(svc: Services) -> Iterator[list[str]]:
    seen: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "GROUP BY" in statement.upper():
            seen.append(statement)

    event.listen(svc.db.engine.sync_engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(svc.db.engine.sync_engine, "before_cursor_execute", listener)


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services.settings, services=services)
    app.state.services = services
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runtrack/api/v1") as c:
        yield c


async def test_a_hit_sends_no_query_and_keeps_cached_at(services: Services, client: httpx.AsyncClient) -> None:
    for i in range(4):
        await seed_run(services, f"s{i}", project=("a", "b")[i % 2], actions_n=1, logs_per_action=0)
    with grouped_counts(services) as seen:
        first = await client.get("/runs/stats", params={"project": "a"})
        second = await client.get("/runs/stats", params={"project": "a"})
        assert first.status_code == 200 and len(seen) == 1
        assert second.json() == first.json() and second.json()["total_runs"] == 2
        # The same filter spelled differently resolves to the same tree: still a hit.
        fq = '{"and": [{"value_equals": {"key": "system/run.project", "value": "a"}}]}'
        assert (await client.get("/runs/stats", params={"filter_query": fq})).json() == first.json()
        assert len(seen) == 1
        await client.get("/runs/stats", params={"project": "b"})
        assert len(seen) == 2


async def test_after_the_ttl_it_queries_again(services: Services, client: httpx.AsyncClient) -> None:
    now = [0.0]
    services.stats.cache = TTLCache(30.0, 64, clock=lambda: now[0])
    with grouped_counts(services) as seen:
        first = (await client.get("/runs/stats")).json()
        now[0] = 29.0
        assert (await client.get("/runs/stats")).json()["cached_at"] == first["cached_at"]
        now[0] = 30.5
        await seed_run(services, "later", actions_n=1, logs_per_action=0)
        again = (await client.get("/runs/stats")).json()
    assert len(seen) == 2 and again["total_runs"] == first["total_runs"] + 1
    assert again["cached_at"] > first["cached_at"]


async def test_me_for_two_callers_gives_two_entries(services: Services, client: httpx.AsyncClient) -> None:
    await seed_run(services, "by-alice", created_by="alice", actions_n=1, logs_per_action=0)
    await seed_run(services, "by-bob", created_by="bob", actions_n=1, logs_per_action=0)
    await seed_run(services, "by-bob-2", created_by="bob", actions_n=1, logs_per_action=0)
    with grouped_counts(services) as seen:
        alice = (await client.get("/runs/stats", params={"created_by": "me", "current_user": "alice"})).json()
        bob = (await client.get("/runs/stats", params={"created_by": "me", "current_user": "bob"})).json()
        assert (alice["total_runs"], bob["total_runs"]) == (1, 2)
        assert len(seen) == 2 and len(services.stats.cache) == 2
        await client.get("/runs/stats", params={"created_by": "me", "current_user": "bob"})
        assert len(seen) == 2


async def test_twenty_concurrent_cold_calls_run_one_query(services: Services, client: httpx.AsyncClient) -> None:
    await seed_run(services, "one", actions_n=1, logs_per_action=0)
    with grouped_counts(services) as seen:
        answers = await asyncio.gather(*(client.get("/runs/stats", params={"status": "succeeded"}) for _ in range(20)))
    assert len(seen) == 1
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["cached_at"] for a in answers}) == 1 and answers[0].json()["total_runs"] == 1


async def test_listing_is_untouched_by_stats(services: Services, client: httpx.AsyncClient) -> None:
    await seed_run(services, "listed", actions_n=1, logs_per_action=0)
    await client.get("/runs/stats")
    with grouped_counts(services) as seen:
        runs = (await client.get("/runs")).json()["runs"]
    assert [r["name"] for r in runs] == ["listed"] and seen == []
