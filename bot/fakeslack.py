"""Loopback emulation of Slack for tests and the offline demo: a Web API server, signed user requests, a text view.

Three parts:

* `FakeSlack` — an aiohttp server on 127.0.0.1 that answers the Slack Web API methods the bot uses
  (point `AsyncWebClient(base_url=fs.api_url)` at it), stores channels, messages, threads, edits,
  ephemerals and files, serves `response_url`s and the file-upload URLs, and can inject faults.
  It also speaks Socket Mode: `apps.connections.open` (app-level `xapp-` token) hands out a
  `ws://127.0.0.1:PORT/socket-mode/<id>` URL; on it the fake says hello, answers pings, delivers
  envelopes (`await fs.deliver(...)`) and records the client's acks, and can send `disconnect`.
* `SlackUser` — what Slack sends to the bot when a person acts: signed slash commands and
  `block_actions` button clicks, plus raw/forged requests for security tests; or, made with
  `SlackUser.over_socket(fs)`, the same payloads as Socket Mode envelopes.
* `render_channel` — a channel as a person would see it, as plain text, with numbered buttons.

Everything recorded is plain Python state read directly by tests (`fs.calls`, `fs.messages(...)`,
`fs.ephemerals`, ...); `await fs.wait_for(...)` waits on a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
import random
import re
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "xoxb-fake-slack-token"
DEFAULT_APP_TOKEN = "xapp-1-A0FAKE-1-fake-app-level-token"
API_APP_ID = "A0FAKE"
PERMALINK_BASE = "https://fake.slack.test"
MAX_BLOCKS = 50
MAX_TEXT = 40_000  # chat.postMessage truncates past this: docs.slack.dev/changelog/2018-04-truncating-really-long-messages
UPDATE_MAX_TEXT = 4_000  # chat.update: msg_too_long, "The `text` field cannot exceed 4,000 characters"
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60.0
SOCKET_URL_TTL = 30.0  # a Socket Mode URL from apps.connections.open is for one connection, soon

# Web API methods answered by FakeSlack; anything else gets `unknown_method`.
METHODS = (
    "apps.connections.open",
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.delete",
    "chat.postEphemeral",
    "chat.getPermalink",
    "conversations.history",
    "conversations.replies",
    "conversations.info",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
    "users.info",
)

# Methods that take the app-level (xapp-) token; every other method takes the bot token.
APP_TOKEN_METHODS = ("apps.connections.open",)

# Fault names that are answered with an HTTP status instead of `200 {"ok": false}`.
_HTTP_FAULTS = {"ratelimited": 429, "server_error": 500, "internal_error": 500, "service_unavailable": 503}
# What a response_url answers when it refuses a post: an HTTP status and the error as plain text (a refused
# payload is a 400 with the bare error, e.g. "invalid_blocks": slackapi/java-slack-sdk#1017).
_RESPONSE_URL_STATUS = {"no_text": 400, "invalid_blocks": 400, "invalid_blocks_format": 400,
                        "expired_url": 404, "used_url": 404}

# Arguments that slack_sdk (or a form post) may send as JSON-encoded strings.
_JSON_ARGS = ("blocks", "attachments", "metadata", "files", "unfurls")


class SlackApiFault(Exception):
    """Raised inside a handler to answer `{"ok": false, "error": ...}` (HTTP 200)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


# --------------------------------------------------------------------------------------------------
# Recorded state


class _DictLike:
    """Lets a dataclass be read as `obj["field"]` / `obj.get("field")` as well as `obj.field`."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._field_names():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in self._field_names() else default

    def __contains__(self, key: object) -> bool:
        return key in self._field_names()

    def keys(self) -> list[str]:
        return list(self._field_names())

    def _field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))  # type: ignore[arg-type]


@dataclass
class Channel(_DictLike):
    """A conversation. `member`: the bot is in it; `members`: the people (user ids) who are."""

    id: str
    name: str
    member: bool = True
    private: bool = False
    archived: bool = False
    is_im: bool = False
    members: set[str] = field(default_factory=set)


@dataclass
class User(_DictLike):
    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False


@dataclass
class FakeFile(_DictLike):
    """A file announced by files.getUploadURLExternal; `content` is set when bytes reach the upload URL."""

    id: str
    filename: str
    length: int
    title: str = ""
    content: bytes | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    thread_ts: str | None = None

    def to_api(self, bot_user_id: str, created: int) -> dict[str, Any]:
        ext = self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else "text"
        return {
            "id": self.id,
            "name": self.filename,
            "title": self.title or self.filename,
            "filetype": ext,
            "mimetype": "text/plain" if ext in ("txt", "log", "text") else "application/octet-stream",
            "size": len(self.content) if self.content is not None else self.length,
            "user": bot_user_id,
            "created": created,
            "url_private": f"{PERMALINK_BASE}/files/{bot_user_id}/{self.id}/{self.filename}",
            "permalink": f"{PERMALINK_BASE}/files/{bot_user_id}/{self.id}/{self.filename}",
        }


@dataclass
class Message(_DictLike):
    """A stored channel message (top level or thread reply). `edits` counts chat.update/replace calls."""

    channel: str
    ts: str
    text: str = ""
    blocks: list[dict[str, Any]] | None = None
    user: str = ""
    bot_id: str | None = None
    thread_ts: str | None = None
    edits: int = 0
    metadata: dict[str, Any] | None = None
    reply_broadcast: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] | None = None
    unfurl_links: bool | None = None
    unfurl_media: bool | None = None
    deleted: bool = False
    posted_at: float = 0.0
    edited_ts: str | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)  # earlier (text, blocks), oldest first

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts


@dataclass
class Ephemeral(_DictLike):
    """Something only `user` sees: chat.postEphemeral, a response_url post, or a slash-command ack body.

    `source` is "chat.postEphemeral", "response_url" or "ack".
    """

    channel: str
    user: str
    ts: str
    text: str = ""
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"
    response_url_id: str | None = None
    edits: int = 0
    deleted: bool = False
    at: float = 0.0


@dataclass
class Call(_DictLike):
    """One request that reached FakeSlack. `args` has JSON-encoded fields (blocks, metadata, files) decoded."""

    method: str
    args: dict[str, Any]
    at: float
    ok: bool = True
    error: str | None = None
    status: int = 200


@dataclass
class SocketAck(_DictLike):
    """An acknowledgement the Socket Mode client sent: `{"envelope_id", "payload"?}`.

    `payload` is None for an empty ack. `elapsed` is seconds from the envelope being sent to this ack
    (None when no envelope with that id was sent); `duplicate` marks a second ack for one envelope.
    """

    envelope_id: str
    payload: dict[str, Any] | None
    at: float
    connection_id: str
    elapsed: float | None = None
    duplicate: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Envelope(_DictLike):
    """One Socket Mode envelope FakeSlack delivered (or tried to) with `deliver`.

    `error` is None when acked, "dispatch_failed" when no connection could take it, and
    "operation_timeout" when the client did not ack in time (what Slack shows the person).
    """

    envelope_id: str
    type: str  # slash_commands, interactive, events_api
    payload: dict[str, Any]
    accepts_response_payload: bool
    connection_id: str | None = None
    sent_at: float | None = None
    ack: SocketAck | None = None
    error: str | None = None

    @property
    def elapsed(self) -> float | None:
        return self.ack.elapsed if self.ack is not None else None


@dataclass
class SocketConnection(_DictLike):
    """One websocket a Socket Mode client opened with a URL from apps.connections.open.

    `received` holds every text message the client sent (acks included), parsed; `pings` counts its
    pings (each answered with a pong). `draining` is set once FakeSlack sent it a `disconnect`: it gets
    no more envelopes. `close_code` is the code of whoever closed first, `closed_by` "client" or "server".
    """

    id: str
    opened_at: float
    hello: dict[str, Any] = field(default_factory=dict)
    closed_at: float | None = None
    close_code: int | None = None
    closed_by: str | None = None
    pings: int = 0
    received: list[Any] = field(default_factory=list)
    draining: bool = False
    disconnect_reason: str | None = None
    ws: web.WebSocketResponse | None = field(default=None, repr=False, compare=False)

    @property
    def open(self) -> bool:
        return self.closed_at is None and self.ws is not None and not self.ws.closed


@dataclass
class ResponsePost(_DictLike):
    """One post to a response_url: the JSON sent, and what Slack did with it.

    `outcome` is "ephemeral", "in_channel", "replaced", "deleted", or an error (`used_url`, `expired_url`,
    `no_text`, `invalid_blocks`, an injected fault); `ts` is the message it posted or changed. `deleted` is
    the ts of the original it deleted (delete_original), also when it then posted a new message.
    """

    response_url_id: str
    payload: dict[str, Any]
    at: float
    outcome: str
    status: int = 200
    channel: str | None = None
    ts: str | None = None
    deleted: str | None = None

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))


@dataclass
class _ResponseTarget:
    id: str
    channel: str | None
    user: str | None
    message_ts: str | None  # the message a click came from (None for slash commands)
    ephemeral: bool
    created: float
    uses: int = 0


@dataclass
class Change:
    """Passed to `FakeSlack.subscribe` callbacks on every change of recorded state."""

    kind: str  # message, edit, delete, ephemeral, file, call, failed_call, channel, user, socket, envelope, ack
    version: int
    channel: str | None = None
    ts: str | None = None


# --------------------------------------------------------------------------------------------------
# Helpers


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _ts_to_permalink_id(ts: str) -> str:
    return "p" + ts.replace(".", "")


def _plain(obj: Any) -> str:
    """The text of a text object ({type, text}) or a string."""
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


def _block_buttons(block: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON pointer within the block, button) for the buttons of an actions block or a section accessory."""
    if not isinstance(block, dict):
        return
    if block.get("type") == "actions":
        for j, el in enumerate(block.get("elements") or []):
            if isinstance(el, dict) and el.get("type") == "button":
                yield f"/elements/{j}", el
    elif block.get("type") == "section":
        acc = block.get("accessory")
        if isinstance(acc, dict) and acc.get("type") == "button":
            yield "/accessory", acc


def _iter_buttons(blocks: list[dict[str, Any]] | None) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(block, button) for every button in actions blocks and section accessories, in reading order."""
    for block in blocks or []:
        for _, button in _block_buttons(block):
            yield block, button


# Block Kit, as Slack checks it. Every `blocks` argument (chat.postMessage, chat.update, chat.postEphemeral,
# a response_url post) is parsed with slack_sdk's own models, whose validators know most limits (button
# text 75 and value 2000, confirm title 100 / text 300 / confirm and deny 30, section text 3000, header
# 150, 10 fields, 25 actions elements, 10 context elements, block_id 255, ...). What they let through and
# Slack refuses is checked here, each rule with its source:
# - at most 50 blocks in a message: https://docs.slack.dev/reference/block-kit/blocks ("up to 50 blocks
#   in each message");
# - a text object's text has "minimum length is 1 and maximum length is 3000 characters", and its type is
#   plain_text or mrkdwn: https://docs.slack.dev/reference/block-kit/composition-objects/text-object
#   (so a context element's text, which slack_sdk does not measure, stops at 3,000 too; and Slack refuses
#   empty texts: slackapi/bolt-js#793, an empty mrkdwn section and an empty button text → invalid_blocks);
# - a section field's text is at most 2,000: https://docs.slack.dev/reference/block-kit/blocks/section-block
# - plain_text only: a button's text ("Can only be of type: plain_text",
#   https://docs.slack.dev/reference/block-kit/block-elements/button-element), a header's text
#   (https://docs.slack.dev/reference/block-kit/blocks/header-block), and a confirmation dialog's title,
#   confirm and deny (https://docs.slack.dev/reference/block-kit/composition-objects/confirmation-dialog-object).
#   That page now says plain_text for the dialog's `text` as well, where it used to say "a text object"
#   (mrkdwn allowed); what Slack does with a mrkdwn dialog text is not documented either way, so the fake
#   accepts both there;
# - action_ids are unique within a block ("Should be unique among all other action_ids in the containing
#   block", the button element reference) and block_ids within a message ("block_id should be unique for
#   each message", every block's reference);
# - an actions block's `elements` is "Required" and may not be empty: the reference gives no minimum, but
#   "Block Kit components do not allow an empty array for a property value" (slackapi/python-slack-sdk,
#   slack_sdk/models/basic_objects.py, beside EMPTY_ALLOWED_TYPE_AND_PROPERTY_LIST);
# - a block type slack_sdk does not know is refused (Slack's list of blocks is the reference above; the
#   exact words of Slack's refusal are not documented).
# The refusal has Slack's shape: `errors` (one "<why> [json-pointer:<where>]" each) and the same again as
# response_metadata.messages with "[ERROR] " before each, as real answers show (slackapi/python-slack-sdk#1521:
# 'errors': ['invalid slack file [json-pointer:/blocks/2/slack_file.id/slack_file]'], 'response_metadata':
# {'messages': ['[ERROR] invalid slack file [json-pointer:/blocks/2/slack_file.id/slack_file]']}).
TEXT_TYPES = ("plain_text", "mrkdwn")
TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000


def _validate_blocks(blocks: Any) -> list[dict[str, Any]] | None:
    """`blocks` if Slack would take it; SlackApiFault("invalid_blocks", errors=...) listing every problem,
    or "invalid_blocks_format" when it is not an array at all."""
    if blocks is None:
        return None
    if not isinstance(blocks, list):
        raise SlackApiFault("invalid_blocks_format")
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    block_ids: set[Any] = set()
    for i, block in enumerate(blocks):
        pointer = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"missing required field: type [json-pointer:{pointer}]")
            continue
        bid = block.get("block_id")
        if bid is not None:
            if bid in block_ids:
                errors.append(f"duplicate block_id {bid!r} [json-pointer:{pointer}/block_id]")
            block_ids.add(bid)
        sdk_error = _sdk_block_error(block)
        if sdk_error is not None:
            errors.append(f"{sdk_error} [json-pointer:{pointer}]")
        errors.extend(f"{why} [json-pointer:{pointer}{where}]" for where, why in _block_limits(block))
    if errors:
        raise SlackApiFault("invalid_blocks", errors=errors,
                            response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
    return blocks


def _sdk_block_error(block: dict[str, Any]) -> str | None:
    """What slack_sdk's models say is wrong with `block` (None: nothing)."""
    try:
        parsed = Block.parse(block)
        if parsed is None:  # a type slack_sdk does not know (it logs and skips it)
            return f"unsupported block type {block['type']!r}"
        parsed.to_dict()  # runs the validators of the block and of everything in it
    except SlackObjectFormationError as exc:
        return str(exc)
    except Exception:  # a required field missing, a list where an object belongs...: the models cannot build it
        return "failed to match all allowed schemas"
    return None


def _text_objects(node: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(pointer, text object) for every plain_text / mrkdwn object anywhere in `node`."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _text_objects(item, f"{pointer}/{i}")
    elif isinstance(node, dict):
        if node.get("type") in TEXT_TYPES:
            yield pointer, node
            return
        for key, value in node.items():
            yield from _text_objects(value, f"{pointer}/{key}")


def _block_limits(block: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(pointer within the block, why) for what slack_sdk lets through and Slack refuses (sources above)."""
    for where, obj in _text_objects(block):
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            yield f"{where}/text", "must be more than 0 characters"
        elif len(text) > TEXT_MAX:
            yield f"{where}/text", f"must be less than {TEXT_MAX + 1} characters"
    kind = block["type"]
    texts: list[tuple[str, Any]] = []  # where a text object (and nothing else) belongs
    plain_only: list[tuple[str, Any]] = []
    if kind == "section":
        if "text" in block:
            texts.append(("/text", block["text"]))
        for j, f in enumerate(block.get("fields") or []):
            texts.append((f"/fields/{j}", f))
            if isinstance(f, dict) and isinstance(f.get("text"), str) and len(f["text"]) > FIELD_TEXT_MAX:
                yield f"/fields/{j}/text", f"must be less than {FIELD_TEXT_MAX + 1} characters"
    elif kind == "header":
        plain_only.append(("/text", block.get("text")))
    elif kind == "context":
        texts.extend((f"/elements/{j}", el) for j, el in enumerate(block.get("elements") or [])
                     if not (isinstance(el, dict) and el.get("type") == "image"))
    elif kind == "actions":
        elements = block.get("elements") or []
        if not elements:
            yield "/elements", "must provide at least 1 item"
        ids = [e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")]
        if len(ids) != len(set(ids)):
            yield "/elements", "action_id already exists in this block"
    for where, button in _block_buttons(block):
        plain_only.append((f"{where}/text", button.get("text")))
        dialog = button.get("confirm")
        if isinstance(dialog, dict):
            plain_only.extend((f"{where}/confirm/{key}", dialog.get(key)) for key in ("title", "confirm", "deny"))
    for where, obj in texts:
        if not (isinstance(obj, dict) and obj.get("type") in TEXT_TYPES):
            yield where, "failed to match all allowed schemas"
    for where, obj in plain_only:
        if not (isinstance(obj, dict) and obj.get("type") == "plain_text"):
            yield f"{where}/type", "must be plain_text"


# --------------------------------------------------------------------------------------------------
# The Web API server


class FakeSlack:
    """Slack's Web API, response_urls and upload URLs on 127.0.0.1 (port 0 = any free port).

    Default users: U0001 ana, U0002 ben; default channels: C0001 #general and C0002 #finance-close, with
    the bot and both users in each.

    Socket Mode: a client that calls apps.connections.open with `app_token` and connects to the URL
    gets envelopes from `deliver` (which `SlackUser.over_socket` uses); `socket_disconnect` and
    `close_sockets` make it reconnect. Recorded in `socket_connections`, `envelopes`, `socket_acks`.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        team_id: str = "T0001",
        team_name: str = "Fake Workspace",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        bot_name: str = "jobstatus",
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
        default_channels: bool = True,
    ) -> None:
        self.token = token
        self.app_token = app_token  # the app-level token apps.connections.open wants
        self.team_id = team_id
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.clock = clock
        self.host = host
        self.port = port
        # Behaviour switches tests may flip.
        self.require_membership = False  # public non-member channel → not_in_channel
        self.token_revoked = False  # every call → token_revoked
        self.fail_rate = 0.0  # share of Web API calls answered with `fail_kind`
        self.fail_kind = "ratelimited"  # "ratelimited" (429 + Retry-After) or "server_error" (500/503)
        self.fail_methods: set[str] | None = None  # methods fail_rate applies to; None = all
        self.retry_after = 1  # seconds, sent with every 429
        self.rng = random.Random(seed)
        # Recorded state.
        self.calls: list[Call] = []
        self.failed_calls: list[Call] = []
        self.ephemerals: list[Ephemeral] = []
        self.response_posts: list[ResponsePost] = []
        self.files: dict[str, FakeFile] = {}
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, User] = {}
        self.socket_connections: list[SocketConnection] = []
        self.envelopes: list[Envelope] = []
        self.socket_acks: list[SocketAck] = []
        self.version = 0
        self._messages: dict[str, list[Message]] = {}
        self._index: dict[tuple[str, str], Message] = {}
        self._targets: dict[str, _ResponseTarget] = {}
        self._faults: dict[str, list[str]] = {}
        self._last_us = 0
        self._ids = itertools.count(1)
        self._event = asyncio.Event()
        self._subscribers: list[Callable[[Change], Any]] = []
        self._runner: web.AppRunner | None = None
        self._socket_urls: dict[str, float] = {}  # connection id → when apps.connections.open issued it
        self._envelope_index: dict[str, Envelope] = {}
        self._envelope_started: dict[str, float] = {}
        self._pending_acks: dict[str, asyncio.Future[SocketAck]] = {}
        self.add_user(bot_user_id, bot_name, is_bot=True)
        if default_channels:
            self.add_user("U0001", "ana", real_name="Ana Lima")
            self.add_user("U0002", "ben", real_name="Ben Okafor")
            self.add_channel("C0001", "general")
            self.add_channel("C0002", "finance-close")

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_post("/response/{rid}", self._handle_response_url)
        app.router.add_get("/socket-mode/{cid}", self._handle_socket)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        await self.close_sockets(message=b"server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._runner is None or not self.port:
            raise RuntimeError("FakeSlack is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """What the bot gets as SLACK_API_URL (AsyncWebClient's base_url)."""
        return f"{self.base_url}/api/"

    # ---- workspace setup ------------------------------------------------------------------------

    def add_channel(
        self,
        id: str,
        name: str,
        *,
        member: bool = True,
        private: bool = False,
        archived: bool = False,
        members: Iterable[str] | None = None,
    ) -> Channel:
        """A channel; `member` is the bot's membership, `members` the people in it (default: everyone
        in the workspace now)."""
        people = {u.id for u in self.users.values() if not u.is_bot} if members is None else set(members)
        ch = Channel(id=id, name=name.lstrip("#"), member=member, private=private, archived=archived,
                     members=people)
        self.channels[id] = ch
        self._messages.setdefault(id, [])
        self._changed("channel", channel=id)
        return ch

    def add_user(self, id: str, name: str, *, real_name: str = "", is_bot: bool = False) -> User:
        user = User(id=id, name=name, real_name=real_name or name, is_bot=is_bot)
        self.users[id] = user
        self._changed("user")
        return user

    def _new_message(self, channel: str, text: str, *, user: str | None = None, **fields: Any) -> Message:
        """Store a new top-level message or reply, posted now; by the bot unless `user` is given."""
        bot = {} if user else {"bot_id": self.bot_id}
        msg = Message(channel=channel, ts=self._next_ts(), text=text, user=user or self.bot_user_id,
                      posted_at=self.clock(), **bot, **fields)
        self._store(msg)
        return msg

    def post_user_message(
        self, channel: str, text: str, *, user: str = "U0001", thread_ts: str | None = None
    ) -> Message:
        """A message a person wrote (not via the API), e.g. a human reply in a bot thread."""
        return self._new_message(channel, text, user=user, thread_ts=thread_ts)

    def seed_message(
        self,
        channel: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """A message the bot posted before now, stored without an API call (no `calls` entry): e.g. the
        parents of watches a benchmark writes straight into the bot's database. Returns its ts; the bot
        can chat.update it and reply in its thread like any message it posted."""
        if channel not in self.channels:
            raise KeyError(f"no channel {channel}")
        return self._new_message(channel, text, blocks=blocks, metadata=metadata).ts

    # ---- faults -----------------------------------------------------------------------------------

    def fail_next(self, method: str, error: str = "ratelimited", times: int = 1) -> None:
        """The next `times` calls of `method` fail with `error` and are not applied.

        `method` is a Web API method, or "upload" (the upload URL) or "response_url".
        "ratelimited" → HTTP 429 + Retry-After; "server_error"/"internal_error" → 500;
        "service_unavailable" → 503; anything else (channel_not_found, token_revoked, ...) → 200 ok:false.
        """
        self._faults.setdefault(method, []).extend([error] * times)

    def _take_fault(self, method: str) -> str | None:
        queue = self._faults.get(method)
        if queue:
            return queue.pop(0)
        if (
            method in METHODS
            and self.fail_rate > 0
            and (self.fail_methods is None or method in self.fail_methods)
        ):
            if self.rng.random() < self.fail_rate:
                if self.fail_kind == "server_error":
                    return self.rng.choice(["server_error", "service_unavailable"])
                return self.fail_kind
        return None

    # ---- reading state ----------------------------------------------------------------------------

    def messages(self, channel: str, *, include_broadcasts: bool = False) -> list[Message]:
        """Top-level messages of `channel`, oldest first (thread broadcasts too if asked)."""
        return [
            m
            for m in self._messages.get(channel, [])
            if not m.deleted and (not m.is_reply or (include_broadcasts and m.reply_broadcast))
        ]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Replies in the thread whose parent is `ts`, oldest first (the parent excluded)."""
        return [
            m for m in self._messages.get(channel, []) if not m.deleted and m.is_reply and m.thread_ts == ts
        ]

    def message(self, channel: str, ts: str) -> Message:
        """The stored message (top level or reply); KeyError if unknown or deleted."""
        msg = self._index.get((channel, ts))
        if msg is None or msg.deleted:
            raise KeyError(f"no message {ts} in {channel}")
        return msg

    def ephemerals_for(self, user: str | None = None, channel: str | None = None) -> list[Ephemeral]:
        return [
            e
            for e in self.ephemerals
            if not e.deleted
            and (user is None or e.user == user)
            and (channel is None or e.channel == channel)
        ]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def responses(self, response_url_id: str) -> list[ResponsePost]:
        """Everything posted to one response_url, in order."""
        return [p for p in self.response_posts if p.response_url_id == response_url_id]

    def channel_name(self, channel: str) -> str:
        ch = self.channels.get(channel)
        return ch.name if ch else channel

    def user_name(self, user: str) -> str:
        u = self.users.get(user)
        return u.name if u else user

    # ---- change notification ------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Change], Any]) -> Callable[[], None]:
        """Call `callback(change)` after every change (for a UI to redraw); returns an unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    async def changed(self, after: int | None = None, timeout: float | None = None) -> int:  # noqa: ASYNC109
        """Wait until `version` exceeds `after` (default: the current version); returns the new version."""
        after = self.version if after is None else after
        async with asyncio.timeout(timeout):
            while self.version <= after:
                await self._event.wait()
        return self.version

    async def wait_for(
        self,
        predicate: Callable[[], Any] | Callable[[], Awaitable[Any]],
        timeout: float = 10.0,  # noqa: ASYNC109  (the API the tests were promised)
        *,
        poll: float | None = 0.5,
        what: str | None = None,
    ) -> Any:
        """Wait until `predicate()` is truthy and return its value; re-checked on every change.

        A predicate raising LookupError (KeyError, IndexError) counts as "not yet". `poll` also re-checks
        every so many seconds, for predicates that read state outside FakeSlack. On the deadline, raises
        AssertionError with a dump of everything recorded.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_exc: BaseException | None = None
        while True:
            event = self._event
            try:
                result = predicate()
                if inspect.isawaitable(result):
                    result = await result
            except LookupError as exc:
                result, last_exc = None, exc
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(self._timeout_report(predicate, timeout, what, last_exc))
            wait = remaining if poll is None else min(remaining, poll)
            try:
                await asyncio.wait_for(event.wait(), wait)
            except TimeoutError:
                pass

    def dump(self) -> str:
        """Everything recorded, human readable (used in wait_for failures)."""
        out: list[str] = []
        out.append(f"calls ({len(self.calls)}, last 40):")
        for c in self.calls[-40:]:
            out.append(f"  {c.method} ok={c.ok}{' error=' + c.error if c.error else ''} {_short(c.args)}")
        if self.failed_calls:
            out.append(f"failed_calls ({len(self.failed_calls)}, last 20):")
            for c in self.failed_calls[-20:]:
                out.append(f"  {c.method} status={c.status} error={c.error} {_short(c.args)}")
        if self.socket_connections:
            out.append(f"socket connections ({len(self.socket_connections)}):")
            for s in self.socket_connections:
                state = "open" if s.open else f"closed code={s.close_code}"
                out.append(f"  {s.id} {state}{' draining' if s.draining else ''} pings={s.pings}")
        if self.envelopes:
            out.append(f"envelopes ({len(self.envelopes)}, last 10):")
            for e in self.envelopes[-10:]:
                acked = f"acked {_short(e.ack.payload or {})}" if e.ack else f"error={e.error}"
                out.append(f"  {e.type} {e.envelope_id[:8]} on {e.connection_id} {acked}")
        for cid in self.channels:
            if self._messages.get(cid) or self.ephemerals_for(channel=cid):
                out.append(render_channel(self, cid))
        return "\n".join(out)

    def _timeout_report(
        self, predicate: Any, timeout: float, what: str | None, exc: BaseException | None
    ) -> str:
        name = what or getattr(predicate, "__name__", repr(predicate))
        try:
            src = inspect.getsource(predicate).strip() if name == "<lambda>" else ""
        except (OSError, TypeError):
            src = ""
        head = f"FakeSlack.wait_for timed out after {timeout}s waiting for {src or name}"
        if exc is not None:
            head += f"\n  (predicate last raised {type(exc).__name__}: {exc})"
        return head + "\n" + self.dump()

    def _changed(self, kind: str, *, channel: str | None = None, ts: str | None = None) -> None:
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()
        change = Change(kind=kind, version=self.version, channel=channel, ts=ts)
        for cb in list(self._subscribers):
            try:
                cb(change)
            except Exception:  # a UI bug must not break the fake
                log.exception("FakeSlack subscriber failed")

    # ---- response_url ------------------------------------------------------------------------------

    def response_url(
        self,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
        *,
        ephemeral: bool = False,
    ) -> str:
        """A fresh loopback response_url. With `message_ts` it belongs to a click on that message
        (replace_original / delete_original act on it); without, to a slash command."""
        rid = secrets.token_hex(8)
        self._targets[rid] = _ResponseTarget(rid, channel, user, message_ts, ephemeral, self.clock())
        return f"{self.base_url}/response/{rid}"

    @staticmethod
    def response_url_id(url: str) -> str:
        return url.rstrip("/").rsplit("/", 1)[-1]

    # ---- internals: storage -------------------------------------------------------------------------

    def _next_ts(self) -> str:
        us = max(int(self.clock() * 1_000_000), self._last_us + 1)
        self._last_us = us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    def _store(self, msg: Message) -> None:
        self._messages.setdefault(msg.channel, []).append(msg)
        self._index[(msg.channel, msg.ts)] = msg
        self._changed("message", channel=msg.channel, ts=msg.ts)

    def _edit(self, msg: Message, *, text: str, blocks: list[dict[str, Any]] | None, **extra: Any) -> None:
        msg.versions.append({"text": msg.text, "blocks": msg.blocks})
        msg.text = text
        msg.blocks = blocks
        for key, value in extra.items():
            setattr(msg, key, value)
        msg.edits += 1
        msg.edited_ts = self._next_ts()
        self._changed("edit", channel=msg.channel, ts=msg.ts)

    def _replies_of(self, msg: Message) -> list[Message]:
        return self.thread(msg.channel, msg.ts)

    def _api_message(self, msg: Message, *, include_metadata: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "message",
            "user": msg.user,
            "text": msg.text,
            "ts": msg.ts,
            "team": self.team_id,
        }
        if msg.bot_id:
            out["bot_id"] = msg.bot_id
            out["app_id"] = API_APP_ID
        if msg.blocks is not None:
            out["blocks"] = msg.blocks
        if msg.attachments:
            out["attachments"] = msg.attachments
        if msg.files:
            out["files"] = msg.files
            out["upload"] = True
        if msg.thread_ts:
            out["thread_ts"] = msg.thread_ts
        if msg.is_reply and msg.reply_broadcast:
            out["subtype"] = "thread_broadcast"
        if not msg.is_reply:
            replies = self._replies_of(msg)
            if replies:
                out["thread_ts"] = msg.ts
                out["reply_count"] = len(replies)
                out["reply_users"] = sorted({r.user for r in replies})
                out["latest_reply"] = replies[-1].ts
        if msg.edits:
            out["edited"] = {"user": msg.user, "ts": msg.edited_ts}
        if include_metadata and msg.metadata is not None:
            out["metadata"] = msg.metadata
        return out

    # ---- internals: checks ------------------------------------------------------------------------

    def _resolve_channel(self, ref: Any) -> Channel:
        ref = str(ref or "").strip()
        if not ref:
            raise SlackApiFault("channel_not_found")
        ch = self.channels.get(ref)
        if ch is None and ref.startswith("U") and ref in self.users:  # posting to a user id opens the DM
            dm = "D" + ref[1:]
            ch = self.channels.get(dm) or self.add_channel(dm, self.users[ref].name, private=True, members=[ref])
            ch.is_im = True
        if ch is None:
            name = ref.lstrip("#")
            ch = next((c for c in self.channels.values() if c.name == name and not c.is_im), None)
        if ch is None or (ch.private and not ch.member):
            raise SlackApiFault("channel_not_found")
        return ch

    def _writable(self, ref: Any) -> Channel:
        """A channel the bot may post in: with chat:write.public (which the manifest asks for) that is any
        public channel, joined or not; `require_membership` plays an app without that scope."""
        ch = self._resolve_channel(ref)
        if ch.archived:
            raise SlackApiFault("is_archived")
        if not ch.member and self.require_membership:
            raise SlackApiFault("not_in_channel")
        return ch

    def _sharable(self, ref: Any) -> Channel:
        """A channel the bot may share a file in: it must have joined it, chat:write.public or not
        (files.completeUploadExternal, not_in_channel: "User/bot membership is required for the specified
        channel", https://docs.slack.dev/reference/methods/files.completeUploadExternal)."""
        ch = self._writable(ref)
        if not ch.member:
            raise SlackApiFault("not_in_channel")
        return ch

    def _readable(self, ref: Any) -> Channel:
        ch = self._resolve_channel(ref)
        if not ch.member:
            raise SlackApiFault("not_in_channel")
        return ch

    def _find(self, channel: str, ts: Any) -> Message:
        msg = self._index.get((channel, str(ts or "")))
        if msg is None or msg.deleted:
            raise SlackApiFault("message_not_found")
        return msg

    @staticmethod
    def _content(
        args: dict[str, Any], *, refuse_over: int | None = None
    ) -> tuple[str | None, list[dict[str, Any]] | None]:
        """(text, blocks) of a message: text longer than `refuse_over` is msg_too_long, else it is cut at
        MAX_TEXT as Slack truncates; blocks are checked as Slack checks them."""
        text = args.get("text")
        if text is not None:
            text = str(text)
            if refuse_over is not None and len(text) > refuse_over:
                raise SlackApiFault("msg_too_long")
            text = text[:MAX_TEXT]
        blocks = _validate_blocks(args.get("blocks"))
        return text, blocks

    @staticmethod
    def _metadata(args: dict[str, Any]) -> dict[str, Any] | None:
        meta = args.get("metadata")
        if meta is None:
            return None
        if not isinstance(meta, dict) or not isinstance(meta.get("event_type"), str):
            raise SlackApiFault("invalid_metadata_format")
        if not isinstance(meta.get("event_payload", {}), dict):
            raise SlackApiFault("invalid_metadata_schema")
        return meta

    # ---- Web API: request handling --------------------------------------------------------------------

    async def _read_args(self, request: web.Request) -> tuple[dict[str, Any], str | None, bool]:
        """(arguments, token, whether a token came in the URL's query string).

        The token is read where Slack reads it: "Tokens should be passed as an HTTP Authorization header or
        alternatively, as a POST parameter" (every method's `token` argument, e.g.
        https://docs.slack.dev/reference/methods/chat.postMessage) — a form-encoded POST parameter, since
        with a JSON body "you must provide your token value using an Authorization HTTP header"
        (https://docs.slack.dev/changelog/2017-10-keeping-up-with-the-jsons). A token is never kept in the
        recorded arguments.
        """
        query: dict[str, Any] = dict(request.query)
        body: dict[str, Any] = {}
        form_body = False
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    parsed = await request.json()
                except json.JSONDecodeError:
                    parsed = None
                if isinstance(parsed, dict):
                    body = parsed
            else:
                form_body = True
                form = await request.post()
                for key, value in form.items():
                    body[key] = value if isinstance(value, str) else value.file.read()  # type: ignore[union-attr]
        in_query = query.pop("token", None) is not None
        body_token = body.pop("token", None)
        args = {**query, **body}
        for key in _JSON_ARGS:
            value = args.get(key)
            if isinstance(value, str):
                try:
                    args[key] = json.loads(value)
                except json.JSONDecodeError:
                    pass  # left as sent; the method's own validation answers
        auth = request.headers.get("Authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        token = bearer if bearer is not None else (body_token if form_body else None)
        return args, token, in_query

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, token, token_in_query = await self._read_args(request)
        now = self.clock()
        if token_in_query:
            # Apps created after February 24, 2021 "may no longer send tokens as query parameters"
            # (https://docs.slack.dev/changelog/2020-11-no-more-tokens-in-querystrings-for-newly-created-apps).
            # The page names no error code; such calls get invalid_auth from the real service
            # (palanik/slack-php#9, HubSpot/slack-client#215, nmaves/passport-slack-oauth2#5,
            # slack-scala-client/slack-scala-client#184). The fake is a new app: refused, whatever else
            # the request carries.
            return self._answer(Call(method, args, now, ok=False, error="invalid_auth"), {})
        if not token:
            return self._answer(Call(method, args, now, ok=False, error="not_authed"), {})
        expected = self.app_token if method in APP_TOKEN_METHODS else self.token
        if token != expected:
            # a real token of the other kind (bot token for apps.connections.open, or the reverse)
            error = "not_allowed_token_type" if token in (self.token, self.app_token) else "invalid_auth"
            return self._answer(Call(method, args, now, ok=False, error=error), {})
        if self.token_revoked:
            return self._answer(Call(method, args, now, ok=False, error="token_revoked"), {})
        handler = getattr(self, "_api_" + method.replace(".", "_"), None) if method in METHODS else None
        if handler is None:
            return self._answer(Call(method, args, now, ok=False, error="unknown_method"), {})
        fault = self._take_fault(method)
        if fault is not None:
            return self._fault_response(Call(method, args, now, ok=False, error=fault))
        call = Call(method, args, now)
        try:
            result = handler(args)
        except SlackApiFault as exc:
            call.ok, call.error = False, exc.error
            return self._answer(call, exc.extra)
        return self._answer(call, result)

    def _answer(self, call: Call, result: dict[str, Any]) -> web.Response:
        self.calls.append(call)
        self._changed("call")
        if call.ok:
            return web.json_response({"ok": True, **result})
        return web.json_response({"ok": False, "error": call.error, **result})

    def _fault_response(self, call: Call) -> web.Response:
        error = call.error or "server_error"
        call.status = _HTTP_FAULTS.get(error, 200)
        self.failed_calls.append(call)
        self._changed("failed_call")
        headers = {"Retry-After": str(self.retry_after)} if call.status == 429 else None
        wire_error = {"server_error": "internal_error"}.get(error, error)
        return web.json_response({"ok": False, "error": wire_error}, status=call.status, headers=headers)

    # ---- Web API: methods -------------------------------------------------------------------------------

    def _api_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        cid = secrets.token_hex(10)
        self._socket_urls[cid] = self.clock()
        return {"url": f"ws://{self.host}:{self.port}/socket-mode/{cid}"}

    def _api_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{PERMALINK_BASE}/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _api_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._writable(args.get("channel"))
        text, blocks = self._content(args)
        attachments = args.get("attachments") or None
        if not text and not blocks and not attachments:
            raise SlackApiFault("no_text")
        metadata = self._metadata(args)
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        if thread_ts:
            parent = self._index.get((ch.id, thread_ts))
            if parent is not None and parent.is_reply:  # replying to a reply lands in the same thread
                thread_ts = parent.thread_ts
        msg = self._new_message(
            ch.id,
            text or "",
            blocks=blocks,
            thread_ts=thread_ts,
            metadata=metadata,
            reply_broadcast=bool(thread_ts) and _truthy(args.get("reply_broadcast")),
            attachments=attachments,
            unfurl_links=_truthy(args["unfurl_links"]) if "unfurl_links" in args else None,
            unfurl_media=_truthy(args["unfurl_media"]) if "unfurl_media" in args else None,
        )
        return {"channel": ch.id, "ts": msg.ts, "message": self._api_message(msg)}

    def _api_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve_channel(args.get("channel"))
        if ch.archived:  # chat.update's reference: is_inactive, "a frozen, archived or deleted channel"
            raise SlackApiFault("is_inactive")
        msg = self._find(ch.id, args.get("ts"))
        if msg.user != self.bot_user_id:
            raise SlackApiFault("cant_update_message")
        # msg_too_long: "The `text` field cannot exceed 4,000 characters" (chat.update's errors,
        # https://docs.slack.dev/reference/methods/chat.update); chat.postMessage truncates instead.
        text, blocks = self._content(args, refuse_over=UPDATE_MAX_TEXT)
        # As Slack does: omitted blocks/attachments are kept, an empty list removes them.
        new_text = msg.text if text is None else text
        new_blocks = msg.blocks if "blocks" not in args else (blocks or None)
        extra: dict[str, Any] = {}
        if "attachments" in args:
            extra["attachments"] = args.get("attachments") or None
        if (
            not new_text
            and not new_blocks
            and not extra.get("attachments", msg.attachments)
            and not msg.files
        ):
            raise SlackApiFault("no_text")
        if "metadata" in args:
            extra["metadata"] = self._metadata(args)
        self._edit(msg, text=new_text, blocks=new_blocks, **extra)
        return {"channel": ch.id, "ts": msg.ts, "text": msg.text, "message": self._api_message(msg)}

    def _api_chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve_channel(args.get("channel"))
        msg = self._find(ch.id, args.get("ts"))
        if msg.user != self.bot_user_id:
            raise SlackApiFault("cant_delete_message")
        msg.deleted = True
        self._changed("delete", channel=ch.id, ts=msg.ts)
        return {"channel": ch.id, "ts": msg.ts}

    def _api_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._writable(args.get("channel"))
        user = str(args.get("user") or "")
        # user_not_in_channel: "Intended recipient is not in the specified channel"
        # (https://docs.slack.dev/reference/methods/chat.postEphemeral; that list has no user_not_found,
        # so an unknown user, who is in no channel, gets the same answer).
        if user not in ch.members:
            raise SlackApiFault("user_not_in_channel")
        text, blocks = self._content(args)
        if not text and not blocks and not args.get("attachments"):
            raise SlackApiFault("no_text")
        eph = Ephemeral(
            channel=ch.id,
            user=user,
            ts=self._next_ts(),
            text=text or "",
            blocks=blocks,
            thread_ts=str(args["thread_ts"]) if args.get("thread_ts") else None,
            at=self.clock(),
        )
        self.ephemerals.append(eph)
        self._changed("ephemeral", channel=ch.id, ts=eph.ts)
        return {"message_ts": eph.ts}

    def _api_chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve_channel(args.get("channel"))
        msg = self._find(ch.id, args.get("message_ts"))
        link = f"{PERMALINK_BASE}/archives/{ch.id}/{_ts_to_permalink_id(msg.ts)}"
        if msg.is_reply:
            link += f"?thread_ts={msg.thread_ts}&cid={ch.id}"
        return {"channel": ch.id, "permalink": link}

    def _page(self, items: list[Message], args: dict[str, Any], include_metadata: bool) -> dict[str, Any]:
        limit = max(1, min(int(args.get("limit") or 100), 999))
        start = 0
        cursor = args.get("cursor")
        if cursor:
            try:
                start = int(str(cursor).removeprefix("offset:"))
            except ValueError as exc:
                raise SlackApiFault("invalid_cursor") from exc
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {
            "messages": [self._api_message(m, include_metadata=include_metadata) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": f"offset:{start + limit}" if more else ""},
        }

    @staticmethod
    def _in_range(ts: str, args: dict[str, Any]) -> bool:
        inclusive = _truthy(args.get("inclusive"))
        value = float(ts)
        try:
            oldest = float(args["oldest"]) if args.get("oldest") else None
            latest = float(args["latest"]) if args.get("latest") else None
        except ValueError as exc:
            raise SlackApiFault("invalid_ts_oldest" if "oldest" in str(exc) else "invalid_ts_latest") from exc
        if oldest is not None and (value < oldest or (value == oldest and not inclusive)):
            return False
        if latest is not None and (value > latest or (value == latest and not inclusive)):
            return False
        return True

    def _api_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._readable(args.get("channel"))
        visible = [
            m
            for m in self._messages.get(ch.id, [])
            if not m.deleted and (not m.is_reply or m.reply_broadcast) and self._in_range(m.ts, args)
        ]
        visible.sort(key=lambda m: float(m.ts), reverse=True)
        return self._page(visible, args, _truthy(args.get("include_all_metadata")))

    def _api_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._readable(args.get("channel"))
        msg = self._index.get((ch.id, str(args.get("ts") or "")))
        if msg is None or msg.deleted:
            raise SlackApiFault("thread_not_found")
        root_ts = msg.thread_ts if msg.is_reply and msg.thread_ts else msg.ts
        parent = self._index.get((ch.id, root_ts))
        items = ([parent] if parent is not None and not parent.deleted else []) + self.thread(ch.id, root_ts)
        items = [m for m in items if self._in_range(m.ts, args)]
        return self._page(items, args, _truthy(args.get("include_all_metadata")))

    def _api_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve_channel(args.get("channel"))
        return {
            "channel": {
                "id": ch.id,
                "name": ch.name,
                "is_channel": not ch.private and not ch.is_im,
                "is_group": ch.private and not ch.is_im,
                "is_im": ch.is_im,
                "is_private": ch.private,
                "is_archived": ch.archived,
                "is_member": ch.member,
                "created": 1700000000,
            }
        }

    def _api_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            raise SlackApiFault("user_not_found")
        return {
            "user": {
                "id": user.id,
                "team_id": self.team_id,
                "name": user.name,
                "real_name": user.real_name,
                "is_bot": user.is_bot,
                "deleted": False,
                "tz": "UTC",
                "profile": {"display_name": user.name, "real_name": user.real_name},
            }
        }

    def _api_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        # https://docs.slack.dev/reference/methods/files.getUploadURLExternal: `filename` and `length`
        # (minimum 1) are required; missing_argument: "A required argument was not provided. Typically only
        # occurs when the `length` provided is 0." — so Slack takes no empty file. A length that is not a
        # whole number gets the generic invalid_arguments (the page does not say).
        filename = args.get("filename")
        if not filename or args.get("length") in (None, ""):
            raise SlackApiFault("missing_argument")
        try:
            length = int(args["length"])
        except (TypeError, ValueError) as exc:
            raise SlackApiFault("invalid_arguments") from exc
        if length == 0:
            raise SlackApiFault("missing_argument")
        if length < 0:
            raise SlackApiFault("invalid_arguments")
        fid = self._next_id("F")
        self.files[fid] = FakeFile(id=fid, filename=str(filename), length=length)
        return {"upload_url": f"{self.base_url}/upload/{fid}", "file_id": fid}

    def _api_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            raise SlackApiFault("invalid_arguments")
        targets: list[Channel] = []
        if args.get("channel_id"):
            targets.append(self._sharable(args["channel_id"]))
        if args.get("channels"):
            targets.extend(self._sharable(c) for c in str(args["channels"]).split(",") if c.strip())
        done: list[FakeFile] = []
        for item in items:
            f = self.files.get(str(item.get("id") if isinstance(item, dict) else ""))
            if f is None or f.content is None or f.completed:
                raise SlackApiFault("file_not_found")
            done.append(f)
        created = int(self.clock())
        for f, item in zip(done, items, strict=True):
            f.title = str(item.get("title") or f.filename)
            f.completed = True
            f.channels = [c.id for c in targets]
            f.thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
            self._changed("file")
        api_files = [f.to_api(self.bot_user_id, created) for f in done]
        for ch in targets:
            self._new_message(ch.id, str(args.get("initial_comment") or "")[:MAX_TEXT],
                              thread_ts=str(args["thread_ts"]) if args.get("thread_ts") else None, files=api_files)
        return {"files": api_files}

    # ---- upload URL -------------------------------------------------------------------------------

    async def _handle_upload(self, request: web.Request) -> web.Response:
        fid = request.match_info["file_id"]
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next((v for v in form.values() if not isinstance(v, str)), None)
            data = part.file.read() if part is not None else b""  # type: ignore[union-attr]
        else:
            data = await request.read()
        call = Call("upload", {"file_id": fid, "length": len(data)}, self.clock())
        fault = self._take_fault("upload")
        if fault is not None:
            call.ok, call.error, call.status = False, fault, _HTTP_FAULTS.get(fault, 500)
            self.failed_calls.append(call)
            self._changed("failed_call")
            return web.Response(status=call.status, text=fault, content_type="text/plain")
        f = self.files.get(fid)
        # The upload URL answers 200 only for a good upload (files.getUploadURLExternal's usage info). What
        # it says of bytes that differ from the `length` announced is not documented: the fake refuses them
        # with a 400, keeps nothing, and files.completeUploadExternal then finds no file (file_not_found).
        if f is None or f.completed:
            status, error = 404, "file_not_found"
        elif len(data) != f.length:
            status, error = 400, "length_mismatch"
        else:
            status, error = 200, None
        if error is not None:
            call.ok, call.error, call.status = False, error, status
            self.calls.append(call)
            self._changed("call")
            return web.Response(status=status, text=error, content_type="text/plain")
        assert f is not None
        f.content = data
        call.args["filename"] = f.filename
        self.calls.append(call)
        self._changed("file")
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    # ---- response_url -----------------------------------------------------------------------------

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        try:
            payload = await request.json()
        except (json.JSONDecodeError, aiohttp.ContentTypeError):
            payload = None
        if not isinstance(payload, dict):
            form = await request.post()
            raw = form.get("payload")
            payload = json.loads(raw) if isinstance(raw, str) else dict(form)
        now = self.clock()
        target = self._targets.get(rid)
        post = ResponsePost(rid, payload, now, outcome="")
        call = Call("response_url", {"id": rid, **payload}, now)
        fault = self._take_fault("response_url")
        blocks = payload.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except json.JSONDecodeError:
                pass  # not an array: invalid_blocks_format below
        error: str | None = None
        if fault is not None:
            error = fault
        elif target is None or now - target.created > RESPONSE_URL_TTL:
            error = "expired_url"
        elif target.uses >= RESPONSE_URL_USES:
            error = "used_url"
        elif not payload.get("text") and not blocks and not _truthy(payload.get("delete_original")):
            error = "no_text"
        else:
            try:
                blocks = _validate_blocks(blocks)
            except SlackApiFault as exc:
                error = exc.error
        if error is not None:
            post.outcome, post.status = error, _HTTP_FAULTS.get(error) or _RESPONSE_URL_STATUS.get(error, 404)
            call.ok, call.error, call.status = False, error, post.status
            (self.failed_calls if fault else self.calls).append(call)
            self.response_posts.append(post)
            self._changed("failed_call" if fault else "call")
            return web.Response(status=post.status, text=error, content_type="text/plain")
        assert target is not None
        target.uses += 1
        self._apply_response(target, payload, blocks or None, post)
        self.calls.append(call)
        self.response_posts.append(post)
        self._changed("call", channel=post.channel, ts=post.ts)
        return web.Response(text="ok", content_type="text/plain")

    def _apply_response(
        self,
        target: _ResponseTarget,
        payload: dict[str, Any],
        blocks: list[dict[str, Any]] | None,
        post: ResponsePost,
    ) -> None:
        """What Slack does with a response_url post (its blocks already checked).

        From a click: delete_original deletes the clicked message, and a text or blocks sent with it are
        posted as a new message ("When set to true, the inciting message will be deleted and if a message
        is provided, it will be posted as a brand new message": Slack's interactive message field guide,
        api.slack.com/docs/interactive-message-field-guide, as quoted in mrb0nj/Slack.Webhooks#53; seen so
        on the real service in stoiveyp/Slack.NetStandard#56. Today's guide,
        https://api.slack.com/interactivity/handling#deleting_message_response, only says to send
        delete_original alone.) Otherwise the clicked message is replaced unless replace_original is
        explicitly false (Slack's default for interactive messages). From a slash command there is no
        original: replace/delete are ignored and a new ephemeral (or in_channel message) is posted.
        """
        text = str(payload.get("text") or "")[:MAX_TEXT]
        channel = target.channel or ""
        post.channel = channel
        replace = payload.get("replace_original")
        from_click = target.message_ts is not None
        if from_click and _truthy(payload.get("delete_original")):
            self._delete_original(target)
            post.deleted = target.message_ts
            if not text and not blocks:
                post.outcome, post.ts = "deleted", target.message_ts
                return
        elif from_click and (replace is None or _truthy(replace)):
            if target.ephemeral:
                eph = next((e for e in self.ephemerals if e.ts == target.message_ts), None)
                if eph is not None:
                    eph.text, eph.blocks, eph.edits = text, blocks, eph.edits + 1
                    self._changed("edit", channel=eph.channel, ts=eph.ts)
            else:
                msg = self._index.get((channel, target.message_ts or ""))
                if msg is not None and not msg.deleted:
                    self._edit(msg, text=text, blocks=blocks)
            post.outcome, post.ts = "replaced", target.message_ts
            return
        thread_ts = payload.get("thread_ts")
        if payload.get("response_type") == "in_channel":
            msg = self._new_message(channel, text, blocks=blocks, thread_ts=str(thread_ts) if thread_ts else None)
            post.outcome, post.ts = "in_channel", msg.ts
            return
        eph = Ephemeral(
            channel=channel,
            user=target.user or "",
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=str(thread_ts) if thread_ts else None,
            source="response_url",
            response_url_id=target.id,
            at=self.clock(),
        )
        self.ephemerals.append(eph)
        self._changed("ephemeral", channel=channel, ts=eph.ts)
        post.outcome, post.ts = "ephemeral", eph.ts

    def _delete_original(self, target: _ResponseTarget) -> None:
        if target.ephemeral:
            for e in self.ephemerals:
                if e.ts == target.message_ts:
                    e.deleted = True
        else:
            msg = self._index.get((target.channel or "", target.message_ts or ""))
            if msg is not None:
                msg.deleted = True
        self._changed("delete", channel=target.channel, ts=target.message_ts)

    # ---- Socket Mode ---------------------------------------------------------------------------------

    def open_sockets(self) -> list[SocketConnection]:
        """Socket Mode connections open now, oldest first (draining ones included)."""
        return [c for c in self.socket_connections if c.open]

    def socket_ready(self) -> SocketConnection | None:
        """The connection the next envelope would go to (the newest open, not draining one), if any."""
        usable = [c for c in self.open_sockets() if not c.draining]
        return usable[-1] if usable else None

    async def deliver(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        connection: SocketConnection | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109  (like SlackUser.timeout)
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> Envelope:
        """Send `payload` to the app over Socket Mode in an envelope, as Slack does, and wait for the ack.

        `type` is "slash_commands", "interactive" or "events_api". The envelope goes to `connection`,
        or to the newest open connection that was not sent a `disconnect` (waiting for one to open,
        within `timeout`). `accepts_response_payload` defaults to what Slack sends: true for slash
        commands, view_submission and block_suggestion, false otherwise. Returns the Envelope, with
        `.ack` set, or `.error` "dispatch_failed" (no connection) / "operation_timeout" (no ack in time).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if accepts_response_payload is None:
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive" and payload.get("type") in ("view_submission", "block_suggestion")
            )
        env = Envelope(
            envelope_id=str(uuid.uuid4()),
            type=type,
            payload=payload,
            accepts_response_payload=accepts_response_payload,
        )
        self.envelopes.append(env)
        self._envelope_index[env.envelope_id] = env
        conn = connection or await self._wait_socket(deadline)
        message: dict[str, Any] = {
            "envelope_id": env.envelope_id,
            "payload": payload,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            message.update(retry_attempt=retry_attempt, retry_reason=retry_reason or "timeout")
        ack_future: asyncio.Future[SocketAck] = loop.create_future()
        self._pending_acks[env.envelope_id] = ack_future
        try:
            if conn is None or not conn.open:
                env.error = "dispatch_failed"
                return env
            assert conn.ws is not None
            env.connection_id, env.sent_at = conn.id, self.clock()
            self._envelope_started[env.envelope_id] = time.perf_counter()
            try:
                await conn.ws.send_str(json.dumps(message))
            except (ConnectionError, RuntimeError):
                env.error = "dispatch_failed"
                return env
            self._changed("envelope")
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await ack_future
            except TimeoutError:
                env.error = "operation_timeout"
            return env
        finally:
            self._pending_acks.pop(env.envelope_id, None)
            if env.error is not None:
                self._changed("envelope")

    async def socket_disconnect(
        self, reason: str = "refresh_requested", connection: SocketConnection | None = None
    ) -> list[SocketConnection]:
        """Send `{"type": "disconnect", "reason": ...}` (to `connection`, or to every open one), as Slack
        does before it retires a connection; those get no more envelopes. The client is expected to
        open a new connection and close the old one. Returns the connections told."""
        told = [connection] if connection is not None else self.open_sockets()
        for conn in told:
            if conn.ws is None or not conn.open:
                continue
            conn.draining, conn.disconnect_reason = True, reason
            await conn.ws.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": conn.hello["debug_info"]["host"]}}
            )
        self._changed("socket")
        return told

    async def close_sockets(
        self, code: int = WSCloseCode.GOING_AWAY, message: bytes = b"closed by FakeSlack"
    ) -> None:
        """Close every open Socket Mode connection from the server side (no `disconnect` first)."""
        for conn in self.open_sockets():
            assert conn.ws is not None
            conn.close_code, conn.closed_by = int(code), "server"
            await conn.ws.close(code=code, message=message)

    async def _wait_socket(self, deadline: float) -> SocketConnection | None:
        loop = asyncio.get_running_loop()
        while True:
            event = self._event
            conn = self.socket_ready()
            remaining = deadline - loop.time()
            if conn is not None or remaining <= 0:
                return conn
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        cid = request.match_info["cid"]
        issued = self._socket_urls.pop(cid, None)  # one connection per URL, as Slack's tickets
        now = self.clock()
        call = Call("socket_mode", {"id": cid}, now)
        if issued is None or now - issued > SOCKET_URL_TTL:
            call.ok, call.error, call.status = False, "invalid_url", 401
            self.calls.append(call)
            self._changed("call")
            return web.Response(status=401, text="invalid_url", content_type="text/plain")
        ws = web.WebSocketResponse(autoping=False, timeout=2.0)
        await ws.prepare(request)
        self.calls.append(call)
        conn = SocketConnection(id=cid, opened_at=now, ws=ws)
        self.socket_connections.append(conn)
        conn.hello = {
            "type": "hello",
            "num_connections": len(self.open_sockets()),
            "debug_info": {
                "host": f"fake-applink-{len(self.socket_connections)}",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": API_APP_ID},
        }
        try:
            await ws.send_json(conn.hello)
            self._changed("socket")
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._socket_text(conn, msg.data)
                elif msg.type == WSMsgType.PING:
                    conn.pings += 1
                    await ws.pong(msg.data)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("socket %s ended: %s", cid, exc)
        finally:
            conn.closed_at = self.clock()
            if conn.closed_by is None:
                conn.close_code, conn.closed_by = ws.close_code, "client"
            self._changed("socket")
        return ws

    def _socket_text(self, conn: SocketConnection, data: str) -> None:
        try:
            msg: Any = json.loads(data)
        except ValueError:
            msg = data
        conn.received.append(msg)
        if not isinstance(msg, dict) or not msg.get("envelope_id"):
            return
        eid = str(msg["envelope_id"])
        env = self._envelope_index.get(eid)
        started = self._envelope_started.get(eid)
        payload = msg.get("payload")
        ack = SocketAck(
            envelope_id=eid,
            payload=payload if isinstance(payload, dict) else None,
            at=self.clock(),
            connection_id=conn.id,
            elapsed=None if started is None else time.perf_counter() - started,
            duplicate=env is not None and env.ack is not None,
            raw=msg,
        )
        self.socket_acks.append(ack)
        if env is not None and env.ack is None:
            env.ack = ack
        future = self._pending_acks.get(eid)
        if future is not None and not future.done():
            future.set_result(ack)
        self._changed("ack")


def _short(args: Mapping[str, Any], limit: int = 160) -> str:
    text = json.dumps({k: v for k, v in args.items() if k != "blocks"}, default=str)
    if "blocks" in args:
        text += f" +{len(args['blocks']) if isinstance(args['blocks'], list) else '?'} blocks"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------------
# What Slack sends to the bot


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

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, float]:
        if self.transport != "http":
            raise RuntimeError("this SlackUser acts over Socket Mode: it has no bot URL to POST to")
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
        """One interaction to the bot: `form` signed and POSTed (http), or `payload` in an envelope (socket)."""
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
            "trigger_id": _trigger_id(),
        }
        sent = await self._send("slash_commands", dict(form), form)
        result = CommandResult(
            status=sent.status,
            text=sent.text,
            body=sent.body,
            elapsed=sent.elapsed,
            response_url=response_url,
            response_url_id=fs.response_url_id(response_url),
            fake_slack=fs,
            envelope=sent.envelope,
        )
        if sent.status == 200 and sent.text.strip():
            self._record_ack(result, channel_id, user_id)
        return result

    def _record_ack(self, result: CommandResult, channel_id: str, user_id: str) -> None:
        fs = self.fake_slack
        body = result.body or {}
        text = str(body.get("text", "")) if result.body is not None else result.text
        blocks = body.get("blocks")
        if body.get("response_type") == "in_channel":
            fs._new_message(channel_id, text, blocks=blocks)
            return
        eph = Ephemeral(
            channel=channel_id,
            user=user_id,
            ts=fs._next_ts(),
            text=text,
            blocks=blocks,
            source="ack",
            response_url_id=result.response_url_id,
            at=fs.clock(),
        )
        fs.ephemerals.append(eph)
        fs._changed("ephemeral", channel=channel_id, ts=eph.ts)

    # ---- button clicks ---------------------------------------------------------------------------------

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
    ) -> ClickResult | None:
        """Click a button of a stored message (or ephemeral) found by action_id, button text or value.

        Sends a signed `block_actions` payload (an "interactive" envelope over Socket Mode) as Slack does. If the button has a `confirm` dialog and
        `confirm` is False, the person pressed "cancel": nothing is sent and None is returned.
        Raises LookupError if the message or button is not there.
        """
        fs = self.fake_slack
        ephemeral: Ephemeral | None = None
        msg: Message | None = None
        try:
            msg = fs.message(channel, message_ts)
            blocks = msg.blocks
        except KeyError:
            ephemeral = next(
                (e for e in fs.ephemerals if e.channel == channel and e.ts == message_ts and not e.deleted),
                None,
            )
            if ephemeral is None:
                raise LookupError(f"no message {message_ts} in {channel}") from None
            blocks = ephemeral.blocks
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
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user_id, "username": user.name, "name": user.name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": _trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": fs.channel_name(channel)},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        }
        if msg is not None:  # Slack omits `message` for ephemeral messages
            payload["message"] = fs._api_message(msg, include_metadata=False)
        sent = await self._send("interactive", payload, {"payload": json.dumps(payload)})
        return ClickResult(
            status=sent.status,
            text=sent.text,
            body=sent.body,
            elapsed=sent.elapsed,
            response_url=response_url,
            response_url_id=fs.response_url_id(response_url),
            fake_slack=fs,
            envelope=sent.envelope,
            payload=payload,
            action=action,
        )


def _pick_button(
    blocks: list[dict[str, Any]] | None, *, action_id: str | None, text: str | None, value: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    found = [
        (block, button)
        for block, button in _iter_buttons(blocks)
        if (action_id is None or button.get("action_id") == action_id)
        and (text is None or _plain(button.get("text")).strip().lower() == text.strip().lower())
        and (value is None or button.get("value") == value)
    ]
    if not found:
        have = [(b.get("action_id"), _plain(b.get("text")), b.get("value")) for _, b in _iter_buttons(blocks)]
        raise LookupError(f"no button action_id={action_id!r} text={text!r} value={value!r}; buttons: {have}")
    return found[0]


def _trigger_id() -> str:
    return f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def _json_or_none(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --------------------------------------------------------------------------------------------------
# Text rendering


class ButtonRef(NamedTuple):
    channel: str
    ts: str
    action_id: str


class RenderedChannel(str):
    """The rendered text (a str) plus `.buttons`: number → ButtonRef, for `click 2` in the demo."""

    buttons: dict[int, ButtonRef]

    def __new__(cls, text: str, buttons: dict[int, ButtonRef]) -> RenderedChannel:
        obj = super().__new__(cls, text)
        obj.buttons = buttons
        return obj


_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_DIM, _BOLD, _RESET = "\x1b[2m", "\x1b[1m", "\x1b[0m"


def mrkdwn_to_plain(text: str, fs: FakeSlack | None = None) -> str:
    """Slack's escaped mrkdwn as a person reads it: <@U1> → @ana, <url|label> → label (url), &lt; → <."""

    def link(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            return "@" + (label or (fs.user_name(target[1:]) if fs else target[1:]))
        if target.startswith("#"):
            return "#" + (label or (fs.channel_name(target[1:]) if fs else target[1:]))
        if target.startswith("!"):
            if label:
                return label
            return "@" + target[1:].split("^")[0]
        return f"{label} ({target})" if label and label != target else target

    return _LINK.sub(link, text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _rich_text(element: Any) -> str:
    if isinstance(element, list):
        return "".join(_rich_text(e) for e in element)
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind in ("text", "link"):
        return str(element.get("text") or element.get("url") or "")
    if kind == "emoji":
        return f":{element.get('name')}:"
    if kind == "user":
        return f"@{element.get('user_id')}"
    if kind == "channel":
        return f"#{element.get('channel_id')}"
    if kind == "rich_text_list":
        return "\n".join("- " + _rich_text(e) for e in element.get("elements") or [])
    inner = _rich_text(element.get("elements") or [])
    return f"```{inner}```" if kind == "rich_text_preformatted" else inner


def _render_blocks(
    fs: FakeSlack,
    blocks: list[dict[str, Any]],
    channel: str,
    ts: str,
    buttons: dict[int, ButtonRef],
    start: int,
) -> list[str]:
    lines: list[str] = []

    def txt(obj: Any) -> str:
        return mrkdwn_to_plain(_plain(obj), fs)

    def button_label(el: dict[str, Any]) -> str:
        n = start + len(buttons)
        buttons[n] = ButtonRef(channel, ts, str(el.get("action_id") or ""))
        return f"[{n}] {txt(el.get('text'))}"

    def other_element(el: dict[str, Any]) -> str:
        label = txt(el.get("placeholder")) or el.get("type", "element")
        return f"[{el.get('type', 'element')}: {label}]"

    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(txt(block.get("text")))
        elif kind == "section":
            if block.get("text"):
                lines.extend(txt(block["text"]).splitlines() or [""])
            flds = [txt(f).replace("\n", " ") for f in block.get("fields") or []]
            for i in range(0, len(flds), 2):
                lines.append("   ".join(flds[i : i + 2]))
            acc = block.get("accessory")
            if isinstance(acc, dict):
                if acc.get("type") == "button":
                    lines.append(button_label(acc))
                elif acc.get("type") == "image":
                    lines.append(f"[image: {acc.get('alt_text', '')}]")
                else:
                    lines.append(other_element(acc))
        elif kind == "context":
            parts = [
                f"[image: {el.get('alt_text', '')}]" if el.get("type") == "image" else txt(el)
                for el in block.get("elements") or []
            ]
            lines.append("  ·  ".join(parts))
        elif kind == "divider":
            lines.append("-" * 24)
        elif kind == "actions":
            row = [
                button_label(el) if el.get("type") == "button" else other_element(el)
                for el in block.get("elements") or []
            ]
            lines.append("  ".join(row))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "rich_text":
            lines.extend(_rich_text(block.get("elements") or []).splitlines())
        elif kind == "markdown":
            lines.extend(str(block.get("text", "")).splitlines())
        else:
            lines.append(f"[{kind} block]")
    return lines


def _clock_time(ts: str) -> str:
    return time.strftime("%H:%M:%S", time.localtime(float(ts)))


def render_channel(
    fs: FakeSlack, channel: str, *, viewer: str | None = None, ansi: bool = False, start: int = 1
) -> RenderedChannel:
    """`channel` as a person sees it: messages with blocks and numbered buttons, "(edited)", thread replies
    indented, files, and ephemerals ("only visible to you"; with `viewer`, only theirs).

    The result is a str; `.buttons` maps each shown number to ButtonRef(channel, ts, action_id).
    Numbering starts at `start` (to render several channels with distinct numbers).
    """
    buttons: dict[int, ButtonRef] = {}
    dim = (lambda s: f"{_DIM}{s}{_RESET}") if ansi else (lambda s: s)
    bold = (lambda s: f"{_BOLD}{s}{_RESET}") if ansi else (lambda s: s)
    out: list[str] = [bold(f"#{fs.channel_name(channel)}"), "=" * 40]

    def body(item: Message | Ephemeral) -> list[str]:
        lines = _render_blocks(fs, item.blocks, channel, item.ts, buttons, start) if item.blocks else []
        if not lines:
            lines = mrkdwn_to_plain(item.text, fs).splitlines() if item.text else []
        if isinstance(item, Message):
            for f in item.files:
                lines.append(f"[file] {f.get('name')} ({f.get('size', 0)} bytes)")
        if item.edits:
            lines = lines or [""]
            lines[-1] = (lines[-1] + " " + dim("(edited)")).lstrip()
        return lines or [""]

    def visible_ephemerals(thread_ts: str | None) -> list[Ephemeral]:
        return [e for e in fs.ephemerals_for(viewer, channel) if (e.thread_ts or None) == thread_ts]

    def emit(item: Message | Ephemeral, indent: str) -> None:
        if isinstance(item, Ephemeral):
            who = "you" if viewer else f"you (@{fs.user_name(item.user)})"
            head = f"{fs.bot_name}  {_clock_time(item.ts)}  [only visible to {who}]"
            out.append(indent + dim(head))
            out.extend(indent + "  " + dim(line) for line in body(item))
            return
        head = f"{bold(fs.user_name(item.user))}  {dim(_clock_time(item.ts))}"
        if item.is_reply and item.reply_broadcast and not indent:
            head += "  " + dim("(replied to a thread)")
        out.append(indent + head)
        out.extend(indent + "  " + line for line in body(item))

    all_msgs = fs._messages.get(channel, [])
    parents_ts = {m.ts for m in all_msgs if not m.is_reply}
    top: list[Message | Ephemeral] = [
        m
        for m in all_msgs
        if (not m.is_reply and (not m.deleted or fs.thread(channel, m.ts)))
        or (m.is_reply and m.reply_broadcast and not m.deleted)
    ]
    top.extend(visible_ephemerals(None))
    top.sort(key=lambda x: float(x.ts))
    for item in top:
        out.append("")
        if isinstance(item, Message) and item.deleted:
            out.append(dim("(This message was deleted.)"))
        else:
            emit(item, "")
        if isinstance(item, Message) and not item.is_reply:
            thread: list[Message | Ephemeral] = [*fs.thread(channel, item.ts), *visible_ephemerals(item.ts)]
            thread.sort(key=lambda x: float(x.ts))
            if thread:
                n = len(fs.thread(channel, item.ts))
                out.append("    " + dim(f"{n} {'reply' if n == 1 else 'replies'}"))
            for reply in thread:
                emit(reply, "    | ")
    orphans = [m for m in all_msgs if m.is_reply and not m.deleted and m.thread_ts not in parents_ts]
    for m in orphans:
        out.append("")
        out.append(dim(f"(reply to a message that does not exist: thread_ts={m.thread_ts})"))
        emit(m, "    | ")
    if len(out) == 2:
        out.append(dim("(no messages)"))
    return RenderedChannel("\n".join(out), buttons)
