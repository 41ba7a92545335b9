"""Subscriptions: who watches what, and the per-subscriber queues of pending changes.

A write path publishes :class:`Change` s after its transaction commits; the fan-out hands them to
:meth:`WatchHub.dispatch`, which never blocks and never waits for a watcher. Each subscription
keeps a *pending map* keyed by entity (a run, or an action of a run): a newer change of the same
entity replaces the older one, so a slow watcher skips intermediate states but always gets the
newest one, and its memory is bounded by the number of distinct entities it watches. When even
that bound is passed, the subscription is flagged *overflowed* and its reader re-reads its
subject from the database (a visible resynchronisation, never a silent drop).

Every dispatch has a sequence number. :class:`FreshReads` shares database reads between watchers
woken by the same change, and never serves a read that started before the change it answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from runtrack.domain.models import ROOT_ACTION, RunId
from runtrack.service.notifier import Change

log = logging.getLogger("runtrack.watch")
T = TypeVar("T")
ObjT = TypeVar("ObjT")

RUN_LEVEL = "run"  # keyed by run: the run row and its root action
ACTION_LEVEL = "action"  # keyed by (run, action): every action of the run


@dataclass(frozen=True, slots=True)
class Pending:
    seq: int
    change: Change
    at: float  # wall time of the dispatch (the same for every watcher handed this change)


@dataclass(slots=True)
class Batch:
    """What a reader takes from its subscription in one go."""

    items: list[Pending]
    resync: bool = False  # re-read the subject: the fan-out lost changes or the pending map overflowed
    closed: bool = False  # the client went away


class Subscription:
    """One watcher's interest and its coalescing queue (no task of its own)."""

    def __init__(
        self,
        hub: WatchHub,
        *,
        run_pk: int | None,
        level: str,
        accepts: Callable[[Change], bool] | None,
        max_pending: int,
    ) -> None:
        self.hub = hub
        self.run_pk = run_pk
        self.level = level
        self.accepts = accepts
        self.max_pending = max_pending
        self.pending: dict[Hashable, Pending] = {}
        self.event = asyncio.Event()
        self.idle = False  # the idle timer fired
        self.resync = False
        self.closed = False
        self.coalesced = 0
        self.overflows = 0
        self.created_seq = hub.seq

    def key_of(self, change: Change) -> Hashable | None:
        if self.level == RUN_LEVEL:
            if change.action not in (None, ROOT_ACTION) and not change.deleted:
                return None
            return change.run_pk
        return (change.run_pk, change.action or ROOT_ACTION)

    def offer(self, item: Pending) -> None:
        change = item.change
        if self.closed or (self.accepts is not None and not self.accepts(change)):
            return
        key = self.key_of(change)
        if key is None:
            return
        old = self.pending.get(key)
        if old is not None:
            self.coalesced += 1
            self.hub.stats["coalesced"] += 1
            if old.change.deleted:
                item = Pending(item.seq, old.change, item.at)
        elif len(self.pending) >= self.max_pending:
            # Bounded memory: forget the individual entries and re-read the subject instead.
            self.pending.clear()
            self.resync = True
            self.overflows += 1
            self.hub.stats["overflows"] += 1
            self.event.set()
            return
        self.pending[key] = item
        self.event.set()

    def mark_resync(self) -> None:
        self.resync = True
        self.event.set()

    def close(self) -> None:
        """Ends the reader's wait (client gone); :meth:`WatchHub.unsubscribe` releases it."""
        self.closed = True
        self.event.set()

    def _idle(self) -> None:
        self.idle = True
        self.event.set()

    async def next_batch(self, idle_s: float | None) -> Batch | None:
        """The pending changes, or None when ``idle_s`` passes idle (time for a keep-alive).

        The idle timer is a plain timer handle that sets the same event as a change does: this
        wait is on the path of every change to every watcher, and is kept that cheap.
        """
        if not self.event.is_set() and not self.closed:
            if idle_s is None:
                await self.event.wait()
            else:
                timer = asyncio.get_running_loop().call_later(idle_s, self._idle)
                try:
                    await self.event.wait()
                finally:
                    timer.cancel()
            if self.idle and not self.pending and not self.resync and not self.closed:
                self.idle = False
                self.event.clear()
                return None
        self.idle = False
        self.event.clear()
        batch = Batch(list(self.pending.values()), resync=self.resync, closed=self.closed)
        self.pending = {}
        self.resync = False
        return batch


# Reads the runs of a batch of changes before the watchers wake (see WatchHub.set_prefetch).
Prefetch = Callable[[int, list[int]], Awaitable[None]]


class WatchHub:
    """The registry of subscriptions of this process; fan-outs feed it through :meth:`dispatch`.

    Without a prefetch hook, :meth:`dispatch` hands changes to the subscriptions at once. With
    one (the watch service installs it), a single delivery task drains what was dispatched in
    batches: it numbers the batch, lets the hook read the changed runs in one statement (so that
    the watchers it wakes find their record read already, instead of each waiting for a shared
    read), then hands the changes out in dispatch order. Under a burst the batches simply grow.
    """

    def __init__(self, *, max_pending: int = 10_000, delete_memory: int = 10_000) -> None:
        self.seq = 0
        self.max_pending = max_pending
        self._by_run: dict[int, set[Subscription]] = {}
        self._wide: set[Subscription] = set()
        self.stats: dict[str, int] = {"dispatched": 0, "coalesced": 0, "overflows": 0, "resyncs": 0}
        # Since when this process has seen every change (a lost listener connection moves it).
        self.continuous_since = time.time()
        # Recently deleted runs (wall time seen, run id) so that a resuming stream can report them.
        self.deletes: deque[tuple[float, RunId]] = deque(maxlen=delete_memory)
        self.deletes_since = self.continuous_since
        self._prefetch: Prefetch | None = None
        self._queue: list[Change] = []
        self._delivery: asyncio.Task[None] | None = None

    @property
    def subscription_count(self) -> int:
        return len(self._wide) + sum(len(s) for s in self._by_run.values())

    def set_prefetch(self, prefetch: Prefetch | None) -> None:
        """``prefetch(seq, run_pks)`` reads those runs for the watchers of a batch numbered ``seq``."""
        self._prefetch = prefetch

    def subscribe(
        self,
        *,
        run_pk: int | None = None,
        level: str = RUN_LEVEL,
        accepts: Callable[[Change], bool] | None = None,
        max_pending: int | None = None,
    ) -> Subscription:
        sub = Subscription(
            self, run_pk=run_pk, level=level, accepts=accepts, max_pending=max_pending or self.max_pending
        )
        if run_pk is None:
            self._wide.add(sub)
        else:
            self._by_run.setdefault(run_pk, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.closed = True
        if sub.run_pk is None:
            self._wide.discard(sub)
            return
        subs = self._by_run.get(sub.run_pk)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_run[sub.run_pk]

    def dispatch(self, changes: Sequence[Change]) -> None:
        """Hand changes to every interested subscription (never blocks, never waits for a watcher)."""
        if self._prefetch is None:
            self.seq += 1
            self._hand_out(self.seq, changes)
            return
        self._queue.extend(changes)
        if self._delivery is None:
            self._delivery = asyncio.get_running_loop().create_task(self._deliver(), name="runtrack:watch-delivery")

    async def _deliver(self) -> None:
        try:
            while self._queue and self._prefetch is not None:
                changes, self._queue = self._queue, []
                self.seq += 1
                seq = self.seq  # reads started from here on see every change of this batch
                pks = sorted(
                    {c.run_pk for c in changes if c.action is None and not c.deleted and self._watched(c.run_pk)}
                )
                if pks:
                    try:
                        await self._prefetch(seq, pks)
                    except Exception as exc:  # the watchers read for themselves (and report errors)
                        log.warning("reading changed runs ahead of watchers failed: %s", type(exc).__name__)
                self._hand_out(seq, changes)
            if self._queue:  # the hook was removed meanwhile
                changes, self._queue = self._queue, []
                self.seq += 1
                self._hand_out(self.seq, changes)
        finally:
            self._delivery = None

    async def delivered(self) -> None:
        """Wait until everything dispatched so far has been handed to the subscriptions."""
        while self._delivery is not None:
            await asyncio.shield(self._delivery)

    def _watched(self, run_pk: int) -> bool:
        return bool(self._wide) or run_pk in self._by_run

    def _hand_out(self, seq: int, changes: Sequence[Change]) -> None:
        now = time.time()
        for change in changes:
            self.stats["dispatched"] += 1
            if change.deleted:
                if len(self.deletes) == self.deletes.maxlen:
                    self.deletes_since = self.deletes[0][0]
                self.deletes.append((now, change.run_id))
            item = Pending(seq, change, now)
            for sub in self._by_run.get(change.run_pk, ()):
                sub.offer(item)
            for sub in self._wide:
                sub.offer(item)

    def lost_changes(self) -> None:
        """The fan-out may have missed changes: every watcher re-reads its subject."""
        self.seq += 1
        self.stats["resyncs"] += 1
        self.continuous_since = time.time()
        for subs in list(self._by_run.values()):
            for sub in subs:
                sub.mark_resync()
        for sub in self._wide:
            sub.mark_resync()

    def close_all(self) -> None:
        """End every stream (the server is shutting down); clients reconnect elsewhere."""
        for subs in list(self._by_run.values()):
            for sub in subs:
                sub.close()
        for sub in list(self._wide):
            sub.close()

    def can_resume(self, since: float) -> bool:
        """Whether this process saw every change (deletes included) since wall time ``since``."""
        return since >= self.continuous_since and since >= self.deletes_since

    def deleted_since(self, since: float) -> list[tuple[float, RunId]]:
        return [d for d in self.deletes if d[0] >= since]


@dataclass(slots=True)
class _Read(Generic[T]):
    seq: int
    future: asyncio.Future[T]


class FreshReads:
    """Shares reads of one entity among watchers, never serving one older than a change they saw.

    ``get(key, min_seq, load)`` returns the result of a ``load`` that started when the hub's
    sequence was at least ``min_seq`` (i.e. after that change was committed and dispatched).
    ``put`` stores a read done ahead of the watchers (the hub's prefetch).
    """

    def __init__(self, hub: WatchHub, max_entries: int = 4096) -> None:
        self.hub = hub
        self.max_entries = max_entries
        self._reads: OrderedDict[Hashable, _Read[Any]] = OrderedDict()
        self.loads = 0
        self.shared = 0

    async def get(self, key: Hashable, min_seq: int, load: Callable[[], Awaitable[T]]) -> T:
        read = self._reads.get(key)
        if read is not None and read.seq >= min_seq:
            future = read.future
            if not future.done():
                self.shared += 1
                result: T = await asyncio.shield(future)
                return result
            if not future.cancelled() and future.exception() is None:
                self.shared += 1
                done: T = future.result()  # the common case for the 2nd..Nth watcher: no await at all
                return done

        async def run() -> T:
            return await load()

        self.loads += 1
        fresh: asyncio.Task[T] = asyncio.get_running_loop().create_task(run())
        self._remember(key, _Read(self.hub.seq, fresh))
        return await asyncio.shield(fresh)

    def put(self, key: Hashable, seq: int, value: object) -> None:
        """Remember ``value`` as a read that started at hub sequence ``seq``."""
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        future.set_result(value)
        self._remember(key, _Read(seq, future))

    def _remember(self, key: Hashable, read: _Read[Any]) -> None:
        self._reads[key] = read
        self._reads.move_to_end(key)
        while len(self._reads) > self.max_entries:
            oldest_key, oldest = next(iter(self._reads.items()))
            if not oldest.future.done():
                break
            del self._reads[oldest_key]


class RenderCache:
    """Renders an object once for every watcher that was handed the same object.

    :class:`FreshReads` gives every watcher woken by one change the same record; transports turn
    it into JSON, protobuf or a whole encoded frame through here, so a thousand watchers cost one
    conversion. Entries hold the object itself, so an identity is never mistaken for a later
    object's. ``extra`` is further (hashable) input of the rendering, such as an event id.
    """

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, int, tuple[Hashable, ...]], tuple[object, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, obj: ObjT, render: Callable[..., T], *extra: Hashable) -> T:
        """``render(obj, *extra)``, computed once per object and ``extra``.

        ``render`` should be a module-level function (its identity is part of the key).
        """
        key = (id(obj), id(render), extra)
        hit = self._items.get(key)
        if hit is not None and hit[0] is obj:
            self.hits += 1
            self._items.move_to_end(key)
            value: T = hit[1]
            return value
        self.misses += 1
        value = render(obj, *extra)
        self._items[key] = (obj, value)
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value
