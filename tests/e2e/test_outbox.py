"""The outbox end to end: rows the last release wrote still reach Slack, and a thread that moves to a new
parent takes every reply owed to it along."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from bot.offline.vendors.core import Step
from tests.conftest import Harness


def _insert(s: Any, watch_id: int, kind: str, payload: dict[str, Any], now: float) -> None:
    s.execute(text("INSERT INTO outbox (watch_id, kind, payload, created_at, attempts, next_attempt_at) "
                   "VALUES (:w, :k, :p, :now, 0, :now)"),
              {"w": watch_id, "k": kind, "p": json.dumps(payload), "now": now})


def _watch_id(s: Any) -> int:
    return int(s.execute(text("SELECT id FROM watches")).scalar_one())


async def test_outbox_rows_written_by_the_last_release_are_delivered(harness: Harness) -> None:
    """The release before this one wrote four shapes: reply {text, blocks, broadcast}, file {filename,
    content_b64}, parent and update {}. Rows of each, inserted as it wrote them, reach Slack as they did."""
    h = harness
    h.sim.fusion.add_job(7101, name="Payroll", steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 7101")
    [parent] = h.parents()
    watch_id = await h.runtime.db.run(_watch_id)
    now = h.runtime.clock()
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*from the last release*"}}]
    await h.runtime.db.run(
        _insert, watch_id, "reply", {"text": "an old reply", "blocks": blocks, "broadcast": True}, now
    )
    await h.runtime.db.run(
        _insert, watch_id, "file", {"filename": "old.log", "content_b64": "T0xEIExPRwo="}, now
    )
    await h.runtime.db.run(_insert, watch_id, "update", {}, now)
    h.runtime.notifier.kick()
    await h.slack.wait_for(lambda: len(h.replies()) == 2 and h.slack.message("C0001", parent.ts).edits >= 1,
                           what="the reply, the file and the update")
    reply, upload = h.replies()
    assert reply.text == "an old reply" and reply.blocks == blocks and reply.reply_broadcast is True
    assert upload.files and upload.files[0]["name"] == "old.log"
    assert [f.content for f in h.slack.files.values() if f.filename == "old.log"] == [b"OLD LOG\n"]

    # a parent owed as the last release owed it (say, after Slack lost the first): posted, the thread goes on
    await h.runtime.db.run(lambda s: s.execute(text("UPDATE watches SET parent_ts = NULL")))
    await h.runtime.db.run(_insert, watch_id, "parent", {}, h.runtime.clock())
    h.runtime.notifier.kick()
    await h.slack.wait_for(lambda: len(h.parents()) == 2, what="the parent the old row owed")
    new = h.parents()[-1]
    assert new.metadata is not None and new.metadata["event_payload"] == {"watch_id": watch_id}
    assert "fusion-demo job 7101: running" in new.text


async def test_replies_owed_when_a_thread_moves_to_a_new_parent_follow_it_there(harness: Harness) -> None:
    """Slack will not thread a reply under the parent (cannot_reply_to_message): a new parent is posted, and
    the reply that was refused, owed before that parent, goes into its thread."""
    h = harness
    h.sim.fusion.add_job(7102, steps=[Step(0, "ENQUEUED")])
    await h.watch("watch fusion-demo 7102")
    h.slack.fail_next("chat.postMessage", "cannot_reply_to_message")
    h.sim.fusion.set_state(7102, "RUNNING")
    await h.slack.wait_for(lambda: len(h.parents()) == 2, what="a new parent")
    new = h.parents()[-1]
    await h.slack.wait_for(
        lambda: [r.text for r in h.slack.thread("C0001", new.ts)] == ["fusion-demo job 7102: running"],
        what="the refused reply, in the new thread",
    )
    h.sim.fusion.set_state(7102, "SUCCEEDED")
    await h.slack.wait_for(lambda: any("succeeded" in r.text for r in h.slack.thread("C0001", new.ts)))
