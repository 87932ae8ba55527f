"""Run history and digests: each finished run's duration by job name, a running job's usual figures, the
"longer than usual" flag, and one row per channel and day for the daily digest

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:  # SQLite cannot add columns with defaults any other way
        batch.add_column(sa.Column("started_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("usual_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("usual_runs", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("late_after_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("late_noted", sa.Boolean(), nullable=False, server_default="0"))
    op.create_table(
        "run_durations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("backend", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_run_durations_key", "run_durations", ["backend", "name", "ended_at"])
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("blocks", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.UniqueConstraint("channel", "day"),
    )


def downgrade() -> None:
    op.drop_table("digests")
    op.drop_index("ix_run_durations_key", table_name="run_durations")
    op.drop_table("run_durations")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("late_noted")
        batch.drop_column("late_after_s")
        batch.drop_column("usual_runs")
        batch.drop_column("usual_s")
        batch.drop_column("started_at")
