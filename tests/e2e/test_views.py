"""End to end: the Home tab (app_home_opened → views.publish, refreshed on changes, Stop on it), the two
"Watch a job" shortcuts (→ views.open) and the modal's submission, through the fake Slack."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from bot.domain.jobs import ButtonAction
from bot.offline.vendors.core import Step
from bot.rendering import views
from tests.conftest import Harness


def publishes(h: Harness, user: str = "U0001") -> list[dict[str, Any]]:
    return [c.args for c in h.slack.calls_of("views.publish") if c.ok and c.args.get("user_id") == user]


def home_text(h: Harness, user: str = "U0001") -> str:
    return json.dumps(h.slack.home_of(user) or {})


async def test_opening_home_publishes_the_users_watches_and_backend_health(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(44046, name="ExtractMostLabels", steps=[Step(0, "RUNNING")])
    h.sim.epm_di.add_job(1881, steps=[Step(0, -1)])
    await h.watch("watch fusion-demo 44046")
    await h.watch("watch epm-demo 1881", channel="C0002")
    await h.watch("watch epm-demo 1881", user="U0002")  # someone else's watch: not on ana's tab
    result = await h.user.open_home("U0001")
    assert result.status == 200, result.text
    await h.slack.wait_for(lambda: publishes(h), what="views.publish for U0001")
    home = h.slack.home_of("U0001")
    assert home is not None and home["type"] == "home"
    text = home_text(h)
    assert "44046" in text and "ExtractMostLabels" in text and "<#C0001>" in text
    assert "1881" in text and "<#C0002>" in text and "|thread>" in text
    stops = [b["accessory"]["value"] for b in home["blocks"] if b.get("accessory", {}).get("action_id")
             == ButtonAction.STOP]
    assert len(stops) == 2  # ana's two watches, each with the same Stop action as the message's button
    assert "fusion-demo" in text and "answering" in text  # the backends' health


async def test_the_messages_tab_publishes_nothing(harness: Harness) -> None:
    h = harness
    result = await h.user.open_home("U0001", tab="messages")
    assert result.status == 200
    await h.user.open_home("U0002")
    await h.slack.wait_for(lambda: publishes(h, "U0002"))
    assert publishes(h, "U0001") == []


async def test_a_change_refreshes_the_home_tab_once_within_the_window(harness: Harness) -> None:
    h = harness
    throttle = h.runtime.home.throttle
    gap = throttle.gap = 2.0
    started: list[float] = []  # when each refresh began (the throttle's window), before its render and send
    publish = throttle.action

    async def timed(user: str) -> None:
        started.append(asyncio.get_running_loop().time())
        await publish(user)

    throttle.action = timed
    h.sim.fusion.add_job(44047, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 44047")
    await h.user.open_home("U0001")
    await h.slack.wait_for(lambda: len(publishes(h)) == 1)
    h.sim.fusion.set_state(44047, "ERROR")  # a state change: a reply and an update of the parent, two sends
    await h.slack.wait_for(lambda: "failed" in home_text(h).lower(), timeout=15,
                           what="the Home tab refreshed with the failure")
    await h.slack.wait_for(lambda: not h.runtime.home.throttle._due and not h.runtime.home._tasks, timeout=10)
    # the change's messages came within a window or two: refreshed once a window, not once a message
    times = [c.at for c in h.slack.calls_of("views.publish") if c.ok]
    sends = [c for c in h.slack.calls if c.method in ("chat.postMessage", "chat.update") and c.at > times[0]]
    assert len(times) - 1 <= len(sends)
    # spaced by the window where it is kept: at the refreshes' starts (when each reaches the fake Slack also
    # depends on its render, and the first one's asks Slack for a permalink the later ones have cached)
    assert len(started) == len(times)
    assert all(b - a >= gap - 0.01 for a, b in zip(started, started[1:], strict=False)), started


async def test_stop_on_the_home_tab_stops_the_watch_and_says_so_on_the_tab(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(44048, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 44048")
    await h.user.open_home("U0001")
    await h.slack.wait_for(lambda: publishes(h))
    [stop] = [b["accessory"] for b in h.slack.home_of("U0001")["blocks"]  # type: ignore[index]
              if b.get("accessory", {}).get("action_id") == ButtonAction.STOP]
    await h.user.open_home("U0002")
    await h.slack.wait_for(lambda: publishes(h, "U0002"))
    forged = {
        "type": "block_actions",
        "user": {"id": "U0002"},
        "container": {"type": "view", "view_id": "V1"},
        "view": {"type": "home"},
        "trigger_id": h.slack.new_trigger("U0002"),
        "actions": [{"action_id": ButtonAction.STOP, "value": stop["value"], "type": "button"}],
    }
    status, _ = await h.user.send_payload(forged)  # ana's watch, from ben's tab: refused, nothing stops
    assert status == 200
    await h.slack.wait_for(lambda: "does not belong to a watch of yours" in home_text(h, "U0002"))
    assert all("Stopped" not in r.text for r in h.replies())
    result = await h.user.click_home(ButtonAction.STOP, stop["value"])
    assert result.status == 200, result.text
    await h.slack.wait_for(lambda: "Stopped watching" in home_text(h), what="the tab says the watch stopped")
    await h.slack.wait_for(lambda: any("Stopped watching (by <@U0001>)" in r.text for r in h.replies()))


async def test_global_shortcut_opens_the_modal(harness: Harness) -> None:
    h = harness
    result = await h.user.shortcut(views.GLOBAL_SHORTCUT, viewing="C0002")
    assert result.status == 200, result.text
    await h.slack.wait_for(lambda: h.slack.modals("U0001"), what="views.open")
    [modal] = h.slack.modals("U0001")
    blocks = {b.get("block_id"): b for b in modal.view["blocks"]}
    assert modal.view["title"]["text"] == "Watch a job"
    assert {o["value"] for o in blocks["backend"]["element"]["options"]} == set(h.runtime.backends)
    assert blocks["channel"]["element"]["default_to_current_conversation"] is True
    assert blocks["job_id"]["element"]["type"] == "plain_text_input"


@pytest.mark.backends(**{"fusion-demo": {"channels": ["C0002"]}})
async def test_message_shortcut_proposes_the_job_id_and_the_channels_backends(harness: Harness) -> None:
    h = harness
    msg = h.slack.post_user_message("C0001", "ESS request 44046 failed again, can someone look?")
    result = await h.user.message_shortcut(views.MESSAGE_SHORTCUT, "C0001", msg.ts)
    assert result.status == 200, result.text
    await h.slack.wait_for(lambda: h.slack.modals("U0001"))
    [modal] = h.slack.modals("U0001")
    blocks = {b.get("block_id"): b for b in modal.view["blocks"]}
    assert blocks["job_id"]["element"]["initial_value"] == "44046"
    assert blocks["channel"]["element"]["initial_conversation"] == "C0001"
    offered = {o["value"] for o in blocks["backend"]["element"]["options"]}
    assert "fusion-demo" not in offered and "epm-demo" in offered  # fusion-demo may be used in C0002 only


@pytest.mark.backends(**{"fusion-demo": {"channels": ["C0002"]}})
async def test_submission_errors_show_on_the_fields_in_the_slash_commands_words(harness: Harness) -> None:
    h = harness
    await h.user.shortcut(views.GLOBAL_SHORTCUT, viewing="C0001")
    await h.slack.wait_for(lambda: h.slack.modals("U0001"))
    [modal] = h.slack.modals("U0001")
    result = await h.user.submit(modal.id, {"backend": "fusion-demo", "job_id": "44046"})
    assert result.body is not None and result.body["response_action"] == "errors"
    # each error on an input block of the modal, as Slack shows them
    assert result.refused is None, result.refused
    said = (await h.user.command("watch fusion-demo 44046")).ack_text
    assert "may not be watched in this channel" in result.body["errors"]["backend"]
    assert result.body["errors"]["backend"] == views.plain(said)
    result = await h.user.submit(modal.id, {"backend": "epm-demo", "job_id": "12ab"})
    assert result.body is not None and set(result.body["errors"]) == {"job_id"} and result.refused is None
    assert "is not" in result.body["errors"]["job_id"] and "`" not in result.body["errors"]["job_id"]
    assert h.slack.modals("U0001"), "a refused submission leaves the modal open"
    assert h.parents("C0001") == []


async def test_a_direct_message_as_the_channel_is_refused_on_its_field(harness: Harness) -> None:
    """A message shortcut in a direct message presets that conversation (initial_conversation takes any
    conversation id): the updates' thread needs a channel, and the field says so."""
    h = harness
    h.sim.epm_di.add_job(1881, steps=[Step(0, -1)])
    await h.user.shortcut(views.GLOBAL_SHORTCUT, viewing="C0001")
    await h.slack.wait_for(lambda: h.slack.modals("U0001"))
    [modal] = h.slack.modals("U0001")
    result = await h.user.submit(modal.id, {"backend": "epm-demo", "job_id": "1881", "channel": "D0001"})
    assert result.body is not None and result.body["response_action"] == "errors" and result.refused is None
    assert (
        set(result.body["errors"]) == {"channel"} and "Choose a channel" in result.body["errors"]["channel"]
    )
    assert h.slack.modals("U0001") and h.slack.calls_of("chat.postMessage") == []


async def test_a_valid_submission_watches_in_the_chosen_channel(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(44049, name="Payables Import", steps=[Step(0, "RUNNING")])
    await h.user.shortcut(views.GLOBAL_SHORTCUT, viewing="C0001")
    await h.slack.wait_for(lambda: h.slack.modals("U0001"))
    [modal] = h.slack.modals("U0001")
    result = await h.user.submit(modal.id, {"backend": "fusion-demo", "job_id": "44049", "channel": "C0002"})
    assert result.status == 200 and (result.body or {}).get("response_action") in (None, "clear")
    assert h.slack.modals("U0001") == []
    await h.slack.wait_for(lambda: h.parents("C0002"), what="the parent in the chosen channel")
    assert "Payables Import" in json.dumps(h.parents("C0002")[0].blocks) and h.parents("C0001") == []
    [url] = result.response_urls
    rid = h.slack.response_url_id(url)
    await h.slack.wait_for(lambda: any("Watching fusion-demo job `44049`" in p.payload.get("text", "")
                                       for p in h.slack.responses(rid)), what="the outcome, to the person")
    assert [p.payload["text"] for p in h.slack.responses(rid)][0].startswith("Checking fusion-demo job")


async def refused(h: Harness, method: str, **args: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        await h.runtime.client.api_call(method, json=args)
    return dict(caught.value.response.data)  # type: ignore[arg-type]


async def test_views_open_takes_a_trigger_once_within_three_seconds_and_a_valid_view(
    harness: Harness,
) -> None:
    h = harness
    view = views.watch_modal(["epm-demo"])
    trigger = h.slack.new_trigger("U0001")
    first = await h.runtime.client.views_open(trigger_id=trigger, view=view)
    assert first["ok"] and first["view"]["id"].startswith("V")
    assert (await refused(h, "views.open", trigger_id=trigger, view=view))["error"] == "exchanged_trigger_id"
    old = h.slack.new_trigger("U0001")
    h.slack._triggers[old].issued -= 3.5
    assert (await refused(h, "views.open", trigger_id=old, view=view))["error"] == "expired_trigger_id"
    assert (await refused(h, "views.open", trigger_id="123.456.abc", view=view))[
        "error"
    ] == "invalid_trigger_id"
    long_title = {**view, "title": {"type": "plain_text", "text": "A title longer than 24 chars"}}
    answer = await refused(h, "views.open", trigger_id=h.slack.new_trigger("U0001"), view=long_title)
    assert answer["error"] == "invalid_arguments" and "title" in json.dumps(answer["response_metadata"])
    no_submit = {k: v for k, v in view.items() if k != "submit"}
    answer = await refused(h, "views.open", trigger_id=h.slack.new_trigger("U0001"), view=no_submit)
    assert "submit is required" in json.dumps(answer["response_metadata"])
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    assert (await refused(h, "views.publish", user_id="U9999", view=home))["error"] == "invalid_arguments"
    too_many = {**home, "blocks": home["blocks"] * 101}
    assert (await refused(h, "views.publish", user_id="U0001", view=too_many))["error"] == "invalid_arguments"


@pytest.mark.settings(outage_note_after=0.3)
async def test_the_home_tab_shows_a_backend_outage_and_its_end(harness: Harness) -> None:
    """A backend whose polls fail (503s) for as long as the poller waits before noting an outage shows
    "outage since …" on the tab, refreshed with the thread's outage note; answering again, it says so."""
    h = harness
    h.runtime.home.throttle.gap = 0.5
    h.sim.fusion.add_job(44050, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 44050")
    await h.user.open_home("U0001")
    await h.slack.wait_for(lambda: "fusion-demo*: :large_green_circle: answering" in home_text(h))
    h.sim.fusion.fail_job(44050, "503", times=1000)
    await h.slack.wait_for(lambda: "fusion-demo*: :red_circle: outage since" in home_text(h), timeout=20,
                           what="the outage on the Home tab")
    h.sim.fusion.job_faults.clear()
    await h.slack.wait_for(lambda: "fusion-demo*: :large_green_circle: answering" in home_text(h), timeout=20,
                           what="the backend answering again on the Home tab")
