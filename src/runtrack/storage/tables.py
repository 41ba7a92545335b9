"""The schema (DESIGN.md section 1), identical on SQLite and PostgreSQL.

Listing indexes end in ``(created_at, id)`` so that keyset pages on the default sort are index
range scans whatever the filter prefix. ``runs.phase`` is the root action's phase, kept in step in
the same transaction by every write path, so that run listings never join actions.
"""

from __future__ import annotations

import sqlalchemy as sa

from runtrack.storage.types import BigId, Json, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

NAME = 63  # identifier parts (flyteidl2: 1-63 characters)
RUN_NAME = 30

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("org", sa.String(NAME), nullable=False),
    sa.Column("project", sa.String(NAME), nullable=False),
    sa.Column("domain", sa.String(NAME), nullable=False),
    sa.Column("name", sa.String(RUN_NAME), nullable=False),
    sa.Column("phase", sa.SmallInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_by", sa.String(255), nullable=False, server_default=""),
    sa.Column("task_project", sa.String(NAME)),
    sa.Column("task_domain", sa.String(NAME)),
    sa.Column("task_name", sa.String(255)),
    sa.Column("task_version", sa.String(255)),
    sa.Column("task_type", sa.String(64)),
    sa.Column("trigger_name", sa.String(255)),
    sa.Column("source", sa.String(32), nullable=False, server_default=""),
    sa.Column("spec", Json),
    sa.Column("inputs", Json),
    sa.Column("labels", Json),
    sa.Column("error_kind", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("abort_reason", sa.Text),
    sa.Column("aborted_by", sa.String(255)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("duration_ms", sa.BigInteger),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="1"),
    sa.UniqueConstraint("org", "project", "domain", "name"),
    sa.Index("ix_runs_created", "created_at", "id"),
    sa.Index("ix_runs_scope_created", "org", "project", "domain", "created_at", "id"),
    sa.Index("ix_runs_phase_created", "phase", "created_at", "id"),
    sa.Index("ix_runs_scope_phase_created", "org", "project", "domain", "phase", "created_at", "id"),
    sa.Index("ix_runs_created_by_created", "created_by", "created_at", "id"),
    sa.Index("ix_runs_task_created", "task_name", "created_at", "id"),
    sa.Index("ix_runs_updated", "updated_at", "id"),
)

run_labels = sa.Table(
    "run_labels",
    metadata,
    sa.Column("run_id", BigId, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False, server_default=""),
    sa.Index("ix_run_labels_key_value_run", "key", "value", "run_id"),
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", BigId, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("parent", sa.String(255)),
    sa.Column("group_name", sa.String(255)),
    sa.Column("action_type", sa.String(16), nullable=False, server_default="task"),
    sa.Column("task_name", sa.String(255)),
    sa.Column("task_version", sa.String(255)),
    sa.Column("task_type", sa.String(64)),
    sa.Column("spec", Json),
    sa.Column("inputs", Json),
    sa.Column("outputs", Json),
    sa.Column("phase", sa.SmallInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("version", sa.BigInteger),
    sa.Column("error_kind", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("abort_reason", sa.Text),
    sa.Column("aborted_by", sa.String(255)),
    sa.Column("concurrency_key", sa.String(255)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("ended_at", UTCDateTime),
    sa.UniqueConstraint("run_id", "name"),
    sa.Index("ix_actions_phase", "phase"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("action_id", BigId, sa.ForeignKey("actions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("phase", sa.SmallInteger, nullable=False),
    sa.Column("version", sa.BigInteger),
    sa.Column("start_time", UTCDateTime),
    sa.Column("end_time", UTCDateTime),
    sa.Column("error_kind", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("outputs", Json),
    sa.Column("log_info", Json),
    sa.Column("cluster", sa.String(255)),
    sa.Column("last_heartbeat_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("action_id", "attempt"),
    sa.Index("ix_attempts_heartbeat", "last_heartbeat_at"),
)

phase_transitions = sa.Table(
    "phase_transitions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("attempt_id", BigId, sa.ForeignKey("attempts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("phase", sa.SmallInteger, nullable=False),
    sa.Column("start_time", UTCDateTime, nullable=False),
    sa.Column("end_time", UTCDateTime),
    sa.Index("ix_phase_transitions_attempt", "attempt_id", "id"),
)

cluster_events = sa.Table(
    "cluster_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("attempt_id", BigId, sa.ForeignKey("attempts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
    sa.Column("type", sa.String(32), nullable=False, server_default=""),
    sa.Column("reason", sa.String(255), nullable=False, server_default=""),
    sa.Column("source", sa.String(255), nullable=False, server_default=""),
    sa.Column("count", sa.Integer, nullable=False, server_default="1"),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.UniqueConstraint("attempt_id", "fingerprint"),
)

# Log lines are keyed by the run's id without a foreign key: a deleted run's lines are removed
# afterwards by the durable cleanup queue (``cleanup_jobs``), not inside the delete transaction.
log_lines = sa.Table(
    "log_lines",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.BigInteger, nullable=False),
    sa.Column("action_name", sa.String(255), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("stream", sa.String(16), nullable=False, server_default="stdout"),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_log_lines_run_action_attempt", "run_id", "action_name", "attempt", "id"),
)

cleanup_jobs = sa.Table(
    "cleanup_jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("org", sa.String(NAME), nullable=False),
    sa.Column("project", sa.String(NAME), nullable=False),
    sa.Column("domain", sa.String(NAME), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("version", sa.String(255), nullable=False),
    sa.Column("spec", Json, nullable=False),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("deployed_by", sa.String(255), nullable=False, server_default=""),
    sa.Column("deployed_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("org", "project", "domain", "name", "version"),
    sa.Index("ix_tasks_scope_deployed", "org", "project", "domain", "deployed_at", "id"),
    sa.Index("ix_tasks_name_deployed", "org", "project", "domain", "name", "deployed_at", "id"),
)

concurrency_limits = sa.Table(
    "concurrency_limits",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(NAME), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("slots", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("project", "key"),
)

concurrency_slots = sa.Table(
    "concurrency_slots",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "limit_id", BigId, sa.ForeignKey("concurrency_limits.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column(
        "action_id", BigId, sa.ForeignKey("actions.id", ondelete="CASCADE"), nullable=False, unique=True
    ),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("granted", sa.Boolean, nullable=False, server_default=sa.true()),
)
