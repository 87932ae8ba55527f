"""End to end: a signed Slack request is good for one use, in one workspace (issue 19, item 6).

Signed requests into the real bot over HTTP (and Socket Mode for the team check), the fake Slack and the
vendor simulators behind it; assertions on what reached Slack and the vendor."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import text

from bot.inbound.front import first_use
from bot.inbound.listeners.guard import OTHER_TEAM
from bot.offline.slack import SlackUser
from bot.offline.vendors.core import Step
from bot.rendering import views
from bot.store.models import Watch
from tests.conftest import SIGNING_SECRET, Harness
from tests.e2e.test_replicas import Cluster, cluster  # noqa: F401  (fixture)
from tests.e2e.test_socket_mode import SocketBot, bot  # noqa: F401  (fixture)


def buttons(msg: Any) -> list[str]:
    return [e["action_id"] for b in msg.blocks or [] if b["type"] == "actions" for e in b["elements"]]


async def stopped_watch(h: Harness, job: int) -> Any:
    """A running Fusion job watched in C0001, then stopped with its button: the parent offers Rewatch."""
    h.sim.fusion.add_job(job, steps=[Step(0, "RUNNING")])
    await h.watch(f"watch fusion-demo {job}")
    [parent] = h.parents()
    await h.slack.wait_for(lambda: "jobstatus_stop" in buttons(h.slack.message("C0001", parent.ts)))
    clicked = await h.user.click("C0001", parent.ts, "jobstatus_stop")
    assert clicked is not None and clicked.ok
    await h.slack.wait_for(lambda: buttons(h.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"])
    return parent


async def test_a_replayed_rewatch_click_is_refused_and_takes_no_effect(harness: Harness) -> None:
    h = harness
    parent = await stopped_watch(h, 7001)
    rewatch = await h.user.click("C0001", parent.ts, "jobstatus_rewatch")
    assert rewatch is not None and rewatch.ok
    captured = h.user.last_request
    await h.slack.wait_for(lambda: "jobstatus_stop" in buttons(h.slack.message("C0001", parent.ts)))
    await h.user.click("C0001", parent.ts, "jobstatus_stop")  # stopped again by its owner
    await h.slack.wait_for(lambda: buttons(h.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"])
    again = len([r for r in h.replies() if "Watching again" in r.text])
    assert again == 1

    h.user.last_request = captured
    status, _ = await h.user.replay()  # the same bytes, headers and signature, well within 5 minutes

    assert status == 401
    # and nothing happened: the watch stays stopped, no "Watching again" note, no new answer to the clicker
    watch_id = int(parent.metadata["event_payload"]["watch_id"])
    watch = await h.runtime.db.run(lambda s: s.get(Watch, watch_id))
    assert watch is not None and watch.active is False
    assert len([r for r in h.replies() if "Watching again" in r.text]) == again
    assert buttons(h.slack.message("C0001", parent.ts)) == ["jobstatus_rewatch"]


async def test_a_replayed_slash_command_is_refused_but_the_same_text_typed_again_works(
    harness: Harness,
) -> None:
    """A replay is the same bytes; the same command typed again is a new request Slack signs anew."""
    h = harness
    h.sim.fusion.add_job(7002, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 7002")
    assert (await h.user.replay())[0] == 401
    typed = await h.user.command("watch fusion-demo 7002", channel_id="C0002")
    assert typed.ok
    await typed.wait_responses(2)


async def test_a_click_by_a_user_of_another_workspace_is_refused_with_an_ephemeral(harness: Harness) -> None:
    """A Slack Connect channel: someone of another workspace presses Stop watching on our parent."""
    h = harness
    h.sim.fusion.add_job(7003, steps=[Step(0, "RUNNING")])
    await h.watch("watch fusion-demo 7003")
    [parent] = h.parents()
    await h.slack.wait_for(lambda: "jobstatus_stop" in buttons(h.slack.message("C0001", parent.ts)))

    clicked = await h.user.click("C0001", parent.ts, "jobstatus_stop", user_id="U0EXT", from_team="T0OTHER")

    assert clicked is not None and clicked.ok
    [answer] = await clicked.wait_responses(1)
    assert answer.payload["text"] == OTHER_TEAM and answer.outcome == "ephemeral"
    assert "jobstatus_stop" in buttons(h.slack.message("C0001", parent.ts))  # still watched
    assert not any("Stopped" in r.text for r in h.replies())


async def test_a_slash_command_from_another_workspace_is_refused_in_its_ack(harness: Harness) -> None:
    h = harness
    stranger = SlackUser(h.runtime.events_url, SIGNING_SECRET, h.slack, team_id="T0OTHER")
    h.sim.fusion.add_job(7004, steps=[Step(0, "RUNNING")])
    result = await stranger.command("watch fusion-demo 7004")
    assert result.ok and result.ack_text == OTHER_TEAM
    assert h.parents() == [] and h.sim.fusion.count("GET", "/jobRequests/7004") == 0


async def test_a_modal_submitted_from_another_workspace_gets_an_error_on_its_first_field(
    harness: Harness,
) -> None:
    h = harness
    h.sim.fusion.add_job(7005, steps=[Step(0, "RUNNING")])
    await h.user.shortcut(views.GLOBAL_SHORTCUT, viewing="C0001")
    await h.slack.wait_for(lambda: h.slack.modals("U0001"))
    [modal] = h.slack.modals("U0001")
    first = next(b["block_id"] for b in modal.view["blocks"] if b["type"] == "input")
    stranger = SlackUser(h.runtime.events_url, SIGNING_SECRET, h.slack, team_id="T0OTHER")
    submitted = await stranger.submit(modal.id, {"backend": "fusion-demo", "job_id": "7005"})
    assert submitted.ok and submitted.refused is None, submitted.refused  # an error Slack can show
    assert submitted.body == {"response_action": "errors", "errors": {first: OTHER_TEAM}}
    assert h.parents() == [] and h.sim.fusion.count("GET", "/jobRequests/7005") == 0


async def test_over_socket_mode_another_workspace_is_refused_too(bot: SocketBot) -> None:  # noqa: F811
    """Socket Mode has no signatures; the team check is Bolt middleware, so it holds there as well: a command
    and a click from another workspace, over the fake Slack's socket, are refused with an answer."""
    bot.sim.fusion.add_job(7007, steps=[Step(0, "RUNNING")])
    await bot.watch("watch fusion-demo 7007")
    [parent] = bot.parents()
    await bot.slack.wait_for(lambda: "jobstatus_stop" in buttons(bot.slack.message("C0001", parent.ts)))
    stranger = SlackUser.over_socket(bot.slack, team_id="T0OTHER")

    typed = await stranger.command("watch fusion-demo 7007", channel_id="C0002")
    clicked = await bot.user.click("C0001", parent.ts, "jobstatus_stop", user_id="U0EXT", from_team="T0OTHER")

    assert typed.ok and typed.ack_text == OTHER_TEAM
    assert clicked is not None and clicked.ok
    [answer] = await clicked.wait_responses(1)
    assert answer.payload["text"] == OTHER_TEAM
    assert bot.parents("C0002") == [] and "jobstatus_stop" in buttons(bot.slack.message("C0001", parent.ts))


async def test_a_signature_is_spent_once_across_replicas(harness: Harness) -> None:
    """Two processes on one database: the second to present a signature is refused, whichever it is."""
    db = harness.runtime.db
    assert await db.run(first_use, "v0=" + "a" * 64, 2e9, 1e9, False) is True
    assert await db.run(first_use, "v0=" + "a" * 64, 2e9, 1e9, False) is False
    # once expired (the signature check refuses it by age anyway), the row is pruned or taken over
    assert await db.run(first_use, "v0=" + "a" * 64, 3e9, 2e9 + 1, False) is True
    assert await db.run(first_use, "v0=" + "b" * 64, 3e9, 4e9, True) is True


async def test_when_the_database_cannot_tell_a_replay_the_request_is_refused_503_without_a_traceback(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h = harness
    await h.runtime.db.run(lambda s: s.execute(text("DROP TABLE seen_requests")))
    with caplog.at_level(logging.WARNING):
        result = await h.user.command("watch fusion-demo 7006")
    assert result.status == 503
    assert "the database does not answer" in caplog.text and "Traceback" not in caplog.text
    assert not any(r.exc_info for r in caplog.records)
    assert h.parents() == []


async def test_a_command_replayed_to_another_replica_is_refused_there(cluster: Cluster) -> None:  # noqa: F811
    """Two `jobstatus-bot run` processes on one PostgreSQL database: a signed command taken by one, sent again
    byte for byte to the other, is refused by the other, and nothing more is answered or watched."""
    c = cluster
    await c.start("a")
    await c.start("b")
    c.sim.fusion.add_job(7010, steps=[Step(0, "RUNNING")])
    first = c.user("a")
    result = await first.command("watch fusion-demo 7010")
    assert result.ok
    await result.wait_responses(2)
    answered = len(result.responses())
    other = c.user("b")
    other.last_request = first.last_request

    assert (await other.replay())[0] == 401

    assert len(c.slack.messages("C0001")) == 1  # one parent: the replay watched nothing
    assert len(result.responses()) == answered
    assert "replayed Slack request refused" in c.log("b")
