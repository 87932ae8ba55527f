"""Issue 19 checked from outside (the review): the attacks of its "Why", varied as an attacker or an unlucky
operator would, through signed Slack requests, the HTTP API and the database, against the real Runtime. Each
test here asserts on what reached Slack, the vendor or the disk."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import col, select

from bot.offline.vendors.core import Step
from bot.store.models import Outbox
from tests.conftest import Harness, settings_for


def everything(h: Harness, channel: str) -> str:
    """All a channel shows: its messages' text and blocks, threads included, and its files' names."""
    msgs = h.slack.all_messages(channel)
    return json.dumps([[m.text, m.blocks, [getattr(f, "name", str(f)) for f in (m.files or [])]] for m in msgs])


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
    await h.slack.wait_for(lambda: any("failed" in r.text for r in h.replies("C0001")), what="the failure reply")

    async def nothing_owed() -> bool:
        return not await h.runtime.db.run(kinds_owed)

    await h.slack.wait_for(nothing_owed, poll=0.1, what="the outbox emptied")
    seen = everything(h, "C0001")
    assert secret not in seen and "Data load failed" not in seen and ".log" not in seen, seen
    assert not any(m.files for m in h.slack.all_messages("C0001"))
