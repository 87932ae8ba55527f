"""The schema's revisions on SQLite (tests/e2e/test_migrations.py runs the same on PostgreSQL): an empty
database upgraded is what the models describe, the first revision is 0.1.0's schema, a 0.1.0 database and one
made by the first release on main (1a09719) are recognised and upgraded with their rows, a newer one is
refused, and two processes migrating at once migrate once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from bot.cli import main
from bot.store import Store, schema
from bot.store.migrations import before_0001
from bot.store.schema import SchemaError, SchemaTooNew, Upgrade
from tests import schemas

HEAD = "0008"  # the newest revision


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bot.db'}"


def upgrade(url: str) -> Upgrade:
    db = Store(url)
    try:
        return db.upgrade()
    finally:
        db.close()


def test_the_revisions_end_where_the_models_are() -> None:
    assert schema.head() == HEAD


def test_an_empty_database_upgraded_is_what_the_models_create_both_ways(url: str, tmp_path: Path) -> None:
    assert upgrade(url) == Upgrade(None, schema.head())
    assert schemas.diff(url, SQLModel.metadata) == []  # nothing autogenerate would add, drop or alter
    made = f"sqlite:///{tmp_path / 'create_all.db'}"
    e = schemas.engine(made)
    SQLModel.metadata.create_all(e)
    e.dispose()
    assert schemas.diff(made, schemas.reflected(url)) == []  # and the other way round


def test_a_model_change_without_a_revision_shows(url: str) -> None:
    """The comparison the test above relies on does see a difference (an index the revisions lack)."""
    upgrade(url)
    e = schemas.engine(url)
    with e.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_watches_ended")
    e.dispose()
    [(what, index)] = schemas.diff(url, SQLModel.metadata)
    assert what == "add_index" and index.name == "ix_watches_ended"


def test_the_first_revision_is_release_0_1_0s_schema_exactly(url: str, tmp_path: Path) -> None:
    first = f"sqlite:///{tmp_path / 'first.db'}"
    schemas.migrate_to(first, schema.FIRST)
    schemas.load_release_0_1_0(url)
    assert schemas.diff(url, schemas.reflected(first)) == []
    assert schemas.diff(first, schemas.reflected(url)) == []
    # and what `upgrade` recognises a 0.1.0 database by is that schema's tables and columns
    assert {t.name: {c.name for c in t.columns} for t in schemas.reflected(first).tables.values()} == \
        schema.RELEASE_0_1_0


def test_a_release_0_1_0_database_is_stamped_and_upgraded_with_its_rows(url: str) -> None:
    schemas.load_release_0_1_0(url)
    assert schemas.rows(url) == schemas.RELEASE_ROWS
    done = upgrade(url)
    assert done == Upgrade(None, HEAD, recognised=True)
    assert str(done) == f"none (made by jobstatus 0.1.0, recognised as 0001) → {HEAD}"
    assert schemas.revision(url) == [HEAD]
    assert schemas.rows(url) == schemas.RELEASE_ROWS  # not created again: every row is there
    assert {"ix_state_changes_at", "ix_watches_ended", "ix_jobs_done"} <= schemas.index_names(url)
    assert schemas.diff(url, SQLModel.metadata) == []
    assert upgrade(url) == Upgrade(HEAD, HEAD)


def select(url: str, sql: str) -> list[tuple[object, ...]]:
    e = schemas.engine(url)
    try:
        with e.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        e.dispose()


def test_the_first_release_brought_to_0_1_0s_schema_is_the_first_revision_exactly(
        url: str, tmp_path: Path) -> None:
    first = f"sqlite:///{tmp_path / 'first.db'}"
    schemas.migrate_to(first, schema.FIRST)
    schemas.load_release_1a09719(url)
    assert schemas.diff(url, schemas.reflected(first)) != []  # 1a09719's tables are not 0.1.0's as they are
    e = schemas.engine(url)
    with e.begin() as conn:
        assert before_0001.upgrade(conn) == 1  # watches 3 and 4 follow 5203 in C0001: one of them stays
    e.dispose()
    assert schemas.diff(url, schemas.reflected(first)) == []
    assert schemas.diff(first, schemas.reflected(url)) == []
    assert {t.name: {c.name for c in t.columns} for t in schemas.reflected(url).tables.values()} == \
        schema.RELEASE_0_1_0


def test_a_release_1a09719_database_is_brought_to_0_1_0_stamped_and_upgraded_with_its_rows(url: str) -> None:
    schemas.load_release_1a09719(url)
    assert schemas.rows(url) == schemas.RELEASE_1A09719_ROWS
    outbox = select(url, "SELECT id, watch_id, kind, payload FROM outbox ORDER BY id")
    done = upgrade(url)
    assert done == Upgrade(None, schema.head(), recognised=True, release="1a09719")
    assert str(done) == ("none (made by jobstatus 1a09719, brought to 0.1.0's schema and recognised as "
                         f"0001) → {schema.head()}")
    assert schemas.revision(url) == [schema.head()]
    assert schemas.diff(url, SQLModel.metadata) == []
    # every row is there but the older of 5203's two watches in C0001 (ended, nothing owed); the newer stays
    assert schemas.rows(url) == {**schemas.RELEASE_1A09719_ROWS, "watches": 5}
    assert select(url,
                  "SELECT id, job_pk, channel, parent_ts, active, ended_reason FROM watches ORDER BY id") == [
        (1, 1, "C0001", "1765000000.000000", 1, None), (2, 1, "C0002", "1765000000.000001", 1, None),
        (4, 2, "C0001", "1765000000.000003", 0, "finished"),
        (5, 3, "C0002", "1765000000.000004", 0, "stopped"), (6, 4, "C0001", None, 1, None)]
    # same ids, all owed
    assert select(url, "SELECT id, watch_id, kind, payload FROM outbox ORDER BY id") == outbox
    assert select(url, "SELECT cancel_requested_by, cancel_requested_at FROM jobs") == [(None, None)] * 4
    assert select(url, "SELECT value FROM secrets") == [("rotated-by-1a09719",)]
    assert select(url, "PRAGMA foreign_key_check") == []
    assert upgrade(url) == Upgrade(schema.head(), schema.head())


def test_a_database_of_round_1s_first_commits_loses_only_its_poll_counts(url: str) -> None:
    """de3d2d1 to 09197c8 kept `jobs.polls` (NOT NULL, no default): left there, every job written after the
    upgrade would fail on it."""
    schemas.load_release(url, "09197c8")
    assert schemas.rows(url) == schemas.RELEASE_1A09719_ROWS  # the same rows as 1a09719's dump
    assert upgrade(url) == Upgrade(None, schema.head(), recognised=True, release="09197c8")
    assert "polls" not in schemas.reflected(url).tables["jobs"].columns
    assert schemas.diff(url, SQLModel.metadata) == []
    assert schemas.rows(url) == {**schemas.RELEASE_1A09719_ROWS, "watches": 5}
    e = schemas.engine(url)
    with e.begin() as conn:  # a job as the new code writes one: every NOT NULL column has its value
        conn.exec_driver_sql("INSERT INTO jobs (backend, job_id, phase, vendor_status, log_paths, links, "
                             "polling, next_poll_at, errors, outage_noted, changed_at, checked_at, "
                             "created_at) VALUES ('fusion-demo', '9', 'running', 'RUNNING', '[]', '[]', 1, "
                             "0, 0, 0, 0, 0, 0)")
    e.dispose()


def test_a_watch_made_twice_by_1a09719_keeps_what_its_older_row_owed_as_replies(url: str) -> None:
    """The older row's owed reply moves to the watch that stays in that channel; its owed update goes (the
    watch that stays has its own parent); and the constraint 0.1.0 has is there after."""
    schemas.load_release_1a09719(url)
    e = schemas.engine(url)
    with e.begin() as conn:
        conn.exec_driver_sql("INSERT INTO outbox (id, watch_id, kind, payload, created_at, attempts, "
                             "next_attempt_at) VALUES (20, 3, 'reply', '{\"text\": \"owed\"}', 1, 0, 1), "
                             "(21, 3, 'update', '{}', 1, 0, 1)")
    e.dispose()
    upgrade(url)
    assert select(url, "SELECT id, watch_id, kind FROM outbox WHERE id >= 20") == [(20, 4, "reply")]
    e = schemas.engine(url)
    with pytest.raises(Exception,
                       match="UNIQUE constraint failed: watches.job_pk, watches.channel"), e.begin() as conn:
        conn.exec_driver_sql("INSERT INTO watches (job_pk, channel, user_id, active, created_at) "
                             "VALUES (2, 'C0001', 'U0009', 1, 2)")
    e.dispose()


def test_a_database_newer_than_the_code_is_refused_and_left_alone(url: str) -> None:
    upgrade(url)
    e = schemas.engine(url)
    with e.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    e.dispose()
    with pytest.raises(SchemaTooNew) as refused:
        upgrade(url)
    assert (refused.value.found, refused.value.known) == (["0099"], HEAD)
    assert "revision 0099" in str(refused.value) and f"up to {HEAD}" in str(refused.value)
    assert schemas.revision(url) == ["0099"]


def test_some_of_the_tables_without_a_revision_are_refused_not_stamped(url: str) -> None:
    schemas.load_release_0_1_0(url)
    e = schemas.engine(url)
    with e.begin() as conn:
        conn.exec_driver_sql("DROP TABLE secrets")
        conn.exec_driver_sql("ALTER TABLE watches DROP COLUMN ended_reason")
    e.dispose()
    with pytest.raises(SchemaError, match=r"lacks secrets, watches\.ended_reason: it was not made by "
                                          r"jobstatus 0\.1\.0 or by the first release \(1a09719\)"):
        upgrade(url)
    assert "alembic_version" not in schemas.reflected(url).tables  # nothing stamped


def test_other_applications_tables_are_left_and_ours_created(url: str) -> None:
    e = schemas.engine(url)
    with e.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE their_table (id INTEGER PRIMARY KEY)")
    e.dispose()
    assert upgrade(url) == Upgrade(None, HEAD)
    assert "their_table" in schemas.reflected(url).tables and schemas.rows(url)["jobs"] == 0


def test_two_processes_migrating_one_sqlite_database_at_once_migrate_once(url: str, tmp_path: Path) -> None:
    """Both wait behind a write lock held here, then go at once: one migrates, the other finds it done."""
    path = tmp_path / "bot.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN EXCLUSIVE")
    results: list[Upgrade | BaseException] = []

    def go() -> None:
        try:
            results.append(upgrade(url))
        except BaseException as exc:  # the assertion below shows it
            results.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    threading.Event().wait(0.5)  # both are at their BEGIN EXCLUSIVE by now (or soon: it holds either way)
    assert results == []  # nobody got past the lock
    holder.execute("COMMIT")
    holder.close()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results, key=str) == sorted([Upgrade(HEAD, HEAD), Upgrade(None, HEAD)], key=str)


def test_migrate_command_prints_from_and_to_and_refuses_a_newer_database(
        url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["migrate"]) == 0
    assert (capsys.readouterr().out
            == f"jobstatus-bot: database {url}: schema empty → {HEAD} (tables created)\n")
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out.endswith(f"schema {HEAD} → {HEAD} (up to date)\n")
    e = schemas.engine(url)
    with e.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'f00dfeed'")
    e.dispose()
    assert main(["migrate"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "schema revision f00dfeed, which this version of jobstatus does not know" in out.err
    assert f"(it knows revisions up to {HEAD})" in out.err
