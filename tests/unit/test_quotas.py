"""The quotas (bot/operations/quotas.py): the arithmetic of the limits and of Retry-After, the words of a
refusal, the config's defaults, and the counts read from a real (SQLite) store, shared by whatever started the
watches."""

from __future__ import annotations

import pytest

from bot import store
from bot.domain import actors
from bot.domain.jobs import Reply
from bot.domain.quotas import WINDOW, Counts, Limits, Over, over
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.operations import quotas
from bot.operations.quotas import refusal
from bot.operations.refusals import UserError
from bot.rendering import messages
from bot.store import Store
from bot.store.quotas import admit_start
from bot.support.config import QuotasConfig, Settings, settings_from_dict
from tests.conftest import FakeClock

NOW = 10_000.0


def test_the_active_limit_is_met_at_its_figure_and_has_no_retry_after() -> None:
    lim = Limits(active=3, per_minute=100)
    assert over(lim, Counts(2, []), NOW, "user") is None
    assert over(lim, Counts(3, []), NOW, "user") == Over("user.active", 3, None)


def test_the_per_minute_limit_counts_a_sliding_window_and_says_when_one_more_fits() -> None:
    lim = Limits(active=100, per_minute=3)
    assert over(lim, Counts(0, [NOW - 50, NOW - 10]), NOW, "token") is None
    # three starts in the window: the oldest leaves it 60 s after it began
    assert (over(lim, Counts(0, [NOW - 50, NOW - 20, NOW - 1]), NOW, "token")
            == Over("token.per_minute", 3, 10))
    # starts older than the window do not count
    assert over(lim, Counts(0, [NOW - WINDOW, NOW - 20, NOW - 1]), NOW, "token") is None
    # over the limit (requests raced past it): enough must leave for one more to fit
    assert over(lim, Counts(0, [NOW - 55, NOW - 40, NOW - 30, NOW - 1]), NOW, "token") == \
        Over("token.per_minute", 3, 20)
    # never "retry in 0 s"
    assert (over(lim, Counts(0, [NOW - 59.9, NOW - 2, NOW - 1]), NOW, "token")
            == Over("token.per_minute", 3, 1))


def test_a_refusal_says_the_limit_the_setting_and_what_to_do() -> None:
    token = messages.who(actors.api_actor("ci-finance"))
    assert refusal(Over("token.per_minute", 600, 7), token) == (
        "API token `ci-finance` (API) started 600 new watches in the last minute, the most one API token may "
        "(the `quotas: token: per_minute` setting). Try again in 7 s: spread the starts out, or ask the "
        "bot's operator to raise the quota.")
    assert refusal(Over("user.active", 1000, None), None) == (
        "You have 1000 active watches, the most one user may have (the `quotas: user: active` setting). To "
        "watch more, stop the ones you no longer need (`/jobstatus list`, or *Stop watching* on the Home "
        "tab) or wait for their jobs to end.")
    assert refusal(Over("channel.per_minute", 1200, 3), None).startswith("This channel got 1200 new watches")
    assert "DELETE /api/v1/watches/{id}" in refusal(Over("channel.active", 9, None), token)


def test_the_defaults_let_a_pipeline_and_a_person_through_and_leave_a_channel_room_for_others() -> None:
    q = QuotasConfig()
    assert q.token.per_minute >= 500 and q.token.active >= 3000  # hundreds a minute, thousands a day
    assert q.user.per_minute >= 30  # far past what hands type or click
    assert q.channel.per_minute >= 2 * q.token.per_minute and q.channel.active >= 2 * q.token.active
    s = settings_from_dict({"backends": {"f": {"type": "fusion_jobscheduler", "base_url": "https://fa.test",
                                               "auth": {"type": "bearer", "token": "t"}}},
                            "quotas": {"token": {"active": 10, "per_minute": 2}}})
    assert isinstance(s, Settings) and (s.quotas.token.active, s.quotas.token.per_minute) == (10, 2)
    assert s.quotas.user == q.user  # the scopes not given keep their defaults


async def _watch(db: Store, now: float, job_id: str, channel: str, user: str) -> int:
    watch, _job, _ = await db.run(store.create_watch, "fusion", JobStatus(job_id, Phase.RUNNING, "RUNNING"),
                                  channel, user, now=now, interval=30, watch_timeout=3600, first_reply=None)
    return watch.pk


async def test_the_store_counts_each_identity_and_channel_records_admitted_starts_and_keeps_one_minute(
        db: Store, clock: FakeClock) -> None:
    token = actors.api_actor("ci")
    lim, chan = Limits(active=2, per_minute=3), Limits(active=100, per_minute=5)
    for i in range(3):
        assert await db.run(admit_start, lim, "token", chan, token, "C1", NOW + i) is None
    assert (await db.run(admit_start, lim, "token", chan, token, "C2", NOW + 3)
            == Over("token.per_minute", 3, 57))
    assert await db.run(admit_start, lim, "user", chan, "U1", "C1", NOW + 3) is None  # someone else: admitted
    # the channel's own limit: five starts in C1 by anyone
    assert await db.run(admit_start, Limits(9, 9), "user", chan, "U2", "C1", NOW + 4) is None
    assert (await db.run(admit_start, Limits(9, 9), "user", chan, "U3", "C1", NOW + 5)
            == Over("channel.per_minute", 5, 55))
    # a minute on, the starts have left the window (and the table)
    assert await db.run(admit_start, lim, "token", chan, token, "C1", NOW + 70) is None
    assert await db.run(store.quotas.counts, NOW + 70, channel="C1") == Counts(0, [NOW + 70])

    # active watches are the watches table's, by who started them
    for i in range(2):
        await _watch(db, NOW, f"j{i}", "C3", token)
    await _watch(db, NOW, "j9", "C3", "U1")
    assert (await db.run(admit_start, lim, "token", chan, token, "C4", NOW + 200)
            == Over("token.active", 2, None))
    stopped = await _watch(db, NOW, "j2", "C5", "U9")
    await db.run(store.stop_watch, stopped, NOW, Reply("stopped", []))
    assert (await db.run(store.quotas.counts, NOW, actor="U9")).active == 0


async def test_admit_raises_the_users_error_with_its_code_and_retry_after(db: Store) -> None:
    config = QuotasConfig.model_validate({"user": {"active": 5, "per_minute": 1}})
    await quotas.admit(db, config, "U1", "C1", NOW)
    with pytest.raises(UserError) as refused:
        await quotas.admit(db, config, "U1", "C1", NOW + 15)
    assert (refused.value.code, refused.value.retry_after) == ("quota_per_minute", 45)
    assert str(refused.value).startswith("You started 1 new watch in the last minute")
