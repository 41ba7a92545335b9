"""The PostgreSQL fan-out: LISTEN/NOTIFY on one dedicated connection per replica.

* ``publish`` delivers to this process's watchers at once and queues the change for NOTIFY; a
  background sender drains the queue in one round trip per batch, so writers never wait for it.
* Payloads carry identities and versions only (readers fetch rows) and the sender's replica id,
  so a replica skips its own notifications (it delivered them locally already).
* The same connection LISTENs. It is pinged every few seconds; when it is lost, the loop
  reconnects with backoff, LISTENs again and then tells every watcher to re-read its subject from
  the database (:meth:`WatchHub.lost_changes`), since notifications sent meanwhile are gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from runtrack.domain.models import RunId
from runtrack.service.notifier import Change
from runtrack.service.watch import WatchHub

log = logging.getLogger("runtrack.fanout")

CHANNEL = "runtrack_changes"
MAX_PAYLOAD = 7000  # bytes; PostgreSQL's limit is 8000
SEND = "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p"


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _head(replica: str) -> str:
    return f'{{"r":{json.dumps(replica)},"c":['


def encode(replica: str, changes: Sequence[Change]) -> list[str]:
    """JSON payloads of at most MAX_PAYLOAD bytes: ``{"r": replica, "c": [[pk, org, project, ...], ...]}``."""
    head = _head(replica)
    out: list[str] = []
    items: list[str] = []
    size = len(head) + 2
    for c in changes:
        rid = c.run_id
        item = json.dumps(
            [c.run_pk, rid.org, rid.project, rid.domain, rid.name, c.run_version, c.action, int(c.deleted)],
            separators=(",", ":"),
        )
        if items and size + len(item) + 1 > MAX_PAYLOAD:
            out.append(head + ",".join(items) + "]}")
            items, size = [], len(head) + 2
        items.append(item)
        size += len(item) + 1
    if items:
        out.append(head + ",".join(items) + "]}")
    return out


def decode(payload: str) -> tuple[str, list[Change]]:
    data: Any = json.loads(payload)
    changes = [
        Change(
            run_pk=int(i[0]),
            run_id=RunId(i[1], i[2], i[3], i[4]),
            run_version=int(i[5]),
            action=i[6],
            deleted=bool(i[7]),
        )
        for i in data["c"]
    ]
    return str(data["r"]), changes


class PgNotifier:
    """Publishes through NOTIFY and feeds the local hub from LISTEN (which also serves other replicas)."""

    def __init__(
        self,
        hub: WatchHub,
        database_url: str,
        *,
        replica_id: str | None = None,
        ping_s: float = 5.0,
        coalesce_above: int = 10_000,
    ) -> None:
        self.hub = hub
        self.dsn = asyncpg_dsn(database_url)
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        self.ping_s = ping_s
        self.coalesce_above = coalesce_above
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.received = 0
        self.sent = 0
        self._outbox: list[Change] = []
        self._wake = asyncio.Event()
        self._own = _head(self.replica_id)  # how this replica's own payloads begin
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None

    async def publish(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        self.hub.dispatch(changes)
        self._outbox.extend(changes)
        if len(self._outbox) > self.coalesce_above:
            # Only while NOTIFY cannot keep up (or the database is away): newest state per entity wins.
            newest: dict[tuple[int, str | None], Change] = {}
            for c in self._outbox:
                newest[(c.run_pk, c.action)] = c
            self._outbox = list(newest.values())
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="runtrack:pg-listener")
        try:
            await asyncio.wait_for(self.connected.wait(), 10)
        except TimeoutError:
            log.warning("change listener not connected yet; watchers on other replicas may lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def drop_connection(self) -> None:
        """Close the listener connection abruptly (used by tests of the reconnect path)."""
        if self._conn is not None:
            self._conn.terminate()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(self._own):
            return  # published here: the local hub had it at publish time
        try:
            replica, changes = decode(payload)
        except (ValueError, KeyError, IndexError, TypeError):
            log.warning("ignoring a malformed change notification")
            return
        if replica != self.replica_id:
            self.received += len(changes)
            self.hub.dispatch(changes)

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while True:
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=5, server_settings={"application_name": "runtrack-listener"}
                )
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("change listener cannot connect (%s); retrying in %.1fs", type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._conn = conn
            conn.add_termination_listener(lambda _c: self._wake.set())
            try:
                await conn.add_listener(CHANNEL, self._on_notify)
                if first:
                    self.hub.continuous_since = time.time()  # other replicas' changes reach us from now on
                else:
                    self.reconnects += 1
                    log.info("change listener reconnected; resynchronising watchers")
                    self.hub.lost_changes()
                first = False
                backoff = 0.1
                self.connected.set()
                await self._serve(conn)
            except asyncio.CancelledError:
                await _close(conn)
                raise
            except Exception as exc:  # any loss of the connection: reconnect
                log.warning("change listener connection lost (%s)", type(exc).__name__)
            finally:
                self.connected.clear()
                self._conn = None
            await _close(conn)

    async def _serve(self, conn: Any) -> None:
        while True:
            if conn.is_closed():
                raise ConnectionError("listener connection closed")
            if self._outbox:
                batch, self._outbox = self._outbox, []
                try:
                    await conn.execute(SEND, CHANNEL, encode(self.replica_id, batch), timeout=10)
                    self.sent += len(batch)
                except BaseException:
                    self._outbox = batch + self._outbox
                    raise
                continue
            try:
                async with asyncio.timeout(self.ping_s):  # no helper task (unlike wait_for in 3.11)
                    await self._wake.wait()
                self._wake.clear()
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=5)


async def _close(conn: Any) -> None:
    try:
        await asyncio.wait_for(conn.close(), 2)
    except Exception:
        conn.terminate()
