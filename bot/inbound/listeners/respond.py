"""The answer to the person who asked, through the response_url of their request: retried when Slack's
refusal is transient, one log line when it is final (bot/slack/errors.py classifies both)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncRespond

from bot.operations.watching import Answer
from bot.slack.errors import Outcome, classify_http, retry_after

log = logging.getLogger(__name__)

TRIES = 3  # a response_url takes five posts in 30 minutes: a few tries leave room for the others
RETRY_FIRST = 1.0  # seconds before the second try when Slack gives no Retry-After, doubling


async def reply(respond: AsyncRespond, answer: Answer, *, tries: int = TRIES) -> None:
    """Post `answer` to the person alone, a new message (never in place of the one a button was on), tried up
    to `tries` times; returns once Slack has taken it or it is given up."""
    kwargs: dict[str, Any] = {"text": answer.text, "response_type": "ephemeral", "replace_original": False}
    if answer.blocks:
        kwargs["blocks"] = answer.blocks
    for attempt in range(tries):
        wait: float | None = None
        try:
            resp = await respond(**kwargs)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:  # after slack_sdk's connection retries
            status, code, outcome = 0, type(exc).__name__, Outcome.RETRY
        else:
            if resp.status_code == 200:
                return
            status, code = resp.status_code, str(resp.body or "").strip()[:100]
            outcome = classify_http(status, code)
            wait = retry_after(resp.headers)
        if outcome is not Outcome.RETRY or attempt == tries - 1:
            log.warning("an answer to a Slack request was not delivered: response_url said %s %s",
                        status, code)
            return
        await asyncio.sleep(wait if wait is not None else RETRY_FIRST * 2**attempt)
