"""A database made before revision 0001 by the first release on main (commit 1a09719, the round-1 code),
brought to 0.1.0's schema, which is revision 0001: `bot.store.schema` recognises it, runs `upgrade` below in
the same transaction and under the same lock as the revisions, then stamps it 0001 and upgrades on from there.

That release made 0.1.0's tables but for two things 0.1.0 added:

- `jobs.cancel_requested_by` and `jobs.cancel_requested_at` (one cancel call per job however many clicks):
  nullable, added empty (no cancel had been asked through them);
- `UNIQUE (job_pk, channel)` on `watches` (one watch per job and channel: a job watched again in a channel
  where its watch had ended resumes that watch). 1a09719 made a new watch row instead, so its database may
  hold several watches of one job in one channel. Before the constraint goes on they become one: the active
  one (else the newest) stays, the others' owed thread replies move to it (the same job in the same
  channel: the text still reaches the channel, in the thread that goes on) and their owed parents and parent
  updates go (the watch that stays has its own parent, drawn from the job's state when it is sent), then
  those rows are deleted: ended watches (or, after a rare race of 1a09719's, a second active one) whose
  history is the job's state changes, which stay.

The first commits of that round on main (de3d2d1 to 09197c8) made the same tables with one more column,
`jobs.polls` (a count of polls nothing reads since 1799f10, NOT NULL without a default, so every job the newer
code wrote would fail on it): it is dropped.

Everything else, rows and all, is as 0.1.0 reads it: the same tables, the same outbox kinds and payloads
(`{"text", "blocks", "broadcast"}` replies, `{}` parents and updates). tests/data/release-1a09719.sqlite.sql
is such a database, made by that commit's own code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

RELEASE = "1a09719"
EARLIER = "09197c8"  # the last of the round-1 commits whose jobs table has `polls` (from de3d2d1)
ADDED_BY_0_1_0 = {"jobs": {"cancel_requested_by", "cancel_requested_at"}}
DROPPED_BY_1799F10 = {"jobs": {"polls"}}
# The name PostgreSQL gave the unnamed UNIQUE (job_pk, channel) of 0.1.0's create_all (and of revision 0001,
# which names none either): tests/data/release-0.1.0.postgresql.sql has it
PG_WATCH_UNIQUE = "watches_job_pk_channel_key"


def tables(release_0_1_0: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """The tables and columns 1a09719 made: 0.1.0's without the columns 0.1.0 added."""
    return {t: cols - ADDED_BY_0_1_0.get(t, set()) for t, cols in release_0_1_0.items()}


def earlier_tables(release_0_1_0: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """The tables and columns de3d2d1 to 09197c8 made: 1a09719's and `jobs.polls`."""
    return {t: cols | DROPPED_BY_1799F10.get(t, set()) for t, cols in tables(release_0_1_0).items()}


def upgrade(conn: Connection) -> int:
    """Bring 1a09719's tables to 0.1.0's schema in the caller's transaction; returns how many duplicate
    watches were folded into the watch that stays in their channel."""
    folded = _one_watch_per_job_and_channel(conn)
    ops = Operations(MigrationContext.configure(conn))
    if "polls" in {c["name"] for c in sa.inspect(conn).get_columns("jobs")}:
        # SQLite 3.35+ drops a plain column in place (sqlite.org/lang_altertable.html)
        ops.drop_column("jobs", "polls")
    ops.add_column("jobs", sa.Column("cancel_requested_by", sa.String(), nullable=True))
    ops.add_column("jobs", sa.Column("cancel_requested_at", sa.Float(), nullable=True))
    if conn.dialect.name == "sqlite":
        _sqlite_unique_watches(conn)
    else:
        ops.create_unique_constraint(PG_WATCH_UNIQUE, "watches", ["job_pk", "channel"])
    return folded


def _one_watch_per_job_and_channel(conn: Connection) -> int:
    rows = conn.execute(
        text("SELECT id, job_pk, channel, active FROM watches ORDER BY job_pk, channel, id")
    ).all()
    groups: dict[tuple[int, str], list[tuple[int, bool]]] = {}
    for watch_id, job_pk, channel, active in rows:
        groups.setdefault((job_pk, channel), []).append((watch_id, bool(active)))
    folded = 0
    for (job_pk, channel), watches in groups.items():
        if len(watches) < 2:
            continue
        keep = max(watches, key=lambda w: (w[1], w[0]))[0]  # the active one, else the newest
        for watch_id, _active in watches:
            if watch_id == keep:
                continue
            conn.execute(text("UPDATE outbox SET watch_id = :keep WHERE watch_id = :old "
                              "AND kind NOT IN ('parent', 'update')"), {"keep": keep, "old": watch_id})
            conn.execute(text("DELETE FROM outbox WHERE watch_id = :old"), {"old": watch_id})
            conn.execute(text("DELETE FROM watches WHERE id = :old"), {"old": watch_id})
            folded += 1
        log.info("job %s was watched %d times in %s (made by jobstatus %s): watch %s stays",
                 job_pk, len(watches), channel, RELEASE, keep)
    return folded


def _sqlite_unique_watches(conn: Connection) -> None:
    """SQLite adds no constraint to a table that exists: the table is made again with it, as revision 0001
    makes it, and the rows copied (sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema
    Changes"). That procedure turns foreign keys off first, which cannot be done inside the migration's
    transaction (PRAGMA foreign_keys is a no-op there, sqlite.org/pragma.html#pragma_foreign_keys), and
    dropping the old `watches` with outbox rows still pointing at it would then fail: the outbox rows wait
    in a temporary table meanwhile and come back with the same ids, all in the one transaction. (Alembic's
    batch mode would rebuild the table too, but wants a name for the constraint, which 0.1.0's has not.)"""
    md = sa.MetaData()
    new = sa.Table(
        "watches_0_1_0", md,
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
    sa.Table("jobs", md, sa.Column("id", sa.Integer(), primary_key=True))  # what the foreign key names
    columns = ", ".join(c.name for c in new.columns)
    conn.execute(text("CREATE TEMP TABLE outbox_waiting AS SELECT * FROM outbox"))
    conn.execute(text("DELETE FROM outbox"))
    new.create(conn)
    conn.execute(text(f"INSERT INTO watches_0_1_0 ({columns}) SELECT {columns} FROM watches"))
    conn.execute(text("DROP TABLE watches"))  # and its indexes
    conn.execute(text("ALTER TABLE watches_0_1_0 RENAME TO watches"))
    conn.execute(text("CREATE INDEX ix_watches_channel ON watches (channel, active)"))
    conn.execute(text("CREATE INDEX ix_watches_job ON watches (job_pk, active)"))
    conn.execute(text("INSERT INTO outbox SELECT * FROM outbox_waiting"))
    conn.execute(text("DROP TABLE outbox_waiting"))
