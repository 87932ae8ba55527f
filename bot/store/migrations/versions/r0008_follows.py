"""Follows: a channel (or a person) following every run of a job name, the runs discovery has seen of the
followed names, and which follow made a watch (bot/domain/runs.py)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("backend", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("name_key", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("personal", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("broadcast", sa.Boolean(), nullable=False),
        sa.Column("mention", sa.String(), nullable=True),
        sa.Column("snoozed_until", sa.Float(), nullable=True),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.UniqueConstraint("backend", "name_key", "channel"),
    )
    op.create_index("ix_follows_backend", "follows", ["backend", "active"])
    op.create_index("ix_follows_channel", "follows", ["channel", "active"])
    op.create_table(
        "seen_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("backend", sa.String(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("name_key", sa.String(), nullable=False),
        sa.Column("phase", sa.String(), nullable=False),
        sa.Column("vendor_status", sa.String(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("backend", "job_id"),
    )
    op.create_index("ix_seen_runs_name", "seen_runs", ["backend", "name_key", "started_at"])
    op.create_index("ix_seen_runs_seen", "seen_runs", ["seen_at"])
    with op.batch_alter_table("watches") as batch:  # SQLite adds a column in place
        batch.add_column(sa.Column("follow_id", sa.Integer(), nullable=True))
    op.create_index("ix_watches_follow_id", "watches", ["follow_id"])


def downgrade() -> None:
    op.drop_index("ix_watches_follow_id", table_name="watches")
    with op.batch_alter_table("watches") as batch:
        batch.drop_column("follow_id")
    op.drop_index("ix_seen_runs_seen", table_name="seen_runs")
    op.drop_index("ix_seen_runs_name", table_name="seen_runs")
    op.drop_table("seen_runs")
    op.drop_index("ix_follows_channel", table_name="follows")
    op.drop_index("ix_follows_backend", table_name="follows")
    op.drop_table("follows")
