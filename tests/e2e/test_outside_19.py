"""Issue 19 checked from outside (the review): the attacks of its "Why", varied as an attacker or an unlucky
operator would, through signed Slack requests, the HTTP API and the database, against the real Runtime. Each
test here asserts on what reached Slack, the vendor or the disk."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlmodel import col, select, update

from bot.domain.jobs import ButtonAction
from bot.offline.slack import SlackUser
from bot.offline.vendors.core import Step
from bot.operations.permissions import STATUS_BURST
from bot.store.models import Outbox
from tests.conftest import Harness, settings_for
from tests.e2e.test_socket_mode import SocketBot, bot, buttons  # noqa: F401  (the fixture)


def everything(h: Harness, channel: str) -> str:
    """All a channel shows: its messages' text and blocks, threads included, and its files' names."""
    msgs = h.slack.all_messages(channel)
    return json.dumps(
        [[m.text, m.blocks, [getattr(f, "name", str(f)) for f in (m.files or [])]] for m in msgs]
    )


def due_now(s: Any) -> None:
    s.execute(update(Outbox).values(next_attempt_at=0.0))


def kinds_owed(s: Any) -> list[str]:
    return [str(k) for k in s.execute(select(Outbox.kind).order_by(col(Outbox.id))).scalars()]


async def test_details_already_owed_are_not_posted_where_todays_config_no_longer_allows_them(
        harness: Harness) -> None:
    """A failure's details reply and its log were owed to #general (a details channel) while Slack was down;
    the operator then took #general out of `details` and restarted. What Slack gets afterwards is judged by
    today's config: the state, and no failure text, no log excerpt, no log file."""
    h = harness
    secret = "IBAN DE89370400440532013000 salary 5230.00"
    h.sim.epm_di.add_job(1991, name="PAYROLL_LOAD", steps=[Step(0, -1)], log_file="outbox/logs/P_1991.log",
                         log_text=f"INFO start\nERROR [AIF]: row 17: {secret}\nINFO end\n")
    await h.watch("watch epm-demo 1991", channel="C0001")
    await h.slack.wait_for(lambda: h.parents("C0001"), what="the parent")
    for method in ("chat.postMessage", "chat.update", "files.getUploadURLExternal"):
        h.slack.fail_next(method, "service_unavailable", times=10_000)  # Slack is down from now on
    h.sim.epm_di.set_state(1991, "1", details=f"Data load failed: {secret}")

    async def details_owed() -> bool:
        owed = await h.runtime.db.run(kinds_owed)
        return "file" in owed and "reply" in owed

    await h.slack.wait_for(details_owed, poll=0.1, what="the details reply and the log waiting in the outbox")
    await h.runtime.stop()
    h.slack.clear_faults()  # Slack is back
    h.settings = settings_for(h.sim, **{"epm-demo": {"details": []}})
    await h.restart()
    await h.slack.wait_for(
        lambda: any("failed" in r.text for r in h.replies("C0001")), what="the failure reply"
    )

    async def nothing_owed() -> bool:
        return not await h.runtime.db.run(kinds_owed)

    await h.slack.wait_for(nothing_owed, poll=0.1, what="the outbox emptied")
    seen = everything(h, "C0001")
    assert secret not in seen and "Data load failed" not in seen and ".log" not in seen, seen
    assert not any(m.files for m in h.slack.all_messages("C0001"))


# -- the same checks over Socket Mode (no signatures there; the rules are the app's, not the front door's) ---

async def test_over_socket_mode_a_non_owner_cannot_cancel_and_the_modal_refuses_a_channel_one_is_not_in(
        bot: SocketBot) -> None:  # noqa: F811
    bot.sim.fusion.add_job(7101, name="Payroll Load", steps=[Step(0, "RUNNING")])
    await bot.watch("watch fusion-demo 7101")  # U0001 owns the job
    [parent] = bot.parents()
    await bot.slack.wait_for(lambda: "jobstatus_cancel" in buttons(bot.slack.message("C0001", parent.ts)))
    ben = SlackUser.over_socket(bot.slack)
    # ben watches it in a channel of his own (item 1's bypass), then cancels by command and by the button
    own = await ben.command("watch fusion-demo 7101", channel_id="C0002", user_id="U0002")
    await own.wait_responses(2)
    typed = await ben.command("cancel fusion-demo 7101", channel_id="C0002", user_id="U0002")
    answer = str(typed.ack_text) if typed.ack_text else str((await typed.wait_responses(2))[-1].text)
    click = await bot.user.click("C0001", parent.ts, "jobstatus_cancel", user_id="U0002")
    assert click is not None and click.ok
    [clicked] = await click.wait_responses(1)
    assert answer.startswith("Only <@U0001>, who first watched it"), answer
    assert clicked.payload["text"] == answer
    assert bot.sim.fusion.count("POST", "/cancel") == 0
    assert not any("Cancel requested" in r.text for r in bot.replies("C0001"))

    # the modal, over the socket, into a public channel ben is not a member of
    bot.slack.add_channel("C0300", "payroll-scratch", members=["U0001"])
    bot.sim.fusion.add_job(7102, steps=[Step(0, "RUNNING")])
    await ben.shortcut("jobstatus_watch_global", viewing="C0002", user_id="U0002")
    await bot.slack.wait_for(lambda: bot.slack.modals("U0002"))
    [modal] = bot.slack.modals("U0002")
    result = await ben.submit(modal.id, {"backend": "fusion-demo", "job_id": "7102", "channel": "C0300"},
                              user_id="U0002")
    assert result.body is not None and result.body["response_action"] == "errors", result
    assert result.body["errors"]["channel"].startswith("You are not a member of that channel")
    assert bot.parents("C0300") == [] and bot.sim.fusion.count("GET", "/jobRequests/7102") == 0


# -- item 5 as Slack really caches it: a person removed from a private channel, the tab opened at once -------

async def test_the_home_tab_opened_right_after_leaving_a_private_channel_no_longer_shows_nor_stops_its_job(
        harness: Harness) -> None:
    """The README: the Home tab lists and stops only watches in channels the person is still in, "at each
    publish and each click". Without shortening the bot's membership cache (as an outside checker cannot): a
    person is removed, opens the tab at once, and clicks the Stop of the tab they still had open."""
    h = harness
    h.slack.add_channel("G0410", "hr-payroll", private=True, members=["U0001", "U0002"])
    h.sim.fusion.add_job(9711, name="Payroll Export", steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 9711", channel="G0410")
    await h.user.open_home("U0001")
    await h.slack.wait_for(lambda: "Payroll Export" in json.dumps(h.slack.home_of("U0001") or {}))
    [stop] = [b["accessory"] for b in h.slack.home_of("U0001")["blocks"]  # type: ignore[index]
              if b.get("accessory", {}).get("action_id") == ButtonAction.STOP]
    h.slack.channels["G0410"].members.discard("U0001")  # removed from the private channel
    publishes = len(h.slack.calls_of("views.publish"))
    await h.user.open_home("U0001")
    await h.slack.wait_for(lambda: len(h.slack.calls_of("views.publish")) > publishes)
    assert "Payroll Export" not in json.dumps(h.slack.home_of("U0001") or {})
    stale = {"type": "block_actions", "user": {"id": "U0001"}, "container": {"type": "view", "view_id": "V1"},
             "view": {"type": "home"}, "trigger_id": h.slack.new_trigger("U0001"),
             "actions": [{"action_id": ButtonAction.STOP, "value": stop["value"], "type": "button"}]}
    assert (await h.user.send_payload(stale))[0] == 200
    await h.slack.wait_for(
        lambda: "does not belong to a watch of yours" in json.dumps(h.slack.home_of("U0001"))
    )
    assert not any("Stopped watching" in r.text for r in h.replies("G0410"))


async def test_the_modal_refuses_a_channel_the_person_left_a_moment_ago(harness: Harness) -> None:
    h = harness
    h.slack.add_channel("C0310", "payroll-ops", members=["U0001", "U0002"])
    h.sim.fusion.add_job(9611, steps=[Step(0, "RUNNING")])
    await h.user.shortcut("jobstatus_watch_global", viewing="C0001")
    await h.slack.wait_for(lambda: h.slack.modals("U0001"))
    [modal] = h.slack.modals("U0001")
    ok = await h.user.submit(modal.id, {"backend": "fusion-demo", "job_id": "9611", "channel": "C0310"})
    assert ok.status == 200 and (ok.body or {}).get("response_action") is None, ok.body
    await h.slack.wait_for(lambda: h.parents("C0310"), what="the watch while she is a member")
    h.slack.channels["C0310"].members.discard("U0001")  # she leaves the channel
    await h.user.shortcut("jobstatus_watch_global", viewing="C0001")
    await h.slack.wait_for(
        lambda: len(h.slack.modals("U0001")) >= 1 and h.slack.modals("U0001")[-1].id != modal.id
    )
    again = h.slack.modals("U0001")[-1]
    h.sim.fusion.add_job(9612, steps=[Step(0, "RUNNING")])
    result = await h.user.submit(again.id, {"backend": "fusion-demo", "job_id": "9612", "channel": "C0310"})
    assert result.body is not None and result.body.get("response_action") == "errors", result.body
    assert result.body["errors"]["channel"].startswith("You are not a member of that channel")
    assert len(h.parents("C0310")) == 1


# -- today's rules for old messages: Rewatch once a backend has `users`, a group whose members changed ------

async def test_rewatch_and_buttons_follow_users_added_later_and_a_groups_membership(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(9801, name="Payroll Load", steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 9801", channel="C0001", user="U0001")
    [parent] = h.parents("C0001")
    await h.slack.wait_for(lambda: "jobstatus_stop" in buttons(h.slack.message("C0001", parent.ts)))
    answer = await h.user.click("C0001", parent.ts, ButtonAction.STOP, user_id="U0001")
    assert answer is not None
    await h.slack.wait_for(lambda: buttons(h.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"])
    # the operator restricts the backend to a user group ana is not in
    h.slack.add_usergroup("S0PAY", "payroll", users=["U0002"])
    h.settings = settings_for(h.sim, **{"fusion-demo": {"users": ["S0PAY"]}})
    await h.restart()
    polled = h.sim.fusion.count("GET", "/jobRequests/9801")
    click = await h.user.click("C0001", parent.ts, ButtonAction.REWATCH, user_id="U0001")
    assert click is not None and click.status == 200
    await click.wait_responses(1)
    refused = str(click.responses()[-1].text)
    assert refused.startswith("You may not use backend `fusion-demo`: its `users` setting"), refused
    assert buttons(h.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"]
    assert h.sim.fusion.count("GET", "/jobRequests/9801") == polled
    # ben is in the group: he may; then he leaves the group and the operator's cache limit is the README's
    click = await h.user.click("C0001", parent.ts, ButtonAction.REWATCH, user_id="U0002")
    assert click is not None
    await h.slack.wait_for(lambda: "jobstatus_stop" in buttons(h.slack.message("C0001", parent.ts)),
                           what="ben's Rewatch")
    h.slack.usergroups["S0PAY"].users.clear()
    h.runtime.permissions.group_ttl = 0.0  # the README's 5 minutes, passed
    text = str((await h.watch("status fusion-demo 9801", channel="C0001", user="U0002")).responses()[-1].text)
    assert text.startswith("You may not use backend `fusion-demo`"), text


# -- item 4's watch of a token, seen through `/jobstatus list` ---------------------------------------------

API_TOKEN = "ci-review-0123456789abcdef0123456789ab"


@pytest.mark.settings(api={"tokens": {"ci-review": {"token": API_TOKEN, "users": ["U0002"]}}})
async def test_list_names_a_tokens_watch_as_the_token_and_its_mentioned_user_not_as_a_person(
        harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(9901, name="Nightly GL", steps=[Step(0, "RUNNING")])
    url = h.runtime.events_url.replace("/slack/events", "/api/v1/watches")
    body = {"backend": "fusion-demo", "job_id": "9901", "channel": "C0001", "user": "U0002"}
    async with aiohttp.ClientSession() as session, session.post(
            url, json=body, headers={"Authorization": f"Bearer {API_TOKEN}"}) as resp:
        assert resp.status == 201, await resp.text()
    listed = await h.user.command("list", channel_id="C0001", user_id="U0001")
    text = str(listed.ack_text) if listed.ack_text else str((await listed.wait_responses(1))[-1].text)
    assert "`9901` · Nightly GL" in text, text
    assert "<@api:" not in text and "(by `ci-review` (API) for <@U0002>)" in text, text


# -- item 8 by another way in: `/jobstatus backends` named every backend and its private channels ------------

@pytest.mark.backends(**{"epm-demo": {"users": ["S0PAY"], "channels": ["G0PAYROLL"]},
                         "planning-demo": {"users": ["U0002"]}})
async def test_backends_lists_only_the_backends_the_person_may_use(harness: Harness) -> None:
    h = harness
    h.slack.add_usergroup("S0PAY", "payroll", users=["U0002"])
    answers = {}
    for user in ("U0001", "U0002"):
        result = await h.user.command("backends", channel_id="C0001", user_id=user)
        assert result.status == 200
        answers[user] = (
            str(result.ack_text) if result.ack_text else str((await result.wait_responses(1))[-1].text)
        )
    assert "fusion-demo" in answers["U0001"] and "epm-demo" not in answers["U0001"], answers["U0001"]
    assert "planning-demo" not in answers["U0001"] and "G0PAYROLL" not in answers["U0001"]
    assert (
        "epm-demo" in answers["U0002"]
        and "G0PAYROLL" in answers["U0002"]
        and "planning-demo" in answers["U0002"]
    )


@pytest.mark.backends(**{"epm-demo": {"users": ["S0PAY"], "channels": ["G0PAYROLL"]}})
async def test_a_mistyped_backend_is_never_answered_with_the_name_of_a_restricted_one(
    harness: Harness,
) -> None:
    h = harness
    result = await h.user.command("watch epm-dem 1891", channel_id="C0001", user_id="U0001")
    said = str(result.ack_text)
    assert said.startswith("There is no backend called `epm-dem`."), said
    assert "epm-demo" not in said and "fusion-demo" in said and "/jobstatus backends" in said


@pytest.mark.backends(**{"epm-demo": {"users": ["S0PAY"], "channels": ["G0PAYROLL"]}})
async def test_someone_outside_a_backends_users_is_told_so_not_the_private_channels_it_may_be_used_in(
        harness: Harness) -> None:
    h = harness
    h.slack.add_usergroup("S0PAY", "payroll", users=["U0002"])
    said = []
    for verb in ("watch", "status", "cancel", "unwatch"):
        result = await h.user.command(f"{verb} epm-demo 1891", channel_id="C0001", user_id="U0001")
        said.append(
            str(result.ack_text) if result.ack_text else str((await result.wait_responses(2))[-1].text)
        )
    for text in said:
        assert "G0PAYROLL" not in text, said
        assert text.startswith("You may not use backend `epm-demo`: its `users` setting"), said
    assert h.sim.epm_di.requests == [] or all("1891" not in r.path for r in h.sim.epm_di.requests)


@pytest.mark.backends(**{"epm-demo": {"users": ["S0PAY"]}})
async def test_the_modal_offers_only_the_backends_the_person_may_use(harness: Harness) -> None:
    h = harness
    h.slack.add_usergroup("S0PAY", "payroll", users=["U0002"])
    for user in ("U0001", "U0002"):
        await h.user.shortcut("jobstatus_watch_global", viewing="C0001", user_id=user)
        await h.slack.wait_for(lambda user=user: h.slack.modals(user))
    ana, ben = (json.dumps(h.slack.modals(u)[-1].view) for u in ("U0001", "U0002"))
    assert "fusion-demo" in ana and "epm-demo" not in ana
    assert "fusion-demo" in ben and "epm-demo" in ben


@pytest.mark.backends(**{"epm-demo": {"users": ["S0PAY"]}})
async def test_the_home_tabs_backend_health_names_only_the_backends_the_person_may_use(
    harness: Harness,
) -> None:
    h = harness
    h.slack.add_usergroup("S0PAY", "payroll", users=["U0002"])
    for user in ("U0001", "U0002"):
        await h.user.open_home(user)
        await h.slack.wait_for(lambda user=user: h.slack.home_of(user), what=f"{user}'s tab")
    ana, ben = (json.dumps(h.slack.home_of(u)) for u in ("U0001", "U0002"))
    assert "fusion-demo" in ana and "epm-demo" not in ana
    assert "fusion-demo" in ben and "epm-demo" in ben


# -- item 2 by another way in: `/jobstatus watch` as an id oracle --------------------------------------------

async def test_ids_cannot_be_probed_through_watch_faster_than_through_status(harness: Harness) -> None:
    """`status` answers 10 a minute per person; `watch` of an id the vendor does not know told the same thing
    (has no job) without any limit. Its misses now have an allowance as large; watches of real jobs cost
    none."""
    h = harness
    h.sim.fusion.add_job(9951, steps=[Step(0, "RUNNING")])
    answers = [str((await h.watch(f"watch fusion-demo {90000 + i}", user="U0005")).responses()[-1].text)
               for i in range(STATUS_BURST + 1)]
    assert all(a.startswith("fusion-demo has no job") for a in answers[:STATUS_BURST]), answers
    assert answers[-1].startswith("You asked about 10 job ids a minute that do not exist"), answers[-1]
    assert h.sim.fusion.count("GET", f"/jobRequests/{90000 + STATUS_BURST}") == 0  # the vendor was not asked
    # status has its own allowance: using it up does not keep a person from watching a real job
    for i in range(STATUS_BURST):
        await h.watch(f"status fusion-demo {91000 + i}", user="U0007")
    refused = str((await h.watch("status fusion-demo 9951", user="U0007")).responses()[-1].text)
    assert refused.startswith("You asked for"), refused
    ok = str((await h.watch("watch fusion-demo 9951", user="U0007")).responses()[-1].text)
    assert ok.startswith("Watching fusion-demo job `9951`"), ok
    # another person is not held back
    other = str((await h.watch("watch fusion-demo 90000", user="U0006")).responses()[-1].text)
    assert other.startswith("fusion-demo has no job"), other


async def test_what_was_owed_to_a_channel_taken_out_of_channels_is_not_posted_there_after_the_restart(
        harness: Harness) -> None:
    """Item 3 with Slack down meanwhile: the failure (its reply, details and log) was owed to a channel when
    the operator took it out of the backend's `channels`. After the restart nothing of the job reaches that
    channel any more: not the failure reply, its details or its log owed under yesterday's rules."""
    h = harness
    secret = "IBAN DE89370400440532013000"
    h.settings = settings_for(h.sim, **{"epm-demo": {"channels": ["C0001", "C0002"], "details": "anywhere"}})
    await h.restart()
    h.sim.epm_di.add_job(1992, name="PAYROLL_LOAD", steps=[Step(0, -1)], log_file="outbox/logs/P_1992.log",
                         log_text=f"ERROR [AIF]: row 17: {secret}\n")
    await h.watch("watch epm-demo 1992", channel="C0002")
    await h.slack.wait_for(lambda: h.parents("C0002"), what="the parent")
    for method in ("chat.postMessage", "chat.update", "files.getUploadURLExternal"):
        h.slack.fail_next(method, "service_unavailable", times=10_000)
    h.sim.epm_di.set_state(1992, "1", details=f"Data load failed: {secret}")

    async def failure_owed() -> bool:
        return "file" in await h.runtime.db.run(kinds_owed)

    await h.slack.wait_for(failure_owed, poll=0.1, what="the failure owed")
    await h.runtime.stop()
    # Slack is back: what is owed is due (not after the outage's backoff)
    engine = create_engine(h.env.database_url)
    with Session(engine) as s, s.begin():
        due_now(s)
    engine.dispose()
    h.slack.clear_faults()
    h.settings = settings_for(h.sim, **{"epm-demo": {"channels": ["C0001"], "details": "anywhere"}})
    await h.restart()

    async def nothing_owed() -> bool:
        return not await h.runtime.db.run(kinds_owed)

    await h.slack.wait_for(nothing_owed, poll=0.1, what="the outbox emptied")
    seen = everything(h, "C0002")
    assert secret not in seen and "Data load failed" not in seen and "P_1992" not in seen, seen
    assert h.replies("C0002") == [] and not any(m.files for m in h.slack.all_messages("C0002"))
