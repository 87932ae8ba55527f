"""Requests Slack would never send get a 400 and one log line, never a 500; forged ones still get a 401 first.

Two depths, because Bolt fails at two. Building its request object parses the body (slack_bolt's
request/internals.py `parse_body`: `json.loads` of the body or of its `payload` field, then
`build_async_context` reads it as an object), before any signature check: a body that is not UTF-8,
not JSON where JSON is due, or JSON but not an object raises there, and Bolt's aiohttp adapter turns that
into a 500. `handler()` builds that object itself and answers such a body with 400, once the signature
(checked as Bolt's RequestVerification does, over the raw bytes) holds, else 401. A body that does parse
goes to Bolt whole, and Bolt's own signature check. Right after that check, before Bolt's own middleware
reads the body (its authorization and self-event filters call `.get` on whatever `event`, `team` or
`authorizations` hold), `ShapeCheck` (Bolt's `before_authorize` hook, so Socket Mode requests pass it too)
refuses what is not a well-formed request of the kinds this app takes: its slash command, its buttons (on
messages and the Home tab), the Home tab's event, its two shortcuts and its modal's submission.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

MAX_AGE = 60 * 5  # seconds a signed request stays valid (slack_sdk's SignatureVerifier, Slack's guide)


def handler(app: AsyncApp, signing_secret: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The POST /slack/events handler: Bolt's aiohttp adapter, with unparseable bodies answered 400."""

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            bolt_req = AsyncBoltRequest(body=raw.decode("utf-8"), query=request.query_string,
                                        headers=request.headers)  # type: ignore[arg-type]
            if not isinstance(bolt_req.body, dict):
                raise ValueError("not a JSON object")
        except Exception as exc:  # parsing only: whatever it raises, Bolt could not read the body
            if not _signed(raw, request.headers, signing_secret):
                return web.json_response({"error": "invalid request"}, status=401)
            # the exception's name only: its text may quote the body, and a body holds a response_url
            return _refuse(f"body does not parse ({type(exc).__name__})")
        return await to_aiohttp_response(await app.async_dispatch(bolt_req))

    return handle


def _signed(raw: bytes, headers: Any, secret: str) -> bool:
    """Slack's v0 signature: HMAC-SHA256 of "v0:{timestamp}:{body}" with the signing secret
    (https://docs.slack.dev/authentication/verifying-requests-from-slack/), over the bytes as sent."""
    timestamp = str(headers.get("X-Slack-Request-Timestamp") or "")
    signature = str(headers.get("X-Slack-Signature") or "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_AGE:
        return False
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"v0={digest}", signature)


def _refuse(why: str) -> web.Response:
    _say_refused(why)
    return web.json_response({"error": "malformed request"}, status=400)


def _say_refused(why: str) -> None:
    log.warning("malformed Slack request refused (400): %s", why)


# What each kind of request must carry. Slash commands: https://api.slack.com/interactivity/slash-commands
# ("app command handling"), whose fields Bolt's own type declares required
# (https://docs.slack.dev/tools/bolt-js/reference/interfaces/SlashCommand). block_actions:
# https://docs.slack.dev/reference/interaction-payloads/block_actions-payload (objects where present);
# shortcuts: https://docs.slack.dev/reference/interaction-payloads/shortcuts-interaction-payload (`shortcut`
# global, `message_action` on a message); view_submission:
# https://docs.slack.dev/reference/interaction-payloads/view-interactions-payload.
COMMAND_FIELDS = ("command", "user_id", "channel_id", "team_id", "response_url")
PAYLOAD_KINDS = ("block_actions", "shortcut", "message_action", "view_submission")
PAYLOAD_OBJECTS = ("team", "user", "container", "channel", "message", "view", "state", "event")


class ShapeCheck(AsyncMiddleware):
    """Bolt's `before_authorize` hook. A middleware class, not a function: Bolt computes a function
    middleware's arguments from the body first (`to_action` indexes `actions`), which is what fails."""

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:
        why = _shape_problem(req.body)
        if why is not None:
            _say_refused(why)
            return BoltResponse(status=400, body={"error": "malformed request"})
        return await next()


def _shape_problem(body: dict[str, Any]) -> str | None:
    if "command" in body:
        missing = [f for f in COMMAND_FIELDS if not isinstance(body.get(f), str) or not body[f]]
        return f"slash command without {', '.join(missing)}" if missing else None
    kind = body.get("type")
    if kind == "url_verification":  # Slack's check of a request URL: Bolt answers it
        return None if isinstance(body.get("challenge"), str) else "url_verification without a challenge"
    if kind == "event_callback":  # the Events API's envelope: https://docs.slack.dev/apis/events-api/
        event = body.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "event_callback without an event object with a type"
        return _objects_problem(body, kind)
    if kind not in PAYLOAD_KINDS:
        return "not a request of the kinds this app takes (its slash command, buttons, Home tab, shortcuts, modal)"
    wrong = _objects_problem(body, kind)
    if wrong is not None:
        return wrong
    user = body.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return f"{kind} without a user id"
    if kind in ("shortcut", "message_action"):
        if not isinstance(body.get("callback_id"), str) or not isinstance(body.get("trigger_id"), str):
            return f"{kind} without a callback_id and a trigger_id"
        return None
    if kind == "view_submission":
        # Bolt's matchers index view["type"] (its workflow-step check) and, for a "workflow_step" view, the
        # payload's workflow_step: this app opens modals only, and a modal's submission names its view's type
        # and callback_id. Bolt's respond() posts to the first response_urls entry's response_url.
        view = body.get("view")
        if not isinstance(view, dict) or view.get("type") != "modal" or not isinstance(view.get("callback_id"), str):
            return "view_submission without a modal view with a callback_id"
        urls = body.get("response_urls", [])
        if not isinstance(urls, list) or not all(isinstance(u, dict) and isinstance(u.get("response_url"), str)
                                                 for u in urls):
            return "view_submission whose response_urls are not objects with a response_url"
        return None
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or not all(
            isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
        return "block_actions without a list of actions with action_id"
    # a click in a view (the Home tab) comes without a response_url: views have no message to answer
    # (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload, `response_url`)
    in_view = body["container"].get("type") == "view" if isinstance(body.get("container"), dict) else False
    if not in_view and not isinstance(body.get("response_url"), str):
        return "block_actions without a response_url"
    # a click in a view carries that view; the app's only view with buttons is the Home tab (its modal has
    # none), and the Home tab's answer is the tab published again, for want of a response_url
    if in_view and (not isinstance(body.get("view"), dict) or body["view"].get("type") != "home"):
        return "block_actions in a view that is not the Home tab"
    return None


def _objects_problem(body: dict[str, Any], kind: str) -> str | None:
    wrong = [k for k in PAYLOAD_OBJECTS if k in body and not isinstance(body[k], dict)]
    if "enterprise" in body and not isinstance(body["enterprise"], (dict, type(None))):
        wrong.append("enterprise")
    authorizations = body.get("authorizations")
    if authorizations is not None and not (isinstance(authorizations, list)
                                           and all(isinstance(a, dict) for a in authorizations)):
        wrong.append("authorizations")
    return f"{kind} with {', '.join(wrong)} of the wrong type" if wrong else None
