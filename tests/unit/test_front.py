"""The front door's decisions, one by one: which headers can belong to a signed request, the signature over
raw bytes, which requests are spent on use, which teams are at home, and the accept loop's log line."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.inbound import front
from bot.inbound.listeners.guard import foreign
from bot.store import Store
from bot.store.models import SeenRequest

SECRET = "s3cret"
NOW = 1_766_000_000


def sign(body: bytes, ts: int | str = NOW) -> dict[str, str]:
    mac = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={mac}"}


@pytest.mark.parametrize(("timestamp", "ok"), [
    (str(NOW), True), (str(NOW - 299), True), (str(NOW + 299), True),
    (str(NOW - 301), False), (str(NOW + 301), False),  # Slack's five minutes
    ("abc", False), ("", False), ("1e9", False), ("-1", False), (" 1766000000", False),
    ("١٧٦٦٠٠٠٠٠٠", False),  # digits, but not ASCII ones: str.isdigit() alone would take them
    ("9" * 40, False),  # a number, absurdly long: never reaches int()
])
def test_only_a_timestamp_of_ascii_digits_within_five_minutes_can_be_signed(timestamp: str, ok: bool) -> None:
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=" + "0" * 64}
    assert (front.stamp(headers, NOW) is not None) is ok


@pytest.mark.parametrize("signature", ["", "v1=" + "0" * 64, "v0=" + "0" * 63, "v0=" + "0" * 65, "0" * 67])
def test_a_signature_header_of_the_wrong_form_is_refused_before_the_body(signature: str) -> None:
    assert front.stamp({"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": signature}, NOW) is None


def test_the_signature_is_over_the_raw_bytes() -> None:
    body = b"payload=%7B%22type%22%3A%22block_actions%22%7D\xff"  # not even UTF-8: bytes, as sent
    assert front.signed(body, sign(body), SECRET, NOW)
    assert not front.signed(body + b" ", sign(body), SECRET, NOW)
    assert not front.signed(body, sign(body), "another secret", NOW)
    assert not front.signed(body, sign(body, NOW - 400), SECRET, NOW)  # signed, but too old


@pytest.mark.parametrize(("body", "spent"), [
    ({"command": "/jobstatus", "text": "cancel fusion-demo 1"}, True),
    ({"type": "block_actions"}, True),
    ({"type": "view_submission"}, True),
    ({"type": "event_callback", "event": {"type": "app_home_opened"}}, False),  # Slack may deliver it again
    ({"type": "shortcut"}, False),  # opens a modal with a single-use trigger_id
    ({"type": "message_action"}, False),
    ({"type": "url_verification"}, False),
])
def test_state_changing_requests_are_the_ones_spent(body: dict[str, Any], spent: bool) -> None:
    assert front.changes_state(body) is spent


HOME = "T0001"
ORG = "E0001"


@pytest.mark.parametrize(("body", "team", "enterprise", "org_wide", "refused"), [
    ({"team_id": HOME, "command": "/jobstatus"}, HOME, None, False, False),
    ({"team_id": "T0OTHER", "command": "/jobstatus"}, HOME, None, False, True),
    # Slack Connect: the interaction comes through our workspace, the clicker is another's
    ({"team": {"id": HOME}, "user": {"id": "U1", "team_id": "T0OTHER"}}, HOME, None, False, True),
    ({"team": {"id": HOME}, "user": {"id": "U1", "team_id": HOME}}, HOME, None, False, False),
    # Enterprise Grid, installed on one workspace: user.team_id may be the organization's id
    ({"team": {"id": HOME, "enterprise_id": ORG}, "enterprise": {"id": ORG},
      "user": {"id": "U1", "team_id": ORG}}, HOME, ORG, False, False),
    ({"team": {"id": HOME}, "enterprise": {"id": "E0OTHER"}, "user": {"id": "U1", "team_id": HOME}},
     HOME, ORG, False, True),
    ({"team_id": "T0SISTER", "enterprise_id": ORG, "command": "/jobstatus"}, HOME, ORG, False, True),
    # installed on the whole organization: any of its workspaces is at home, no other organization is
    ({"team_id": "T0SISTER", "enterprise_id": ORG, "command": "/jobstatus"}, HOME, ORG, True, False),
    ({"team_id": "T0SISTER", "enterprise_id": "E0OTHER", "command": "/jobstatus"}, HOME, ORG, True, True),
    # no organization on either side
    ({"team": {"id": HOME}, "enterprise": None, "user": {"id": "U1", "team_id": HOME}},
     HOME, None, False, False),
])
def test_which_requests_come_from_outside_the_installation(
        body: dict[str, Any], team: str, enterprise: str | None,
                                                         org_wide: bool, refused: bool) -> None:
    assert (foreign(body, team, enterprise, org_wide) is not None) is refused


def emfile() -> dict[str, Any]:
    return {"message": "socket.accept() out of system resource",
            "exception": OSError(errno.EMFILE, "Too many")}


async def test_running_out_of_descriptors_is_one_line_per_burst_and_the_rest_passes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    before = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        handler = front.quiet_accept_errors(loop)
        assert front.quiet_accept_errors(loop) is handler  # installed once
        with caplog.at_level(logging.WARNING, logger="bot.inbound.front"):
            for _ in range(50):
                loop.call_exception_handler(emfile())
        assert handler.refused == 50
        assert len([r for r in caplog.records if "out of file descriptors" in r.getMessage()]) == 1
        other = {"message": "something else", "exception": ValueError("x")}
        loop.call_exception_handler(other)
        assert seen == [other]  # everything else reaches the handler that was there before
    finally:
        loop.set_exception_handler(before)


async def test_a_signature_is_spent_once_and_expired_ones_are_pruned(tmp_path: Path) -> None:
    db = Store(f"sqlite:///{tmp_path / 'seen.db'}")
    db.upgrade()
    clock = [float(NOW)]
    seen = front.Seen(db, clock=lambda: clock[0])
    headers = sign(b"x")
    assert await seen.first_use(headers) is True
    assert await seen.first_use(headers) is False
    assert await seen.first_use(sign(b"y")) is True
    clock[0] += front.MAX_AGE + front.SKEW + front.PRUNE_EVERY + 1  # long after both are too old to verify

    def rows(s: Any) -> int:
        return len(s.execute(select(SeenRequest)).all())

    assert await seen.first_use(sign(b"z", int(clock[0]))) is True  # prunes on the way
    assert await db.run(rows) == 1
    db.close()
