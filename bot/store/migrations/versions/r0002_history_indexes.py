"""Indexes for pruning old history

bot/store/history.py removes state changes, ended watches and jobs no longer watched once they are older
than the retention. These indexes (state changes by time, ended watches by when they ended, jobs no longer
polled by when they were last checked) let each of its batches read only the rows it removes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_state_changes_at", "state_changes", ["at"])
    op.create_index("ix_watches_ended", "watches", ["ended_at"])
    op.create_index("ix_jobs_done", "jobs", ["polling", "checked_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_done", table_name="jobs")
    op.drop_index("ix_watches_ended", table_name="watches")
    op.drop_index("ix_state_changes_at", table_name="state_changes")
