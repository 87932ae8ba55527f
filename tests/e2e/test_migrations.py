"""Upgrading a database: jobstatus 0.1.0's and the first release's on main (1a09719) (from the dumps in
tests/data/) on SQLite and PostgreSQL, resumed by the new code into the same Slack threads with what they owed
delivered; the revisions against the models on
PostgreSQL (tests/unit/store/test_schema.py does SQLite); two processes starting at once on one PostgreSQL
database migrate once; a database newer than the code stops `jobstatus-bot run` with exit status 2."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from sqlmodel import SQLModel

from bot.offline.setup import configure_simulators, demo_backends
from bot.offline.slack import FakeSlack
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer
from bot.store import Store, schema
from bot.store.migrations import before_0001
from bot.store.schema import SchemaTooNew, Upgrade
from bot.support.config import Environment
from tests import pg, schemas
from tests.conftest import SECRET_KEYS, SIGNING_SECRET, opened, settings_for, start_runtime
from tests.e2e.test_postgres import query
from tests.e2e.test_process import bot_env, free_port

T0 = 1_766_000_000.0  # when 0.1.0 wrote the dumps' rows (tests/data/README.md)
T1 = 1_765_000_000.0  # when 1a09719 wrote its dumps' rows


@pytest.fixture(autouse=True)
def _quick_slack_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Slack's per-channel pacing is not tested here
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 0.05)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def other_postgres_url(postgres_cluster: pg.PostgresCluster) -> Iterator[str]:
    name = postgres_cluster.create_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_cluster.drop_database(name)


# -- 0.1.0's database, upgraded, resumes where it was -------------------------------------------------------


async def test_a_release_0_1_0_database_resumes_its_watches_in_their_threads(
    any_url: str, sim: SimulatorServer
) -> None:
    schemas.load_release_0_1_0(any_url)
    # Slack as 0.1.0 left it: the three parents it posted, with the ts the database holds (a fake Slack whose
    # clock stands at that moment hands out exactly those)
    slack = FakeSlack(clock=lambda: T0)
    a, b, c = (slack.seed_message("C0001", "5101"), slack.seed_message("C0002", "5101"),
               slack.seed_message("C0001", "5103"))
    slack.clock = time.time
    assert query(any_url, "SELECT id, parent_ts FROM watches ORDER BY id") == [
        (1, a),
        (2, b),
        (3, None),
        (4, c),
    ]
    configure_simulators(sim)
    sim.fusion.add_job(5101, name="GL Import", steps=[Step(0, "RUNNING")])
    sim.fusion.add_job(5102, name="AP Close", steps=[Step(0, "RUNNING")])
    await slack.start()
    env = Environment(
        slack_bot_token=slack.token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        # 0.1.0 stored a secret: a key is due
        database_url=any_url,
        port=0,
        secret_keys=SECRET_KEYS,
    )
    runtime = await start_runtime(settings_for(sim), env)
    try:
        assert schemas.revision(any_url) == [schema.head()]

        def updated(channel: str, ts: str) -> bool:
            return any(c.args.get("channel") == channel and c.args.get("ts") == ts
                       for c in slack.calls_of("chat.update"))

        def replies(channel: str, ts: str, words: str) -> list[Any]:
            return [m for m in slack.thread(channel, ts) if words in m.text]

        # what 0.1.0 owed: the change to running in both threads, both parents redrawn, 5102's parent posted
        running = "fusion-demo job 5101: running"
        await slack.wait_for(
            lambda: replies("C0001", a, running) and replies("C0002", b, running),
            timeout=20,
            what="the owed replies, in their threads",
        )
        await slack.wait_for(
            lambda: updated("C0001", a) and updated("C0002", b), timeout=20, what="the owed updates"
        )
        await slack.wait_for(lambda: len(slack.messages("C0001")) == 3, timeout=20, what="5102's owed parent")
        new_parent = slack.messages("C0001")[2]
        assert "5102" in new_parent.text
        await slack.wait_for(
            lambda: query(any_url, "SELECT parent_ts FROM watches WHERE id = 3") == [(new_parent.ts,)],
            poll=0.05,
        )

        # and the watches go on in those threads (the database's last poll was long ago: when the job's first
        # poll since the start comes after this change, the reply is "While I was away: … running →
        # succeeded")
        sim.fusion.set_state(5101, "SUCCEEDED")
        done = "fusion-demo job 5101: "
        await slack.wait_for(lambda: all([m for m in replies(ch, ts, done) if m.text.endswith("succeeded")]
                                          for ch, ts in (("C0001", a), ("C0002", b))), timeout=20,
                             what="the new state, in the old threads")
        assert [m.ts for m in slack.messages("C0001")] == [a, c, new_parent.ts]  # no second parent anywhere
        assert [m.ts for m in slack.messages("C0002")] == [b]
        # the owed "running" reply went once to each thread (the catch-up reply names "running" too: not
        # counted)
        assert [len([m for m in replies(ch, ts, running) if not m.text.startswith("While I was away")])
                 for ch, ts in (("C0001", a), ("C0002", b))] == [1, 1]
        await slack.wait_for(lambda: query(any_url, "SELECT count(*) FROM outbox") == [(0,)], poll=0.05)

        # the upkeep pruned what was older than 90 days and nothing owed kept: watch 4 (ended, all delivered)
        # and its job, and the old state changes; the secret 0.1.0 stored is still there
        await slack.wait_for(
            lambda: query(any_url, "SELECT id FROM watches ORDER BY id") == [(1,), (2,), (3,)],
            poll=0.05,
            what="the ended watch pruned",
        )
        assert query(any_url, "SELECT job_id FROM jobs ORDER BY job_id") == [("5101",), ("5102",)]
        assert query(any_url, "SELECT vendor_status FROM state_changes") == [("SUCCEEDED",)]
        [(stored,)] = query(any_url, "SELECT value FROM secrets")  # encrypted at start, in place
        assert "rotated-by-0.1.0" not in stored and opened(stored) == "rotated-by-0.1.0"
    finally:
        await runtime.stop()
        await slack.stop()


# -- the first release's database (1a09719), upgraded, resumes where it was ----------------------------------


@pytest.fixture(params=[("1a09719", "sqlite"), ("1a09719", "postgresql"), ("09197c8", "sqlite")],
                ids=lambda p: "-".join(p))
def round_1(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(release, database URL): 1a09719 on both dialects; 09197c8 (jobs.polls too) on SQLite, all it ran
    on."""
    release, dialect = request.param
    if dialect == "sqlite":
        return release, f"sqlite:///{tmp_path / 'bot.db'}"
    return release, str(request.getfixturevalue("postgres_url"))


async def test_a_round_1_database_resumes_its_watches_in_their_threads(round_1: tuple[str, str],
                                                                        sim: SimulatorServer) -> None:
    """The database the round-1 code left (5201 followed in C0001 and C0002, its change to running owed to
    both; 5203 watched twice in C0001, both ended; 5204 stopped in C0002, its stop note owed; 5202's parent
    owed) is refused by main today; upgraded at start, every owed message reaches its thread and the watches
    go on."""
    release, any_url = round_1
    schemas.load_release(any_url, release)
    slack = FakeSlack(clock=lambda: T1)  # the five parents 1a09719 posted, with the ts its database holds
    a, b, c, d, e = (slack.seed_message("C0001", "5201"), slack.seed_message("C0002", "5201"),
                     slack.seed_message("C0001", "5203"), slack.seed_message("C0001", "5203 again"),
                     slack.seed_message("C0002", "5204"))
    slack.clock = time.time
    assert query(any_url, "SELECT id, parent_ts FROM watches ORDER BY id") == [
        (1, a), (2, b), (3, c), (4, d), (5, e), (6, None)]
    configure_simulators(sim)
    sim.fusion.add_job(5201, name="GL Import", steps=[Step(0, "RUNNING")])
    sim.fusion.add_job(5202, name="AP Close", steps=[Step(0, "RUNNING")])
    await slack.start()
    env = Environment(
        slack_bot_token=slack.token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        # it stored a secret: a key is due
        database_url=any_url,
        port=0,
        secret_keys=SECRET_KEYS,
    )
    runtime = await start_runtime(settings_for(sim), env)
    try:
        assert schemas.revision(any_url) == [schema.head()]

        def updated(channel: str, ts: str) -> bool:
            return any(c.args.get("channel") == channel and c.args.get("ts") == ts
                       for c in slack.calls_of("chat.update"))

        def replies(channel: str, ts: str, words: str) -> list[Any]:
            return [m for m in slack.thread(channel, ts) if words in m.text]

        # what 1a09719 owed: the change to running in both of 5201's threads and their parents redrawn, the
        # stop note in 5204's thread and its parent redrawn, 5202's parent posted
        running = "fusion-demo job 5201: running"
        await slack.wait_for(
            lambda: replies("C0001", a, running) and replies("C0002", b, running),
            timeout=20,
            what="the owed replies, in their threads",
        )
        await slack.wait_for(lambda: replies("C0002", e, "Stopped watching (by <@U0002>)"), timeout=20,
                             what="the owed stop note, in its thread")
        await slack.wait_for(
            lambda: updated("C0001", a) and updated("C0002", b) and updated("C0002", e),
            timeout=20,
            what="the owed updates",
        )
        await slack.wait_for(lambda: len(slack.messages("C0001")) == 4, timeout=20, what="5202's owed parent")
        new_parent = slack.messages("C0001")[3]
        assert "5202" in new_parent.text
        await slack.wait_for(
            lambda: query(any_url, "SELECT parent_ts FROM watches WHERE id = 6") == [(new_parent.ts,)],
            poll=0.05,
        )

        # and the watches go on in those threads: 5201 ends, 5202 fails, each said in its own thread
        sim.fusion.set_state(5201, "SUCCEEDED")
        sim.fusion.set_state(5202, "ERROR")
        await slack.wait_for(
            lambda: all(
                [m for m in replies(ch, ts, "fusion-demo job 5201: ") if m.text.endswith("succeeded")]
                for ch, ts in (("C0001", a), ("C0002", b))
            ),
            timeout=20,
            what="5201's end, in its old threads",
        )
        # ("fusion-demo job 5202: failed", or "While I was away: fusion-demo job 5202: running → failed" when
        # the job's first poll since the start sees it)
        await slack.wait_for(lambda: [m for m in replies("C0001", new_parent.ts, "fusion-demo job 5202: ")
                                      if "failed" in m.text], timeout=20,
                             what="5202's failure, in the thread of the parent the old release owed")
        # no second parent anywhere
        assert [m.ts for m in slack.messages("C0001")] == [a, c, d, new_parent.ts]
        assert [m.ts for m in slack.messages("C0002")] == [b, e]
        assert [len([m for m in replies(ch, ts, running) if not m.text.startswith("While I was away")])
                # the owed reply went once to each thread
                for ch, ts in (("C0001", a), ("C0002", b))] == [1, 1]
        # 5203's ended watches: nothing
        assert slack.thread("C0001", c) == [] and slack.thread("C0001", d) == []
        await slack.wait_for(lambda: query(any_url, "SELECT count(*) FROM outbox") == [(0,)], poll=0.05)
        [(stored,)] = query(any_url, "SELECT value FROM secrets")  # encrypted at start, in place
        assert f"rotated-by-{release}" not in stored and opened(stored) == f"rotated-by-{release}"
    finally:
        await runtime.stop()
        await slack.stop()


# -- the revisions on PostgreSQL ----------------------------------------------------------------------------


def upgrade(url: str) -> Upgrade:
    db = Store(url)
    try:
        return db.upgrade()
    finally:
        db.close()


def test_an_empty_postgres_database_upgraded_is_what_the_models_create_both_ways(
        postgres_url: str, other_postgres_url: str) -> None:
    assert upgrade(postgres_url) == Upgrade(None, schema.head())
    assert schemas.diff(postgres_url, SQLModel.metadata) == []
    e = schemas.engine(other_postgres_url)
    SQLModel.metadata.create_all(e)
    e.dispose()
    assert schemas.diff(other_postgres_url, schemas.reflected(postgres_url)) == []


def test_the_first_revision_is_release_0_1_0s_postgres_schema_exactly(postgres_url: str,
                                                                       other_postgres_url: str) -> None:
    schemas.migrate_to(other_postgres_url, schema.FIRST)
    schemas.load_release_0_1_0(postgres_url)
    assert schemas.diff(postgres_url, schemas.reflected(other_postgres_url)) == []
    assert schemas.diff(other_postgres_url, schemas.reflected(postgres_url)) == []


def test_a_release_0_1_0_postgres_database_is_stamped_and_a_newer_one_refused(postgres_url: str) -> None:
    schemas.load_release_0_1_0(postgres_url)
    assert upgrade(postgres_url) == Upgrade(None, schema.head(), recognised=True)
    assert schemas.rows(postgres_url) == schemas.RELEASE_ROWS
    assert schemas.diff(postgres_url, SQLModel.metadata) == []
    e = schemas.engine(postgres_url)
    with e.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    e.dispose()
    with pytest.raises(SchemaTooNew, match="revision 0099, which this version of jobstatus does not know"):
        upgrade(postgres_url)
    assert schemas.revision(postgres_url) == ["0099"]


def test_the_first_release_brought_to_0_1_0s_postgres_schema_is_the_first_revision_exactly(
        postgres_url: str, other_postgres_url: str) -> None:
    schemas.migrate_to(other_postgres_url, schema.FIRST)
    schemas.load_release_1a09719(postgres_url)
    e = schemas.engine(postgres_url)
    with e.begin() as conn:
        assert before_0001.upgrade(conn) == 1
    e.dispose()
    assert schemas.diff(postgres_url, schemas.reflected(other_postgres_url)) == []
    assert schemas.diff(other_postgres_url, schemas.reflected(postgres_url)) == []
    # 0.1.0's now, to the letter
    assert upgrade(postgres_url) == Upgrade(None, schema.head(), recognised=True)


# -- processes ----------------------------------------------------------------------------------------------


def waiting_for_the_lock(cluster: pg.PostgresCluster) -> int:
    with psycopg.connect(host="127.0.0.1", port=cluster.port, user=pg.SUPERUSER, dbname="postgres",
                         autocommit=True) as con:
        row = con.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                          "AND (classid::bigint << 32 | objid::bigint) = %s",
                          (schema.PG_LOCK_KEY,)).fetchone()
    return int(row[0]) if row else 0


async def test_two_processes_starting_at_once_on_one_postgres_database_migrate_once(
        tmp_path: Path, postgres_cluster: pg.PostgresCluster, postgres_url: str, slack: FakeSlack) -> None:
    """`jobstatus-bot run` and `jobstatus-bot migrate` start together on an empty database, while this test
    holds the migration lock: both wait for it; once it is free, one creates the schema, the other finds
    it done."""
    sim = SimulatorServer()
    await sim.start()
    port = free_port()
    (tmp_path / "jobstatus.yaml").write_text(yaml.safe_dump({"backends": demo_backends(sim)}))
    env = {**bot_env(tmp_path, slack, port), "DATABASE_URL": postgres_url}
    dbname = postgres_url.rsplit("/", 1)[1]
    holder = psycopg.connect(host="127.0.0.1", port=postgres_cluster.port, user=pg.SUPERUSER, dbname=dbname,
                             autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (schema.PG_LOCK_KEY,))
    log = tmp_path / "run.log"
    run = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, stdout=log.open("wb"),
                           stderr=subprocess.STDOUT)
    migrate = subprocess.Popen([sys.executable, "-m", "bot", "migrate"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        await slack.wait_for(lambda: waiting_for_the_lock(postgres_cluster) == 2, timeout=60, poll=0.1,
                             what="both processes waiting for the migration lock")
        assert run.poll() is None and migrate.poll() is None
        holder.close()  # the lock goes with the session
        out, err = await asyncio.to_thread(migrate.communicate, timeout=60)
        assert migrate.returncode == 0, err
        await slack.wait_for(lambda: "jobstatus serving" in log.read_text(), timeout=60, what="run serving")
        migrated = out.split(": schema ", 1)[1].rstrip("\n")
        ran = [line.split("database schema: ", 1)[1] for line in log.read_text().splitlines()
               if "database schema: " in line]
        head = schema.head()
        assert sorted([migrated, *ran]) == sorted([f"empty → {head} (tables created)",
                                                   f"{head} → {head} (up to date)"])
        assert schemas.revision(postgres_url) == [head]
        run.send_signal(15)
        assert await asyncio.to_thread(run.wait, 30) == 0
    finally:
        for p in (run, migrate):
            if p.poll() is None:
                p.kill()
        if not holder.closed:
            holder.close()
        await sim.stop()


def test_run_refuses_a_database_newer_than_the_code_with_exit_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    e = schemas.engine(url)
    with e.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0042'")
    e.dispose()
    cfg = tmp_path / "jobstatus.yaml"
    cfg.write_text(yaml.safe_dump({"backends": {"fusion": {
        "type": "fusion_jobscheduler", "base_url": "https://fusion.example.com",
        "auth": {"type": "bearer", "token": "t"}}}}))
    env = dict(os.environ, JOBSTATUS_CONFIG=str(cfg), SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s",
               DATABASE_URL=url, PORT="0")
    out = subprocess.run(
        [sys.executable, "-m", "bot", "run"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2, out.stderr
    assert (
        "jobstatus-bot: the database is at schema revision 0042, which this version of jobstatus does not "
        f"know (it knows revisions up to {schema.head()})"
    ) in out.stderr
    assert "Traceback" not in out.stderr
    assert schemas.revision(url) == ["0042"]
