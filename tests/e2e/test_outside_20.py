"""Issues 19 (item 9) and 20 checked from outside (the review): hostile vendor text on every surface the bot
shows it, as an outsider would try it, through the real bot against the fake Slack and the vendor simulators;
each test asserts on what reached Slack."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import aiohttp
import pytest

from bot.offline.vendors.core import Step
from tests.conftest import Harness
from tests.e2e.backends.test_immuta import EXAMPLE as IMMUTA_EXAMPLE
from tests.e2e.test_vendor_text import mrkdwn_objects

# Slack's control sequences a vendor's words must never become (https://docs.slack.dev/messaging/
# formatting-message-text#escaping): a mention, a special mention, a channel, a link, as `hostile` writes them
# (the bot's own `<@watcher>` and `<!date^…>` are not the vendor's)
API_TOKEN = "ci-review-0123456789abcdef0123456789ab"
CONTROL = re.compile(r"<!channel>|<!here>|<@U123>|<https://x\.example|<!subteam\^S1>|<#C0999>")


def hostile(n: int) -> str:
    """A vendor message of `n` characters, every few words a mention, a link or an entity, so whatever cut
    the bot makes (3,000 characters for a section) falls among escapes."""
    words = ["@here", "<!channel>", "<@U123>", "#general", "<https://x.example|y>", "&amp;", "<!subteam^S1>",
             "<#C0999>", "&", "<", ">"]
    out = ""
    i = 0
    while len(out) < n:
        out += words[i % len(words)] + " "
        i += 1
    return out[:n]


def leaks(node: Any) -> list[str]:
    """Every text a surface carries (mrkdwn, plain_text, a fallback `text`) that holds a control sequence."""
    found: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "text" and isinstance(v, str) and CONTROL.search(v):
                found.append(v)
            else:
                found += leaks(v)
    elif isinstance(node, list):
        for v in node:
            found += leaks(v)
    return found


async def test_a_long_hostile_failure_message_stays_words_in_threads_the_home_tab_and_status(
        harness: Harness) -> None:
    h = harness
    message = hostile(3_200)
    h.sim.fusion.add_job(4410, name="GL " + hostile(200), steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 4410")  # #general: the demo's details channel, so everything is shown
    await h.user.open_home("U0001")
    h.sim.fusion.set_state(4410, "FAILED", message=message)
    await h.slack.wait_for(lambda: any("failed" in r.text for r in h.replies()), what="the failure reply")
    await h.slack.wait_for(lambda: "failed" in h.slack.message("C0001", h.parents()[0].ts).text)
    await h.slack.wait_for(lambda: "failed" in json.dumps(h.slack.home_of("U0001") or {}), what="the tab")
    status = await h.watch("status fusion-demo 4410")

    sent = [c.args for c in h.slack.calls_of("chat.postMessage") + h.slack.calls_of("chat.update")]
    tabs = [c.args.get("view") for c in h.slack.calls_of("views.publish")]
    answers = [r.payload for r in status.responses()]
    assert sent and tabs and answers
    for surface in (sent, tabs, answers):
        assert leaks(surface) == [], leaks(surface)[:1]
        for o in mrkdwn_objects(surface):
            assert o.get("verbatim") is True, o
    # the words are there, escaped, and the message was cut (a section holds 3,000 characters)
    said = json.dumps(sent)
    assert "&lt;@U123&gt;" in said and "&lt;https://x.example|y&gt;" in said and "&amp;amp;" in said


# -- issue 20 item 10: an id Immuta's schema refuses, by every way in --------------------------------------

@pytest.mark.settings(api={"tokens": {"ci": {"token": API_TOKEN}}})
async def test_an_immuta_id_that_is_not_a_guid_is_refused_by_the_api_the_modal_and_cancel_and_never_sent(
        harness: Harness) -> None:
    h = harness
    words = ("'job-123' is not an Immuta job id: it is the job's globally unique identifier, "
             f"e.g. {IMMUTA_EXAMPLE}")
    url = h.runtime.events_url.replace("/slack/events", "/api/v1/watches")
    body = {"backend": "immuta-demo", "job_id": "job-123", "channel": "C0001"}
    async with aiohttp.ClientSession() as session, session.post(
            url, json=body, headers={"Authorization": f"Bearer {API_TOKEN}"}) as resp:
        status, said = resp.status, await resp.json()
    assert status == 400 and said["message"].startswith(words), said
    await h.user.shortcut("jobstatus_watch_global", viewing="C0001")
    await h.slack.wait_for(lambda: h.slack.modals("U0001"))
    [modal] = h.slack.modals("U0001")
    submitted = await h.user.submit(
        modal.id, {"backend": "immuta-demo", "job_id": "job-123", "channel": "C0001"}
    )
    assert submitted.body is not None and submitted.body.get("response_action") == "errors", submitted.body
    assert any(e.startswith(words) for e in submitted.body["errors"].values()), submitted.body
    cancel = await h.user.command("cancel immuta-demo job-123")
    assert str(cancel.ack_text).startswith(words), cancel.ack_text
    assert h.sim.immuta.requests == [] or all(
        "job-123" not in (r.body or b"").decode() and "job-123" not in r.path for r in h.sim.immuta.requests
    )
    assert h.parents() == []


# -- issue 19 item 6 / issue 20 item 2: timestamps an attacker picks --------------------------------------

async def test_a_signed_command_stamped_in_the_future_is_good_once_and_beyond_five_minutes_never(
        harness: Harness) -> None:
    """Slack's rule is "more than five minutes from the local time" either way (docs.slack.dev/authentication/
    verifying-requests-from-slack); a request stamped 4 minutes ahead is signed and taken once, its replay
    refused; one stamped 6 minutes ahead, or with a timestamp that is not a number, is refused unparsed."""
    h = harness
    h.sim.fusion.add_job(4420, steps=[Step(0, "RUNNING")])
    form = (f"token=x&team_id={h.slack.team_id}&team_domain=fake&channel_id=C0001&channel_name=general"
            "&user_id=U0001&user_name=ana&command=%2Fjobstatus&text=watch+fusion-demo+4420"
            f"&api_app_id={h.slack.app_id}&response_url={h.slack.response_url('C0001', 'U0001')}"
            f"&trigger_id={h.slack.new_trigger('U0001')}").encode()
    now = int(time.time())
    ahead = h.user.sign(form, now + 240)
    assert (await h.user.post_raw(form, ahead))[0] == 200
    await h.slack.wait_for(lambda: h.parents(), what="the watch of the command stamped ahead")
    assert (await h.user.post_raw(form, ahead))[0] == 401  # its replay
    for stamp in (now + 360, now - 360):
        assert (await h.user.post_raw(form, h.user.sign(form, stamp)))[0] == 401
    garbage = {**h.user.sign(form, now), "X-Slack-Request-Timestamp": "１２３"}  # full-width digits
    assert (await h.user.post_raw(form, garbage))[0] == 401
    assert len(h.parents()) == 1
