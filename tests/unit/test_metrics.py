"""bot/metrics.py: what each report does to the registry, the figures counted in the store, the timing hooks
of the backends' HTTP client, and the rule that no label takes an unbounded value (walked over the
registry)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from bot import store
from bot.backends.http import _timing_hooks
from bot.domain.errors import AuthFailed, JobNotFound, RateLimited, Unavailable
from bot.domain.jobs import Changed, JobView, Reply
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.engine.notifier import Notifier
from bot.engine.poller import Poller
from bot.metrics import LOOPS, SLACK_METHODS, SLACK_OUTCOMES, Metrics
from bot.slack.errors import Outcome
from bot.store import Store
from tests.conftest import FakeClock
from tests.unit.doubles import BackendDouble, SlackDouble, backends, settings, until

# The only label names a series may carry (`le`: a histogram's bucket bound), and the fixed values of all but
# `backend`, whose values are the configured backends' names.
ALLOWED_LABELS = {"backend", "method", "outcome", "loop", "le"}
POLL_OUTCOMES = {"changed", "unchanged", "error", "invalid_job_id", "not_found", "auth", "forbidden",
                 "unavailable",
                 "rate_limited", "bad_response", "refused", "misconfigured", "cancel_not_supported",
                 "cancel_refused"}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def assert_bounded_labels(registry: CollectorRegistry, backend_names: set[str]) -> int:
    """Walk every series; return how many there are."""
    n = 0
    for family in registry.collect():
        assert family.name.startswith("jobstatus_"), family.name
        for sample in family.samples:
            n += 1
            assert set(sample.labels) <= ALLOWED_LABELS, (sample.name, sample.labels)
            labels = sample.labels
            if "backend" in labels:
                assert labels["backend"] in backend_names, sample
            if "loop" in labels:
                assert labels["loop"] in LOOPS, sample
            if "method" in labels:
                assert labels["method"] in SLACK_METHODS | {"other"}, sample
                assert labels["outcome"] in SLACK_OUTCOMES, sample
            elif "outcome" in labels:
                assert labels["outcome"] in POLL_OUTCOMES, sample
    return n


def test_a_poll_counts_by_outcome_and_an_outage_puts_its_backend_down() -> None:
    m = Metrics()
    r = m.registry
    m.poll("fusion", None, changed=True)
    m.poll("fusion", None)
    m.poll("fusion", None)
    assert value(r, "jobstatus_polls_total", backend="fusion", outcome="changed") == 1
    assert value(r, "jobstatus_polls_total", backend="fusion", outcome="unchanged") == 2
    assert value(r, "jobstatus_backend_up", backend="fusion") == 1

    m.poll("fusion", Unavailable("fusion is unreachable (ConnectError)"))
    assert value(r, "jobstatus_backend_up", backend="fusion") == 0
    m.poll("fusion", RateLimited("slow down"))  # a rate limit is an outage to ride out too
    assert value(r, "jobstatus_backend_up", backend="fusion") == 0
    m.poll("fusion", JobNotFound("fusion has no such job"))  # it answered: it is up, the job is gone
    assert value(r, "jobstatus_backend_up", backend="fusion") == 1
    m.poll("fusion", AuthFailed("refused our credentials"))
    assert value(r, "jobstatus_backend_up", backend="fusion") == 1
    for kind in ("unavailable", "rate_limited", "not_found", "auth"):
        assert value(r, "jobstatus_polls_total", backend="fusion", outcome=kind) == 1


def test_live_replicas_are_one_until_a_heartbeat_says_otherwise() -> None:
    m = Metrics()
    assert value(m.registry, "jobstatus_replicas_live") == 1  # SQLite: one process, and never told otherwise
    m.replicas_live(3)
    assert value(m.registry, "jobstatus_replicas_live") == 3


def test_slack_calls_are_named_by_outcome_and_an_unknown_method_is_other() -> None:
    m = Metrics()
    r = m.registry
    m.slack_call("chat.postMessage", Outcome.SENT)
    m.slack_call("chat.postMessage", Outcome.RETRY)
    m.slack_call("chat.update", Outcome.REPOST_PARENT)
    m.slack_call("files.completeUploadExternal", None)
    m.slack_call("C0123456/1700000000.000100", Outcome.DROP)  # never a value from outside the fixed set
    assert value(r, "jobstatus_slack_calls_total", method="chat.postMessage", outcome="ok") == 1
    assert value(r, "jobstatus_slack_calls_total", method="chat.postMessage", outcome="retry") == 1
    assert value(r, "jobstatus_slack_calls_total", method="chat.update", outcome="repost_parent") == 1
    assert value(r, "jobstatus_slack_calls_total", method="files.completeUploadExternal",
                 outcome="unknown") == 1
    assert value(r, "jobstatus_slack_calls_total", method="other", outcome="drop") == 1
    assert set(SLACK_OUTCOMES) == {"ok", "retry", "drop", "repost_parent", "end_watch", "stop_sending",
                                   "no_upload", "unknown"}

    m.slack_waits(30)
    m.slack_waits(1.5)
    assert value(r, "jobstatus_slack_rate_limited_total") == 2
    assert value(r, "jobstatus_slack_rate_limit_wait_seconds_total") == 31.5


def test_counts_fill_every_backend_and_the_oldest_message_ages_at_each_scrape(clock: FakeClock) -> None:
    m = Metrics(clock)
    r = m.registry
    assert value(r, "jobstatus_outbox_oldest_age_seconds") == 0  # before any count
    m.counted(store.Figures({"fusion": 3, "gone-from-config": 2}, 4, clock() - 10), ["fusion", "vault"])
    assert value(r, "jobstatus_watches_active", backend="fusion") == 3
    assert value(r, "jobstatus_watches_active", backend="vault") == 0
    assert value(r, "jobstatus_watches_active", backend="gone-from-config") is None  # not a configured name
    assert value(r, "jobstatus_outbox_messages") == 4
    assert value(r, "jobstatus_outbox_oldest_age_seconds") == 10
    clock.advance(290)
    assert value(r, "jobstatus_outbox_oldest_age_seconds") == 300  # computed when scraped
    m.counted(store.Figures({}, 0, None), ["fusion", "vault"])
    assert value(r, "jobstatus_watches_active", backend="fusion") == 0
    assert value(r, "jobstatus_outbox_messages") == 0
    assert value(r, "jobstatus_outbox_oldest_age_seconds") == 0


def test_jobs_tracked_are_read_when_scraped() -> None:
    m = Metrics()
    tracked = {"fusion": 2, "vault": 0}
    m.jobs_tracked_from(lambda: tracked)
    assert value(m.registry, "jobstatus_jobs_tracked", backend="fusion") == 2
    tracked["fusion"] = 5
    assert value(m.registry, "jobstatus_jobs_tracked", backend="fusion") == 5
    assert value(m.registry, "jobstatus_jobs_tracked", backend="vault") == 0


def test_two_runtimes_keep_their_figures_apart() -> None:
    one, two = Metrics(), Metrics()
    one.poll("fusion", None)
    assert value(one.registry, "jobstatus_polls_total", backend="fusion", outcome="unchanged") == 1
    assert value(two.registry, "jobstatus_polls_total", backend="fusion", outcome="unchanged") is None


async def test_the_store_counts_active_watches_by_backend_and_the_outbox(db: Store, clock: FakeClock) -> None:
    async def watch(job_id: str, backend: str = "fake", channel: str = "C1") -> store.Watch:
        st = JobStatus(job_id, Phase.RUNNING, "RUNNING")
        w, _job, _ = await db.run(store.create_watch, backend, st, channel, "U1", now=clock(), interval=30,
                                  watch_timeout=3600, first_reply=None)
        return w

    first = clock()
    await watch("1")
    await watch("1", channel="C2")
    await watch("2", backend="other")
    clock.advance(60)
    stopped = await watch("3")
    await db.run(store.stop_watch, stopped.pk, clock(), Reply("stopped", []))
    figures = await db.run(store.figures)
    assert figures.watches == {"fake": 2, "other": 1}
    assert figures.outbox == 4 + 2  # a parent for each watch; the stopped one's note and update
    assert figures.oldest_owed == first

    m = Metrics(clock)
    m.count_every = 0.01
    task = asyncio.create_task(m.keep_counting(db, {"fake": object(), "vault": object()}))
    try:
        await until(lambda: value(m.registry, "jobstatus_outbox_messages") == 6, "a count")
        await db.run(lambda s: s.execute(text("DELETE FROM outbox")))
        await until(lambda: value(m.registry, "jobstatus_outbox_messages") == 0, "the next count")
        assert value(m.registry, "jobstatus_watches_active", backend="fake") == 2
        assert value(m.registry, "jobstatus_watches_active", backend="vault") == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_every_request_of_an_http_client_is_timed_sign_in_included() -> None:
    """The hooks make_http_client installs, on a client whose transport answers in memory: a request behind an
    auth flow that signs in first is two requests, both timed."""
    seconds: list[float] = []

    class SignIn(httpx.Auth):
        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
            yield httpx.Request("POST", "https://vendor.test/token")
            request.headers["Authorization"] = "Bearer t"
            yield request

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer),
                                 event_hooks=_timing_hooks(seconds.append)) as c:
        await c.get("https://vendor.test/jobs/1", auth=SignIn())
        await c.get("https://vendor.test/jobs/2")
    assert len(seconds) == 3 and all(s >= 0 for s in seconds)


@pytest.fixture
async def wired(
        db: Store, clock: FakeClock) -> AsyncIterator[tuple[Metrics, Poller, Notifier, BackendDouble]]:
    m = Metrics(clock)
    backend = BackendDouble()
    by_name = backends(backend)
    notifier = Notifier(db, SlackDouble(), by_name, clock, m)
    poller = Poller(db, by_name, notifier.kick, settings(), clock, m)
    yield m, poller, notifier, backend
    await poller.stop(asyncio.get_running_loop().time() + 5.0)
    await notifier.stop(asyncio.get_running_loop().time() + 5.0)


async def test_the_poller_reports_polls_jobs_and_how_late_it_runs(
        wired: tuple[Metrics, Poller, Notifier, BackendDouble], db: Store, clock: FakeClock) -> None:
    m, poller, _notifier, backend = wired
    backend.jobs["1"] = JobStatus("1", Phase.RUNNING, "RUNNING")
    _w, job, _ = await db.run(store.create_watch, "fake", backend.jobs["1"], "C1", "U1", now=clock(),
                              interval=30, watch_timeout=3600, first_reply=None)
    await poller.track(job.pk)
    assert value(m.registry, "jobstatus_jobs_tracked", backend="fake") == 1
    due = (await db.run(store.polling_job, job.pk)).due  # type: ignore[union-attr]
    clock.now = due + 7.5  # the tick runs 7.5 s after the poll was due
    await poller.tick()
    await until(lambda: backend.asked, "the poll")
    assert value(m.registry, "jobstatus_loop_lag_seconds_count", loop="poller") == 1
    assert value(m.registry, "jobstatus_loop_lag_seconds_sum", loop="poller") == 7.5
    await until(lambda: value(m.registry, "jobstatus_polls_total", backend="fake", outcome="unchanged") == 1,
                "the poll counted")

    backend.jobs["1"] = Unavailable("fake is having trouble (HTTP 503)")
    clock.advance(600)
    await poller.tick()
    await until(lambda: value(m.registry, "jobstatus_backend_up", backend="fake") == 0, "the outage")
    await poller.tick()  # nothing due: no lag to report
    assert value(m.registry, "jobstatus_loop_lag_seconds_count", loop="poller") == 2
    assert_bounded_labels(m.registry, {"fake"})


async def test_the_notifier_reports_change_to_reply_rate_limit_waits_and_its_lag(
        wired: tuple[Metrics, Poller, Notifier, BackendDouble], db: Store, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 0.0)
    m, _poller, notifier, _backend = wired
    slack = notifier.slack
    assert isinstance(slack, SlackDouble)
    st = JobStatus("1", Phase.RUNNING, "RUNNING")
    w, _job, _ = await db.run(store.create_watch, "fake", st, "C1", "U1", now=clock(), interval=30,
                              watch_timeout=3600, first_reply=None)
    task = asyncio.create_task(notifier.run())
    try:
        await until(lambda: slack.of("chat.postMessage"), "the parent")
        seen_at = clock()  # the poll that saw the change owes its reply at its own time
        view = JobView("fake", "1", None, Phase.FAILED, "FAILED", None, "boom", (), (), seen_at)
        slack.refuse("chat.postMessage", "ratelimited", retry_after=0.05)
        await db.run(store.owe_many, [w.pk], [Changed(view, "U1", Phase.RUNNING, "RUNNING")], seen_at)
        notifier.kick()
        await until(lambda: value(m.registry, "jobstatus_slack_rate_limited_total") == 1, "Slack's wait")
        assert value(m.registry, "jobstatus_slack_rate_limit_wait_seconds_total") == 0.05
        clock.advance(12)  # Slack takes the reply 12 s after the poll saw the change
        await asyncio.sleep(0.05)  # the channel is held for Retry-After
        notifier.kick()
        await until(lambda: len(slack.of("chat.postMessage")) == 2, "the reply, after Slack's wait")
        await until(lambda: value(m.registry, "jobstatus_change_to_reply_seconds_count", backend="fake") == 1,
                    "the latency")
        assert value(m.registry, "jobstatus_change_to_reply_seconds_sum", backend="fake") == 12
        lag = value(m.registry, "jobstatus_loop_lag_seconds_count", loop="notifier")
        assert lag is not None and lag >= 2  # a pass after each kick
    finally:
        await notifier.stop(asyncio.get_running_loop().time() + 5.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert_bounded_labels(m.registry, {"fake"})


def test_every_series_of_a_busy_registry_has_only_bounded_labels() -> None:
    """Every report, with the values an unbounded label would take (ids, texts) where a caller could pass
    them: no series carries a label outside the allowed set, nor a value outside its fixed set."""
    m = Metrics()
    m.jobs_tracked_from(lambda: {"fusion": 1})
    for error in (None, Unavailable("x"), JobNotFound("no job 123"), AuthFailed("no")):
        m.poll("fusion", error, changed=True)
    m.vendor_request("fusion")(0.2)
    for method in (*sorted(SLACK_METHODS), "https://hooks.slack.com/x", "C0123"):
        for outcome in (*Outcome, None):
            m.slack_call(method, outcome)
    m.slack_waits(1)
    m.change_replied("fusion", 3)
    for loop in LOOPS:
        m.loop_lag(loop, 0.1)
    m.counted(store.Figures({"fusion": 1}, 1, 0.0), ["fusion"])
    assert assert_bounded_labels(m.registry, {"fusion"}) > 100
    with pytest.raises(AssertionError):
        m.loop_lag("U0123", 1)
