"""Listing and counting runs with filters and cursors, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from runtrack.domain.filters import And, Not, Op, Pred, prepare
from runtrack.domain.models import RunId
from runtrack.domain.phases import Phase
from runtrack.domain.query import RunQuery, Sort
from runtrack.errors import InvalidArgument, NotFound
from runtrack.service.container import Services
from tests.seed import T0, seed_run


def names(page: object) -> list[str]:
    return [r.id.name for r in page.items]  # type: ignore[attr-defined]


async def all_pages(svc: Services, q: RunQuery) -> list[str]:
    out: list[str] = []
    cursor = None
    for _ in range(1000):
        page = await svc.queries.list_runs(RunQuery(filter=q.filter, sort=q.sort, limit=q.limit, cursor=cursor))
        out += names(page)
        cursor = page.next_cursor
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


def status(word: str) -> Pred:
    node = prepare(Pred("status", Op.EQ, word), None)
    assert isinstance(node, Pred)
    return node


async def test_filter_applies_before_limit(services: Services) -> None:
    await seed_run(services, "f1", phase=Phase.FAILED, minute=1)
    await seed_run(services, "f2", phase=Phase.FAILED, minute=2)
    await seed_run(services, "r3", phase=Phase.RUNNING, minute=3)
    await seed_run(services, "f4", phase=Phase.TIMED_OUT, minute=4)
    page = await services.queries.list_runs(RunQuery(filter=status("failed"), limit=2))
    assert names(page) == ["f4", "f2"] and page.next_cursor
    page2 = await services.queries.list_runs(RunQuery(filter=status("failed"), limit=2, cursor=page.next_cursor))
    assert names(page2) == ["f1"] and page2.next_cursor is None
    assert await services.queries.count_runs(status("failed")) == 3


async def test_exact_limit_has_no_next_cursor_and_cursor_is_bound_to_filter(services: Services) -> None:
    for i in range(4):
        await seed_run(services, f"r{i}", phase=Phase.FAILED if i < 2 else Phase.RUNNING, minute=i)
    page = await services.queries.list_runs(RunQuery(filter=status("failed"), limit=2))
    assert names(page) == ["r1", "r0"] and page.next_cursor is None
    first = await services.queries.list_runs(RunQuery(limit=2))
    assert first.next_cursor
    with pytest.raises(InvalidArgument, match="different filter"):
        await services.queries.list_runs(RunQuery(filter=status("failed"), limit=2, cursor=first.next_cursor))
    with pytest.raises(InvalidArgument, match="different filter"):
        await services.queries.list_runs(RunQuery(sort=Sort("name"), limit=2, cursor=first.next_cursor))
    for garbage in ("x", "!!!", "eyJ2IjoxfQ", first.next_cursor[:-3] + "AAA"):
        with pytest.raises(InvalidArgument, match="cursor"):
            await services.queries.list_runs(RunQuery(limit=2, cursor=garbage))


async def test_inserts_between_pages_are_neither_skipped_nor_repeated(services: Services) -> None:
    for i in range(10):
        await seed_run(services, f"old{i}", minute=i)
    page = await services.queries.list_runs(RunQuery(limit=4))
    assert names(page) == ["old9", "old8", "old7", "old6"]
    # Newer runs (before the cursor in the order) and a run tied with the cursor's key but a newer id.
    await seed_run(services, "new-a", minute=100)
    await seed_run(services, "tie6", minute=6)
    seen = names(page)
    cursor = page.next_cursor
    while cursor:
        page = await services.queries.list_runs(RunQuery(limit=4, cursor=cursor))
        seen += names(page)
        cursor = page.next_cursor
    assert seen == ["old9", "old8", "old7", "old6", "old5", "old4", "old3", "old2", "old1", "old0"]
    assert len(set(seen)) == len(seen)


async def test_ties_on_the_sort_key_page_stably(services: Services) -> None:
    for i in range(9):
        await seed_run(services, f"t{i}", created_at=T0)  # all the same created_at
    expected_desc = [f"t{i}" for i in reversed(range(9))]
    assert await all_pages(services, RunQuery(limit=2)) == expected_desc
    assert await all_pages(services, RunQuery(sort=Sort("created_at", False), limit=4)) == expected_desc[::-1]


async def test_null_sort_keys_page_last_in_both_directions(services: Services) -> None:
    durations = [30, None, 10, None, 20, 10, None]
    for i, d in enumerate(durations):
        await seed_run(
            services, f"d{i}", minute=i, duration_ms=d,
            ended_at=None if d is None else T0 + timedelta(hours=1, minutes=d),
        )
    desc = await all_pages(services, RunQuery(sort=Sort("duration_ms", True), limit=2))
    assert desc == ["d0", "d4", "d5", "d2", "d6", "d3", "d1"]
    asc = await all_pages(services, RunQuery(sort=Sort("duration_ms", False), limit=2))
    assert asc == ["d2", "d5", "d4", "d0", "d1", "d3", "d6"]
    ended = await all_pages(services, RunQuery(sort=Sort("ended_at", False), limit=3))
    assert ended == ["d2", "d5", "d4", "d0", "d1", "d3", "d6"]
    by_name = await all_pages(services, RunQuery(sort=Sort("name", False), limit=3))
    assert by_name == sorted(by_name)
    by_phase = await all_pages(services, RunQuery(sort=Sort("phase", True), limit=3))
    assert len(by_phase) == 7


async def test_offset_jumps(services: Services) -> None:
    for i in range(7):
        await seed_run(services, f"o{i}", minute=i)
    page = await services.queries.list_runs(RunQuery(limit=2, offset=4))
    assert names(page) == ["o2", "o1"] and page.next_cursor
    nxt = await services.queries.list_runs(RunQuery(limit=2, cursor=page.next_cursor))
    assert names(nxt) == ["o0"] and nxt.next_cursor is None


async def test_union_of_status_groups_labels_owner_and_text(services: Services) -> None:
    await seed_run(services, "alpha-1", phase=Phase.RUNNING, created_by="alice", labels={"team": "ml"}, minute=1)
    await seed_run(services, "beta-2", phase=Phase.PAUSED, created_by="bob", labels={"team": "web", "x": ""},
                   minute=2)
    await seed_run(services, "Alpha-3", phase=Phase.FAILED, created_by="alice", minute=3, task="wf.train")
    await seed_run(services, "gamma-4", phase=Phase.SUCCEEDED, created_by="carol", minute=4)

    async def listed(node: object, caller: str | None = None) -> list[str]:
        n = prepare(node, caller)  # type: ignore[arg-type]
        assert await services.queries.count_runs(n) == len(await all_pages(services, RunQuery(filter=n, limit=50)))
        return sorted(await all_pages(services, RunQuery(filter=n, limit=50)))

    assert await listed(Pred("status", Op.IN, ("running", "failed"))) == ["Alpha-3", "alpha-1", "beta-2"]
    assert await listed(Pred("labels.team", Op.EQ, "ml")) == ["alpha-1"]
    assert await listed(Pred("labels.x", Op.EXISTS)) == ["beta-2"]
    assert await listed(Pred("labels.team", Op.NE, "ml")) == ["Alpha-3", "beta-2", "gamma-4"]
    assert await listed(Pred("name", Op.CONTAINS, "lpha")) == ["Alpha-3", "alpha-1"]
    assert await listed(Pred("name", Op.CONTAINS, "Alpha")) == ["Alpha-3"]
    assert await listed(Pred("name", Op.ICONTAINS, "ALPHA")) == ["Alpha-3", "alpha-1"]
    assert await listed(Pred("name", Op.ENDS_WITH, "-4")) == ["gamma-4"]
    assert await listed(Pred("task_name", Op.NE, "wf.train")) == ["alpha-1", "beta-2", "gamma-4"]
    assert await listed(Pred("created_by", Op.EQ, "me"), "alice") == ["Alpha-3", "alpha-1"]
    assert await listed(Pred("created_by", Op.EQ, "me"), None) == []
    assert await listed(Not(And((Pred("created_by", Op.EQ, "alice"), status("failed"))))) == [
        "alpha-1", "beta-2", "gamma-4"
    ]
    assert await listed(Pred("created_at", Op.GTE, (T0 + timedelta(minutes=2)).isoformat())) == [
        "Alpha-3", "beta-2", "gamma-4"
    ]


async def test_actions_page_and_missing_run(services: Services) -> None:
    run = await seed_run(services, "r1")
    page = await services.queries.list_actions(run.id, None, 10, None)
    assert [a.name for a in page.items] == ["a0"] and page.next_cursor is None
    running = prepare(Pred("phase", Op.EQ, "RUNNING"), None)
    assert (await services.queries.list_actions(run.id, running, 10, None)).items == []
    with pytest.raises(NotFound):
        await services.queries.list_actions(RunId("acme", "proj", "dev", "nope"), None, 10, None)
    with pytest.raises(InvalidArgument, match="labels"):
        await services.queries.list_actions(run.id, Pred("labels.team", Op.EQ, "x"), 10, None)


async def test_limits_are_checked(services: Services) -> None:
    for bad in (0, 201):
        with pytest.raises(InvalidArgument, match="limit"):
            await services.queries.list_runs(RunQuery(limit=bad))
