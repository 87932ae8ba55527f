"""Daily digests: the day and due time across daylight saving, the message, and the writing and posting
(once per channel and day, whatever restarts or a second writer do; a missed one posted when next asked)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot import store
from bot.domain.jobs import JobView, OutboxKind
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.engine.digests import Digests, due_at, latest_due
from bot.rendering import messages
from bot.store import Store
from bot.support.config import BackendConfig, DigestConfig
from tests.conftest import FakeClock
from tests.unit.doubles import SlackDouble

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def test_the_due_time_is_local_time_on_both_sides_of_daylight_saving() -> None:
    assert due_at(date(2026, 3, 28), "07:30", BERLIN) == utc(2026, 3, 28, 6, 30)  # CET, UTC+1
    assert due_at(date(2026, 3, 29), "07:30", BERLIN) == utc(2026, 3, 29, 5, 30)  # CEST from 02:00 that night
    assert due_at(date(2026, 10, 25), "07:30", BERLIN) == utc(2026, 10, 25, 6, 30)  # CET again
    assert (due_at(date(2026, 3, 29), "07:30", BERLIN) - due_at(date(2026, 3, 28), "07:30", BERLIN)
            == 23 * 3600)


def test_a_time_in_the_spring_gap_is_after_the_jump_and_a_doubled_one_the_first() -> None:
    assert due_at(date(2026, 3, 29), "02:30", BERLIN) == utc(2026, 3, 29, 1, 30)  # 03:30 CEST
    assert due_at(date(2026, 10, 25), "02:30", BERLIN) == utc(2026, 10, 25, 0, 30)  # the first 02:30 (CEST)


def test_the_latest_due_day_is_today_after_the_time_and_yesterday_before() -> None:
    assert (latest_due(utc(2026, 3, 29, 5, 30), "07:30", BERLIN)
            == (date(2026, 3, 29), utc(2026, 3, 29, 5, 30)))
    assert (latest_due(utc(2026, 3, 29, 5, 29), "07:30", BERLIN)
            == (date(2026, 3, 28), utc(2026, 3, 28, 6, 30)))
    # just after local midnight: the day in Berlin, not in UTC
    assert (latest_due(utc(2026, 12, 6, 23, 30), "00:15", BERLIN)
            == (date(2026, 12, 7), utc(2026, 12, 6, 23, 15)))
    assert latest_due(utc(2026, 12, 6, 23, 30), "07:30", ZoneInfo("America/New_York"))[0] == date(2026, 12, 6)


def view(job_id: str, phase: Phase, message: str | None = None) -> JobView:
    return JobView("fusion", job_id, "Load <x>", phase, phase.value.upper(), None, message, (), (), 0.0)


def test_the_digest_counts_by_outcome_and_lists_each_failure_escaped_with_its_thread() -> None:
    reply = messages.digest("2026-12-07", [
        (view("1", Phase.SUCCEEDED), "https://x.test/archives/C0001/p1"),
        (view("2", Phase.FAILED, "ORA-1 <!channel>\nsecond line"), "https://x.test/archives/C0001/p2"),
        (view("3", Phase.SUCCEEDED), None),
        (view("4", Phase.FAILED, None), None),
    ])
    assert reply.text == "Daily digest for 2026-12-07: 4 jobs ended: 2 succeeded, 2 failed"
    head, body = reply.blocks[0]["text"]["text"], reply.blocks[1]["text"]["text"]
    assert head.startswith(":calendar: *Daily digest for 2026-12-07*: 4 jobs ended")
    assert body.splitlines() == [
        "• :x: *fusion* `2` · Load &lt;x&gt;: ORA-1 &lt;!channel&gt; · "
        "<https://x.test/archives/C0001/p2|thread>",
        "• :x: *fusion* `4` · Load &lt;x&gt;: no message",
    ]


def test_a_digest_of_many_failures_stays_within_block_kit_limits() -> None:
    reply = messages.digest("2026-12-07", [(view(str(n), Phase.FAILED, "x" * 500), None) for n in range(30)])
    assert all(len(b["text"]["text"]) <= messages.SECTION_LIMIT for b in reply.blocks)
    assert "… and 10 more failures" in reply.blocks[-1]["text"]["text"]


# -- writing and posting --------------------------------------------------------------------------------


async def _ended(db: Store, clock: FakeClock, job_id: str, phase: Phase, channel: str = "C0001") -> None:
    """A job watched in `channel`, its parent posted, then ended now."""
    _, job, _ = await db.run(store.create_watch, "fusion", JobStatus(job_id, Phase.RUNNING, "RUNNING"),
                             channel, "U1", now=clock(), interval=30, watch_timeout=86400, first_reply=None)
    for m in await db.run(store.pending, clock() + 60):
        await db.run(store.sent, m.id,
                     f"1766000000.{int(job_id):06d}" if m.kind is OutboxKind.PARENT else None)
    await db.run(store.apply_results, [store.PollResult(
        job.pk, JobStatus(job_id, phase, phase.value.upper(), message="boom"), clock(), clock() + 30)])


async def test_a_digest_is_posted_once_a_day_and_a_missed_one_when_next_asked(db: Store) -> None:
    clock = FakeClock(utc(2026, 12, 7, 5, 0))  # 06:00 in Berlin: yesterday's digest is the newest due
    slack = SlackDouble()
    config = DigestConfig(channel="C0001", at="07:30", timezone="Europe/Berlin")
    digests = Digests(db, slack, [config], clock)
    await digests.tick()  # the first look: yesterday's window is empty, nothing to post
    assert slack.of("chat.postMessage") == []
    await _ended(db, clock, "1", Phase.SUCCEEDED)
    clock.advance(600)
    await _ended(db, clock, "2", Phase.FAILED)
    await _ended(db, clock, "3", Phase.SUCCEEDED, channel="C0002")  # another channel's
    clock.now = utc(2026, 12, 7, 9, 0)  # the bot was down at 07:30 (06:30 UTC): asked again, it posts
    await digests.tick()
    await Digests(db, slack, [config], clock).tick()  # a restart, or a second replica: nothing more
    await digests.tick()
    [posted] = slack.of("chat.postMessage")
    assert (posted.channel == "C0001"
            and posted.text == "Daily digest for 2026-12-07: 2 jobs ended: 1 succeeded, 1 failed")
    assert "https://slack.test/archives/C0001/p1766000000000002|thread" in posted.blocks[1]["text"]["text"]
    clock.advance(86400)  # the next day: nothing ended since the last digest's window closed
    await digests.tick()
    assert len(slack.of("chat.postMessage")) == 1


async def test_a_digest_slack_cannot_take_now_is_posted_later_and_a_refused_one_dropped(db: Store) -> None:
    clock = FakeClock(utc(2026, 12, 7, 5, 0))
    slack = SlackDouble()
    digests = Digests(db, slack, [DigestConfig(channel="C0001", at="07:30", timezone="Europe/Berlin")], clock)
    await digests.tick()
    await _ended(db, clock, "1", Phase.FAILED)
    clock.now = utc(2026, 12, 7, 6, 31)
    slack.refuse("chat.postMessage", "ratelimited", retry_after=120)
    await digests.tick()
    assert slack.of("chat.postMessage") == []
    clock.advance(60)
    await digests.tick()
    assert slack.of("chat.postMessage") == []  # not before Retry-After
    clock.advance(61)
    await digests.tick()
    assert len(slack.of("chat.postMessage")) == 1
    await _ended(db, clock, "2", Phase.FAILED)
    clock.advance(86400)
    slack.refuse("chat.postMessage", "channel_not_found")
    await digests.tick()
    clock.advance(3600)
    await digests.tick()
    assert len(slack.of("chat.postMessage")) == 1  # dropped for good, not retried


async def test_posted_digests_are_pruned_after_the_retention_but_each_channels_newest_stays(
        db: Store) -> None:
    clock = FakeClock(utc(2026, 12, 7, 7, 0))
    slack = SlackDouble()
    digests = Digests(db, slack, [DigestConfig(channel="C0001", at="07:30", timezone="Europe/Berlin")], clock)
    for _ in range(3):  # three days' digests
        await _ended(db, clock, str(int(clock()) % 100000), Phase.SUCCEEDED)
        clock.advance(86400)
        await digests.tick()
    assert len(slack.of("chat.postMessage")) == 3
    total = store.Pruned()
    while batch := await db.run(store.prune_history, clock()):  # everything older than now, say
        total += batch
    assert total.digests == 2
    await digests.tick()
    assert len(slack.of("chat.postMessage")) == 3  # the newest day's row stayed: not posted again


async def test_a_digest_shows_a_failure_text_only_where_its_backends_details_allow_it(db: Store) -> None:
    """bot/operations/permissions.py: the failure's first line is vendor text; a digest in a channel outside
    the backend's `details` says "no message" in its place."""
    clock = FakeClock(utc(2026, 12, 7, 5, 0))
    fusion = BackendConfig.model_validate({"type": "fusion_jobscheduler", "base_url": "https://fusion.test",
                                           "auth": {"type": "bearer", "token": "t"}, "details": ["C0002"]})
    for channel, shown, configured in (("C0001", False, {"fusion": fusion}),
                                       ("C0002", True, {"fusion": fusion}),
                                       # a backend taken out of the config: fail closed
                                       ("C0003", False, {})):
        slack = SlackDouble()
        digests = Digests(db, slack, [DigestConfig(channel=channel, at="07:30", timezone="Europe/Berlin")],
                          clock, configured)
        await digests.tick()
        await _ended(db, clock, channel[-1], Phase.FAILED, channel=channel)
        clock.now += 86400
        await digests.tick()
        [posted] = slack.of("chat.postMessage")
        body = posted.blocks[1]["text"]["text"]
        assert ("boom" in body) is shown and ("no message" in body) is not shown, body
        clock.now -= 86400
