"""The schema of jobstatus 0.1.0

The last release without migrations, exactly as its `SQLModel.metadata.create_all` made it (written by hand;
tests/unit/store/test_schema.py holds it against a dump of such a database, tests/data/release-0.1.0.*.sql). A
database 0.1.0 made has these tables and no alembic_version: `bot.store.schema` stamps it with this revision
instead of running it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("backend", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("phase", sa.String(), nullable=False),
        sa.Column("vendor_status", sa.String(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=True),
        sa.Column("message", sa.String(), nullable=True),
        sa.Column("log_paths", sa.String(), nullable=False),
        sa.Column("links", sa.String(), nullable=False),
        sa.Column("polling", sa.Boolean(), nullable=False),
        sa.Column("next_poll_at", sa.Float(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("error_kind", sa.String(), nullable=True),
        sa.Column("error_text", sa.String(), nullable=True),
        sa.Column("error_since", sa.Float(), nullable=True),
        sa.Column("outage_noted", sa.Boolean(), nullable=False),
        sa.Column("timeout_at", sa.Float(), nullable=True),
        sa.Column("cancel_requested_by", sa.String(), nullable=True),
        sa.Column("cancel_requested_at", sa.Float(), nullable=True),
        sa.Column("changed_at", sa.Float(), nullable=False),
        sa.Column("checked_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("backend", "job_id"),
    )
    op.create_index("ix_jobs_due", "jobs", ["polling", "next_poll_at"])
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_pk", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("parent_ts", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("ended_reason", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["job_pk"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_pk", "channel"),
    )
    op.create_index("ix_watches_channel", "watches", ["channel", "active"])
    op.create_index("ix_watches_job", "watches", ["job_pk", "active"])
    op.create_table(
        "state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_pk", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("phase", sa.String(), nullable=False),
        sa.Column("vendor_status", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["job_pk"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_state_changes_job_pk", "state_changes", ["job_pk"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("watch_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("payload", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["watch_id"], ["watches.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_due", "outbox", ["next_attempt_at"])
    op.create_index("ix_outbox_watch_id", "outbox", ["watch_id"])
    op.create_table(
        "secrets",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("secrets")
    op.drop_index("ix_outbox_watch_id", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_state_changes_job_pk", table_name="state_changes")
    op.drop_table("state_changes")
    op.drop_index("ix_watches_job", table_name="watches")
    op.drop_index("ix_watches_channel", table_name="watches")
    op.drop_table("watches")
    op.drop_index("ix_jobs_due", table_name="jobs")
    op.drop_table("jobs")
