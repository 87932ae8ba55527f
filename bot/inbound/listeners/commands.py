"""The /jobstatus grammar and its listener: parse and check before the ack, slow work after it."""

from __future__ import annotations

import asyncio
import difflib
import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond

from bot.backends.base import Backend
from bot.inbound.listeners.respond import reply
from bot.operations.refusals import UserError
from bot.operations.watching import Answer, Watching
from bot.rendering.messages import JOB_ARGS, esc, section

log = logging.getLogger(__name__)

VERBS_WITH_JOB = ("watch", "status", "unwatch", "cancel")
VERBS_ALONE = ("list", "backends", "help")
MAX_TEXT = 500

HELP = f"""*jobstatus* follows long batch jobs and posts every state change in a thread.
• `/jobstatus watch {JOB_ARGS}` (or `/jobstatus {JOB_ARGS}`): watch a job in this channel
• `/jobstatus status {JOB_ARGS}`: its status now, only to you
• `/jobstatus list`: the jobs watched in this channel
• `/jobstatus unwatch {JOB_ARGS}`: stop watching
• `/jobstatus cancel {JOB_ARGS}`: ask the backend to cancel the job (where it can)
• `/jobstatus backends`: the configured backends and what they support
• `/jobstatus help`: this text
The buttons on a watch message do the same: *Cancel job*, *Stop watching*, *Refresh*, *Rewatch*."""


class UsageError(UserError):
    pass


@dataclass(frozen=True)
class Command:
    verb: str
    backend: str | None = None
    job_id: str | None = None


def parse(text: str) -> Command:
    """Parse what the user typed after /jobstatus. Raises UsageError saying what to type instead."""
    if len(text) > MAX_TEXT:
        raise UsageError(f"That command is too long ({len(text)} characters). See `/jobstatus help`.")
    words = text.split()
    if not words:
        return Command("help")
    verb = words[0].lower()
    if verb in VERBS_ALONE:
        if len(words) > 1:
            raise UsageError(f"`/jobstatus {verb}` takes nothing after it. See `/jobstatus help`.")
        return Command(verb)
    if verb in VERBS_WITH_JOB:
        if len(words) != 3:
            raise UsageError(f"Usage: `/jobstatus {verb} {JOB_ARGS}`, e.g. "
                             f"`/jobstatus {verb} fusion-prod 44046`.")
        return Command(verb, words[1], words[2])
    if len(words) == 2:
        return Command("watch", words[0], words[1])
    guess = difflib.get_close_matches(verb, VERBS_WITH_JOB + VERBS_ALONE, n=1)
    hint = f" Did you mean `{guess[0]}`?" if guess else ""
    raise UsageError(f"I don't know `{esc(words[0][:40])}`.{hint} Type `/jobstatus help` for the commands.")


class Commands:
    """The /jobstatus listener, on top of Watching's operations."""

    def __init__(self, watching: Watching) -> None:
        self.watching = watching

    async def jobstatus(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        watching = self.watching
        user = str(body.get("user_id", ""))
        channel = str(body.get("channel_id", ""))
        try:
            cmd = parse(str(body.get("text") or ""))
            if cmd.verb == "help":
                await ack(text=HELP, blocks=[section(HELP)])
                return
            if cmd.verb == "backends":  # after the ack: who may use a backend may take asking Slack
                await ack()
                await reply(respond, await watching.backends_answer(user))
                return
            if cmd.verb == "list":
                await ack()
                await reply(respond, await watching.list(channel))
                return
            assert cmd.backend is not None and cmd.job_id is not None
            backend = watching.backend(cmd.backend, channel)
            job_id = watching.job_id(backend, cmd.job_id)
        except UserError as exc:
            await ack(text=str(exc))
            return
        # The person sees "Checking …" and then the answer, in that order, both through the response_url: the
        # answer is posted only once Slack has taken the "Checking" line. The ack stays empty, because Slack
        # shows an ack's text when the HTTP answer (or the socket ack) reaches it, which a quick answer
        # through the response_url can overtake; and a command's ephemeral cannot be replaced afterwards: a
        # response_url updates "the original interactive message", the one a user clicked in ("Updating
        # messages using response_url", https://docs.slack.dev/messaging/modifying-messages), and for a
        # command's own answers `replace_original` posts a new message (Slack's SDK maintainers:
        # slackapi/bolt-python#1268, slackapi/bolt-js#2287). "Checking" is tried once: a retry would only hold
        # the answer back.
        await ack()
        checking = asyncio.create_task(
            reply(respond, Answer(f"Checking {esc(backend.name)} job `{esc(job_id)}`…"), tries=1))
        try:
            answer = await self._answer(cmd, backend, job_id, channel, user)
        finally:
            await checking
        await reply(respond, answer)

    async def _answer(self, cmd: Command, backend: Backend, job_id: str, channel: str, user: str) -> Answer:
        watching = self.watching
        try:
            if cmd.verb == "watch":
                return await watching.watch(backend, job_id, channel, user)
            if cmd.verb == "status":
                return await watching.status(backend, job_id, user, channel)
            if cmd.verb == "unwatch":
                return await watching.unwatch(backend, job_id, channel, user)
            return await watching.cancel(backend, job_id, channel, user)
        except UserError as exc:
            return Answer(str(exc), ok=False)
        except Exception:
            log.exception("/jobstatus %s failed", cmd.verb)
            return Answer("Something went wrong on my side; nothing was changed. Please try again.", ok=False)
