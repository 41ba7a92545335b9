"""Run stats: counts by phase and by status for a filter, behind a small in-memory cache.

The cache is keyed by the hash of the *resolved* filter (``me`` already replaced by the caller),
lives for ``stats_cache_ttl`` (0 disables it), holds at most ``stats_cache_size`` entries (least
recently used out), and is single-flight: concurrent identical misses share one query.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from runtrack.clock import utcnow
from runtrack.domain.filters import RUN_FIELDS, And, Node, Not, Or, filter_hash, to_jsonable, validate
from runtrack.domain.phases import REPORTABLE, STATUS_NAMES, Phase, status_of
from runtrack.storage.db import Database
from runtrack.storage.fleet import FleetStore

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class RunStats:
    total_runs: int
    counts_by_status: dict[str, int]
    counts_by_phase: dict[str, int]
    cached_at: datetime


def stats_from_counts(counts: dict[int, int], at: datetime) -> RunStats:
    """Fold ``phase → count`` into the response shape: every status and phase named, zeros included."""
    by_phase = {p.name: 0 for p in REPORTABLE}
    by_status = dict.fromkeys(STATUS_NAMES, 0)
    total = 0
    for value, n in counts.items():
        phase = Phase(value)
        total += n
        by_phase[phase.name] = by_phase.get(phase.name, 0) + n
        status = status_of(phase)
        by_status[status] = by_status.get(status, 0) + n
    return RunStats(total_runs=total, counts_by_status=by_status, counts_by_phase=by_phase, cached_at=at)


class TTLCache(Generic[V]):
    """A bounded LRU with a time-to-live per entry and single-flight loading.

    ``get_or_load(key, load)`` returns the fresh cached value, or runs ``load`` once however many
    callers miss on the same key at the same time; they all receive its result (or its error, which
    is not cached). A caller that is cancelled does not cancel the shared load.
    """

    def __init__(self, ttl_s: float, max_size: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_size = max(1, max_size)
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[V]] = {}
        self._generation = 0  # bumped by clear(): loads begun before it are not stored
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry; loads already under way answer their callers but are not kept."""
        self._entries.clear()
        self._inflight.clear()
        self._generation += 1

    def _fresh(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def _store(self, key: str, value: V) -> None:
        self._entries[key] = (self._clock() + self.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        if self.enabled:
            cached = self._fresh(key)
            if cached is not None:
                self.hits += 1
                return cached
        pending = self._inflight.get(key)
        if pending is None:
            self.misses += 1
            pending = asyncio.ensure_future(self._load(key, load, self._generation))
            self._inflight[key] = pending
        return await asyncio.shield(pending)

    async def _load(self, key: str, load: Callable[[], Awaitable[V]], generation: int) -> V:
        try:
            value = await load()
            if self.enabled and generation == self._generation:
                self._store(key, value)
            return value
        finally:
            if generation == self._generation:
                self._inflight.pop(key, None)


def canonical(node: Node | None) -> Node | None:
    """The same filter however it was spelled: nested ``and``/``or`` flattened, single-item groups
    unwrapped, members in a fixed order (both are commutative). Used for cache keys only."""
    if node is None or not isinstance(node, And | Or | Not):
        return node
    if isinstance(node, Not):
        return Not(canonical(node.item) or And(()))
    kind = type(node)
    items: list[Node] = []
    for item in node.items:
        c = canonical(item)
        if c is None:
            continue
        if isinstance(c, kind):
            items.extend(c.items)
        else:
            items.append(c)
    items.sort(key=lambda n: json.dumps(to_jsonable(n), sort_keys=True, default=str))
    if len(items) == 1:
        return items[0]
    return kind(tuple(items))


class StatsService:
    def __init__(self, db: Database, store: FleetStore, *, ttl_s: float, max_size: int) -> None:
        self.db = db
        self.store = store
        self.cache: TTLCache[RunStats] = TTLCache(ttl_s, max_size)

    async def stats(self, node: Node | None) -> RunStats:
        """Stats for a resolved filter (``me`` already replaced by the caller)."""
        node = validate(node, RUN_FIELDS)
        key = filter_hash(canonical(node), "stats")
        return await self.cache.get_or_load(key, lambda: self.uncached(node))

    def invalidate(self) -> None:
        """Drop every cached answer (after runs were deleted here: they vanish from the counts at
        once on this replica; other replicas catch up within their TTL)."""
        self.cache.clear()

    async def uncached(self, node: Node | None) -> RunStats:
        """Stats straight from the database (one grouped count), bypassing the cache."""
        async with self.db.read() as conn:
            counts = await self.store.phase_counts(conn, node)
        return stats_from_counts(counts, utcnow())
