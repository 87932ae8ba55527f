"""The /jobstatus listener against recording ack/respond and Watching over doubles (no sockets)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.webhook import WebhookResponse

from bot import store
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.inbound.listeners.commands import HELP, Commands
from bot.store import Store
from tests.conftest import FakeClock
from tests.unit.doubles import BackendDouble, Recorder, SlackDouble, watching


@pytest.fixture
def rig(db: Store, clock: FakeClock) -> tuple[Commands, SlackDouble, BackendDouble]:
    w, slack, backend = watching(db, clock)
    backend.jobs["44046"] = JobStatus("44046", Phase.RUNNING, "RUNNING", name="DataExport")
    return Commands(w), slack, backend


async def run(commands: Commands, text: str, channel: str = "C1") -> tuple[Recorder, Recorder]:
    ack, respond = Recorder(), Recorder()
    body: dict[str, Any] = {"command": "/jobstatus", "text": text, "user_id": "U1", "channel_id": channel,
                            "team_id": "T1", "response_url": "https://hooks.slack.test/response"}
    await commands.jobstatus(ack=ack, body=body, respond=respond)  # type: ignore[arg-type]
    return ack, respond


async def test_help_is_the_ack_itself(rig: tuple[Commands, SlackDouble, BackendDouble]) -> None:
    ack, respond = await run(rig[0], "")
    assert ack.texts == [HELP] and ack.calls[0]["blocks"][0]["text"]["text"] == HELP and respond.calls == []


async def test_a_typo_gets_a_suggestion_in_the_ack(rig: tuple[Commands, SlackDouble, BackendDouble]) -> None:
    ack, respond = await run(rig[0], "wtach fake 44046")
    assert len(ack.texts) == 1 and "Did you mean `watch`?" in ack.texts[0] and respond.calls == []


async def test_an_unknown_backend_is_named_in_the_ack(
        rig: tuple[Commands, SlackDouble, BackendDouble]) -> None:
    ack, respond = await run(rig[0], "watch nosuch 1")
    assert ack.texts == ["There is no backend called `nosuch`. Backends anyone may use: `fake`. See "
                         "`/jobstatus backends` for yours."]
    assert respond.calls == []


async def test_watch_acks_at_once_then_answers_with_the_thread_posted(
        rig: tuple[Commands, SlackDouble, BackendDouble], db: Store) -> None:
    commands, slack, _ = rig
    ack, respond = await run(commands, "watch fake 44046")
    assert ack.calls == [{}]  # empty: its text would race what the response_url shows
    assert respond.calls == [
        {"text": "Checking fake job `44046`…", "response_type": "ephemeral", "replace_original": False},
        {"text": "Watching fake job `44046`: updates go to the thread.", "response_type": "ephemeral",
         "replace_original": False},
    ]
    [parent] = slack.of("chat.postMessage", "C1")
    assert parent.thread_ts is None and parent.text == "fake job 44046: running"
    [(w, job)] = await db.run(store.channel_watches, "C1")
    assert (w.parent_ts, job.job_id) == (parent.ts, "44046")


async def test_status_answers_the_user_alone(rig: tuple[Commands, SlackDouble, BackendDouble]) -> None:
    commands, slack, _ = rig
    _ack, respond = await run(commands, "status fake 44046")
    [checking, answer] = respond.calls
    assert checking["text"] == "Checking fake job `44046`…"
    assert answer["text"] == "fake job 44046: running" and answer["response_type"] == "ephemeral"
    assert "DataExport" in str(answer["blocks"]) and slack.sent == []


async def test_a_backend_error_is_explained(rig: tuple[Commands, SlackDouble, BackendDouble]) -> None:
    _ack, respond = await run(rig[0], "watch fake 404")
    assert respond.texts[-1] == "fake has no job `404`. Check the id (and that it is a Double job id)."


async def test_cancel_where_the_backend_offers_none_says_so(
        rig: tuple[Commands, SlackDouble, BackendDouble]) -> None:
    _ack, respond = await run(rig[0], "cancel fake 44046")
    assert respond.texts[-1] == "fake (Double) offers no cancel API here. Cancel it in the vendor's console."


async def test_list_shows_the_channels_watches(rig: tuple[Commands, SlackDouble, BackendDouble]) -> None:
    commands = rig[0]
    await run(commands, "watch fake 44046")
    ack, respond = await run(commands, "list")
    assert ack.calls == [{}]
    [text] = respond.texts
    assert (text.startswith("*Watched in this channel (1)*")
            and "`44046` · DataExport: running (by <@U1>)" in text)
    assert "<https://slack.test/archives/C1/p" in text  # the thread's permalink


async def test_a_bug_behind_a_command_is_one_log_line_and_a_polite_answer(
        rig: tuple[Commands, SlackDouble, BackendDouble], caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> None:
    commands, _, backend = rig
    backend.jobs["7"] = KeyError("a bug in the adapter")
    with caplog.at_level(logging.ERROR, logger="bot"):
        _ack, respond = await run(commands, "status fake 7")
    assert respond.texts[-1] == "Something went wrong on my side; nothing was changed. Please try again."
    assert [r.getMessage() for r in caplog.records] == ["/jobstatus status failed"]


class SlowFirstRespond(Recorder):
    """A response_url whose first post takes a while: `started` holds each post's text as it is sent, with how
    many posts Slack had taken by then (`calls`, as Recorder records a post once it is answered)."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[tuple[str, int]] = []

    async def __call__(self, **kwargs: Any) -> WebhookResponse:
        self.started.append((str(kwargs.get("text")), len(self.calls)))
        if len(self.started) == 1:
            await asyncio.sleep(0.2)
        return await super().__call__(**kwargs)


@pytest.mark.parametrize("verb", ["status", "unwatch", "cancel", "watch"])
async def test_the_answer_is_posted_only_after_slack_took_the_checking_line(
        rig: tuple[Commands, SlackDouble, BackendDouble], verb: str) -> None:
    """The last thing the person sees is the answer: it is not even sent before the "Checking" line is in."""
    ack, respond = Recorder(), SlowFirstRespond()
    body: dict[str, Any] = {"command": "/jobstatus", "text": f"{verb} fake 44046", "user_id": "U1",
                            "channel_id": "C1", "team_id": "T1",
                            "response_url": "https://hooks.slack.test/response"}
    await rig[0].jobstatus(ack=ack, body=body, respond=respond)  # type: ignore[arg-type]
    assert ack.texts == [""]
    checking, answer = respond.texts
    assert checking == "Checking fake job `44046`…" and respond.started == [(checking, 0), (answer, 1)]
