"""Schema helpers for the migration tests: the databases of releases before migrations from their dumps, and
Alembic's comparison of a database with a metadata (what `alembic revision --autogenerate` would write:
nothing, when they agree).

The dumps in tests/data/ were made from jobstatus 0.1.0 (main at 980a109, the last commit without
migrations) and from the first release on main (1a09719, the round-1 code) by their own store functions:
see tests/data/README.md.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from bot.store import engine_url, schema

DATA = Path(__file__).resolve().parent / "data"
# What the dumps hold (tests/data/README.md): a job watched in two channels, both parents posted, a state
# change owed to both threads; a job whose parent is still owed; a job that ended, everything delivered.
RELEASE_ROWS = {"jobs": 3, "watches": 4, "state_changes": 5, "outbox": 5, "secrets": 1}
# 1a09719's dumps: 5201 watched in C0001 and C0002 (its change to running owed to both), 5203 watched twice in
# C0001 (ended, then watched again once it had ended: a second ended watch), 5204 stopped in C0002 (its stop
# note and update owed), 5202's parent owed
RELEASE_1A09719_ROWS = {"jobs": 4, "watches": 6, "state_changes": 6, "outbox": 7, "secrets": 1}


def engine(url: str) -> Engine:
    """An engine of its own (no pool): the test's look at the database, closed at once."""
    return create_engine(engine_url(url), poolclass=NullPool)


def load_release_0_1_0(url: str) -> None:
    """Make the database jobstatus 0.1.0 left behind: its schema and rows, from the dump for the dialect."""
    load_release(url, "0.1.0")


def load_release_1a09719(url: str) -> None:
    """Make the database the first release on main (1a09719) left behind, from the dump for the dialect."""
    load_release(url, "1a09719")


def load_release(url: str, release: str) -> None:
    e = engine(url)
    try:
        dialect = e.dialect.name
        dump = (DATA / f"release-{release}.{dialect}.sql").read_text(encoding="utf-8")
        if dialect == "sqlite":
            path = make_url(engine_url(url)).database
            assert path
            with sqlite3.connect(path) as con:
                con.executescript(dump)  # sqlite3's iterdump, as written
        else:
            raw = e.raw_connection()
            try:
                with raw.cursor() as cur:
                    cur.execute(dump)  # pg_dump's plain SQL (no parameters: several statements at once)
                raw.commit()
            finally:
                raw.close()
    finally:
        e.dispose()


def migrate_to(url: str, revision: str) -> None:
    """Run the revisions up to `revision` on an empty database (as `upgrade` does, without its checks)."""
    e = engine(url)
    try:
        with e.begin() as conn:
            command.upgrade(schema.config(conn), revision)
    finally:
        e.dispose()


def reflected(url: str) -> MetaData:
    """The database's tables as SQLAlchemy reads them back (Alembic's own version table left out)."""
    e = engine(url)
    try:
        md = MetaData()
        with e.connect() as conn:
            md.reflect(conn, only=lambda name, _md: name != "alembic_version")
        return md
    finally:
        e.dispose()


def diff(url: str, metadata: MetaData) -> list[Any]:
    """What Alembic's autogenerate finds between the database at `url` and `metadata` ([] when they agree)."""
    e = engine(url)
    try:
        with e.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))
    finally:
        e.dispose()


def rows(url: str) -> dict[str, int]:
    e = engine(url)
    try:
        with e.connect() as conn:
            return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                    for t in RELEASE_ROWS}
    finally:
        e.dispose()


def revision(url: str) -> list[str]:
    e = engine(url)
    try:
        with e.connect() as conn:
            return [r for (r,) in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        e.dispose()


def index_names(url: str) -> set[str]:
    return {ix.name for t in reflected(url).tables.values() for ix in t.indexes if ix.name}
