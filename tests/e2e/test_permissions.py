"""Issue 19 ("Who may see and do what"), items 1, 2, 3 and 5, end to end: signed requests to the real Bolt app
(slash commands, button clicks, the modal, the Home tab) against the fake Slack and the vendor simulators,
asserting on what reached Slack and the vendor. Each failed on the main branch before
bot/operations/permissions.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.domain.jobs import ButtonAction
from bot.offline.vendors.core import Step
from bot.operations.permissions import STATUS_BURST
from tests.conftest import Harness, settings_for


def texts(blocks: Any) -> str:
    return json.dumps(blocks or [])


def buttons(msg: Any) -> list[str]:
    return [e["action_id"] for b in msg.blocks if b.get("type") == "actions" for e in b["elements"]]


async def said(h: Harness, text: str, channel: str = "C0001", user: str = "U0001") -> str:
    """The final answer to a `/jobstatus …` (after its "Checking …" line)."""
    return str((await h.watch(text, channel=channel, user=user)).responses()[-1].text)


async def clicked(h: Harness, channel: str, ts: str, action: str, user: str) -> str:
    click = await h.user.click(channel, ts, action, user_id=user)
    assert click is not None and click.status == 200, click
    await click.wait_responses(1)
    return str(click.responses()[-1].text)


# -- item 1: watching the job in a channel of one's own gives no right to cancel it -------------------------

async def test_item1_a_watch_of_ones_own_elsewhere_gives_no_right_to_cancel(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(9301, name="Payroll Load", steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 9301", channel="C0001", user="U0001")  # ana: the job's owner
    # ben watches it in a channel of his own: a watcher there, and still no right (the bypass of item 1)
    await h.watch("watch fusion-demo 9301", channel="C0002", user="U0002")
    refused = await said(h, "cancel fusion-demo 9301", channel="C0002", user="U0002")
    [his] = h.parents("C0002")
    refused_click = await clicked(h, "C0002", his.ts, ButtonAction.CANCEL, "U0002")
    assert h.sim.fusion.count("POST", "/cancel") == 0  # the vendor was not asked
    assert refused.startswith(
        "Only <@U0001>, who first watched it (the `cancel: owner` rule of `fusion-demo`)"
    )
    assert refused_click == refused
    assert (await said(h, "cancel fusion-demo 9301", channel="C0001", user="U0002")) == refused
    assert not any("Cancel requested" in r.text for r in h.replies("C0001") + h.replies("C0002"))
    # the owner may, from any channel where the backend may be used
    assert (await said(h, "cancel fusion-demo 9301", channel="C0002", user="U0001")).startswith(
        "Asked fusion-demo to cancel job `9301`.")
    assert h.sim.fusion.count("POST", "/cancel") == 1
    await h.slack.wait_for(lambda: any("Cancel requested by <@U0001>" in r.text for r in h.replies("C0001")))


# -- item 2: details go to the details channels only; status is limited and says nothing of hidden ids -------

async def test_item2_a_failure_outside_the_details_channels_shows_the_state_and_where_details_are(
        harness: Harness) -> None:
    h = harness
    secret = "IBAN DE89370400440532013000 salary 5230.00"
    h.sim.epm_di.add_job(
        1891,
        name="PAYROLL_LOAD",
        steps=[Step(0, -1)],
        log_file="outbox/logs/PAYROLL_1891.log",
        log_text=f"INFO start\nERROR [AIF]: row 17: {secret}\nINFO end\n",
    )
    await h.watch("watch epm-demo 1891", channel="C0001")  # #general: the demo's details channel
    await h.watch("watch epm-demo 1891", channel="C0002", user="U0002")  # a scratch channel of ben's choosing
    h.sim.epm_di.set_state(1891, "1", details=f"Data load failed: {secret}")
    # the details channel gets all of it: the failure text, the log excerpt, the log file
    await h.slack.wait_for(lambda: any(r.files for r in h.replies("C0001")), what="the log in #general")
    assert any(secret in texts(r.blocks) for r in h.replies("C0001"))
    # the other one: the state, and where the details are; no failure text, no log, no file, no path
    await h.slack.wait_for(lambda: any("failed" in r.text for r in h.replies("C0002")), what="the failure")
    await h.slack.wait_for(
        lambda: "jobstatus_rewatch" in buttons(h.slack.message("C0002", h.parents("C0002")[0].ts))
    )
    everything = texts([m.blocks for m in h.slack.all_messages("C0002")]) + "".join(
        m.text for m in h.slack.all_messages("C0002"))
    assert (
        secret not in everything
        and "PAYROLL_1891.log" not in everything
        and "Data load failed" not in everything
    )
    assert "Details are posted in <#C0001>." in everything
    assert not any(r.files for r in h.replies("C0002"))
    # and `status` there says the state only
    answer = (await h.watch("status epm-demo 1891", channel="C0002", user="U0002")).responses()[-1]
    assert "failed" in answer.text and secret not in texts(answer.payload.get("blocks"))
    assert "Details are posted in <#C0001>." in texts(answer.payload.get("blocks"))


async def test_item2_status_is_limited_per_person_and_says_when_to_try_again(harness: Harness) -> None:
    h = harness
    for n in range(STATUS_BURST + 1):
        h.sim.fusion.add_job(9400 + n, steps=[Step(0, "RUNNING")])
    for n in range(STATUS_BURST):
        assert "running" in await said(h, f"status fusion-demo {9400 + n}", user="U0002")
    refused = await said(h, f"status fusion-demo {9400 + STATUS_BURST}", user="U0002")
    assert refused.startswith("You asked for 10 statuses a minute already (at most 5 at once). Try again in ")
    assert h.sim.fusion.count("GET", f"/jobRequests/{9400 + STATUS_BURST}") == 0  # the vendor was not asked
    assert "running" in await said(h, f"status fusion-demo {9400 + STATUS_BURST}", user="U0001")  # ana's own


# -- item 3: a channel taken out of `channels` reaches the watches already in it ---------------------------

@pytest.mark.backends(**{"fusion-demo": {"channels": ["C0001", "C0002"]}})
async def test_item3_a_channel_taken_out_ends_its_watches_once_and_its_buttons_refuse(
    harness: Harness,
) -> None:
    h = harness
    h.sim.fusion.add_job(9501, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 9501", channel="C0002")
    [parent] = h.parents("C0002")
    stale = {a: h.user.button("C0002", parent.ts, a) for a in (ButtonAction.CANCEL, ButtonAction.REFRESH)}
    h.settings = settings_for(h.sim, **{"fusion-demo": {"channels": ["C0001"]}})
    await h.restart()
    note = "Stopped watching: this channel is no longer among the channels its backend may be used in"
    await h.slack.wait_for(lambda: any(note in r.text for r in h.replies("C0002")), what="the note")
    await h.slack.wait_for(lambda: buttons(h.slack.message("C0002", parent.ts)) == ["jobstatus_rewatch"])
    polled = h.sim.fusion.count("GET", "/jobRequests/9501")
    # the old message's buttons, clicked from a client that still shows them, are checked against today's
    # rules
    for action, button in stale.items():
        url = h.slack.response_url("C0002", "U0001", parent.ts)
        payload = {"type": "block_actions", "user": {"id": "U0001", "team_id": h.slack.team_id},
                   "team": {"id": h.slack.team_id}, "api_app_id": h.slack.app_id,
                   "container": {"type": "message", "message_ts": parent.ts, "channel_id": "C0002"},
                   "channel": {"id": "C0002"}, "trigger_id": h.slack.new_trigger("U0001"),
                   "response_url": url,
                   "actions": [{"action_id": action, "value": button["value"], "type": "button"}]}
        status, _ = await h.user.send_payload(payload)
        assert status == 200
        rid = h.slack.response_url_id(url)
        await h.slack.wait_for(lambda rid=rid: h.slack.responses(rid), what=f"the answer to {action}")
        assert "may not be used in this channel" in h.slack.responses(rid)[-1].payload["text"]
    assert (await clicked(h, "C0002", parent.ts, ButtonAction.REWATCH, "U0001")).startswith(
        "Backend `fusion-demo` may not be used in this channel")
    assert h.sim.fusion.count("POST", "/cancel") == 0
    assert h.sim.fusion.count("GET", "/jobRequests/9501") == polled  # Refresh did not poll
    await h.restart()  # once: a second start finds nothing left to end
    await h.watch("watch fusion-demo 9501", channel="C0001")  # the bot is up and serving
    assert sum(note in r.text for r in h.replies("C0002")) == 1


# -- item 5: the modal and the Home tab follow channel membership ------------------------------------------

async def test_item5_the_modal_refuses_a_channel_the_person_is_not_in(harness: Harness) -> None:
    h = harness
    h.slack.add_channel("C0300", "payroll-scratch", members=["U0002"])  # public; ana is not in it
    h.sim.fusion.add_job(9601, steps=[Step(0, "RUNNING")])
    await h.user.shortcut("jobstatus_watch_global", viewing="C0001")
    await h.slack.wait_for(lambda: h.slack.modals("U0001"))
    [modal] = h.slack.modals("U0001")
    result = await h.user.submit(modal.id, {"backend": "fusion-demo", "job_id": "9601", "channel": "C0300"})
    assert result.body is not None and result.body["response_action"] == "errors" and result.refused is None
    assert result.body["errors"]["channel"].startswith("You are not a member of that channel")
    assert h.parents("C0300") == [] and h.sim.fusion.count("GET", "/jobRequests/9601") == 0
    ok = await h.user.submit(modal.id, {"backend": "fusion-demo", "job_id": "9601", "channel": "C0002"})
    assert ok.status == 200 and (ok.body or {}).get("response_action") is None
    await h.slack.wait_for(lambda: h.parents("C0002"), what="the watch in a channel she is in")


async def test_item5_the_home_tab_forgets_a_private_channel_the_person_left(harness: Harness) -> None:
    h = harness
    h.runtime.permissions.members_ttl = 0.0  # ask Slack every time: the removal below counts at once
    h.slack.add_channel("G0400", "hr-payroll", private=True, members=["U0001", "U0002"])
    h.sim.fusion.add_job(9701, name="Payroll Export", steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 9701", channel="G0400")
    await h.user.open_home("U0001")
    await h.slack.wait_for(lambda: "Payroll Export" in json.dumps(h.slack.home_of("U0001") or {}))
    [stop] = [b["accessory"] for b in h.slack.home_of("U0001")["blocks"]  # type: ignore[index]
              if b.get("accessory", {}).get("action_id") == ButtonAction.STOP]
    h.slack.channels["G0400"].members.discard("U0001")  # ana is removed from the private channel
    publishes = len(h.slack.calls_of("views.publish"))
    await h.user.open_home("U0001")
    await h.slack.wait_for(lambda: len(h.slack.calls_of("views.publish")) > publishes)
    assert "Payroll Export" not in json.dumps(h.slack.home_of("U0001") or {})
    stale = {"type": "block_actions", "user": {"id": "U0001"}, "container": {"type": "view", "view_id": "V1"},
             "view": {"type": "home"}, "trigger_id": h.slack.new_trigger("U0001"),
             "actions": [{"action_id": ButtonAction.STOP, "value": stop["value"], "type": "button"}]}
    status, _ = await h.user.send_payload(stale)  # the Stop button of a tab she still had open
    assert status == 200
    await h.slack.wait_for(
        lambda: "does not belong to a watch of yours" in json.dumps(h.slack.home_of("U0001"))
    )
    assert not any("Stopped watching" in r.text for r in h.replies("G0400"))
    assert buttons(h.slack.message("G0400", h.parents("G0400")[0].ts)) != ["jobstatus_rewatch"]
