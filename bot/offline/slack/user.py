"""A person in the fake Slack workspace: `SlackUser` sends the bot what Slack sends when someone acts.

Signed slash commands and `block_actions` button clicks over HTTP, exactly as Slack signs and encodes them,
plus raw or forged requests for security tests; or, made with `SlackUser.over_socket(fs)`, the same payloads
as Socket Mode envelopes. Each interaction returns a result: the bot's answer and its response_url.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Self

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bot.offline.slack.blockkit import iter_buttons, plain_text
from bot.offline.slack.records import Envelope, Ephemeral, Message, ResponsePost
from bot.offline.slack.views import errors_problem
from bot.offline.slack.webapi import API_APP_ID, FakeSlack


@dataclass
class InteractionResult:
    """The bot's answer to one request Slack sent it, and the response_url that came with it.

    Over HTTP: the HTTP status and body. Over Socket Mode: status 200 and the ack's payload as the body
    (text is that payload as JSON, "" for an empty ack), or status 0 with text "dispatch_failed" /
    "operation_timeout" when the envelope found no connection or was not acked; `envelope` is set.
    """

    status: int
    text: str  # raw body
    body: dict[str, Any] | None  # body parsed as JSON, if it was JSON
    elapsed: float  # seconds until the bot answered (Slack gives up after 3)
    response_url: str
    response_url_id: str
    fake_slack: FakeSlack = field(repr=False)
    envelope: Envelope | None = None  # Socket Mode only

    @classmethod
    def of(cls, sent: _Sent, fake_slack: FakeSlack, response_url: str, **own: Any) -> Self:
        """The result of the interaction `sent` that came with `response_url`; `own`: a subclass's fields."""
        return cls(status=sent.status, text=sent.text, body=sent.body, elapsed=sent.elapsed,
                   response_url=response_url, response_url_id=fake_slack.response_url_id(response_url),
                   fake_slack=fake_slack, envelope=sent.envelope, **own)

    @property
    def ok(self) -> bool:
        return self.status == 200

    def responses(self) -> list[ResponsePost]:
        """What the bot has posted to this request's response_url so far."""
        return self.fake_slack.responses(self.response_url_id)

    async def wait_responses(self, n: int = 1, timeout: float = 10.0) -> list[ResponsePost]:  # noqa: ASYNC109
        """Wait until at least `n` posts reached this response_url; returns them all."""
        await self.fake_slack.wait_for(
            lambda: len(self.responses()) >= n,
            timeout,
            what=f"{n} post(s) to response_url {self.response_url_id}",
        )
        return self.responses()


@dataclass
class CommandResult(InteractionResult):
    @property
    def ack_text(self) -> str:
        """The text the person sees from the ack ("" for an empty ack)."""
        if self.body is not None:
            return str(self.body.get("text", ""))
        return self.text


@dataclass
class ClickResult(InteractionResult):
    payload: dict[str, Any] = field(default_factory=dict)
    action: dict[str, Any] = field(default_factory=dict)


@dataclass
class SurfaceResult:
    """The bot's answer to an event, a shortcut, a click on the Home tab or a modal's submission (none of
    which has a response_url of its own)."""

    status: int
    text: str
    body: dict[str, Any] | None
    payload: dict[str, Any] = field(default_factory=dict)
    # a submission's, one per response_url_enabled select
    response_urls: list[str] = field(default_factory=list)
    # a submission's ack Slack could not show (offline/slack/views.py errors_problem)
    refused: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


class _Sent(NamedTuple):
    status: int
    text: str
    body: dict[str, Any] | None
    elapsed: float
    envelope: Envelope | None


TRANSPORTS = ("http", "socket")


class SlackUser:
    """A person in the workspace: sends signed slash commands and button clicks to the bot, as Slack does.

    `transport="http"` (default) POSTs signed requests to `bot_url`; `transport="socket"` (or
    `SlackUser.over_socket(fs)`) delivers the same payloads as Socket Mode envelopes over the fake's
    websocket to whatever client connected with `fs.app_token`, and reads the answer from the ack.
    """

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        fake_slack: FakeSlack,
        team_id: str = "T0001",
        *,
        api_app_id: str = API_APP_ID,
        team_domain: str = "fake",
        verification_token: str = "fake-verification-token",
        timeout: float = 10.0,  # noqa: ASYNC109  (the API the tests were promised)
        transport: str = "http",
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
        self.transport = transport
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.fake_slack = fake_slack
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.team_domain = team_domain
        self.verification_token = verification_token
        self.timeout = timeout
        self._verifier = SignatureVerifier(signing_secret)
        self.last_request: tuple[bytes, dict[str, str]] | None = None  # the last body and headers POSTed

    @classmethod
    def over_socket(cls, fake_slack: FakeSlack, team_id: str = "T0001", **kwargs: Any) -> SlackUser:
        """A person whose commands and clicks reach the bot over Socket Mode (no bot URL, no signing)."""
        return cls("", "unused-in-socket-mode", fake_slack, team_id, transport="socket", **kwargs)

    # ---- signing and raw requests ----------------------------------------------------------------

    def sign(self, body: bytes | str, timestamp: int | str | None = None) -> dict[str, str]:
        """Headers Slack would send with `body` (signature v0 over "v0:{timestamp}:{body}")."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._verifier.generate_signature(timestamp=ts, body=body)
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature or "",
        }

    async def post_raw(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """POST exactly `body` with exactly `headers` to the bot; returns (status, text)."""
        status, text, _ = await self._post(body, headers)
        return status, text

    async def replay(self) -> tuple[int, str]:
        """Send the last request again, byte for byte, headers and signature included: what someone who
        captured it (a proxy's log, a leaked HAR file) could do within Slack's 5-minute window."""
        if self.last_request is None:
            raise RuntimeError("nothing was sent yet")
        body, headers = self.last_request
        return await self.post_raw(body, dict(headers))

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, float]:
        if self.transport != "http":
            raise RuntimeError("this SlackUser acts over Socket Mode: it has no bot URL to POST to")
        self.last_request = (body, dict(headers))
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(self.bot_url, data=body, headers=headers) as resp,
        ):
            text = await resp.text()
            return resp.status, text, time.perf_counter() - started

    async def send_payload(self, payload: dict[str, Any]) -> tuple[int, str]:
        """Any interaction payload (block_actions, view_submission, ...): signed and form-encoded over
        HTTP, or an "interactive" envelope over Socket Mode. Returns (status, text) as in the results."""
        sent = await self._send("interactive", payload, {"payload": json.dumps(payload)})
        return sent.status, sent.text

    async def _send(self, envelope_type: str, payload: dict[str, Any], form: dict[str, str]) -> _Sent:
        """One interaction to the bot: `form` signed and POSTed (http), or `payload` in an envelope
        (socket)."""
        if self.transport == "socket":
            env = await self.fake_slack.deliver(envelope_type, payload, timeout=self.timeout)
            if env.ack is None:
                return _Sent(0, env.error or "operation_timeout", None, self.timeout, env)
            answer = env.ack.payload
            return _Sent(200, json.dumps(answer) if answer else "", answer, env.ack.elapsed or 0.0, env)
        body = urllib.parse.urlencode(form).encode()
        status, raw, elapsed = await self._post(body, self.sign(body))
        return _Sent(status, raw, _json_or_none(raw), elapsed, None)

    # ---- slash commands -----------------------------------------------------------------------------

    async def command(
        self,
        text: str,
        *,
        user_id: str = "U0001",
        user_name: str = "ana",
        channel_id: str = "C0001",
        command: str = "/jobstatus",
    ) -> CommandResult:
        """Type `{command} {text}` in `channel_id`: a signed slash-command request (or a "slash_commands"
        envelope over Socket Mode), as Slack sends it.

        The ack body is recorded as Slack shows it: an ephemeral for `user_id` (source "ack"), or a
        channel message when it says response_type "in_channel".
        """
        fs = self.fake_slack
        if user_id not in fs.users:  # someone new, typing in the channel: so they are in it
            fs.add_user(user_id, user_name)
            if channel_id in fs.channels:
                fs.channels[channel_id].members.add(user_id)
        response_url = fs.response_url(channel_id, user_id)
        form = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": fs.channel_name(channel_id),
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": fs.new_trigger(user_id, channel_id),
        }
        sent = await self._send("slash_commands", dict(form), form)
        result = CommandResult.of(sent, fs, response_url)
        if sent.status == 200 and sent.text.strip():
            self._record_ack(result, channel_id, user_id)
        return result

    def _record_ack(self, result: CommandResult, channel_id: str, user_id: str) -> None:
        """Show the ack body as Slack does: a channel message when it says response_type "in_channel",
        else an ephemeral for the person who typed the command."""
        body = result.body or {}
        text = str(body.get("text", "")) if result.body is not None else result.text
        blocks = body.get("blocks")
        if body.get("response_type") == "in_channel":
            self.fake_slack.store_message(channel_id, text, blocks=blocks)
        else:
            self.fake_slack.add_ephemeral(channel_id, user_id, text, blocks, source="ack",
                                          response_url_id=result.response_url_id)

    # ---- button clicks ---------------------------------------------------------------------------------

    def button(
        self, channel: str, message_ts: str, action_id: str | None = None, *, text: str | None = None,
        value: str | None = None,
    ) -> dict[str, Any]:
        """The button a `click` with the same arguments would press, as the message has it now (its `confirm`
        dialog, if any, is what the client shows first). Raises LookupError if the message or button is not
        there."""
        _msg, _ephemeral, blocks = self._shown(channel, message_ts)
        return _pick_button(blocks, action_id=action_id, text=text, value=value)[1]

    def _shown(
        self, channel: str, message_ts: str
    ) -> tuple[Message | None, Ephemeral | None, list[dict[str, Any]] | None]:
        """The message, or else the ephemeral, at `message_ts`, and its blocks; LookupError if neither is
        there."""
        fs = self.fake_slack
        try:
            msg = fs.message(channel, message_ts)
            return msg, None, msg.blocks
        except KeyError:
            ephemeral = next(
                (e for e in fs.ephemerals if e.channel == channel and e.ts == message_ts and not e.deleted),
                None,
            )
            if ephemeral is None:
                raise LookupError(f"no message {message_ts} in {channel}") from None
            return None, ephemeral, ephemeral.blocks

    async def click(
        self,
        channel: str,
        message_ts: str,
        action_id: str | None = None,
        *,
        text: str | None = None,
        value: str | None = None,
        user_id: str = "U0001",
        confirm: bool = True,
        from_team: str | None = None,
    ) -> ClickResult | None:
        """Click a button of a stored message (or ephemeral) found by action_id, button text or value.

        Sends a signed `block_actions` payload (an "interactive" envelope over Socket Mode) as Slack does. A
        button with a `confirm` dialog is pressed only once the person confirms: the dialog is the client's
        own, and its deny button closes it without sending anything
        (https://docs.slack.dev/reference/block-kit/composition-objects/confirmation-dialog-object). So with
        `confirm=False` nothing is sent and None is returned. Raises LookupError if the message or button is
        not there (`button` finds it the same way, to show its dialog first). `from_team`: the clicker belongs
        to that other workspace, as in a Slack Connect channel: the payload's `user.team_id` is the clicker's
        own workspace, `team` the one the interaction came through
        (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload).
        """
        fs = self.fake_slack
        msg, ephemeral, blocks = self._shown(channel, message_ts)
        block, button = _pick_button(blocks, action_id=action_id, text=text, value=value)
        block_index = (blocks or []).index(block)
        if button.get("confirm") and not confirm:
            return None
        user = fs.users.get(user_id) or fs.add_user(user_id, user_id.lower())
        response_url = fs.response_url(channel, user_id, message_ts, ephemeral=ephemeral is not None)
        action: dict[str, Any] = {
            "action_id": button.get("action_id") or "",
            "block_id": block.get("block_id") or f"fake-block-{block_index}",  # Slack invents one too
            "text": button.get("text"),
            "type": "button",
            "action_ts": f"{time.time():.6f}",
        }
        for key in ("value", "style", "url"):
            if key in button:
                action[key] = button[key]
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral is not None,
        }
        if msg is not None and msg.is_reply:
            container["thread_ts"] = msg.thread_ts
        team = from_team or self.team_id
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user_id, "username": user.name, "name": user.name, "team_id": team},
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": fs.new_trigger(user_id, channel),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": fs.channel_name(channel)},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        }
        if msg is not None:  # Slack omits `message` for ephemeral messages
            payload["message"] = fs.api_message(msg, include_metadata=False)
        sent = await self._send("interactive", payload, {"payload": json.dumps(payload)})
        return ClickResult.of(sent, fs, response_url, payload=payload, action=action)


    # ---- the Home tab, shortcuts and modals -------------------------------------------------------------
    # Payloads as Slack documents them: the Events API envelope (https://docs.slack.dev/apis/events-api/) of
    # app_home_opened (https://docs.slack.dev/reference/events/app_home_opened); shortcuts, `shortcut` global
    # and `message_action` on a message, with a trigger_id and, for the latter, the message, its channel and a
    # response_url (https://docs.slack.dev/reference/interaction-payloads/shortcuts-interaction-payload);
    # view_submission with the view, its state and a `response_urls` entry per conversation select that has
    # response_url_enabled (https://docs.slack.dev/reference/interaction-payloads/view-interactions-payload;
    # the entry's fields: block_id, action_id, channel_id, response_url).

    def _user(self, user_id: str) -> dict[str, Any]:
        fs = self.fake_slack
        user = fs.users.get(user_id) or fs.add_user(user_id, user_id.lower())
        return {"id": user_id, "username": user.name, "name": user.name, "team_id": self.team_id}

    async def open_home(self, user_id: str = "U0001", *, tab: str = "home") -> SurfaceResult:
        """The person opens the app's Home tab (or its Messages tab): an app_home_opened event."""
        fs = self.fake_slack
        self._user(user_id)
        home = fs.home_of(user_id)
        event: dict[str, Any] = {"type": "app_home_opened", "user": user_id, "channel": "D" + user_id[1:],
                                 "tab": tab, "event_ts": f"{time.time():.6f}"}
        if home is not None and tab == "home":
            event["view"] = home
        body = {"token": self.verification_token, "team_id": self.team_id, "api_app_id": self.api_app_id,
                "event": event, "type": "event_callback", "event_id": f"Ev{secrets.token_hex(5).upper()}",
                "event_time": int(time.time()), "is_ext_shared_channel": False,
                "authorizations": [{"enterprise_id": None, "team_id": self.team_id, "user_id": fs.bot_user_id,
                                    "is_bot": True, "is_enterprise_install": False}]}
        if self.transport == "socket":
            sent = await self._send("events_api", body, {})
        else:  # the Events API posts JSON, not a form
            raw = json.dumps(body).encode()
            status, text, elapsed = await self._post(
                raw, {**self.sign(raw), "Content-Type": "application/json"}
            )
            sent = _Sent(status, text, _json_or_none(text), elapsed, None)
        return SurfaceResult(sent.status, sent.text, sent.body, body)

    async def shortcut(self, callback_id: str, *, user_id: str = "U0001",
                       viewing: str | None = None) -> SurfaceResult:
        """A global shortcut, used while the person views channel `viewing` (if any)."""
        fs = self.fake_slack
        payload = {"type": "shortcut", "token": self.verification_token, "action_ts": f"{time.time():.6f}",
                   "team": {"id": self.team_id, "domain": self.team_domain}, "user": self._user(user_id),
                   "is_enterprise_install": False, "enterprise": None, "callback_id": callback_id,
                   "trigger_id": fs.new_trigger(user_id, viewing)}
        sent = await self._send("interactive", payload, {"payload": json.dumps(payload)})
        return SurfaceResult(sent.status, sent.text, sent.body, payload)

    async def message_shortcut(self, callback_id: str, channel: str, message_ts: str, *,
                               user_id: str = "U0001") -> SurfaceResult:
        """A message shortcut on a stored message."""
        fs = self.fake_slack
        msg = fs.message(channel, message_ts)
        payload = {
            "type": "message_action",
            "token": self.verification_token,
            "action_ts": f"{time.time():.6f}",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": self._user(user_id),
            "channel": {"id": channel, "name": fs.channel_name(channel)},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": fs.new_trigger(user_id, channel),
            "response_url": fs.response_url(channel, user_id),
            "message_ts": message_ts,
            "message": fs.api_message(msg, include_metadata=False),
        }
        sent = await self._send("interactive", payload, {"payload": json.dumps(payload)})
        return SurfaceResult(sent.status, sent.text, sent.body, payload)

    async def submit(self, view_id: str, values: dict[str, str] | None = None, *,
                     user_id: str | None = None) -> SurfaceResult:
        """Fill the open modal `view_id` (`values`: block_id -> the option's value, the text, or the channel;
        a field not given keeps what the modal set it to) and press its submit button. As Slack's client does,
        nothing is sent while a required field is empty (LookupError). The modal closes unless the bot's ack
        says `response_action` errors (or update / push)."""
        fs = self.fake_slack
        fake = fs.views.get(view_id)
        if fake is None or fake.closed or fake.type != "modal":
            raise LookupError(f"no open modal {view_id}")
        user_id = user_id or fake.user
        state: dict[str, dict[str, Any]] = {}
        response_urls: list[dict[str, str]] = []
        for block in fake.view.get("blocks") or []:
            if block.get("type") != "input":
                continue
            bid, el = block.get("block_id", ""), block.get("element") or {}
            given = (values or {}).get(bid)
            entry, filled = _input_state(el, given, fake.channel)
            if not filled and not block.get("optional"):
                raise LookupError(f"Slack's client does not submit with the required field {bid!r} empty")
            state[bid] = {el.get("action_id", ""): entry}
            if el.get("type") == "conversations_select" and el.get("response_url_enabled") and filled:
                channel = entry["selected_conversation"]
                response_urls.append(
                    {
                        "block_id": bid,
                        "action_id": el.get("action_id", ""),
                        "channel_id": channel,
                        "response_url": fs.response_url(channel, user_id),
                    }
                )
        view = {**fake.view, "state": {"values": state}}
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": fs.new_trigger(user_id, fake.channel),
            "view": view,
            "response_urls": response_urls,
            "is_enterprise_install": False,
            "enterprise": None,
        }
        sent = await self._send("interactive", payload, {"payload": json.dumps(payload)})
        action = (sent.body or {}).get("response_action")
        refused = errors_problem(fake.view, sent.body) if sent.status == 200 else None
        if sent.status == 200 and action not in ("errors", "update", "push"):
            fake.closed = True
            fs._changed("view")
        return SurfaceResult(
            sent.status, sent.text, sent.body, payload, [r["response_url"] for r in response_urls], refused
        )

    async def click_home(self, action_id: str, value: str, *, user_id: str = "U0001") -> SurfaceResult:
        """Click a button of `user_id`'s Home tab: a block_actions payload from a view (no response_url)."""
        fs = self.fake_slack
        home = fs.homes.get(user_id)
        if home is None:
            raise LookupError(f"{user_id} has no Home tab")
        block, button = _pick_button(home.view.get("blocks"), action_id=action_id, text=None, value=value)
        action = {
            "action_id": action_id,
            "block_id": block.get("block_id") or "fake-home-block",
            "type": "button",
            "text": button.get("text"),
            "value": value,
            "action_ts": f"{time.time():.6f}",
        }
        payload = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": {"type": "view", "view_id": home.id},
            "trigger_id": fs.new_trigger(user_id),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": home.view,
            "actions": [action],
        }
        sent = await self._send("interactive", payload, {"payload": json.dumps(payload)})
        return SurfaceResult(sent.status, sent.text, sent.body, payload)


def _input_state(
    element: dict[str, Any], given: str | None, channel: str | None
) -> tuple[dict[str, Any], bool]:
    """(the element's entry in a view's state, whether it holds a value): `given`, else its initial value."""
    kind = element.get("type")
    if kind == "static_select":
        options = {o.get("value"): o for o in element.get("options") or []}
        if given is not None and given not in options:
            raise LookupError(f"no option {given!r} in the select")
        option = options[given] if given is not None else element.get("initial_option")
        return {"type": kind, "selected_option": option}, option is not None
    if kind == "plain_text_input":
        text = given if given is not None else element.get("initial_value")
        return {"type": kind, "value": text or None}, bool(text)
    if kind == "conversations_select":
        picked = given or element.get("initial_conversation") or (
            channel if element.get("default_to_current_conversation") else None)
        return {"type": kind, "selected_conversation": picked}, bool(picked)
    raise LookupError(f"the fake Slack cannot fill a {kind} element")


def _pick_button(
    blocks: list[dict[str, Any]] | None, *, action_id: str | None, text: str | None, value: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    found = [
        (block, button)
        for block, button in iter_buttons(blocks)
        if (action_id is None or button.get("action_id") == action_id)
        and (text is None or plain_text(button.get("text")).strip().lower() == text.strip().lower())
        and (value is None or button.get("value") == value)
    ]
    if not found:
        have = [
            (b.get("action_id"), plain_text(b.get("text")), b.get("value")) for _, b in iter_buttons(blocks)
        ]
        raise LookupError(f"no button action_id={action_id!r} text={text!r} value={value!r}; buttons: {have}")
    return found[0]


def _json_or_none(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
