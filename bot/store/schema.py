"""The schema over time: `upgrade` brings a database to the newest revision this code knows (Alembic, with the
revisions in bot/store/migrations/versions/), under a lock, so two processes starting at once migrate once.

- An empty database gets every revision, from the first.
- A database made by jobstatus 0.1.0 (the last release without migrations: its tables and no
  alembic_version) is recognised, stamped with the first revision (which is exactly its schema) and upgraded
  from there: its rows stay as they are.
- A database made by the first release on main (commit 1a09719: 0.1.0's tables less what 0.1.0 added), or by
  that round's first commits (de3d2d1 to 09197c8: those and `jobs.polls`), is recognised too, brought to
  0.1.0's schema by `migrations/before_0001.py` in the same transaction, then stamped and upgraded the same
  way.
- A database at a revision this code does not know was upgraded by a newer jobstatus: `SchemaTooNew`, and
  nothing is touched (the commands turn it into exit status 2).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from bot.store.migrations import before_0001

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST = "0001"  # jobstatus 0.1.0's schema, as its create_all made it
# The tables and columns jobstatus 0.1.0 made, which revision 0001 makes too (tests/unit/store/test_schema.py
# holds the three together): a database with these and no alembic_version is stamped, not created again.
RELEASE_0_1_0 = {
    "jobs": {"id", "backend", "job_id", "name", "phase", "vendor_status", "progress", "message", "log_paths",
             "links", "polling", "next_poll_at", "errors", "error_kind", "error_text", "error_since",
             "outage_noted", "timeout_at", "cancel_requested_by", "cancel_requested_at", "changed_at",
             "checked_at", "created_at"},
    "watches": {"id", "job_pk", "channel", "user_id", "parent_ts", "active", "ended_reason", "created_at",
                "ended_at"},
    "state_changes": {"id", "job_pk", "at", "phase", "vendor_status", "message"},
    "outbox": {"id", "watch_id", "kind", "payload", "created_at", "attempts", "next_attempt_at"},
    "secrets": {"key", "value"},
}
# The first release on main (1a09719) made the same tables without the columns 0.1.0 added; the round's first
# commits (de3d2d1 to 09197c8) those and `jobs.polls`
RELEASE_1A09719 = before_0001.tables(RELEASE_0_1_0)
RELEASE_09197C8 = before_0001.earlier_tables(RELEASE_0_1_0)
# the first that has every table and column listed is the one: 0.1.0 has columns the others lack, and 09197c8
# has every column of 1a09719's
RELEASES = {"0.1.0": RELEASE_0_1_0, before_0001.EARLIER: RELEASE_09197C8,
            before_0001.RELEASE: RELEASE_1A09719}
# PostgreSQL advisory lock key for migrations: any fixed bigint every jobstatus process agrees on (the
# bytes "jobstats"); a database shared with other applications only needs theirs to differ.
PG_LOCK_KEY = int.from_bytes(b"jobstats", "big")
# SQLite: how long a process waits for another's migration (the pool's connections wait 30 s for a lock)
SQLITE_MIGRATION_WAIT_MS = 600_000


class SchemaError(Exception):
    """The database cannot be brought to this code's schema; the message says why and what to do."""


class SchemaTooNew(SchemaError):
    """The database is at a revision this code does not know: a newer jobstatus upgraded it."""

    def __init__(self, found: list[str], known: str) -> None:
        self.found = found
        self.known = known
        super().__init__(
            f"the database is at schema revision {', '.join(found)}, "
            "which this version of jobstatus does not "
            f"know (it knows revisions up to {known}): a newer jobstatus has upgraded it. "
            "Run that version, or restore the backup taken before the upgrade.")


@dataclass(frozen=True)
class Upgrade:
    """What `upgrade` did: the revision it found (None: none), the one it left, and whether the database was
    one made before migrations, recognised and stamped with the first revision, and by which release (0.1.0,
    or 1a09719, whose tables were first brought to 0.1.0's)."""

    before: str | None
    after: str
    recognised: bool = False
    release: str = "0.1.0"

    def __str__(self) -> str:
        if self.recognised and self.release != "0.1.0":
            return (f"none (made by jobstatus {self.release}, brought to 0.1.0's schema and recognised as "
                    f"{FIRST}) → {self.after}")
        if self.recognised:
            return f"none (made by jobstatus 0.1.0, recognised as {FIRST}) → {self.after}"
        if self.before is None:
            return f"empty → {self.after} (tables created)"
        if self.before == self.after:
            return f"{self.before} → {self.after} (up to date)"
        return f"{self.before} → {self.after}"


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in code: the migrations folder inside the package and, for env.py, the
    connection to run them on."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())  # the revisions, read once: they do not change while we run


def head() -> str:
    """The newest revision this code knows."""
    newest = _script().get_current_head()
    assert newest is not None, "bot/store/migrations/versions/ has no revision"
    return newest


def upgrade(engine: Engine) -> Upgrade:
    """Bring the database to `head()`, in one transaction, holding a lock no other migrating process can
    take meanwhile; a second process waits, then finds the work done.

    PostgreSQL: pg_advisory_xact_lock on a fixed key, taken first in the migration's transaction (the
    transaction-scoped form of pg_advisory_lock, on the migration's own connection): released by the commit or
    rollback itself, so no failure path can leave it held, and PostgreSQL's DDL is transactional, so the
    whole upgrade commits or nothing does.

    SQLite: the transaction opens with BEGIN EXCLUSIVE. SQLite's DDL is transactional too, so the write lock
    that BEGIN takes covers the check of the revision and every change; another process's BEGIN waits for it
    (busy_timeout, raised for this). No lock file beside the database: it would need a writable directory
    and a second mechanism, where the database's own write lock, which every writer obeys, does the job.
    (In WAL mode EXCLUSIVE is the same write lock as IMMEDIATE: readers carry on meanwhile.)
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            conn.execution_options(sqlite_begin="EXCLUSIVE")  # bot.store.engine's "begin" listener reads it
            pool_wait = _sqlite_busy_timeout(conn, SQLITE_MIGRATION_WAIT_MS)
        try:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
                return _upgrade(conn)
        finally:
            if sqlite:
                _sqlite_busy_timeout(conn, pool_wait)  # the connection goes back to the pool as it came


def _sqlite_busy_timeout(conn: Connection, ms: int) -> int:
    """Set how long the connection waits for a lock; returns what it was. On the driver's connection: through
    SQLAlchemy the PRAGMA would begin a transaction first."""
    raw = conn.connection.driver_connection
    assert raw is not None
    was = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
    raw.execute(f"PRAGMA busy_timeout={int(ms)}")
    return was


def _upgrade(conn: Connection) -> Upgrade:
    cfg = config(conn)
    newest = head()
    found = list(MigrationContext.configure(conn).get_current_heads())
    unknown = [rev for rev in found if not _known(rev)]
    if unknown:
        raise SchemaTooNew(unknown, newest)
    release = None if found else _made_by(conn)
    if release in (before_0001.RELEASE, before_0001.EARLIER):
        folded = before_0001.upgrade(conn)
        log.info("the database was made by jobstatus %s: brought to 0.1.0's schema (%d duplicate watch(es) "
                 "folded into their channel's watch)", release, folded)
    if release is not None:
        log.info("the database was made by jobstatus %s: stamping it with revision %s", release, FIRST)
        command.stamp(cfg, FIRST)
    if found != [newest]:
        log.info("upgrading the database schema to revision %s", newest)
        command.upgrade(cfg, "head")
    done = Upgrade(found[0] if found else None, newest, release is not None, release or "0.1.0")
    log.info("database schema: %s", done)
    return done


def _known(rev: str) -> bool:
    try:
        return _script().get_revision(rev) is not None
    except CommandError:
        return False


def _made_by(conn: Connection) -> str | None:
    """Which release made a database without alembic_version: None when it holds none of jobstatus's tables.
    It must then have every table and column of one of them, or the upgrade stops here: stamping a stranger's
    tables would break later."""
    insp = inspect(conn)
    present = set(insp.get_table_names())
    if not present & RELEASE_0_1_0.keys():
        return None  # an empty database, or only other applications' tables: the first revision creates ours
    have = {t: {c["name"] for c in insp.get_columns(t)} for t in present & RELEASE_0_1_0.keys()}
    lacks: dict[str, list[str]] = {}
    for release, schema in RELEASES.items():
        missing = []
        for table, columns in sorted(schema.items()):
            if table not in present:
                missing.append(table)
            else:
                missing += [f"{table}.{column}" for column in sorted(columns - have[table])]
        if not missing:
            return release
        lacks[release] = missing
    closest = min(lacks.values(), key=len)
    raise SchemaError(
        "the database has some of jobstatus's tables but no schema revision, and lacks "
        f"{', '.join(closest)}: it was not made by jobstatus 0.1.0 or by the first release (1a09719). Point "
        "DATABASE_URL at such a release's database or at an empty one.")
