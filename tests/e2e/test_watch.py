"""End to end: signed Slack requests into the real bot, vendor simulators behind it, assertions on what
reached the fake Slack. Nothing of the bot is mocked."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.offline.vendors.core import Step
from tests.conftest import Harness


def texts(blocks: list[dict[str, Any]] | None) -> str:
    return json.dumps(blocks or [])


def buttons(msg: Any) -> list[str]:
    return [e["action_id"] for b in msg.blocks or [] if b["type"] == "actions" for e in b["elements"]]


async def test_watch_a_failing_job_thread_has_message_logs_and_excerpt(harness: Harness) -> None:
    h = harness
    h.sim.epm_di.add_job(1881, name="GL_DATA_LOAD", steps=[Step(0, -1)], log_file="outbox/logs/GL_1881.log",
                         log_text="INFO start\nERROR [AIF]: No periods were identified\nINFO end\n",
                         output_file="outbox/GL_1881.csv")
    result = await h.watch("watch epm-demo 1881")
    assert "Watching epm-demo job `1881`" in result.responses()[-1].text

    [parent] = h.parents()
    assert "GL_DATA_LOAD" in texts(parent.blocks) and "<@U0001>" in texts(parent.blocks)
    assert buttons(parent) == ["jobstatus_refresh", "jobstatus_stop"]  # EPM offers no cancel API
    assert parent.metadata["event_payload"]["watch_id"] >= 1

    h.sim.epm_di.set_state(1881, "1", details="Data load failed for location GL_LOC")
    await h.slack.wait_for(lambda: len(h.replies()) >= 3, what="failure reply, details and log file")
    failure, details, upload = h.replies()[:3]
    body = texts(failure.blocks)
    assert "Data load failed for location GL_LOC" in body
    assert "outbox/logs/GL_1881.log" in body and "outbox/GL_1881.csv" in body
    assert "<@U0001>" in body and failure.reply_broadcast is True
    assert "No periods were identified" in texts(details.blocks)
    assert upload.files and upload.files[0]["name"] == "epm-demo-1881.log"  # the bot's name, not EPM's

    await h.slack.wait_for(lambda: buttons(h.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"])
    assert "failed" in h.slack.message("C0001", parent.ts).text
    assert len(h.parents()) == 1


async def test_an_empty_log_is_not_uploaded_and_nothing_is_retried(harness: Harness) -> None:
    """Slack refuses a 0-byte file (files.getUploadURLExternal: missing_argument): an empty log is not
    owed as an upload at all, so nothing waits on a retry that cannot succeed."""
    h = harness
    h.sim.epm_di.add_job(1890, steps=[Step(0, -1)], log_file="outbox/logs/EMPTY_1890.log", log_text="")
    await h.watch("watch epm-demo 1890")
    h.sim.epm_di.set_state(1890, "1", details="Load failed")
    await h.slack.wait_for(lambda: any("Load failed" in r.text for r in h.replies()))
    await h.slack.wait_for(lambda: buttons(h.parents()[0]) == ["jobstatus_rewatch"])
    async def nothing_owed() -> bool:
        return await h.runtime.db.run(_outbox_count) == 0

    await h.slack.wait_for(nothing_owed, what="an empty outbox")
    assert h.slack.calls_of("files.getUploadURLExternal") == []
    assert not any(r.files for r in h.replies())


async def test_one_reply_per_state_change_not_per_poll_and_parent_kept_current(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(44046, name="ExtractMostLabels", steps=[Step(0, "ENQUEUED")])
    await h.watch("fusion-demo 44046")
    [parent] = h.parents()
    polls = h.sim.fusion.count("GET", "/jobRequests/44046")
    await h.slack.wait_for(lambda: h.sim.fusion.count("GET", "/jobRequests/44046") >= polls + 3, poll=0.05)
    assert h.replies() == []  # polls without a change post nothing

    h.sim.fusion.set_state(44046, "RUNNING", progress=50)
    await h.slack.wait_for(lambda: len(h.replies()) == 1)
    await h.slack.wait_for(lambda: "50%" in texts(h.slack.message("C0001", parent.ts).blocks))
    h.sim.fusion.set_state(44046, "RUNNING", progress=80)  # progress only: parent edited, no reply
    await h.slack.wait_for(lambda: "80%" in texts(h.slack.message("C0001", parent.ts).blocks))
    h.sim.fusion.set_state(44046, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies()))
    await h.slack.wait_for(lambda: buttons(h.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"])
    replies = [r.text for r in h.replies() if not r.files]
    assert [("running" in t, "succeeded" in t) for t in replies[:2]] == [(True, False), (False, True)]
    state_replies = [t for t in replies if "running" in t or "succeeded" in t]
    assert len(state_replies) == 2
    # no more polling once terminal
    polled = h.sim.fusion.count("GET", "/jobRequests/44046")
    # let time pass measurably via another watch
    h.sim.immuta.add_job("0b0e0000-0000-4000-8000-000000000001", steps=[Step(0, "active")])
    await h.watch("immuta-demo 0b0e0000-0000-4000-8000-000000000001", channel="C0002")
    await h.slack.wait_for(lambda: h.sim.immuta.count("POST", "/jobs/statuses") >= 4, poll=0.05)
    assert h.sim.fusion.count("GET", "/jobRequests/44046") == polled


async def test_same_job_in_two_channels_is_polled_once_and_fanned_out(harness: Harness) -> None:
    h = harness
    h.sim.planning.add_job(224, name="Import Account Metadata", steps=[Step(0, -1)])
    await h.watch("watch planning-demo 224", channel="C0001")
    await h.watch("watch planning-demo 224", channel="C0002", user="U0002")
    start = h.sim.planning.count("GET", "/jobs/224")
    await h.slack.wait_for(lambda: h.sim.planning.count("GET", "/jobs/224") >= start + 5, poll=0.05)
    n = h.sim.planning.count("GET", "/jobs/224") - start
    polls = h.runtime.poller.polls
    assert n <= polls + 1  # one vendor request per poll
    # ...and one poll per job: two channels watch it, the schedule holds it once
    assert [j.job_id for j in h.runtime.poller._jobs.values()] == ["224"]
    h.sim.planning.set_state(224, 0, details="Metadata import was successful")
    for ch in ("C0001", "C0002"):
        await h.slack.wait_for(lambda ch=ch: any("succeeded" in r.text for r in h.replies(ch)))
    assert "<@U0002>" in texts(h.parents("C0002")[0].blocks)


async def test_watching_twice_in_one_channel_links_the_existing_thread(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(5, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 5")
    second = await h.watch("watch fusion-demo 5", user="U0002")
    answer = second.responses()[-1].text
    assert "already watches" in answer and "https://fake.slack.test/archives/C0001/p" in answer
    assert len(h.parents()) == 1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("watch nosuch 1", "There is no backend called `nosuch`"),
        ("watch fusion-demo 12ab", "'12ab' is not an Oracle Fusion job id: it is the job request id"),
        (
            "watch immuta-demo ../../admin",
            "'../../admin' is not an Immuta job id: it is the job's globally unique",
        ),
        ("wacth fusion-demo 1", "Did you mean `watch`?"),
        ("watch fusion-demo", "Usage: `/jobstatus watch &lt;backend&gt; &lt;job-id&gt;`"),
    ],
)
async def test_typos_are_answered_in_the_ack_and_post_nothing(harness: Harness, text: str, says: str) -> None:
    result = await harness.user.command(text)
    assert result.status == 200
    assert says in result.ack_text
    assert harness.parents() == [] and harness.slack.calls_of("chat.postMessage") == []


async def test_backend_errors_are_answered_to_the_user_alone(harness: Harness) -> None:
    h = harness
    nf = await h.watch("watch fusion-demo 999999")  # unknown to the simulator
    assert "has no job `999999`" in nf.responses()[-1].text
    h.sim.epm_di.maintenance = True
    down = await h.watch("watch epm-demo 1")
    assert "cannot be reached right now" in down.responses()[-1].text
    assert h.parents() == [] and h.slack.calls_of("chat.postMessage") == []
    assert (await h.runtime.db.run(_count_rows)) == (0, 0)


async def test_bot_not_in_channel_says_invite_and_keeps_nothing(harness: Harness) -> None:
    h = harness
    h.slack.add_channel("G0009", "secret-project", member=False, private=True)
    h.sim.fusion.add_job(77, steps=[Step(0, "RUNNING")])
    result = await h.watch("watch fusion-demo 77", channel="G0009")
    assert "Invite me first" in result.responses()[-1].text
    assert h.slack.messages("G0009") == []
    assert (await h.runtime.db.run(_count_rows)) == (0, 0)
    before = h.sim.fusion.count("GET", "/jobRequests/77")
    await h.watch("status fusion-demo 77")  # a round trip later, nothing polls job 77
    assert h.sim.fusion.count("GET", "/jobRequests/77") == before + 1


async def test_stop_watching_then_rewatch_keeps_the_same_thread(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(44047, name="DataExport", steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 44047")
    [parent] = h.parents()
    click = await h.user.click("C0001", parent.ts, "jobstatus_stop")
    assert click is not None and click.status == 200
    await h.slack.wait_for(lambda: buttons(h.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"])
    await h.slack.wait_for(lambda: any("Stopped watching" in r.text for r in h.replies()))
    stopped_at = h.sim.fusion.count("GET", "/jobRequests/44047")
    h.sim.fusion.set_state(44047, "IN_PROGRESS")
    h.sim.immuta.add_job("71c40000-0000-4000-8000-000000000002", steps=[Step(0, "active")])
    await h.watch("watch immuta-demo 71c40000-0000-4000-8000-000000000002", channel="C0002")
    await h.slack.wait_for(lambda: h.sim.immuta.count("POST", "/jobs/statuses") >= 5, poll=0.05)
    assert h.sim.fusion.count("GET", "/jobRequests/44047") == stopped_at  # not polled while stopped
    assert not any("IN_PROGRESS" in r.text for r in h.replies())

    await h.user.click("C0001", parent.ts, "jobstatus_rewatch")
    await h.slack.wait_for(lambda: "jobstatus_stop" in buttons(h.slack.message("C0001", parent.ts)))
    await h.slack.wait_for(lambda: any("Watching again" in r.text for r in h.replies()))
    h.sim.fusion.set_state(44047, "FAILED", message="ESS-07034 job failed: <!channel> & <b>")
    await h.slack.wait_for(lambda: any("ESS-07034" in r.text for r in h.replies()))
    failure = next(r for r in h.replies() if "ESS-07034" in r.text)
    assert "&lt;!channel&gt; &amp; &lt;b&gt;" in texts(failure.blocks)
    assert "<!channel>" not in texts(failure.blocks) and "<!channel>" not in failure.text
    assert len(h.parents("C0001")) == 1  # the failure is broadcast, but still one parent


# an hour between scheduled polls: the only poll after the watch's own check is the one Refresh asks for (the
# poller keeps its schedule in memory, so moving next_poll_at in the database would not hold it back)
@pytest.mark.backends(**{"fusion-demo": {"poll_interval": 3600, "max_poll_interval": 3600}})
async def test_refresh_polls_now(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(1201, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 1201")
    [parent] = h.parents()
    edits = h.slack.message("C0001", parent.ts).edits
    before = h.sim.fusion.count("GET", "/jobRequests/1201")
    await h.user.click("C0001", parent.ts, "jobstatus_refresh")
    await h.slack.wait_for(lambda: h.slack.message("C0001", parent.ts).edits > edits)
    assert h.sim.fusion.count("GET", "/jobRequests/1201") == before + 1


async def test_cancel_button_asks_to_confirm_cancels_and_follows_to_cancelled(harness: Harness) -> None:
    h = harness
    h.sim.vault.add_job(1202, name="Binder Export", steps=[Step(0, "QUEUED")])
    await h.watch("watch vault-demo 1202")
    [parent] = h.parents()
    cancel = next(e for b in parent.blocks if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == "jobstatus_cancel")
    assert cancel["confirm"]["confirm"]["text"] == "Cancel job"
    assert await h.user.click("C0001", parent.ts, "jobstatus_cancel", confirm=False) is None
    assert h.sim.vault.count("POST", "/actions/cancel") == 0
    await h.user.click("C0001", parent.ts, "jobstatus_cancel")
    await h.slack.wait_for(lambda: any("Cancel requested by <@U0001>" in r.text for r in h.replies()))
    assert h.sim.vault.count("POST", "/actions/cancel") == 1
    await h.slack.wait_for(lambda: any("cancelled" in r.text for r in h.replies()), timeout=15)


async def test_cancel_where_the_vendor_cannot_says_where_to_cancel(harness: Harness) -> None:
    h = harness
    h.sim.immuta.add_job("abc10000-0000-4000-8000-000000000003", steps=[Step(0, "active")])
    await h.watch("watch immuta-demo abc10000-0000-4000-8000-000000000003")
    result = await h.watch("cancel immuta-demo abc10000-0000-4000-8000-000000000003")
    assert "offers no cancel API" in result.responses()[-1].text
    assert not any("Cancel requested" in r.text for r in h.replies())


async def test_only_the_watcher_may_cancel_by_default(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(900, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 900", user="U0001")
    other = await h.watch("cancel fusion-demo 900", user="U0002")
    assert "Only <@U0001>" in other.responses()[-1].text
    assert h.sim.fusion.count("POST", "/cancel") == 0
    mine = await h.watch("cancel fusion-demo 900", user="U0001")
    assert "Asked fusion-demo to cancel job `900`" in mine.responses()[-1].text
    await h.slack.wait_for(lambda: any("cancel" in r.text.lower() for r in h.replies()))


async def test_status_list_backends_help_unwatch(harness: Harness) -> None:
    h = harness
    h.sim.immuta.add_job("00000000-0000-4000-8000-000000000042", steps=[Step(0, "active")], output="rows: 12")
    status = await h.watch("status immuta-demo 00000000-0000-4000-8000-000000000042")
    assert "running" in status.responses()[-1].text and h.parents() == []
    empty = await h.user.command("list")
    await empty.wait_responses(1)
    assert "No job is watched" in empty.responses()[-1].text
    await h.watch("watch immuta-demo 00000000-0000-4000-8000-000000000042")
    listing = await h.user.command("list")
    await listing.wait_responses(1)
    assert "00000000-0000-4000-8000-000000000042" in listing.responses()[-1].text
    backends = await h.user.command("backends")
    await backends.wait_responses(1)  # after the ack: who may use a backend may take asking Slack
    for name in ("fusion-demo", "vault-demo", "epm-demo", "planning-demo", "immuta-demo"):
        assert name in backends.responses()[-1].text
    helptext = await h.user.command("")
    assert "/jobstatus watch &lt;backend&gt; &lt;job-id&gt;" in helptext.ack_text
    stop = await h.watch("unwatch immuta-demo 00000000-0000-4000-8000-000000000042")
    assert "Stopped watching" in stop.responses()[-1].text
    await h.slack.wait_for(lambda: buttons(h.parents()[0]) == ["jobstatus_rewatch"])


async def test_forged_and_stale_requests_get_401_and_change_nothing(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(1, steps=[Step(0, "RUNNING")])
    body = b"command=%2Fjobstatus&text=watch+fusion-demo+1&user_id=U1&channel_id=C0001&team_id=T0001"
    headers = h.user.sign(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    assert (await h.user.post_raw(body, headers))[0] == 401
    stale = h.user.sign(body, timestamp=1_600_000_000)
    assert (await h.user.post_raw(body, stale))[0] == 401
    assert h.sim.fusion.count() == 0 and h.parents() == []


async def test_every_backend_type_end_to_end(harness: Harness) -> None:
    h = harness
    jobs = [
        ("fusion-demo", "31664", h.sim.fusion, "RUNNING", "SUCCEEDED"),
        ("vault-demo", "1601", h.sim.vault, "RUNNING", "SUCCESS"),
        ("epm-demo", "1882", h.sim.epm_di, -1, "0"),
        ("planning-demo", "145", h.sim.planning, -1, 0),
        ("immuta-demo", "c0ffee00-0000-4000-8000-000000000001", h.sim.immuta, ["active"], "completed"),
    ]
    for name, job_id, vendor, first, _last in jobs:
        vendor.add_job(job_id, steps=[Step(0, first)])
        await h.watch(f"watch {name} {job_id}")
    assert len(h.parents()) == 5
    for _name, job_id, vendor, _first, last in jobs:
        vendor.set_state(job_id, last)
    for i in range(5):
        await h.slack.wait_for(lambda i=i: any("succeeded" in r.text for r in h.replies(index=i)), timeout=15)


async def test_restart_resumes_watches_into_the_same_thread(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(4242, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 4242")
    [parent] = h.parents()
    await h.restart()
    h.sim.fusion.set_state(4242, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies()))
    assert [m.ts for m in h.parents()] == [parent.ts]


async def test_healthz(harness: Harness) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{harness.runtime.port}/healthz") as r:
        assert r.status == 200 and (await r.json())["ok"] is True


def _count_rows(s: Any) -> tuple[int, int]:
    from sqlalchemy import func, select

    from bot.store import Job, Watch

    return (s.execute(select(func.count()).select_from(Job)).scalar_one(),
            s.execute(select(func.count()).select_from(Watch)).scalar_one())


async def test_usage_placeholders_reach_slack_escaped_so_people_see_them(harness: Harness) -> None:
    """In mrkdwn `<…>` is link and mention markup, even inside backticks: a raw `<backend>` shows up empty."""
    from bot.offline.slack import mrkdwn_to_plain

    h = harness
    helptext = await h.user.command("help")
    usage = await h.user.command("watch fusion-demo")
    empty = await h.user.command("list")
    await empty.wait_responses(1)
    shown = [helptext.ack_text, json.dumps(helptext.body), usage.ack_text, empty.responses()[-1].text,
             json.dumps(empty.responses()[-1].payload)]
    for text in shown:
        assert "<backend>" not in text and "<job-id>" not in text, text
    assert "/jobstatus watch <backend> <job-id>" in mrkdwn_to_plain(helptext.ack_text)
    assert "Usage: `/jobstatus watch <backend> <job-id>`" in mrkdwn_to_plain(usage.ack_text)
    assert "/jobstatus watch <backend> <job-id>" in mrkdwn_to_plain(empty.responses()[-1].text)


async def test_twenty_concurrent_watches_of_an_ended_job_give_one_parent_and_one_broadcast(
    harness: Harness,
) -> None:
    h = harness
    h.sim.fusion.add_job(6001, steps=[Step(0, "FAILED", {"message": "ESS-07034 job failed"})])
    results = await asyncio.gather(*(h.user.command("watch fusion-demo 6001", user_id=f"U1{n:03d}")
                                     for n in range(20)))
    for r in results:
        await r.wait_responses(2)
    assert len(h.parents()) == 1
    broadcasts = [r for r in h.replies() if r.reply_broadcast]
    assert len(broadcasts) == 1 and "ESS-07034" in broadcasts[0].text
    answers = [r.responses()[-1].text for r in results]
    assert sum("I posted its result" in a for a in answers) == 1
    assert sum("already" in a and "https://fake.slack.test/archives/C0001/p" in a for a in answers) == 19


async def test_a_second_watch_of_an_ended_job_links_the_thread_it_ended_in(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(6002, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 6002")
    h.sim.fusion.set_state(6002, "FAILED", message="ESS-07034 job failed")
    await h.slack.wait_for(lambda: any(r.reply_broadcast for r in h.replies()))
    again = await h.watch("watch fusion-demo 6002", user="U0002")
    assert "https://fake.slack.test/archives/C0001/p" in again.responses()[-1].text
    assert len(h.parents()) == 1 and len([r for r in h.replies() if r.reply_broadcast]) == 1


async def test_watching_again_after_stop_follows_the_job_in_the_same_thread(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(6003, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 6003")
    await h.watch("unwatch fusion-demo 6003")
    again = await h.watch("watch fusion-demo 6003", user="U0002")
    assert "again" in again.responses()[-1].text
    h.sim.fusion.set_state(6003, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies()))
    assert len(h.parents()) == 1


async def test_a_triple_click_on_cancel_cancels_once_and_notes_once(harness: Harness) -> None:
    h = harness
    h.sim.vault.add_job(6004, name="Binder Export", steps=[Step(0, "RUNNING")])
    await h.watch("watch vault-demo 6004")
    [parent] = h.parents()
    clicks = await asyncio.gather(*(h.user.click("C0001", parent.ts, "jobstatus_cancel") for _ in range(3)))
    for c in clicks:
        assert c is not None and c.status == 200
    await h.slack.wait_for(lambda: sum(len(c.responses()) for c in clicks if c) == 3)
    await h.slack.wait_for(lambda: any("Cancel requested by <@U0001>" in r.text for r in h.replies()))
    assert h.sim.vault.count("POST", "/actions/cancel") == 1
    assert len([r for r in h.replies() if "Cancel requested" in r.text]) == 1
    answers = [p.text for c in clicks if c for p in c.responses()]
    assert sum("Asked vault-demo to cancel job `6004`" in t for t in answers) == 1, answers
    assert sum("already requested by <@U0001>" in t for t in answers) == 2, answers
    await h.slack.wait_for(lambda: "jobstatus_cancel" not in buttons(h.slack.message("C0001", parent.ts)))


async def test_three_concurrent_cancel_commands_make_one_vendor_call(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(6005, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 6005")
    results = await asyncio.gather(*(h.user.command("cancel fusion-demo 6005") for _ in range(3)))
    for r in results:
        await r.wait_responses(2)
    answers = [r.responses()[-1].text for r in results]
    assert sum("Asked fusion-demo to cancel" in a for a in answers) == 1
    assert sum("already requested by <@U0001>" in a for a in answers) == 2
    assert h.sim.fusion.count("POST", "/cancel") == 1
    await h.slack.wait_for(lambda: any("Cancel requested" in r.text for r in h.replies()))
    assert len([r for r in h.replies() if "Cancel requested" in r.text]) == 1


def _outbox_count(s: Any) -> int:
    from sqlalchemy import func, select

    from bot.store import Outbox

    return int(s.execute(select(func.count()).select_from(Outbox)).scalar_one())
