"""Requests Slack could never send, signed with the real signing secret: a 4xx and one log line, never a 500.

A forged one is still refused by the signature check first (401), however broken its body is."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import urllib.parse

import pytest

from bot.offline.vendors.core import Step
from tests.conftest import SIGNING_SECRET, Harness


def form(**fields: str) -> bytes:
    return urllib.parse.urlencode(fields).encode()


SLASH = {
    "token": "x",
    "team_id": "T0001",
    "team_domain": "fake",
    "channel_id": "C0001",
    "channel_name": "general",
    "user_id": "U0001",
    "user_name": "ana",
    "command": "/jobstatus",
    "text": "help",
    "api_app_id": "A0FAKE",
    "response_url": "http://127.0.0.1:9/response/x",
    "trigger_id": "1.2.3",
}

MALFORMED = {
    "payload is not JSON": form(payload="{not json"),
    "payload is JSON but a list": form(payload="[1, 2]"),
    "payload is JSON null": form(payload="null"),
    "payload is a JSON string": form(payload='"block_actions"'),
    "body is JSON but broken": b'{"type": "block_actions", ',
    "body is a JSON list": b"[1]",
    "body is not UTF-8": b"payload=\xff\xfe\xfa",
    "block_actions without actions or user": form(payload=json.dumps({"type": "block_actions"})),
    "block_actions whose actions are not a list": form(
        payload=json.dumps(
            {
                "type": "block_actions",
                "user": {"id": "U0001"},
                "actions": "jobstatus_stop",
                "response_url": "http://127.0.0.1:9/response/x",
            }
        )
    ),
    "block_actions on a message without a response_url": form(
        payload=json.dumps(
            {
                "type": "block_actions",
                "user": {"id": "U0001"},
                "container": {"type": "message"},
                "actions": [{"action_id": "jobstatus_stop", "value": "1"}],
            }
        )
    ),
    "block_actions in a view without the view": form(
        payload=json.dumps(
            {
                "type": "block_actions",
                "user": {"id": "U0001"},
                "container": {"type": "view", "view_id": "V1"},
                "actions": [{"action_id": "jobstatus_stop", "value": "1"}],
            }
        )
    ),
    "block_actions in a modal, which has no buttons": form(
        payload=json.dumps(
            {
                "type": "block_actions",
                "user": {"id": "U0001"},
                "container": {"type": "view", "view_id": "V1"},
                "view": {"type": "modal", "id": "V1"},
                "actions": [{"action_id": "jobstatus_stop", "value": "1"}],
            }
        )
    ),
    "shortcut without a trigger_id": form(
        payload=json.dumps(
            {"type": "shortcut", "user": {"id": "U0001"}, "callback_id": "jobstatus_watch_global"}
        )
    ),
    "message_action whose message is not an object": form(
        payload=json.dumps(
            {
                "type": "message_action",
                "user": {"id": "U0001"},
                "callback_id": "jobstatus_watch_message",
                "trigger_id": "1.2.ab",
                "message": "44046",
            }
        )
    ),
    "view_submission without a view": form(
        payload=json.dumps({"type": "view_submission", "user": {"id": "U0001"}})
    ),
    "view_submission whose view has no type": form(
        payload=json.dumps(
            {
                "type": "view_submission",
                "user": {"id": "U0001"},
                "view": {"callback_id": "jobstatus_watch_modal"},
            }
        )
    ),
    "view_submission of a workflow_step view": form(
        payload=json.dumps(
            {
                "type": "view_submission",
                "user": {"id": "U0001"},
                "view": {"type": "workflow_step", "callback_id": "jobstatus_watch_modal"},
            }
        )
    ),
    "view_submission whose response_urls hold no response_url": form(
        payload=json.dumps(
            {
                "type": "view_submission",
                "user": {"id": "U0001"},
                "response_urls": [{"response_url": 5}],
                "view": {"type": "modal", "callback_id": "jobstatus_watch_modal"},
            }
        )
    ),
    "event_callback whose event is a string": json.dumps(
        {"type": "event_callback", "event": "app_home_opened"}
    ).encode(),
    "view_closed, which this app does not take": form(
        payload=json.dumps({"type": "view_closed", "user": {"id": "U0001"}})
    ),
    "slash command without user, channel or response_url": form(command="/jobstatus", text="help"),
    "slash command without response_url": form(**{k: v for k, v in SLASH.items() if k != "response_url"}),
}


def signed(h: Harness, body: bytes) -> dict[str, str]:
    """Headers as Slack signs `body`: slack_sdk's SignatureVerifier (the fake's sign) where the body is text;
    for bytes that are not UTF-8 (which it cannot take), the same v0 HMAC computed over the bytes here."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        headers = h.user.sign(b"")
        ts = headers["X-Slack-Request-Timestamp"]
        mac = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
        return {**headers, "X-Slack-Signature": f"v0={mac}"}
    return h.user.sign(body)


@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_malformed_signed_request_gets_400_and_one_log_line(
        harness: Harness, caplog: pytest.LogCaptureFixture, body: bytes) -> None:
    h = harness
    with caplog.at_level(logging.WARNING):
        status, _ = await h.user.post_raw(body, signed(h, body))
    assert status == 400
    lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert "Traceback" not in caplog.text
    assert h.slack.calls_of("chat.postMessage") == []


@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_malformed_forged_request_is_refused_by_the_signature_check_first(harness: Harness,
                                                                                  body: bytes) -> None:
    headers = signed(harness, body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    assert (await harness.user.post_raw(body, headers))[0] == 401
    stale = {**signed(harness, body), "X-Slack-Request-Timestamp": str(int(time.time()) - 3600)}
    assert (await harness.user.post_raw(body, stale))[0] == 401


async def test_a_well_formed_command_still_works_after_malformed_ones(harness: Harness) -> None:
    h = harness
    for body in MALFORMED.values():
        await h.user.post_raw(body, signed(h, body))
    h.sim.fusion.add_job(61, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 61")
    assert len(h.parents()) == 1


async def test_signed_payloads_of_any_shape_never_get_a_500(harness: Harness) -> None:
    """Slack's own fields filled with values of the wrong kinds (seeded): Bolt's middleware and our listeners
    read them only after the shape check."""
    h = harness
    rng = random.Random(20261202)
    values: list[object] = [None, 1, "x", True, [], {}, [1], {"id": 5}, {"id": "U0001"}, [{"action_id": 3}],
                            [{"action_id": "jobstatus_stop", "value": {}}], "jobstatus_stop"]
    keys = [
        "type",
        "user",
        "actions",
        "response_url",
        "container",
        "channel",
        "message",
        "team",
        "enterprise",
        "view",
        "state",
        "token",
        "api_app_id",
        "is_enterprise_install",
        "authorizations",
        "event",
        "trigger_id",
    ]
    statuses = []
    for _ in range(150):
        payload = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        if rng.random() < 0.7:
            payload["type"] = rng.choice(["block_actions", "view_submission", "event_callback", 7])
        if rng.random() < 0.5:
            payload["actions"] = [{"action_id": rng.choice(["jobstatus_stop", "jobstatus_cancel"]),
                                   "value": rng.choice(["1", "", None, 5, {}])}]
        if rng.random() < 0.5:
            payload["user"] = {"id": "U0001"}
        body = form(payload=json.dumps(payload))
        statuses.append((await h.user.post_raw(body, signed(h, body)))[0])
    for _ in range(80):
        fields = {k: rng.choice(["", "x", "/jobstatus", "C0001", "U0001", "T0001"])
                  for k in rng.sample(list(SLASH), rng.randint(1, len(SLASH)))}
        body = form(**fields)
        statuses.append((await h.user.post_raw(body, signed(h, body)))[0])
    assert max(statuses) < 500, sorted(set(statuses))
    assert h.slack.calls_of("chat.postMessage") == []
