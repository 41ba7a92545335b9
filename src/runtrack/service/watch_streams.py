"""Watch use cases: subscribe, then read the current state, then stream changes.

Every stream is an async generator that owns exactly one subscription and no task; it releases
the subscription in ``finally`` whether it ends at a terminal phase, on an error, or because the
transport closed it (client gone). Idle streams yield :data:`KEEPALIVE` every ``keepalive_s`` so
that transports can send keep-alives (and notice dead clients).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeVar

from runtrack.domain.filter_eval import matches
from runtrack.domain.filters import And, Node, Op, Pred, and_
from runtrack.domain.models import ROOT_ACTION, Action, Run, RunId
from runtrack.domain.query import Page, RunQuery, Sort
from runtrack.errors import NotFound
from runtrack.service.notifier import Change
from runtrack.service.watch import ACTION_LEVEL, Batch, FreshReads, RenderCache, Subscription, WatchHub
from runtrack.storage.db import Database
from runtrack.storage.repository import Repository


class _KeepAlive:
    def __repr__(self) -> str:
        return "KEEPALIVE"


KEEPALIVE: Final = _KeepAlive()
RESUME_SLACK_S = 5.0  # a resumed stream re-reads runs updated this long before its last event
CATCH_UP_LIMIT = 5000  # more changes than this since the last event: send a fresh snapshot instead
ACTIONS_SNAPSHOT_LIMIT = 10_000

T = TypeVar("T")
ListRuns = Callable[[RunQuery], Awaitable[Page[Run]]]


class Disconnect:
    """A transport's signal that the client went away; wakes the stream so it ends at once."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self.fired = False

    def attach(self, sub: Subscription) -> None:
        self._subs.append(sub)
        if self.fired:
            sub.close()

    def fire(self) -> None:
        self.fired = True
        for sub in self._subs:
            sub.close()
        self._subs.clear()


@dataclass(frozen=True, slots=True)
class RunDetailsState:
    run: Run
    root: Action


@dataclass(frozen=True, slots=True)
class RunsEvent:
    """One item of a runs stream.

    ``kind``: run, deleted, reset (drop what you hold), ready (snapshot or catch-up done), keepalive.
    """

    kind: str
    run: Run | None = None
    run_id: RunId | None = None
    watermark: float = 0.0  # wall time up to which this stream has delivered every change


def _max_seq(batch: Batch, hub: WatchHub) -> int:
    return max((p.seq for p in batch.items), default=hub.seq)


class WatchService:
    def __init__(
        self,
        db: Database,
        repo: Repository,
        hub: WatchHub,
        *,
        list_runs: ListRuns | None = None,
        keepalive_s: float = 15.0,
    ) -> None:
        self.db = db
        self.repo = repo
        self.hub = hub
        self.reads = FreshReads(hub)
        self.renders = RenderCache()
        self.list_runs = list_runs
        self.keepalive_s = keepalive_s
        self._filter_keys: dict[Node | None, _FilterKey] = {}
        hub.set_prefetch(self._prefetch_runs)

    # -- shared reads -------------------------------------------------------------------------

    async def _run_pk(self, run_id: RunId) -> int:
        async with self.db.read() as conn:
            return await self.repo.runs.run_pk(conn, run_id)

    def _filter_key(self, filter: Node | None) -> Hashable:
        """One shared key object per distinct filter, so that watchers with equal filters share
        their verdicts without hashing the filter on every change."""
        try:
            key = self._filter_keys.get(filter)
        except TypeError:  # an unhashable filter value: a key of this stream's own
            return _FilterKey(filter)
        if key is None:
            if len(self._filter_keys) >= 10_000:
                self._filter_keys.clear()
            key = self._filter_keys[filter] = _FilterKey(filter)
        return key

    def _verdict(self, run: Run, key: Hashable) -> bool:
        """Whether ``run`` matches the filter of ``key``, decided once per run for all its watchers."""
        return self.renders.get(run, _matches, key)

    async def _prefetch_runs(self, seq: int, pks: list[int]) -> None:
        """The hub's prefetch: read the changed runs of a batch once, before their watchers wake."""
        async with self.db.read() as conn:
            found = await self.repo.runs.get_runs_by_pks(conn, pks)
        for pk in pks:
            self.reads.put(("run", pk), seq, found.get(pk))

    async def _load_run(self, pk: int, min_seq: int) -> Run | None:
        async def load() -> Run | None:
            async with self.db.read() as conn:
                return await self.repo.runs.get_run_by_pk(conn, pk)

        return await self.reads.get(("run", pk), min_seq, load)

    async def _load_action(self, run_id: RunId, pk: int, name: str, min_seq: int, details: bool) -> Action | None:
        async def load() -> Action | None:
            async with self.db.read() as conn:
                try:
                    return await self.repo.runs.get_action(conn, run_id, name, details=details)
                except NotFound:
                    return None

        return await self.reads.get(("action", pk, name, details), min_seq, load)

    async def _load_details(self, run_id: RunId, pk: int, min_seq: int) -> RunDetailsState | None:
        run = await self._load_run(pk, min_seq)
        root = await self._load_action(run_id, pk, ROOT_ACTION, min_seq, True)
        if run is None or root is None:
            return None
        return RunDetailsState(run, root)

    def _subscribe_action(self, pk: int, name: str | None, stop: Disconnect | None) -> Subscription:
        def accepts(c: Change) -> bool:
            return c.deleted or name is None or (c.action or ROOT_ACTION) == name

        sub = self.hub.subscribe(run_pk=pk, level=ACTION_LEVEL, accepts=accepts)
        if stop is not None:
            stop.attach(sub)
        return sub

    # -- details streams: end after the terminal state ----------------------------------------

    async def run_details(
        self, run_id: RunId, stop: Disconnect | None = None
    ) -> AsyncGenerator[RunDetailsState | _KeepAlive, None]:
        """The run and its root action now, then on every change; ends after a terminal phase."""
        pk = await self._run_pk(run_id)

        def load(min_seq: int) -> Awaitable[RunDetailsState | None]:
            return self._load_details(run_id, pk, min_seq)

        sub = self._subscribe_action(pk, ROOT_ACTION, stop)
        follow = self._follow(sub, load, lambda s: s.run.phase.terminal, f"run {run_id}")
        async with aclosing(follow) as items:
            async for item in items:
                yield item

    async def action_details(
        self, run_id: RunId, name: str, stop: Disconnect | None = None
    ) -> AsyncGenerator[Action | _KeepAlive, None]:
        """An action with its attempts now, then on every change; ends after a terminal phase."""
        async with aclosing(self._follow_action(run_id, name, lambda a: a.phase.terminal, stop)) as items:
            async for item in items:
                yield item

    async def _follow_action(
        self, run_id: RunId, name: str, done: Callable[[Action], bool], stop: Disconnect | None
    ) -> AsyncGenerator[Action | _KeepAlive, None]:
        """An action (with attempts) now, then whenever it changed, until ``done`` says so."""
        pk = await self._run_pk(run_id)

        def load(min_seq: int) -> Awaitable[Action | None]:
            return self._load_action(run_id, pk, name, min_seq, True)

        sub = self._subscribe_action(pk, name, stop)
        follow = self._follow(sub, load, done, f"action {name!r} of run {run_id}")
        async with aclosing(follow) as items:
            async for item in items:
                yield item

    async def _follow(
        self,
        sub: Subscription,
        load: Callable[[int], Awaitable[T | None]],
        done: Callable[[T], bool],
        subject: str,
    ) -> AsyncGenerator[T | _KeepAlive, None]:
        """One subject read now, then again on every change of it (yielded when it differs), a
        keep-alive when idle, until ``done`` says so; owns ``sub`` and releases it at the end."""
        try:
            last = await load(sub.created_seq)
            if last is None:
                raise NotFound(f"{subject} not found")
            yield last
            while not done(last):
                batch = await sub.next_batch(self.keepalive_s)
                if batch is None:
                    yield KEEPALIVE
                    continue
                if batch.closed:
                    return
                item = await load(_max_seq(batch, self.hub))
                if item is None:
                    raise NotFound(f"{subject} was deleted")
                if item != last:
                    last = item
                    yield item
        finally:
            self.hub.unsubscribe(sub)

    # -- a run's actions ----------------------------------------------------------------------

    async def actions(
        self, run_id: RunId, stop: Disconnect | None = None
    ) -> AsyncGenerator[list[Action] | _KeepAlive, None]:
        """Every action of a run now (one list), then the changed ones; ends when the run is deleted."""
        pk = await self._run_pk(run_id)
        sub = self._subscribe_action(pk, None, stop)
        try:
            known: dict[str, Action] = {}
            for a in await self._all_actions(run_id):
                known[a.name] = a
            yield list(known.values())
            while True:
                batch = await sub.next_batch(self.keepalive_s)
                if batch is None:
                    yield KEEPALIVE
                    continue
                if batch.closed or any(p.change.deleted for p in batch.items):
                    return
                if batch.resync:
                    fresh = {a.name: a for a in await self._all_actions(run_id)}
                    changed = [a for n, a in fresh.items() if known.get(n) != a]
                else:
                    changed = []
                    for p in batch.items:
                        name = p.change.action or ROOT_ACTION
                        got = await self._load_action(run_id, pk, name, p.seq, False)
                        if got is not None and known.get(name) != got:
                            changed.append(got)
                for a in changed:
                    known[a.name] = a
                if changed:
                    yield changed
        finally:
            self.hub.unsubscribe(sub)

    async def _all_actions(self, run_id: RunId) -> list[Action]:
        out: list[Action] = []
        after = 0
        while len(out) < ACTIONS_SNAPSHOT_LIMIT:
            async with self.db.read() as conn:
                page = await self.repo.runs.list_actions(conn, run_id, limit=1000, after_pk=after)
            out.extend(page)
            if len(page) < 1000:
                break
            after = page[-1].pk
        return out

    async def cluster_events(
        self, run_id: RunId, name: str, attempt: int, stop: Disconnect | None = None
    ) -> AsyncGenerator[list[Action] | _KeepAlive, None]:
        """The action (with attempts) whenever one of its cluster events is new or changed.

        Yields the action; the transport picks the attempt's events. Ends after the attempt (or,
        with ``attempt`` 0, the action) is terminal.
        """
        async with aclosing(self._follow_action(run_id, name, lambda a: _attempt_done(a, attempt), stop)) as items:
            async for item in items:
                yield item if isinstance(item, _KeepAlive) else [item]

    # -- runs matching a filter ---------------------------------------------------------------

    async def runs(
        self,
        filter: Node | None,
        *,
        snapshot_limit: int = 50,
        since: float | None = None,
        stop: Disconnect | None = None,
        keepalive_s: float | None = None,
    ) -> AsyncGenerator[list[RunsEvent], None]:
        """Runs matching ``filter``: a snapshot (or a catch-up from ``since``), then every change.

        Yields one list of events per step (the snapshot, each batch of changes, a keep-alive), so
        that a transport can send each step as one message. ``since`` is the watermark of a
        previous stream's last event: when this process can tell what changed since then, only
        those runs (and deletions) are sent; otherwise ``reset`` and a fresh snapshot.

        Watermarks of live changes are their dispatch times, which every watcher handed the same
        change shares: transports can encode such an event once for all of them.
        """
        sub = self.hub.subscribe(run_pk=None, accepts=scope_of(filter))
        if stop is not None:
            stop.attach(sub)
        fkey = self._filter_key(filter)
        try:
            watermark = time.time()
            yield await self._initial(filter, snapshot_limit, since, watermark)
            while True:
                batch = await sub.next_batch(keepalive_s or self.keepalive_s)
                if batch is None:
                    # Idle: nothing was pending, so every change dispatched until now has been sent.
                    watermark = time.time()
                    yield [RunsEvent("keepalive", watermark=watermark)]
                    continue
                if batch.closed:
                    return
                if batch.resync:
                    taken = time.time()
                    yield await self._initial(filter, snapshot_limit, watermark, watermark)
                else:
                    # Every change dispatched up to the newest one in this batch is in it (or was sent).
                    taken = max((p.at for p in batch.items), default=watermark)
                events: list[RunsEvent] = []
                for p in batch.items:
                    run = None if p.change.deleted else await self._load_run(p.change.run_pk, p.seq)
                    if run is None:
                        events.append(RunsEvent("deleted", run_id=p.change.run_id, watermark=watermark))
                    elif self._verdict(run, fkey):
                        events.append(RunsEvent("run", run=run, watermark=watermark))
                # Only the last event carries the new watermark, so a client resuming from any
                # event it received misses nothing of this batch.
                watermark = taken
                if events:
                    last = events[-1]
                    events[-1] = RunsEvent(last.kind, run=last.run, run_id=last.run_id, watermark=watermark)
                    yield events
        finally:
            self.hub.unsubscribe(sub)

    async def _initial(self, filter: Node | None, limit: int, since: float | None, watermark: float) -> list[RunsEvent]:
        """The first events of a stream: a catch-up from ``since`` where possible, else a snapshot."""
        out: list[RunsEvent] = []
        if since is not None and self.hub.can_resume(since):
            changed = await self._updated_since(filter, since - RESUME_SLACK_S)
            if changed is not None:
                out.extend(RunsEvent("run", run=run, watermark=watermark) for run in changed)
                out.extend(
                    RunsEvent("deleted", run_id=rid, watermark=watermark)
                    for _t, rid in self.hub.deleted_since(since - RESUME_SLACK_S)
                )
                out.append(RunsEvent("ready", watermark=watermark))
                return out
        if since is not None:
            out.append(RunsEvent("reset", watermark=watermark))
        if self.list_runs is not None and limit > 0:
            page = await self.list_runs(RunQuery(filter=filter, limit=limit))
            out.extend(RunsEvent("run", run=run, watermark=watermark) for run in page.items)
        out.append(RunsEvent("ready", watermark=watermark))
        return out

    async def _updated_since(self, filter: Node | None, since: float) -> list[Run] | None:
        """Runs matching ``filter`` updated at or after ``since``; None when there are too many."""
        if self.list_runs is None:
            return None
        t = datetime.fromtimestamp(since, tz=UTC)
        node = and_(filter, Pred("updated_at", Op.GTE, t))
        out: list[Run] = []
        cursor: str | None = None
        while True:
            page = await self.list_runs(
                RunQuery(filter=node, sort=Sort("updated_at", descending=False), limit=200, cursor=cursor)
            )
            out.extend(page.items)
            if len(out) > CATCH_UP_LIMIT:
                return None
            if not page.next_cursor:
                return out
            cursor = page.next_cursor


def scope_of(node: Node | None) -> Callable[[Change], bool] | None:
    """A cheap pre-filter on a change's identity from the filter's top-level org/project/domain terms."""
    wanted: dict[str, str] = {}
    items = node.items if isinstance(node, And) else (node,) if node is not None else ()
    for item in items:
        if isinstance(item, Pred) and item.op is Op.EQ and item.field in ("org", "project", "domain"):
            wanted[item.field] = str(item.value)
    if not wanted:
        return None
    org, project, domain = wanted.get("org"), wanted.get("project"), wanted.get("domain")

    def accepts(c: Change) -> bool:
        rid = c.run_id
        return (
            (not org or rid.org == org)
            and (not project or rid.project == project)
            and (not domain or rid.domain == domain)
        )

    return accepts


class _FilterKey:
    """A filter as a cache key compared by identity (see ``WatchService._filter_key``)."""

    __slots__ = ("filter",)

    def __init__(self, filter: Node | None) -> None:
        self.filter = filter


def _matches(run: Run, key: _FilterKey) -> bool:
    return matches(key.filter, run)


def _attempt_done(action: Action, attempt: int) -> bool:
    if attempt <= 0:
        return action.phase.terminal
    for a in action.attempt_list:
        if a.attempt == attempt:
            return a.phase.terminal
    return action.phase.terminal and action.attempts < attempt
