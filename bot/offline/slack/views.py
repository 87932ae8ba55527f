"""The fake Slack's views: views.open (modals, by trigger_id) and views.publish (Home tabs), checked as Slack
checks them, and the trigger_ids that interactions hand out.

What Slack refuses, and where it says so:
- views.open takes a trigger_id (or an interactivity_pointer) and a view
  (https://docs.slack.dev/reference/methods/views.open). A trigger is used within 3 seconds of the
  interaction ("Pass a valid trigger_id within 3 seconds of receiving it",
  https://docs.slack.dev/tools/bolt-python/concepts/opening-modals) and once: the method's errors are
  `invalid_trigger_id` ("The expected format for the trigger_id argument is "132456.7890123.abcdef""),
  `expired_trigger_id` and `exchanged_trigger_id` ("already exchanged in a previous call"), as Slack's own
  method descriptions list them (slack-ruby/slack-api-ref, methods/views/views.open.json and views.push.json).
- views.publish takes a user_id and a view (https://docs.slack.dev/reference/methods/views.publish); a bad
  user_id is `invalid_arguments` with "invalid `user_id`" in response_metadata.messages (its example error),
  and a Home view while the app's Home tab is off is `not_enabled`.
- A view: a modal's title is plain_text of at most 24 characters, its close and submit at most 24, `submit`
  required when an input block is in the blocks, at most 100 blocks, private_metadata at most 3,000,
  callback_id at most 255 (https://docs.slack.dev/reference/views/modal-views); a Home view has no title,
  submit or close; a view over 250 kB is `view_too_large` (the method descriptions above). slack_sdk's `View`
  model knows these limits, and its blocks are checked as a message's are (blockkit.py), with 100 in place
  of 50. A view Slack cannot read (not JSON, not an object, a limit broken) is `invalid_arguments`, its
  reasons in response_metadata.messages as Slack's example shows them.
Neither method needs a scope ("Scopes: No scopes required" on both pages).
- A view_submission's ack may say `response_action: errors` with `errors`, an object whose keys are block_ids
  and whose values are the error texts (Bolt's type for it: https://docs.slack.dev/tools/bolt-js/reference/
  interfaces/ViewErrorsResponseAction, `[blockId: string]: string`); Slack shows each text under its input
  block (https://docs.slack.dev/tools/bolt-python/concepts/view-submissions, "displaying errors"). An answer
  naming a block that is not an input block of the view shows nothing on any field: `errors_problem` says so.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.views import View

from bot.offline.slack.blockkit import BlocksRefused, validate_blocks

TRIGGER_TTL = 3.0  # seconds a trigger_id can be exchanged for a modal
VIEW_MAX_BYTES = 250_000  # view_too_large past this ("greater than 250kb")
VIEW_MAX_BLOCKS = 100


class ViewRefused(Exception):
    def __init__(self, error: str, *messages: str) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)


@dataclass
class Trigger:
    user: str
    issued: float  # monotonic
    channel: str | None  # the conversation the person was viewing (default_to_current_conversation)
    used: bool = False


@dataclass
class FakeView:
    """A view as Slack holds it: a modal opened for a user, or a user's Home tab."""

    id: str
    type: str
    user: str
    view: dict[str, Any]  # what the app sent, as Slack answers it back (id, state, hash, ...)
    channel: str | None = None  # the conversation the modal was opened from, if any
    closed: bool = False
    published: list[dict[str, Any]] = field(default_factory=list)  # every version, oldest first


class Views:
    """The views part of FakeSlack (mixed in like SocketMode)."""

    team_id: str
    app_id: str
    bot_id: str
    users: dict[str, Any]
    _changed: Callable[..., None]

    def __init__(self) -> None:
        self.home_tab_enabled = True  # features.app_home.home_tab_enabled in the app's manifest
        self.views: dict[str, FakeView] = {}
        self.homes: dict[str, FakeView] = {}  # user -> their Home tab
        self._triggers: dict[str, Trigger] = {}
        self._view_ids = itertools.count(1)

    # -- what tests and the simulated user use ------------------------------------------------------------
    def new_trigger(self, user: str, channel: str | None = None) -> str:
        """A trigger_id for an interaction of `user` (in `channel`, if they were viewing one), in Slack's
        form."""
        trigger = f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        self._triggers[trigger] = Trigger(user, time.monotonic(), channel)
        return trigger

    def home_of(self, user: str) -> dict[str, Any] | None:
        """The Home tab `user` sees now (the last view published for them), or None."""
        home = self.homes.get(user)
        return home.view if home is not None else None

    def modals(self, user: str | None = None, *, open_only: bool = True) -> list[FakeView]:
        return [v for v in self.views.values() if v.type == "modal" and (user is None or v.user == user)
                and not (open_only and v.closed)]

    # -- Web API --------------------------------------------------------------------------------------------
    def _api_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger_id = str(args.get("trigger_id") or args.get("interactivity_pointer") or "")
        if not trigger_id:
            raise ViewRefused("invalid_arguments", "missing required field: trigger_id")
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise ViewRefused("invalid_trigger_id")
        if trigger.used:
            raise ViewRefused("exchanged_trigger_id")
        if time.monotonic() - trigger.issued > TRIGGER_TTL:
            raise ViewRefused("expired_trigger_id")
        view = self._checked_view(args.get("view"), "modal")
        trigger.used = True
        fake = self._store_view("modal", trigger.user, view, channel=trigger.channel)
        return {"view": fake.view}

    def _api_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user_id") or "")
        if user not in self.users:
            raise ViewRefused("invalid_arguments", "invalid `user_id`")
        view = self._checked_view(args.get("view"), "home")
        if not self.home_tab_enabled:
            raise ViewRefused("not_enabled")
        home = self.homes.get(user)
        if home is None:
            home = self.homes[user] = self._store_view("home", user, view)
        else:
            home.view = self._answered(home.id, view)
            home.published.append(home.view)
            self._changed("view")
        return {"view": home.view}

    # -- internals -------------------------------------------------------------------------------------------
    def _store_view(self, kind: str, user: str, view: dict[str, Any], channel: str | None = None) -> FakeView:
        vid = f"V{next(self._view_ids):08X}"
        answered = self._answered(vid, view)
        fake = FakeView(vid, kind, user, answered, channel, published=[answered])
        self.views[vid] = fake
        self._changed("view")
        return fake

    def _answered(self, vid: str, view: dict[str, Any]) -> dict[str, Any]:
        """The view as the methods answer it (views.publish's example response)."""
        return {"id": vid, "team_id": self.team_id, "app_id": self.app_id, "bot_id": self.bot_id,
                "state": {"values": {}}, "hash": f"{time.time():.7f}", "private_metadata": "",
                "callback_id": "", "external_id": "", "root_view_id": vid, "previous_view_id": None,
                "clear_on_close": False, "notify_on_close": False, "close": None, "submit": None, **view}

    @staticmethod
    def _checked_view(raw: Any, kind: str) -> dict[str, Any]:
        if isinstance(raw, str):
            if len(raw.encode()) > VIEW_MAX_BYTES:
                raise ViewRefused("view_too_large")
            try:
                raw = json.loads(raw)
            except ValueError:
                raise ViewRefused("invalid_arguments", "invalid `view`: not JSON") from None
        if not isinstance(raw, dict):
            raise ViewRefused("invalid_arguments", "invalid `view`")
        if len(json.dumps(raw).encode()) > VIEW_MAX_BYTES:
            raise ViewRefused("view_too_large")
        if raw.get("type") != kind:
            raise ViewRefused("invalid_arguments", f"invalid `view`: type must be {kind}")
        problems: list[str] = []
        try:
            View(**raw).to_dict()  # slack_sdk's validators: title, close, submit, blocks count, metadata, ids
        except SlackObjectFormationError as exc:
            problems.append(str(exc))
        except TypeError as exc:
            problems.append(f"invalid `view`: {exc}")
        blocks = raw.get("blocks")
        if not isinstance(blocks, list) or not blocks:
            problems.append("missing required field: blocks [json-pointer:/view/blocks]")
        else:
            try:
                validate_blocks(blocks, max_blocks=VIEW_MAX_BLOCKS)
            except BlocksRefused as exc:
                problems.extend(exc.extra.get("errors") or [exc.error])
            if kind == "modal" and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks) \
                    and not raw.get("submit"):
                problems.append("submit is required when an input block is within the blocks "
                                "[json-pointer:/view/submit]")
        if kind == "modal" and not raw.get("title"):
            problems.append("missing required field: title [json-pointer:/view/title]")
        if problems:
            raise ViewRefused("invalid_arguments", *problems)
        return raw


def errors_problem(view: dict[str, Any], answer: dict[str, Any] | None) -> str | None:
    """What Slack could not show of a view_submission ack that says `response_action: errors` (None: each
    error is a text on one of the view's input blocks). Other acks are not checked here."""
    if not isinstance(answer, dict) or answer.get("response_action") != "errors":
        return None
    errors = answer.get("errors")
    if not isinstance(errors, dict) or not errors:
        return "response_action errors without an `errors` object"
    inputs = {
        b.get("block_id")
        for b in view.get("blocks") or []
        if isinstance(b, dict) and b.get("type") == "input"
    }
    for block_id, text in errors.items():
        if block_id not in inputs:
            return (
                f"errors name {block_id!r}, which is not an input block of the view "
                f"(inputs: {sorted(map(str, inputs))})"
            )
        if not isinstance(text, str) or not text.strip():
            return f"the error of {block_id!r} is not a text"
    return None
