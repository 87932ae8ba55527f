"""Requests Slack would never send get a 400 and one log line, never a 500; forged ones still get a 401 first.

Two depths, because Bolt fails at two. Building its request object parses the body (slack_bolt's
request/internals.py `parse_body`: `json.loads` of the body or of its `payload` field, then
`build_async_context` reads it as an object), before any signature check: a body that is not UTF-8,
not JSON where JSON is due, or JSON but not an object raises there, and Bolt's aiohttp adapter turns that
into a 500. `handler()` checks the signature over the raw bytes first (bot/inbound/front.py: a forged request
is 401 before anything parses it, and costs one HMAC), then builds that object itself and answers a body that
does not parse with 400. A state-changing request whose signature was already used is refused (401). A body
that does parse goes to Bolt whole, and Bolt's own signature check. Right after that check, before Bolt's own
middleware reads the body (its authorization and self-event filters call `.get` on whatever `event`, `team` or
`authorizations` hold), `ShapeCheck` (Bolt's `before_authorize` hook, so Socket Mode requests pass it too)
refuses what is not a well-formed request of the kinds this app takes: its slash command, its buttons (on
messages and the Home tab), the Home tab's event, its two shortcuts and its modal's submission. After
Bolt's authorization, `TeamCheck` refuses requests from a workspace (or Enterprise Grid organization) other
than the one the bot is installed in, over HTTP and Socket Mode alike.
"""

from __future__ import annotations

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

from bot.inbound import front

log = logging.getLogger(__name__)


def handler(app: AsyncApp, signing_secret: str, seen: front.Seen | None = None,
            clock: Callable[[], float] = time.time) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The POST /slack/events handler: the signature first, over the raw bytes (bot/inbound/front.py), then
    the body parsed, a state-changing request's signature spent (`seen`), then Bolt's aiohttp adapter."""

    async def handle(request: web.Request) -> web.Response:
        try:
            raw = await front.read_signed(request, signing_secret, clock)
        except front.Unsigned as refused:
            log.debug("unsigned Slack request refused (%d): %s", refused.status, refused.why)
            return web.json_response({"error": "invalid request"}, status=refused.status)
        try:
            bolt_req = AsyncBoltRequest(body=raw.decode("utf-8"), query=request.query_string,
                                        headers=request.headers)  # type: ignore[arg-type]
            if not isinstance(bolt_req.body, dict):
                raise ValueError("not a JSON object")
        except Exception as exc:  # parsing only: whatever it raises, Bolt could not read the body
            # the exception's name only: its text may quote the body, and a body holds a response_url
            return _refuse(f"body does not parse ({type(exc).__name__})")
        if seen is not None and front.changes_state(bolt_req.body):
            try:
                fresh = await seen.first_use(request.headers)
            except Exception as exc:  # the database does not answer: a replay cannot be told from a first use
                orig = getattr(exc, "orig", None) or exc  # SQLAlchemy's wrapper keeps the driver's error
                log.warning("Slack request refused (503): the database does not answer (%s)",
                            type(orig).__name__)
                return web.json_response({"error": "try again"}, status=503)
            if not fresh:  # a signature already spent: a captured request sent again (Slack sends each once)
                log.warning("replayed Slack request refused (401): its signature was already used")
                return web.json_response({"error": "invalid request"}, status=401)
        return await to_aiohttp_response(await app.async_dispatch(bolt_req))

    return handle


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
        return ("not a request of the kinds this app takes "
                "(its slash command, buttons, Home tab, shortcuts, modal)")
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
        if (not isinstance(view, dict) or view.get("type") != "modal"
                or not isinstance(view.get("callback_id"), str)):
            return "view_submission without a modal view with a callback_id"
        urls = body.get("response_urls", [])
        if not isinstance(urls, list) or not all(
            isinstance(u, dict) and isinstance(u.get("response_url"), str) for u in urls
        ):
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


# -- one workspace -----------------------------------------------------------------------------------------

OTHER_TEAM = ("jobstatus works only for people of the workspace it is installed in, and this came from "
              "another one (a Slack Connect channel, or another workspace). Ask someone of that workspace to "
              "run it for you.")


class TeamCheck(AsyncMiddleware):
    """Refuses a request from a team (or, on Enterprise Grid, an organization) other than the installed one.

    The installed team is what `auth.test` answers for the bot's token (`team_id`, `enterprise_id`,
    `is_enterprise_install`: https://docs.slack.dev/reference/methods/auth.test): Bolt's single-workspace
    authorization calls it at the first request and keeps the answer (`context.authorize_result`), so this
    runs after it (a middleware given to `app.use`). The request's teams: a slash command's `team_id` and
    `enterprise_id` (https://docs.slack.dev/interactivity/implementing-slash-commands); an interaction's
    `team.id`, `enterprise.id` and the person's `user.team_id`, which in a Slack Connect channel is the
    clicker's own workspace and on Enterprise Grid may be the organization's id
    (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload); an event's `team_id`.

    The answer goes where Slack shows one: a slash command's ack, an ephemeral through a click's response_url,
    an error on a modal's first field; elsewhere (a Home-tab click, a shortcut, an event) a plain ack."""

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:
        installed = req.context.authorize_result
        if installed is None or installed.team_id is None and installed.enterprise_id is None:
            return await next()  # no installation known: Bolt's authorization has refused already
        why = foreign(req.body, installed.team_id, installed.enterprise_id,
                      bool(req.context.is_enterprise_install and installed.enterprise_id))
        if why is None:
            return await next()
        log.warning("request from another workspace refused: %s", why)
        body = req.body
        if "command" in body:
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": OTHER_TEAM})
        if body.get("type") == "block_actions" and req.context.respond is not None:
            await req.context.respond(text=OTHER_TEAM, response_type="ephemeral", replace_original=False)
        elif body.get("type") == "view_submission" and (field := _first_input(body.get("view"))) is not None:
            return BoltResponse(status=200, body={"response_action": "errors", "errors": {field: OTHER_TEAM}})
        return BoltResponse(status=200, body="")


def foreign(
    body: dict[str, Any], team_id: str | None, enterprise_id: str | None, org_wide: bool
) -> str | None:
    """Why `body` comes from outside the installation (None: it does not). `org_wide`: installed on a whole
    Enterprise Grid organization, where any of its workspaces is at home and only the organization counts."""
    teams, enterprises = _teams(body)
    home = {t for t in (team_id, enterprise_id) if t}
    if enterprise_id and any(e != enterprise_id for e in enterprises):
        return f"organization {sorted(set(enterprises))} is not the installed {enterprise_id}"
    if org_wide:
        return None
    strangers = sorted({t for t in teams if t not in home})
    return f"team {', '.join(strangers)} is not the installed {team_id}" if strangers else None


def _teams(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The team and enterprise ids a request names (ShapeCheck has made sure of the objects' types)."""
    teams: list[str] = []
    enterprises: list[str] = []
    if isinstance(body.get("team_id"), str) and body["team_id"]:
        teams.append(body["team_id"])
    if isinstance(body.get("enterprise_id"), str) and body["enterprise_id"]:
        enterprises.append(body["enterprise_id"])
    team = body.get("team")
    if isinstance(team, dict):
        if isinstance(team.get("id"), str):
            teams.append(team["id"])
        if isinstance(team.get("enterprise_id"), str):
            enterprises.append(team["enterprise_id"])
    user = body.get("user")
    if isinstance(user, dict) and isinstance(user.get("team_id"), str) and user["team_id"]:
        teams.append(user["team_id"])
    enterprise = body.get("enterprise")
    if isinstance(enterprise, dict) and isinstance(enterprise.get("id"), str):
        enterprises.append(enterprise["id"])
    return teams, enterprises


def _first_input(view: Any) -> str | None:
    """The block_id of a modal's first input block: where a view_submission's error is shown."""
    blocks = view.get("blocks") if isinstance(view, dict) else None
    for block in blocks if isinstance(blocks, list) else []:
        if (isinstance(block, dict) and block.get("type") == "input"
                and isinstance(block.get("block_id"), str)):
            return str(block["block_id"])
    return None
