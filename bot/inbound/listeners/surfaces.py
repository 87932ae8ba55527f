"""The Home tab's event, the two "Watch a job" shortcuts and the modal they open.

A shortcut is acked and the modal opened at once: its trigger_id is good for 3 seconds, once
("Pass a valid trigger_id within 3 seconds of receiving it":
https://docs.slack.dev/tools/bolt-python/concepts/opening-modals). A submission is checked
before the ack with what costs nothing (the backend, the channel it may use, the job id's form), and a
refusal shows on its field (`response_action: errors`) in the words of `/jobstatus watch`. The vendor's
answer may take longer than the 3 seconds Slack gives a view_submission's ack, so a valid submission is
acked empty (the modal closes) and the watch is created after it, through the same operation as the slash
command; the person reads "Checking …" and the outcome in the chosen channel, only to them, through the
response_url that the channel select's `response_url_enabled` puts in the submission.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.backends.base import Backend
from bot.inbound.home import HomeTab
from bot.inbound.listeners.respond import reply
from bot.operations import permissions
from bot.operations.refusals import UserError
from bot.operations.watching import Answer, Watching
from bot.rendering import views
from bot.rendering.messages import esc
from bot.rendering.views import BACKEND, CHANNEL, JOB_ID, Submission

log = logging.getLogger(__name__)


class Surfaces:
    def __init__(self, watching: Watching, home: HomeTab) -> None:
        self.watching = watching
        self.home = home

    async def home_opened(self, event: dict[str, Any]) -> None:
        # app_home_opened comes for the Messages tab too (`tab`: "home" or "messages"):
        # https://docs.slack.dev/reference/events/app_home_opened
        user = event.get("user")
        if event.get("tab", "home") == "home" and isinstance(user, str) and user:
            await self.home.opened(user)

    async def shortcut(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        """Either shortcut: open the modal. A message shortcut proposes the job id in the message's text and
        its channel; the backends offered are those that channel may use (all, when none may)."""
        await ack()
        backends = await self._theirs(str(_dict(body.get("user")).get("id") or ""))
        channel = _dict(body.get("channel")).get("id") if body.get("type") == "message_action" else None
        channel = channel if isinstance(channel, str) and channel else None
        usable = {n: b for n, b in backends.items() if b.config.allows_channel(channel)} or dict(backends)
        job_id = backend = None
        if channel is not None:
            text = str(_dict(body.get("message")).get("text") or "")
            job_id, backend = views.job_id_in(text, usable)
            named = [n for n in usable if n.casefold() in text.casefold()]
            if backend is None and len(named) == 1:
                backend = named[0]
        view = views.watch_modal(sorted(usable), channel=channel, job_id=job_id, backend=backend)
        try:
            await client.views_open(trigger_id=str(body.get("trigger_id") or ""), view=view)
        except SlackApiError as exc:
            # an expired trigger (a slow ack) or a view Slack refuses: nothing to show
            log.warning("views.open for the Watch a job modal was refused: %s", exc.response.get("error"))

    async def _theirs(self, user: str) -> dict[str, Backend]:
        """The backends the modal offers `user`: those their `users` settings let them use (a payroll team's
        backend is not named to everyone); when that leaves none, those anyone may use (the submission is
        checked again anyway), and when there are none of those either, all of them."""
        backends = self.watching.backends
        theirs = {name: backends[name] for name in (await self.watching.usable(user))[0]}
        return theirs or {n: b for n, b in backends.items() if b.config.users is None} or dict(backends)

    async def submitted(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond | None) -> None:
        sub = Submission.of(_dict(body.get("view")))
        user = str(_dict(body.get("user")).get("id") or "")
        watching = self.watching
        errors: dict[str, str] = {}
        backend = job_id = None
        if not sub.channel:
            errors[CHANNEL] = "Choose the channel where the job's updates go."
        elif not sub.channel.startswith(("C", "G")):  # a direct message, preset by a message shortcut there
            errors[CHANNEL] = ("Choose a channel (public or private) for the job's updates: "
                               "they go to a thread there, not to a direct message.")
        elif not await self._member(user, sub.channel, errors):
            pass  # the error is on the channel field
        try:
            backend = watching.backend(sub.backend, sub.channel or None)
            job_id = watching.job_id(backend, sub.job_id)
        except UserError as exc:
            errors[JOB_ID if backend is not None else BACKEND] = views.plain(str(exc))
        if errors or backend is None or job_id is None:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        if respond is None:  # Slack sends a response_url for the channel select (response_url_enabled)
            log.warning("a Watch a job submission came without a response_url; its outcome is not shown")
        checking = asyncio.create_task(
            _say(respond, Answer(f"Checking {esc(backend.name)} job `{esc(job_id)}`…"), tries=1))
        answer: Answer
        try:
            answer = await watching.watch(backend, job_id, sub.channel, user)
        except UserError as exc:
            answer = Answer(str(exc), ok=False)
        except Exception:
            log.exception("the Watch a job modal's watch failed")
            answer = Answer("Something went wrong on my side; nothing was changed. Please try again.",
                            ok=False)
        finally:
            await checking
        await _say(respond, answer)


    async def _member(self, user: str, channel: str, errors: dict[str, str]) -> bool:
        """The modal's channel must be one the submitter is in (issue 19, item 5: else anyone could post a
        watch, and its failure details, into any public channel). Asked of Slack (conversations.members, anew,
        not from the cache: bot/operations/permissions.py) before the ack: a refusal shows on the channel
        field."""
        assert self.watching.perms is not None
        try:
            if await self.watching.perms.is_member(user, channel, fresh=True):
                return True
            errors[CHANNEL] = ("You are not a member of that channel: "
                               "choose one you are in (or join it first). "
                               "A private channel also needs me in it: /invite @jobstatus.")
        except permissions.Unknowable:
            errors[CHANNEL] = ("I cannot check that channel's members right now; nothing was done. "
                               "Try again in a minute.")
        return False


async def _say(respond: AsyncRespond | None, answer: Answer, *, tries: int | None = None) -> None:
    if respond is not None:
        await (reply(respond, answer) if tries is None else reply(respond, answer, tries=tries))


def _dict(value: Any) -> dict[str, Any]:
    """A payload part that should be an object; anything else (a forged or broken payload) is empty."""
    return value if isinstance(value, dict) else {}
