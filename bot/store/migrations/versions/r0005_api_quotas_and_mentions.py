"""The HTTP API's mentioned user and the quotas: `watches.mention` (the Slack user an API request named,
mentioned without rights), an index on a watch's starter (one user's or token's active watches), and
`watch_starts` (the last minute's starts, counted by bot/operations/quotas.py)

Revision ID: 0006
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("watches") as batch:  # SQLite adds columns through a copy of the table
        batch.add_column(sa.Column("mention", sa.String(), nullable=True))
    op.create_index("ix_watches_user", "watches", ["user_id", "active"])
    op.create_table(
        "watch_starts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_watch_starts_actor", "watch_starts", ["actor", "at"])
    op.create_index("ix_watch_starts_channel", "watch_starts", ["channel", "at"])


def downgrade() -> None:
    op.drop_index("ix_watch_starts_channel", table_name="watch_starts")
    op.drop_index("ix_watch_starts_actor", table_name="watch_starts")
    op.drop_table("watch_starts")
    op.drop_index("ix_watches_user", table_name="watches")
    with op.batch_alter_table("watches") as batch:
        batch.drop_column("mention")
