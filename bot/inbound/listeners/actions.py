"""The buttons on a watch's parent message (Cancel job, Stop watching, Refresh, Rewatch) and on the Home tab
(Stop watching, the same action): one listener."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond

from bot.domain.jobs import ButtonAction
from bot.inbound.home import HomeTab
from bot.inbound.listeners.respond import reply
from bot.operations.refusals import UserError
from bot.operations.watching import Answer, Watching

log = logging.getLogger(__name__)

# The action ids of our buttons, and only those (Bolt's `app.action` takes a pattern).
BUTTONS = re.compile("^(" + "|".join(re.escape(action.value) for action in ButtonAction) + ")$")


@dataclass(frozen=True)
class Click:
    """What a block_actions payload says about a click on one of our buttons. Anything in the payload
    that is not the type Slack sends (a forged or broken payload) reads as empty."""

    action_id: str
    value: str  # the watch id the button carries
    user: str
    channel: str
    message_ts: str  # the message the button was on
    on_home: bool = False  # clicked on the Home tab (a view, not a message)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Click:
        actions = body.get("actions")
        action = _dict(actions[0]) if isinstance(actions, list) and actions else {}
        container = _dict(body.get("container"))
        return cls(
            action_id=str(action.get("action_id") or ""),
            value=str(action.get("value") or ""),
            user=str(_dict(body.get("user")).get("id", "")),
            channel=str(_dict(body.get("channel")).get("id") or container.get("channel_id") or ""),
            message_ts=str(container.get("message_ts") or _dict(body.get("message")).get("ts") or ""),
            on_home=container.get("type") == "view" and _dict(body.get("view")).get("type") == "home",
        )


class Buttons:
    """The one listener of every button, on top of Watching's operations."""

    def __init__(self, watching: Watching, home: HomeTab) -> None:
        self.watching = watching
        self.home = home
        self.ops: dict[str, Callable[[int, str], Awaitable[Answer | None]]] = {
            ButtonAction.CANCEL: watching.cancel_watch,
            ButtonAction.STOP: watching.stop,
            ButtonAction.REFRESH: watching.refresh,
            ButtonAction.REWATCH: watching.rewatch,
        }

    async def clicked(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        click = Click.of(body)
        try:
            op = self.ops[click.action_id]
            if click.on_home:  # only Stop is there, on the clicker's own watches
                if click.action_id != ButtonAction.STOP:
                    raise UserError("That button is not one of the Home tab's.")
                watch_id = await self.watching.own_watch(click.value, click.user)
            else:
                watch_id = await self.watching.clicked_watch(click.value, click.channel, click.message_ts)
            answer = await op(watch_id, click.user)
        except UserError as exc:
            answer = Answer(str(exc), ok=False)
        except Exception:
            log.exception("button %s failed", click.action_id)
            answer = Answer("Something went wrong on my side; nothing was changed. Please try again.",
                            ok=False)
        if click.on_home:  # a view has no response_url: the tab, published again, says the answer on top
            await self.home.tell(click.user, answer.text if answer is not None else "Done.")
        elif answer is not None:
            await reply(respond, answer)


def _dict(value: Any) -> dict[str, Any]:
    """A payload part that should be an object; anything else (a forged or broken payload) is empty."""
    return value if isinstance(value, dict) else {}
