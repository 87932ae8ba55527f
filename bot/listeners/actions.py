"""The buttons on a watch's parent message: Cancel job, Stop watching, Refresh, Rewatch."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import messages, store
from bot.listeners.respond import reply
from bot.watching import Answer, UserError, Watching

log = logging.getLogger(__name__)


def register(app: AsyncApp, watching: Watching) -> None:
    ops: dict[str, Callable[[int, str], Awaitable[Answer | None]]] = {
        messages.ACTION_CANCEL: watching.cancel_watch,
        messages.ACTION_STOP: watching.stop,
        messages.ACTION_REFRESH: lambda watch_id, _user: watching.refresh(watch_id),
        messages.ACTION_REWATCH: watching.rewatch,
    }

    @app.action(re.compile(r"^jobstatus_(cancel|stop|refresh|rewatch)$"))
    async def on_button(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        actions = body.get("actions")
        action = _dict(actions[0]) if isinstance(actions, list) and actions else {}
        user = str(_dict(body.get("user")).get("id", ""))
        try:
            watch_id = await _watch_of(watching, body, action)
            answer = await ops[str(action.get("action_id"))](watch_id, user)
        except UserError as exc:
            answer = Answer(str(exc), ok=False)
        except Exception:
            log.exception("button %s failed", action.get("action_id"))
            answer = Answer("Something went wrong on my side; nothing was changed. Please try again.", ok=False)
        if answer is not None:
            await reply(respond, answer)


async def _watch_of(watching: Watching, body: dict[str, Any], action: dict[str, Any]) -> int:
    """The watch a button belongs to: its value, checked against the message it was clicked on."""
    value = str(action.get("value") or "")
    if not value.isdigit() or len(value) > 18:
        raise UserError("That button does not belong to a watch I know.")
    watch_id = int(value)
    pair = await watching.db.run(store.watch_and_job, watch_id)
    container = _dict(body.get("container"))
    channel = str(_dict(body.get("channel")).get("id") or container.get("channel_id") or "")
    ts = str(container.get("message_ts") or _dict(body.get("message")).get("ts") or "")
    if pair is None or pair[0].channel != channel or (pair[0].parent_ts and pair[0].parent_ts != ts):
        raise UserError("That button does not belong to a watch I know.")
    return watch_id


def _dict(value: Any) -> dict[str, Any]:
    """A payload part that should be an object; anything else (a forged or broken payload) is empty."""
    return value if isinstance(value, dict) else {}
