"""What the bot asks of Slack's Web API outside a request's answer: `SlackSender`, and its AsyncWebClient
implementation. Every refusal comes out as one `SlackError` (the method that answered, Slack's code,
Retry-After), so the notifier classifies Slack's answers without knowing the client library.

Every call spends the method's budget first (bot/slack/budget.py), at the priority of what it carries; a 429
holds the method it refused (chat.postMessage's is its channel's: the notifier holds that channel's posts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.jobs import Reply, Upload
from bot.metrics import Metrics
from bot.slack.budget import Budget, Priority
from bot.slack.errors import Outcome, classify, retry_after
from bot.support.network import cause

T = TypeVar("T")

# A parent carries its watch's id in its message metadata (https://docs.slack.dev/messaging/message-metadata:
# `event_type` and a free-form `event_payload`), so a parent posted just before a crash can be found again in
# the channel's history (conversations.history with `include_all_metadata`, which "return[s] all metadata
# associated with messages": @slack/web-api's ConversationsHistoryArguments).
METADATA_EVENT = "jobstatus_watch"
NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)  # after slack_sdk's own connection retries


class SlackError(Exception):
    """Slack refused a call: `method` (the Web API method that answered), `error` (Slack's code)."""

    def __init__(self, method: str, error: str, retry_after: float | None = None) -> None:
        super().__init__(f"{method}: {error}")
        self.method = method
        self.error = error
        self.retry_after = retry_after  # seconds, when Slack said (429)


class SlackUnreachable(Exception):
    """Slack could not be reached (the network, after the client's own retries): transient."""


class SlackSender(Protocol):
    """The Slack calls the notifier and the operations make. Each raises SlackError or SlackUnreachable."""

    async def post_parent(self, channel: str, text: str, blocks: list[dict[str, Any]], watch_id: int) -> str:
        """Post a watch's parent message; returns its ts."""
        ...

    async def earlier_parent(self, channel: str, since: float, watch_id: int) -> str | None:
        """The ts of the watch's parent if one was posted in `channel` since `since` (before a crash)."""
        ...

    async def post_reply(self, channel: str, thread_ts: str, reply: Reply,
                         priority: Priority = Priority.DETAIL) -> None:
        """A reply in a thread; `priority`: CHANGE for a state change's (it goes first when the budget is
        short)."""
        ...

    async def post_message(self, channel: str, reply: Reply) -> str:
        """Post a message of its own in `channel` (a daily digest); returns its ts."""
        ...

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None: ...

    async def upload(self, channel: str, thread_ts: str, upload: Upload) -> None: ...

    async def auth_test(self) -> None:
        """Whether Slack takes the bot's token (raises when it does not)."""
        ...

    async def permalink(self, channel: str, ts: str) -> str | None: ...


# The top-level `text` (the notification and fallback of a message with blocks) has no `verbatim`: what it may
# turn into links or mentions is the call's `parse` and `link_names`. chat.update's `parse` defaults to
# `client`, unlike chat.postMessage's, and each call resets what it does not say
# (docs.slack.dev/reference/methods/ chat.update, arguments `parse` and `link_names`): say `none` and no
# user-group linking on every call, so a backend's `#channel` or `@here` in the text stays text; `<`, `>`, `&`
# are escaped (messages.esc).
PLAIN_TEXT: dict[str, Any] = {"parse": "none", "link_names": False}


class WebSender:
    """SlackSender over slack_sdk's AsyncWebClient; each call waits for its method's `budget`, and is counted
    in `metrics` by method and outcome."""

    def __init__(self, client: AsyncWebClient, metrics: Metrics, budget: Budget | None = None) -> None:
        self.client = client
        self.metrics = metrics
        self.budget = budget or Budget()

    async def post_parent(self, channel: str, text: str, blocks: list[dict[str, Any]], watch_id: int) -> str:
        resp = await self._call("chat.postMessage", self.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False, **PLAIN_TEXT,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"watch_id": watch_id}},
        ), Priority.PARENT)
        return str(resp["ts"])

    async def earlier_parent(self, channel: str, since: float, watch_id: int) -> str | None:
        resp = await self._call("conversations.history", self.client.conversations_history(
            channel=channel, oldest=str(since), limit=200, include_all_metadata=True), Priority.PARENT)
        messages: list[dict[str, Any]] = resp.get("messages") or []
        for msg in messages:
            meta = msg.get("metadata") or {}
            if (meta.get("event_type") == METADATA_EVENT
                    and (meta.get("event_payload") or {}).get("watch_id") == watch_id):
                return str(msg["ts"])
        return None

    async def post_reply(self, channel: str, thread_ts: str, reply: Reply,
                         priority: Priority = Priority.DETAIL) -> None:
        await self._call("chat.postMessage", self.client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=reply.text, blocks=reply.blocks or None,
            reply_broadcast=reply.broadcast, unfurl_links=False, unfurl_media=False, **PLAIN_TEXT,
        ), priority)

    async def post_message(self, channel: str, reply: Reply) -> str:
        resp = await self._call("chat.postMessage", self.client.chat_postMessage(
            channel=channel, text=reply.text, blocks=reply.blocks or None, unfurl_links=False,
            unfurl_media=False, **PLAIN_TEXT), Priority.DETAIL)
        return str(resp["ts"])

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        await self._call("chat.update",
                         self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks,
                                                 **PLAIN_TEXT),
                         Priority.UPDATE)

    async def upload(self, channel: str, thread_ts: str, upload: Upload) -> None:
        # files_upload_v2 calls files.getUploadURLExternal, then uploads, then files.completeUploadExternal:
        # a refusal names the one that answered; a failed upload in between raises slack_sdk's
        # SlackRequestError, which no table knows. Both budgeted methods are spent before it starts.
        async with self.budget.call("files.getUploadURLExternal", Priority.DETAIL):
            await self._call("files.completeUploadExternal", self.client.files_upload_v2(
                channel=channel, thread_ts=thread_ts, filename=upload.filename, title=upload.filename,
                content=upload.content,
            ), Priority.DETAIL)

    async def auth_test(self) -> None:
        await self._call("auth.test", self.client.auth_test(), Priority.CHANGE)

    async def permalink(self, channel: str, ts: str) -> str | None:
        resp = await self._call("chat.getPermalink",
                                self.client.chat_getPermalink(channel=channel, message_ts=ts),
                                Priority.DETAIL)
        return str(resp["permalink"]) if resp.get("permalink") else None

    async def _call(self, method: str, call: Coroutine[Any, Any, T], priority: Priority) -> T:
        """Await one client call once `method`'s budget allows; Slack's refusal becomes a SlackError, the
        network a SlackUnreachable. The call is counted under the method that answered and what its answer
        means (bot/slack/errors.py); a 429 holds that method's budget for its Retry-After (chat.postMessage's
        is the channel's second, which the notifier holds per channel)."""
        try:
            start = time.monotonic()
            async with self.budget.call(method, priority):
                self.metrics.budget_waited(method, time.monotonic() - start)
                result = await call
        except SlackApiError as exc:
            resp = exc.response
            error = str(resp.get("error") or "unknown_error") if resp is not None else "unknown_error"
            answered = str(getattr(resp, "api_url", "") or "").rstrip("/").rsplit("/", 1)[-1] or method
            self.metrics.slack_call(answered, classify(answered, error))
            wait = retry_after(getattr(resp, "headers", None))
            if wait is not None and getattr(resp, "status_code", None) == 429:
                self.metrics.slack_429(answered)
                if answered != "chat.postMessage":
                    self.budget.hold(answered, wait)
            raise SlackError(answered, error, wait) from exc
        except NETWORK_ERRORS as exc:
            self.metrics.slack_call(method, Outcome.RETRY)
            raise SlackUnreachable(f"Slack is unreachable: {cause(exc)}") from exc
        except asyncio.CancelledError:
            call.close()  # not started when it was the budget's wait that ended: no "never awaited" warning
            raise
        except Exception:  # a failed step in between (an upload's), which no table knows
            self.metrics.slack_call(method, None)
            raise
        self.metrics.slack_call(method, Outcome.SENT)
        return result
