"""Load N runs of realistic shape into a runtrack database, fast.

Shape per run: the root action ``a0`` plus 0-3 child actions (about 2.5 actions a run), one attempt
per started action with its phase transitions, 2-3 labels, a phase mix of about 60% SUCCEEDED,
15% FAILED, 10% RUNNING, 5% ABORTED and 10% QUEUED, created_at spread over the last 90 days,
10 projects x 3 domains, 50 users.

PostgreSQL: generated server-side with INSERT ... SELECT over generate_series, in batches.
SQLite: generated in Python with executemany (same shape; meant for smaller N).

    python bench/load.py --database-url postgresql://postgres@127.0.0.1:5432/bench -n 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from runtrack.config import Settings, normalize_database_url
from runtrack.storage import migrate
from runtrack.storage.db import Database, create_database

ORG = "bench"
DOMAINS = ("development", "staging", "production")
TEAMS = ("ml", "data", "infra", "search", "ads", "growth", "core", "web", "mobile", "risk")

# Phase of a run from its number: 60% S(5), 15% F(6), 10% R(4), 5% A(7), 10% Q(1).
PG_PHASE = """CASE WHEN (g * 7919) % 100 < 60 THEN 5 WHEN (g * 7919) % 100 < 75 THEN 6
 WHEN (g * 7919) % 100 < 85 THEN 4 WHEN (g * 7919) % 100 < 90 THEN 7 ELSE 1 END"""


def py_phase(g: int) -> int:
    p = (g * 7919) % 100
    return 5 if p < 60 else 6 if p < 75 else 4 if p < 85 else 7 if p < 90 else 1


PG_RUNS = f"""
INSERT INTO runs (id, org, project, domain, name, phase, attempts, created_by, task_project, task_domain,
  task_name, task_version, source, spec, labels, error_kind, error_message, abort_reason, aborted_by,
  created_at, updated_at, started_at, ended_at, duration_ms, version)
SELECT g, '{ORG}', 'project-' || (g % 10), (ARRAY['development','staging','production'])[1 + g % 3],
  'r' || g, s.phase, CASE WHEN s.phase = 1 THEN 0 ELSE 1 END, 'user' || (g % 50) || '@example.com',
  'project-' || (g % 10), (ARRAY['development','staging','production'])[1 + g % 3],
  'wf.pipeline_' || (g % 40), 'v' || (g % 7), 'cli',
  jsonb_build_object('task', 'wf.pipeline_' || (g % 40), 'cluster', 'c' || (g % 3)),
  jsonb_build_object('team', (ARRAY{list(TEAMS)})[1 + g % 10], 'env', (ARRAY['dev','stg','prd'])[1 + g % 3])
    || CASE WHEN g % 5 = 0 THEN jsonb_build_object('experiment', 'exp-' || (g % 97)) ELSE '{{}}'::jsonb END,
  CASE WHEN s.phase = 6 THEN 'USER' END, CASE WHEN s.phase = 6 THEN 'task failed: exit code 1' END,
  CASE WHEN s.phase = 7 THEN 'aborted by user' END, CASE WHEN s.phase = 7 THEN 'user' || (g % 50) END,
  s.created, s.created + interval '5 minutes',
  CASE WHEN s.phase <> 1 THEN s.created + interval '10 seconds' END,
  CASE WHEN s.phase IN (5, 6, 7) THEN s.created + ((g % 600) + 20) * interval '1 second' END,
  CASE WHEN s.phase IN (5, 6, 7) THEN ((g % 600) + 10) * 1000 END, 3
FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g
CROSS JOIN LATERAL (SELECT {PG_PHASE} AS phase,
  CAST(:now AS timestamptz) - ((g * 104729) % 7776000) * interval '1 second' AS created) s
"""

PG_LABELS = """
INSERT INTO run_labels (run_id, key, value)
SELECT r.id, l.key, l.value FROM runs r CROSS JOIN LATERAL jsonb_each_text(r.labels) l
WHERE r.id BETWEEN :lo AND :hi
"""

# Actions: k = 0 is the root (same phase as the run); children follow the run's outcome.
PG_ACTIONS = """
INSERT INTO actions (id, run_id, name, parent, action_type, task_name, task_version, phase, attempts,
  created_at, updated_at, started_at, ended_at, error_kind, error_message)
SELECT r.id * 4 + k, r.id, CASE WHEN k = 0 THEN 'a0' ELSE 'a0-' || k END, CASE WHEN k > 0 THEN 'a0' END,
  'task', r.task_name, r.task_version, c.phase, CASE WHEN c.phase = 1 THEN 0 ELSE 1 END,
  r.created_at, r.updated_at, CASE WHEN c.phase <> 1 THEN r.started_at END,
  CASE WHEN c.phase IN (5, 6, 7) THEN coalesce(r.ended_at, r.created_at + interval '1 minute') END,
  CASE WHEN c.phase = 6 THEN 'USER' END, CASE WHEN c.phase = 6 THEN 'task failed: exit code 1' END
FROM runs r CROSS JOIN generate_series(0, 3) k
CROSS JOIN LATERAL (SELECT CASE WHEN k = 0 THEN r.phase
  WHEN r.phase = 6 AND k = 1 THEN 6 WHEN r.phase IN (5, 6) THEN 5 WHEN r.phase = 4 THEN 4
  WHEN r.phase = 7 THEN 7 ELSE 1 END AS phase) c
WHERE r.id BETWEEN :lo AND :hi AND k <= r.id % 4
"""

PG_ATTEMPTS = """
INSERT INTO attempts (id, action_id, attempt, phase, version, start_time, end_time, error_kind, error_message,
  cluster, last_heartbeat_at, created_at, updated_at)
SELECT a.id, a.id, 1, a.phase, 3, a.started_at, a.ended_at, a.error_kind, a.error_message,
  'cluster-' || (a.run_id % 3), NULL, a.created_at, a.updated_at
FROM actions a WHERE a.run_id BETWEEN :lo AND :hi AND a.phase <> 1
"""

PG_TRANSITIONS = """
INSERT INTO phase_transitions (attempt_id, phase, start_time, end_time)
SELECT t.id, CASE s WHEN 1 THEN 1 WHEN 2 THEN 4 ELSE t.phase END,
  t.created_at + (s - 1) * interval '5 seconds',
  CASE WHEN s < (CASE WHEN t.phase = 4 THEN 2 ELSE 3 END) THEN t.created_at + s * interval '5 seconds' END
FROM attempts t CROSS JOIN generate_series(1, 3) s
WHERE t.action_id BETWEEN :lo * 4 AND :hi * 4 + 3 AND s <= CASE WHEN t.phase = 4 THEN 2 ELSE 3 END
"""


async def _fresh_check(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM runs"))).scalar_one())


BULK_TABLES = ("runs", "run_labels", "actions", "attempts", "phase_transitions")


def _secondary_indexes() -> list[sa.Index]:
    from runtrack.storage.tables import metadata

    return [ix for t in BULK_TABLES for ix in metadata.tables[t].indexes if not ix.unique]


async def load_postgres(db: Database, n: int, batch: int, now: datetime, jobs: int = 2) -> None:
    """Bulk path: secondary indexes are dropped during the load and rebuilt once at the end, and
    foreign-key triggers are skipped for the generated rows (which are consistent by construction)."""
    start = await _fresh_check(db) + 1
    indexes = _secondary_indexes()
    async with db.write() as conn:
        for ix in indexes:
            await conn.execute(sa.text(f'DROP INDEX IF EXISTS "{ix.name}"'))
    batches = [(lo, min(start + n - 1, lo + batch - 1)) for lo in range(start, start + n, batch)]
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    done = 0

    async def worker() -> None:
        nonlocal done
        while not queue.empty():
            lo, hi = queue.get_nowait()
            async with db.write() as conn:
                await conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                await conn.execute(sa.text("SET LOCAL synchronous_commit = off"))
                params = {"lo": lo, "hi": hi, "now": now}
                for stmt in (PG_RUNS, PG_LABELS, PG_ACTIONS, PG_ATTEMPTS, PG_TRANSITIONS):
                    await conn.execute(sa.text(stmt), params)
            done += hi - lo + 1
            print(f"  {done:>9,} / {n:,} runs", flush=True)

    await asyncio.gather(*(worker() for _ in range(max(1, jobs))))
    print(f"  rebuilding {len(indexes)} indexes", flush=True)

    async def build(ix: sa.Index) -> None:
        async with db.write() as conn:
            await conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
            await conn.run_sync(lambda c: ix.create(c))

    pending = list(indexes)
    while pending:  # ``jobs`` index builds at a time
        chunk, pending = pending[: max(1, jobs)], pending[max(1, jobs) :]
        await asyncio.gather(*(build(ix) for ix in chunk))
    async with db.write() as conn:
        for table in ("runs", "actions", "attempts", "phase_transitions"):
            await conn.execute(
                sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("VACUUM ANALYZE"))


async def load_sqlite(db: Database, n: int, batch: int, now: datetime) -> None:
    from runtrack.storage.tables import actions, attempts, phase_transitions, run_labels, runs

    start = await _fresh_check(db) + 1
    rnd = random.Random(7)
    for lo in range(start, start + n, batch):
        hi = min(start + n - 1, lo + batch - 1)
        run_rows, label_rows, action_rows, attempt_rows, trans_rows = [], [], [], [], []
        for g in range(lo, hi + 1):
            phase = py_phase(g)
            created = now - timedelta(seconds=(g * 104729) % 7776000)
            ended = created + timedelta(seconds=(g % 600) + 20) if phase in (5, 6, 7) else None
            labels = {"team": TEAMS[g % 10], "env": ("dev", "stg", "prd")[g % 3]}
            if g % 5 == 0:
                labels["experiment"] = f"exp-{g % 97}"
            run_rows.append({
                "id": g, "org": ORG, "project": f"project-{g % 10}", "domain": DOMAINS[g % 3], "name": f"r{g}",
                "phase": phase, "attempts": 0 if phase == 1 else 1, "created_by": f"user{g % 50}@example.com",
                "task_name": f"wf.pipeline_{g % 40}", "task_version": f"v{g % 7}", "source": "cli",
                "spec": {"task": f"wf.pipeline_{g % 40}"}, "labels": labels,
                "error_kind": "USER" if phase == 6 else None, "created_at": created,
                "updated_at": created + timedelta(minutes=5),
                "started_at": created + timedelta(seconds=10) if phase != 1 else None, "ended_at": ended,
                "duration_ms": ((g % 600) + 10) * 1000 if ended else None, "version": 3,
            })
            label_rows += [{"run_id": g, "key": k, "value": v} for k, v in labels.items()]
            for k in range(0, g % 4 + 1):
                cphase = phase if k == 0 else 6 if (phase == 6 and k == 1) else 5 if phase in (5, 6) else phase
                aid = g * 4 + k
                action_rows.append({
                    "id": aid, "run_id": g, "name": "a0" if k == 0 else f"a0-{k}", "parent": None if k == 0 else "a0",
                    "action_type": "task", "phase": cphase, "attempts": 0 if cphase == 1 else 1,
                    "created_at": created, "updated_at": created + timedelta(minutes=5),
                })
                if cphase != 1:
                    attempt_rows.append({
                        "id": aid, "action_id": aid, "attempt": 1, "phase": cphase, "version": 3,
                        "start_time": created, "end_time": ended, "created_at": created,
                        "updated_at": created + timedelta(minutes=5),
                    })
                    steps = [1, 4] + ([cphase] if cphase != 4 else [])
                    for i, p in enumerate(steps):
                        trans_rows.append({"attempt_id": aid, "phase": p,
                                           "start_time": created + timedelta(seconds=5 * i + rnd.random()),
                                           "end_time": None})
        async with db.write() as conn:
            for table, rows in ((runs, run_rows), (run_labels, label_rows), (actions, action_rows),
                                (attempts, attempt_rows), (phase_transitions, trans_rows)):
                if rows:
                    await conn.execute(table.insert(), rows)
        print(f"  {hi - start + 1:>9,} / {n:,} runs", flush=True)


async def main_async(url: str, n: int, batch: int, jobs: int) -> float:
    db = create_database(Settings(database_url=normalize_database_url(url)))
    try:
        await migrate.upgrade(db)
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        if db.is_postgres:
            await load_postgres(db, n, batch, now, jobs)
        else:
            await load_sqlite(db, n, min(batch, 20_000), now)
        return time.perf_counter() - t0
    finally:
        await db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("-n", type=int, default=100_000, help="runs to add")
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--jobs", type=int, default=2, help="concurrent PostgreSQL sessions")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()
    secs = asyncio.run(main_async(args.database_url, args.n, args.batch, args.jobs))
    result = {"runs": args.n, "seconds": round(secs, 1), "runs_per_s": round(args.n / secs)}
    print(json.dumps(result) if args.json else f"loaded {args.n:,} runs in {secs:.1f}s ({args.n / secs:,.0f} runs/s)")


if __name__ == "__main__":
    main()
