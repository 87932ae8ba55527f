"""Faults end to end: vendor outages and garbage, Slack errors and 429s, timeouts, permissions.

Each test drives the real bot with signed requests and asserts on what reached the fake Slack."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from bot.offline.vendors.core import FaultPlan, Step
from tests.conftest import Harness


def buttons(msg: Any) -> list[str]:
    return [e["action_id"] for b in msg.blocks or [] if b["type"] == "actions" for e in b["elements"]]


def notes(h: Harness, words: str, channel: str = "C0001", index: int = 0) -> list[Any]:
    return [r for r in h.replies(channel, index) if words in r.text]


@pytest.mark.settings(outage_note_after=0.5)
async def test_an_outage_gives_one_note_when_it_starts_to_matter_and_one_when_it_ends(
    harness: Harness,
) -> None:
    h = harness
    h.sim.epm_di.add_job(1881, steps=[Step(0, -1)])
    await h.watch("watch epm-demo 1881")
    h.sim.epm_di.retry_after = 1  # EPM says 120 s; the bot must wait that long, so keep the test short
    h.sim.epm_di.maintenance = True
    await h.slack.wait_for(lambda: len(notes(h, "Cannot reach")) == 1, timeout=15)
    failed = h.sim.epm_di.count("GET", "/jobs/1881")
    # polls back off (with Retry-After as a floor) but go on: two more, and still one note
    await h.slack.wait_for(
        lambda: h.sim.epm_di.count("GET", "/jobs/1881") >= failed + 2, timeout=30, poll=0.05
    )
    assert len(notes(h, "Cannot reach")) == 1  # one note, not one per poll
    assert not any("failed" in r.text for r in h.replies())  # maintenance is not a job failure
    h.sim.epm_di.maintenance = False
    await h.slack.wait_for(lambda: len(notes(h, "answers again. Job is")) == 1, timeout=30)
    h.sim.epm_di.set_state(1881, 0)
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies()))
    assert len(notes(h, "Cannot reach")) == 1 and len(notes(h, "answers again. Job is")) == 1


@pytest.mark.settings(outage_note_after=0.3)
async def test_a_purged_job_is_said_to_be_unknown_not_unreachable(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(31, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 31")
    del h.sim.fusion.jobs["31"]
    await h.slack.wait_for(lambda: len(notes(h, "no longer knows this job")) == 1, timeout=15)
    assert notes(h, "Cannot reach") == []


@pytest.mark.settings(outage_note_after=0.3)
async def test_refused_credentials_are_said_to_be_an_access_problem(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(32, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 32")
    h.sim.fusion.basic_users.clear()  # the service account's password was changed
    await h.slack.wait_for(lambda: len(notes(h, "refuses the bot's credentials")) == 1, timeout=15)
    assert "check its access" in notes(h, "refuses the bot's credentials")[0].text
    assert notes(h, "Cannot reach") == []


@pytest.mark.settings(watch_timeout=1.0)
async def test_a_watch_ends_after_its_timeout_with_a_note_and_rewatch(harness: Harness) -> None:
    h = harness
    h.sim.planning.add_job(7, steps=[Step(0, -1)])
    await h.watch("watch planning-demo 7")
    [parent] = h.parents()
    await h.slack.wait_for(lambda: notes(h, "watch timeout"), timeout=15)
    await h.slack.wait_for(lambda: buttons(h.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"])
    polled = h.sim.planning.count("GET", "/jobs/7")
    await h.user.click("C0001", parent.ts, "jobstatus_rewatch")
    await h.slack.wait_for(lambda: h.sim.planning.count("GET", "/jobs/7") > polled + 1)


async def test_garbage_from_every_vendor_at_a_high_rate_never_stops_a_watch(harness: Harness) -> None:
    h = harness
    jobs = [
        ("fusion-demo", "501", h.sim.fusion, "RUNNING", "SUCCEEDED"),
        ("vault-demo", "502", h.sim.vault, "RUNNING", "SUCCESS"),
        ("epm-demo", "503", h.sim.epm_di, -1, "0"),
        ("planning-demo", "504", h.sim.planning, -1, 0),
        ("immuta-demo", "00000000-0000-4000-8000-000000000505", h.sim.immuta, "active", "completed"),
    ]
    for name, job_id, vendor, first, _ in jobs:
        vendor.add_job(job_id, steps=[Step(0, first)])
        await h.watch(f"watch {name} {job_id}")
    plans = []
    for seed, (_, _, vendor, _, _) in enumerate(jobs):
        vendor.faults = FaultPlan(rate=0.6, seed=seed, slow_seconds=0.4, retry_after=0.2,
                                  kinds=("500", "503", "429", "html", "malformed", "truncated", "empty",
                                         "wrong_types", "slow"))
        plans.append(vendor.faults)
    for b in h.runtime.backends.values():  # slow answers must time out, not hang a poll
        b.http.timeout = __import__("httpx").Timeout(0.3)
    await h.slack.wait_for(lambda: sum(sum(p.injected.values()) for p in plans) >= 40, timeout=40, poll=0.1)
    for _, job_id, vendor, _, last in jobs:
        vendor.set_state(job_id, last)
    for i in range(len(jobs)):
        await h.slack.wait_for(lambda i=i: any("succeeded" in r.text for r in h.replies(index=i)), timeout=30)
    injected = sum(sum(p.injected.values()) for p in plans)
    assert injected >= 40, injected
    kinds: dict[str, int] = {}
    for p in plans:
        for k, n in p.injected.items():
            kinds[k] = kinds.get(k, 0) + n
    print(
        f"\nfault injection: {injected} faults injected {dict(sorted(kinds.items()))}, 5/5 watches finished"
    )
    for i in range(len(jobs)):  # exactly one final reply each, whatever was injected
        assert len([r for r in h.replies(index=i) if "succeeded" in r.text]) == 1


async def test_slack_answering_429_to_a_share_of_calls_loses_no_message(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness
    # pacing is not under test; the 429s are
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 0.05)
    channels = [f"C00{n}" for n in range(10, 16)]
    for ch in channels:
        h.slack.add_channel(ch, f"ops-{ch}")
    jobs = [(700 + n, channels[n % len(channels)]) for n in range(12)]
    for job_id, ch in jobs:
        h.sim.fusion.add_job(job_id, steps=[Step(0, "ENQUEUED")])
        await h.watch(f"watch fusion-demo {job_id}", channel=ch)
    h.slack.fail_rate = 0.4
    h.slack.fail_kind = "ratelimited"
    h.slack.retry_after = 0
    h.slack.fail_methods = {"chat.postMessage", "chat.update"}

    def thread(job_id: int, ch: str) -> list[str]:
        parent = next(m for m in h.parents(ch) if f"job {job_id}" in m.text)
        return [r.text for r in h.slack.thread(ch, parent.ts)]

    for state, word in (("RUNNING", "running"), ("SUCCEEDED", "succeeded")):
        for job_id, _ in jobs:
            h.sim.fusion.set_state(job_id, state)
        for job_id, ch in jobs:
            await h.slack.wait_for(
                lambda j=job_id, c=ch, w=word: any(
                    t.startswith(f"fusion-demo job {j}: {w}") for t in thread(j, c)
                ),
                timeout=30,
            )
    failed = len(h.slack.failed_calls)
    assert failed > 5
    for job_id, ch in jobs:  # exactly one reply per state change: nothing lost, nothing twice
        texts = thread(job_id, ch)
        assert [t.split(": ")[1] for t in texts if "details" not in t] == ["running", "succeeded"], texts
    assert sum(len(h.parents(ch)) for ch in channels) == 12
    print(f"\nslack 429s: {failed} of {len(h.slack.calls) + failed} Web API calls answered 429; "
          "24 replies owed, 24 delivered once each")


async def test_an_archived_channel_ends_the_watch_without_retrying_forever(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h = harness
    h.sim.fusion.add_job(700, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 700", channel="C0002")
    h.slack.channels["C0002"].archived = True
    with caplog.at_level(logging.WARNING, logger="bot"):
        h.sim.fusion.set_state(700, "HOLD")  # a new phase: a thread reply is owed
        await h.slack.wait_for(lambda: any("is_archived" in r.message for r in caplog.records), poll=0.05)
    # the watch ended: the poller lets the job go at its next upkeep
    await h.slack.wait_for(lambda: all(j.job_id != "700" for j in h.runtime.poller._jobs.values()), poll=0.05)
    await asyncio.sleep(0.3)  # a poll already under way may still land; after that, silence is the claim
    tries = len([c for c in h.slack.calls if c.args.get("channel") == "C0002"])
    h.sim.fusion.set_state(700, "SUCCEEDED")
    polled = h.sim.fusion.count("GET", "/jobRequests/700")
    h.sim.fusion.add_job(701, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 701")
    await h.slack.wait_for(lambda: h.sim.fusion.count("GET", "/jobRequests/701") >= 5, poll=0.05)
    assert len([c for c in h.slack.calls if c.args.get("channel") == "C0002"]) == tries
    assert h.sim.fusion.count("GET", "/jobRequests/700") == polled  # the watch ended: no more polling


async def test_a_deleted_parent_is_posted_again_and_the_thread_goes_on(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(800, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 800")
    [old] = h.parents()
    h.slack.message("C0001", old.ts).deleted = True
    h.sim.fusion.set_state(800, "RUNNING", progress=75)  # the parent's edit meets message_not_found
    await h.slack.wait_for(lambda: len(h.parents()) == 1 and h.parents()[0].ts != old.ts)
    h.sim.fusion.set_state(800, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.replies()))


@pytest.mark.backends(**{"fusion-demo": {"channels": ["C0002"]}})
async def test_a_backend_limited_to_some_channels_says_which(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(900, steps=[Step(0, "RUNNING")])
    refused = await h.user.command("watch fusion-demo 900", channel_id="C0001")
    assert "may not be watched in this channel" in refused.ack_text and "<#C0002>" in refused.ack_text
    assert h.parents("C0001") == [] and h.sim.fusion.count() == 0
    await h.watch("watch fusion-demo 900", channel="C0002")
    assert len(h.parents("C0002")) == 1


@pytest.mark.backends(**{"fusion-demo": {"cancel": ["U0003"]}})
@pytest.mark.settings(admins=["U0009"])
async def test_cancel_rules_list_and_admins(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(950, steps=[Step(0, "RUNNING")])
    h.sim.fusion.add_job(951, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 950", user="U0001")
    watcher = await h.watch("cancel fusion-demo 950", user="U0001")
    assert "`cancel` setting" in watcher.responses()[-1].text
    listed = await h.watch("cancel fusion-demo 950", user="U0003")
    assert "Asked fusion-demo to cancel" in listed.responses()[-1].text
    admin = await h.watch("cancel fusion-demo 951", user="U0009")
    assert "Asked fusion-demo to cancel" in admin.responses()[-1].text
    assert h.sim.fusion.count("POST", "/cancel") == 2


async def test_button_payloads_that_do_not_match_a_watch_are_refused(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(1000, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 1000")
    [parent] = h.parents()
    msg = h.slack.message("C0001", parent.ts)
    for value in ("999999", "abc", "1; DROP TABLE", "", "1" * 40):
        payload = {
            "type": "block_actions", "user": {"id": "U0001", "username": "ana", "team_id": "T0001"},
            "api_app_id": "A0FAKE", "token": "x", "team": {"id": "T0001", "domain": "fake"},
            "container": {"type": "message", "message_ts": parent.ts, "channel_id": "C0001",
                          "is_ephemeral": False},
            "channel": {"id": "C0001", "name": "general"}, "message": {"ts": parent.ts, "text": msg.text},
            "response_url": h.slack.response_url("C0001", "U0001", parent.ts), "trigger_id": "1.2.3",
            "actions": [{"action_id": "jobstatus_stop", "block_id": "b", "value": value, "type": "button",
                         "action_ts": "1"}],
        }
        status, _ = await h.user.send_payload(payload)
        assert status == 200
    await h.slack.wait_for(lambda: len([p for p in h.slack.response_posts if "does not belong" in
                                        json.dumps(p.payload)]) == 5)
    assert buttons(h.slack.message("C0001", parent.ts)) == [
        "jobstatus_cancel",
        "jobstatus_refresh",
        "jobstatus_stop",
    ]
