"""The bot on PostgreSQL: the same end-to-end behaviour as on SQLite, and the store's queries on both.

Every test here gets an empty database of its own in a throwaway PostgreSQL cluster (tests/pg.py). The
`harness` fixture takes its database from `database_url`, which this module points at PostgreSQL. Under CI
(CI=true) a PostgreSQL that cannot be started fails these tests; elsewhere they are skipped with the reason.
`JOBSTATUS_TEST_DATABASE=postgres pytest` runs every other harness test on PostgreSQL too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from bot import store
from bot.domain.errors import Unavailable
from bot.domain.jobs import Changed, JobView
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.offline.setup import configure_simulators
from bot.offline.slack import FakeSlack, SlackUser
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer
from bot.store import Job, PollResult, Store, Watch
from bot.store.models import Secret
from bot.support.config import ConfigError, Environment
from tests import pg
from tests.conftest import SECRET_KEYS, SIGNING_SECRET, Harness, opened, settings_for, start_runtime


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """The harness runs on PostgreSQL in this module."""
    return postgres_url


@pytest.fixture(autouse=True)
def _quick_slack_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Slack's per-channel pacing is not tested here
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 0.05)


def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Read the database from outside the bot (its own connection, closed at once)."""
    engine = create_engine(store.engine_url(url), poolclass=NullPool)
    try:
        with engine.connect() as con:
            return [tuple(r) for r in con.execute(text(sql), params)]
    finally:
        engine.dispose()


def buttons(msg: Any) -> list[str]:
    return [e["action_id"] for b in msg.blocks or [] if b["type"] == "actions" for e in b["elements"]]


def said(h: Harness, words: str) -> list[Any]:
    return [r for r in h.replies() if words in r.text]


# -- end to end on PostgreSQL -------------------------------------------------------------------------


async def test_watch_posts_a_parent_and_replies_on_each_state_change(harness: Harness) -> None:
    h = harness
    assert h.runtime.db.engine.dialect.name == "postgresql"
    h.sim.fusion.add_job(44046, name="ExtractMostLabels", steps=[Step(0, "ENQUEUED")])
    result = await h.watch("watch fusion-demo 44046")
    assert "Watching fusion-demo job `44046`" in result.responses()[-1].text
    [parent] = h.parents()
    h.sim.fusion.set_state(44046, "RUNNING", progress=50)
    await h.slack.wait_for(lambda: said(h, "running"), what="the running reply")
    await h.slack.wait_for(lambda: "50%" in json.dumps(h.slack.message("C0001", parent.ts).blocks))
    h.sim.fusion.set_state(44046, "SUCCEEDED")
    await h.slack.wait_for(lambda: said(h, "succeeded"), what="the succeeded reply")
    await h.slack.wait_for(lambda: buttons(h.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"])
    assert len(said(h, "running")) == 1 and len(said(h, "succeeded")) == 1 and len(h.parents()) == 1

    url = h.env.database_url
    assert query(url, "SELECT phase, polling FROM jobs") == [("succeeded", False)]
    assert query(url, "SELECT vendor_status FROM state_changes ORDER BY id") == [("ENQUEUED",), ("RUNNING",),
                                                                                 ("SUCCEEDED",)]
    assert query(url, "SELECT active, ended_reason, parent_ts FROM watches") == [
        (False, "finished", parent.ts)
    ]
    await h.slack.wait_for(lambda: query(url, "SELECT count(*) FROM outbox") == [(0,)], poll=0.05)


async def test_stop_then_rewatch_keeps_the_same_thread(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(44047, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 44047")
    [parent] = h.parents()
    await h.user.click("C0001", parent.ts, "jobstatus_stop")
    await h.slack.wait_for(lambda: buttons(h.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"])
    await h.slack.wait_for(lambda: said(h, "Stopped watching"))
    assert query(h.env.database_url, "SELECT polling FROM jobs") == [(False,)]
    stopped_at = h.sim.fusion.count("GET", "/jobRequests/44047")
    assert h.runtime.poller.scheduled == 0

    await h.user.click("C0001", parent.ts, "jobstatus_rewatch")
    await h.slack.wait_for(lambda: "jobstatus_stop" in buttons(h.slack.message("C0001", parent.ts)))
    await h.slack.wait_for(lambda: said(h, "Watching again"))
    await h.slack.wait_for(
        lambda: h.sim.fusion.count("GET", "/jobRequests/44047") > stopped_at + 1, poll=0.05
    )
    h.sim.fusion.set_state(44047, "FAILED", message="ESS-07034 job failed")
    await h.slack.wait_for(lambda: said(h, "ESS-07034"))
    assert len(h.parents()) == 1


async def test_a_restart_resumes_the_watch_into_the_same_thread(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(4242, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 4242")
    [parent] = h.parents()
    await h.slack.wait_for(lambda: h.sim.fusion.count("GET", "/jobRequests/4242") >= 3, poll=0.05)
    await h.restart()
    assert h.runtime.poller.scheduled == 1  # the schedule came back from PostgreSQL
    h.sim.fusion.set_state(4242, "SUCCEEDED")
    await h.slack.wait_for(lambda: said(h, "succeeded"))
    assert [m.ts for m in h.parents()] == [parent.ts]


async def test_what_slack_has_not_taken_stays_owed_across_a_restart(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(4343, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 4343")
    [parent] = h.parents()
    h.slack.fail_methods, h.slack.fail_kind, h.slack.fail_rate = {"chat.postMessage"}, "fatal_error", 1.0
    refused = len(h.slack.failed_calls)
    h.sim.fusion.set_state(4343, "SUCCEEDED")
    await h.slack.wait_for(lambda: len(h.slack.failed_calls) > refused, poll=0.05, what="the reply refused")
    await h.runtime.stop()
    url = h.env.database_url
    owed = query(
        url,
        "SELECT o.kind, o.attempts, w.parent_ts FROM outbox o JOIN watches w ON w.id = o.watch_id "
        "WHERE o.kind IN ('reply', 'event')",
    )  # a thread reply, rendered now or when sent
    assert owed and all(ts == parent.ts for _kind, _attempts, ts in owed)
    assert max(attempts for _kind, attempts, _ts in owed) >= 1  # Slack refused it once; it is still owed
    assert said(h, "succeeded") == []

    h.slack.fail_rate = 0.0
    h.runtime = await start_runtime(h.settings, h.env)  # what Harness.restart does, with a look in between
    h.user = SlackUser(h.runtime.events_url, SIGNING_SECRET, h.slack)
    await h.slack.wait_for(lambda: said(h, "succeeded"), what="the owed reply, after the restart")
    assert len(said(h, "succeeded")) == 1 and [m.ts for m in h.parents()] == [parent.ts]
    await h.slack.wait_for(lambda: query(url, "SELECT count(*) FROM outbox") == [(0,)], poll=0.05)


async def test_epm_rotating_refresh_token_is_kept_in_postgres_and_used_after_a_restart(
        sim: SimulatorServer, slack: FakeSlack, database_url: str) -> None:
    configure_simulators(sim)
    first = sim.epm_di.issue_refresh_token()
    sim.epm_di.oauth_clients["jobstatus-epm"] = "epm-client-secret"
    auth = {"type": "oauth2_refresh", "token_url": sim.base_url("epm_data_integration") + "/oauth2/v1/token",
            "client_id": "jobstatus-epm", "client_secret": "epm-client-secret", "refresh_token": first}
    settings = settings_for(sim, **{"epm-demo": {"auth": auth}})
    env = Environment(
        slack_bot_token=slack.token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        database_url=database_url,
        port=0,
        secret_keys=SECRET_KEYS,
    )
    runtime = await start_runtime(settings, env)
    h = Harness(sim, slack, settings, env, runtime, SlackUser(runtime.events_url, SIGNING_SECRET, slack))

    def stored() -> str | None:
        rows = query(database_url, "SELECT value FROM secrets WHERE key = 'epm-demo:refresh_token'")
        return opened(rows[0][0]) if rows else None

    def grants() -> list[str]:
        return [parse_qs(r.body.decode())["refresh_token"][0] for r in sim.epm_di.requests
                if r.method == "POST" and r.path.endswith("/oauth2/v1/token")]

    try:
        sim.epm_di.add_job(1991, name="GL_DATA_LOAD", steps=[Step(0, -1)])
        await h.watch("watch epm-demo 1991")
        second = stored()
        assert second is not None and second != first and second in sim.epm_di.refresh_tokens
        sim.epm_di.expire_access_tokens()  # the next poll gets 401: one refresh, the token rotates again
        await slack.wait_for(lambda: stored() != second, poll=0.05, what="the rotated token stored")
        third = stored()
        assert query(database_url, "SELECT count(*) FROM secrets") == [(1,)]  # updated in place (upsert)

        await h.restart()  # the config still says `first`, long used: PostgreSQL has the newest
        polled = sim.epm_di.count("GET", "/jobs/1991")
        await slack.wait_for(lambda: sim.epm_di.count("GET", "/jobs/1991") >= polled + 2, poll=0.05)
        sim.epm_di.set_state(1991, "0")
        await slack.wait_for(lambda: said(h, "succeeded"))
        assert grants() == [first, second, third]
        assert stored() in sim.epm_di.refresh_tokens
    finally:
        await h.runtime.stop()


# -- the store's queries, on SQLite and on PostgreSQL ------------------------------------------------------

NOW = 1_766_000_000.123456  # microseconds must survive the round trip: the poller compares due times


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    s = Store(url, secret_keys=SECRET_KEYS)
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


def _seed(s: Any) -> list[int]:
    pks = []
    for n, channel in ((1, "C1"), (2, "C1"), (3, "C2")):
        st = JobStatus(str(n), Phase.RUNNING, "RUNNING", name=f"job {n}")
        w, job, created = store.create_watch(s, "fusion-demo", st, channel, "U1", now=NOW, interval=30,
                                             watch_timeout=3600, first_reply=None)
        assert created == "created"
        w.parent_ts = f"{n}.000100"
        pks.append(job.id)
    return pks


async def test_the_poller_and_notifier_queries_work_alike(db: Store) -> None:
    pks = await db.run(_seed)
    # three parents
    assert await db.run(store.counts) == {"jobs_polling": 3, "watches_active": 3, "outbox": 3}
    rows = {r.pk: r for r in await db.run(store.polling_jobs)}
    assert sorted(rows) == sorted(pks)
    row = rows[pks[0]]
    assert (row.backend, row.job_id, row.phase, row.vendor_status) == (
        "fusion-demo",
        "1",
        "running",
        "RUNNING",
    )
    assert row.changed_at == NOW  # exactly
    assert await db.run(store.polling_job, pks[0]) == row and await db.run(store.polling_ids) == set(pks)

    # the poller's batched next poll times: one executemany; a job deleted meanwhile is skipped, not fatal
    await db.run(store.set_next_polls, [(pks[0], NOW + 10.5), (pks[1], NOW + 20.25), (987654, NOW)])
    due = {r.pk: r.due for r in await db.run(store.polling_jobs)}
    assert due[pks[0]] == NOW + 10.5 and due[pks[1]] == NOW + 20.25

    # a batch of results: a change (with a NUL in the vendor's text), an error, an unchanged answer
    applied = await db.run(
        store.apply_results,
        [
            PollResult(
                pks[0],
                JobStatus("1", Phase.FAILED, "FAILED", message="row 7 \x00bad"),
                NOW + 1,
                NOW + 31,
                False,
            ),
            PollResult(pks[1], Unavailable("fusion-demo cannot be reached"), NOW + 1, NOW + 61, False),
            PollResult(
                pks[2], JobStatus("3", Phase.RUNNING, "RUNNING", name="job 3"), NOW + 1, NOW + 31, False
            ),
        ],
    )
    assert [(a.changed, a.became_terminal, a.owed, a.polling) for a in applied] == [
        (True, True, 2, False), (False, False, 0, True), (False, False, 0, True)]
    job1 = await db.run(lambda s: s.get(Job, pks[0]))
    assert job1.message == "row 7 bad" and job1.polling is False and job1.phase is Phase.FAILED
    job2 = await db.run(lambda s: s.get(Job, pks[1]))
    assert (job2.errors, job2.error_kind, job2.error_since, job2.next_poll_at) == (
        1,
        "unavailable",
        NOW + 1,
        NOW + 61,
    )
    assert [w.active for w in await db.run(store.watches_of, pks[0], active=None)] == [False]

    # the sweep: one outage note per outage, then the watch timeout ends what is left
    assert await db.run(store.note_outages, NOW + 30, 60) == 0
    assert await db.run(store.note_outages, NOW + 100, 60) == 1
    assert await db.run(store.note_outages, NOW + 200, 60) == 0
    assert len(await db.run(store.channel_watches, "C1")) == 1
    assert await db.run(store.expire_watches, NOW + 3599) == 0
    assert await db.run(store.expire_watches, NOW + 3601) == 4  # two watches, a note and an update each
    assert await db.run(store.polling_jobs) == [] and await db.run(store.channel_watches, "C1") == []

    # the outbox as the notifier reads it: in order, joined with the watch's channel and thread
    owed = await db.run(store.pending, NOW + 10_000)
    # outbox.sending_order: replies in threads already posted, then new parents (and the replies waiting for
    # them), then the parents' updates
    rank = {
        ("event", True): 0,
        ("parent", True): 1,
        ("parent", False): 1,
        ("event", False): 2,
        ("update", True): 3,
        ("update", False): 3,
    }
    ranks = [rank[(str(m.kind), m.parent_ts is not None)] for m in owed]
    assert ranks == sorted(ranks) and ranks[0] == 0 and owed[-1].kind == "update", [
        (m.kind, m.parent_ts) for m in owed
    ]
    # (the thread replies of a change, an outage and a timeout are events, rendered when sent)
    assert {(m.kind, m.channel) for m in owed} >= {("parent", "C1"), ("event", "C1"), ("update", "C2")}
    first = owed[0]
    claimed = await db.run(store.claim, first.id)
    assert claimed is not None and claimed.attempts == 0
    await db.run(store.sent, first.id, "9.000001")
    assert await db.run(store.peek, first.id) is None
    assert (await db.run(lambda s: s.get(Watch, first.watch_id))).parent_ts == "9.000001"

    # a watch whose parent could not be posted is undone with its job (foreign keys in order)
    st = JobStatus("4", Phase.RUNNING, "RUNNING")
    w4, _, _ = await db.run(
        store.create_watch,
        "fusion-demo",
        st,
        "C3",
        "U1",
        now=NOW,
        interval=30,
        watch_timeout=60,
        first_reply=Changed(JobView.of_status("fusion-demo", st, NOW), "U1", None, None),
    )
    await db.run(store.discard_watch, w4.id)
    assert await db.run(store.find_job, "fusion-demo", "4") is None


async def test_secrets_are_upserted(db: Store) -> None:
    assert await db.get_secret("epm:refresh_token") is None
    await db.put_secret("epm:refresh_token", "one")
    await db.put_secret("epm:refresh_token", "two")
    await db.put_secret("other", "x")
    assert await db.get_secret("epm:refresh_token") == "two" and await db.get_secret("other") == "x"
    stored = await db.run(lambda s: {r.key: r.value for r in s.execute(select(Secret)).scalars()})
    assert {k: opened(v) for k, v in stored.items()} == {"epm:refresh_token": "two", "other": "x"}  # sealed


# -- URLs and the fixture's promise ------------------------------------------------------------------------


def test_database_urls_without_a_driver_mean_psycopg() -> None:
    assert store.engine_url("postgres://u:p@db:5432/jobs") == "postgresql+psycopg://u:p@db:5432/jobs"
    assert store.engine_url("postgresql://u@db/jobs") == "postgresql+psycopg://u@db/jobs"
    assert store.engine_url("postgresql+psycopg2://u@db/jobs") == "postgresql+psycopg2://u@db/jobs"
    assert store.engine_url("sqlite:///./jobstatus.db") == "sqlite:///./jobstatus.db"


def test_a_missing_database_driver_is_a_config_error_saying_what_to_install() -> None:
    with pytest.raises(ConfigError, match="pymysql driver, which is not installed"):
        Store("mysql+pymysql://u@127.0.0.1/jobs")


def test_postgres_unavailable_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL tests cannot run: no initdb"):
        pg.unavailable("no initdb")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL tests cannot run: no initdb"):
        pg.unavailable("no initdb")


async def test_one_watch_per_channel_and_job_and_one_cancel_however_many_ask(db: Store) -> None:
    st = JobStatus("7", Phase.RUNNING, "RUNNING")
    args = {"now": NOW, "interval": 30, "watch_timeout": 60, "first_reply": None}
    w, job, what = await db.run(store.create_watch, "fusion-demo", st, "C1", "U1", **args)
    assert what == "created"
    # the database holds it, not only the check before the insert
    with pytest.raises(IntegrityError):
        await db.run(lambda s: (s.add(Watch(job_pk=job.id, channel="C1", user_id="U2")), s.flush()))
    await db.run(lambda s: store.end_watch(s, s.get(Watch, w.id), "stopped", NOW))
    again, _, what = await db.run(store.create_watch, "fusion-demo", st, "C1", "U2", **args)
    assert what == "resumed" and again.id == w.id and again.active
    assert (await db.run(store.create_watch, "fusion-demo", st, "C1", "U3", **args))[2] == "exists"

    # cancel: of many concurrent claims, through two engines (two processes' worth), one wins
    other = Store(str(db.engine.url.render_as_string(hide_password=False)))
    try:
        claims = await asyncio.gather(*(s.run(store.claim_cancel, "fusion-demo", "7", f"U{n}", NOW + n)
                                        for n, s in enumerate([db, other] * 5)))
    finally:
        other.close()
    winners = [n for n, c in enumerate(claims) if c is None]
    assert len(winners) == 1
    assert all(c == (f"U{winners[0]}", NOW + winners[0]) for c in claims if c is not None)
    await db.run(store.release_cancel, "fusion-demo", "7", f"U{winners[0]}", NOW + winners[0])
    assert await db.run(store.claim_cancel, "fusion-demo", "7", "U42", NOW + 50) is None  # a refusal frees it
