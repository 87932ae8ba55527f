"""Replicas on one PostgreSQL: job leases, live replicas, channel leases

Any number of `jobstatus-bot run` processes share one PostgreSQL database (bot/store/leases.py): each job is
polled by the replica named in its `owner` until `lease_until`, each replica's heartbeat is in `replicas`,
and one replica at a time sends to a Slack channel (`channel_leases`). SQLite, one process, has the columns
and tables but leaves them empty.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:  # SQLite cannot add columns with defaults any other way
        batch.add_column(sa.Column("owner", sa.String(), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.Float(), nullable=False, server_default="0"))
    op.create_index("ix_jobs_owner", "jobs", ["owner"])
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("started", sa.Float(), nullable=False),
        sa.Column("heartbeat", sa.Float(), nullable=False),
    )
    op.create_table(
        "channel_leases",
        sa.Column("channel", sa.String(), primary_key=True),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("channel_leases")
    op.drop_table("replicas")
    op.drop_index("ix_jobs_owner", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("owner")
