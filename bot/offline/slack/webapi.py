"""The fake Slack's Web API server: `FakeSlack`, on 127.0.0.1, for the tests, the benchmark and the demo.

It answers the Web API methods the bot uses (views.open and views.publish in views.py) (point
`AsyncWebClient(base_url=fs.api_url)` at it), stores channels, messages, threads, edits, ephemerals and files,
serves `response_url`s and the file-upload URLs, enforces Slack's published rate limits per method
(limits.py), and can inject faults (`fail_next`, `fail_rate`, `delay`). It also speaks Socket Mode
(socket_mode.py). Everything recorded is plain Python state read directly by tests (`fs.calls`,
`fs.messages(...)`, `fs.ephemerals`, ...); `await fs.wait_for(...)` waits on a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import itertools
import json
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bot.offline.loopback import serve
from bot.offline.slack.blockkit import BlocksRefused, validate_blocks
from bot.offline.slack.limits import Limits
from bot.offline.slack.records import (
    Call,
    Change,
    Channel,
    Ephemeral,
    FakeFile,
    Message,
    ResponsePost,
    User,
    UserGroup,
)
from bot.offline.slack.render import render_channel
from bot.offline.slack.socket_mode import SocketMode
from bot.offline.slack.views import ViewRefused, Views

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "xoxb-fake-slack-token"
DEFAULT_APP_TOKEN = "xapp-1-A0FAKE-1-fake-app-level-token"
API_APP_ID = "A0FAKE"
PERMALINK_BASE = "https://fake.slack.test"
# chat.postMessage truncates past this: docs.slack.dev/changelog/2018-04-truncating-really-long-messages
MAX_TEXT = 40_000
UPDATE_MAX_TEXT = 4_000  # chat.update: msg_too_long, "The `text` field cannot exceed 4,000 characters"
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60.0

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
    "conversations.members",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
    "usergroups.users.list",
    "users.info",
    "views.open",
    "views.publish",
)

# The bot-token scopes a method needs, where the fake checks them (`missing_scopes` takes them away): from
# each method's page (docs.slack.dev/reference/methods/<method>;
# ../shared/data/slack-method-reference/<method>.json, "scope"). conversations.members takes any of its scopes
# for the kind of conversation asked about.
SCOPES = {
    "usergroups.users.list": ("usergroups:read",),
    "conversations.members": ("channels:read", "groups:read"),
}

# Methods that take the app-level (xapp-) token; every other method takes the bot token.
APP_TOKEN_METHODS = ("apps.connections.open",)

# Fault names that are answered with an HTTP status instead of `200 {"ok": false}`.
_HTTP_FAULTS = {"ratelimited": 429, "server_error": 500, "internal_error": 500, "service_unavailable": 503}
# What a response_url answers when it refuses a post: an HTTP status and the error as plain text (a refused
# payload is a 400 with the bare error, e.g. "invalid_blocks": slackapi/java-slack-sdk#1017).
_RESPONSE_URL_STATUS = {"no_text": 400, "invalid_blocks": 400, "invalid_blocks_format": 400,
                        "expired_url": 404, "used_url": 404}

# Arguments that slack_sdk (or a form post) may send as JSON-encoded strings.
_JSON_ARGS = ("blocks", "attachments", "metadata", "files", "unfurls", "view")


class SlackApiFault(Exception):
    """Raised inside a handler to answer `{"ok": false, "error": ...}` (HTTP 200)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class _ResponseTarget:
    id: str
    channel: str | None
    user: str | None
    message_ts: str | None  # the message a click came from (None for slash commands)
    ephemeral: bool
    created: float
    uses: int = 0


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _ts_to_permalink_id(ts: str) -> str:
    return "p" + ts.replace(".", "")


class FakeSlack(SocketMode, Views):
    """Slack's Web API, response_urls and upload URLs on 127.0.0.1 (port 0 = any free port).

    Default users: U0001 ana, U0002 ben; default channels: C0001 #general and C0002 #finance-close, with
    the bot and both users in each.

    Socket Mode (the SocketMode part): a client that calls apps.connections.open with `app_token` and
    connects to the URL gets envelopes from `deliver`.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        team_id: str = "T0001",
        team_name: str = "Fake Workspace",
        enterprise_id: str | None = None,
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        bot_name: str = "jobstatus",
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
        default_channels: bool = True,
    ) -> None:
        super().__init__()
        Views.__init__(self)
        self.token = token
        self.app_token = app_token  # the app-level token apps.connections.open wants
        self.team_id = team_id
        self.team_name = team_name
        # an Enterprise Grid organization's id (E...), None for a plain workspace
        self.enterprise_id = enterprise_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = API_APP_ID
        self.clock = clock
        self.host = host
        self.port = port
        # Behaviour switches tests may flip.
        self.require_membership = False  # public non-member channel → not_in_channel
        # scopes the app was not granted (methods in SCOPES: missing_scope)
        self.missing_scopes: set[str] = set()
        self.token_revoked = False  # every call → token_revoked
        self.fail_rate = 0.0  # share of Web API calls answered with `fail_kind`
        self.fail_kind = "ratelimited"  # "ratelimited" (429 + Retry-After) or "server_error" (500/503)
        self.fail_methods: set[str] | None = None  # methods fail_rate applies to; None = all
        self.retry_after = 1  # seconds, sent with every injected 429
        # Slack's rate limits, per method (limits.py); `limits.enabled = False` only for a test that needs a
        # burst beyond production's limits (and says so).
        self.limits = Limits()
        # A slow Slack: every Web API call waits this long before it is answered. Slack names no bound on a
        # method's answer time; clients bound it themselves (slack_sdk's WebClient `timeout`, 30 s by default)
        # and retry (docs.slack.dev/tools/node-slack-sdk/reference/web-api/variables/retryPolicies).
        self.delay = 0.0
        self.delayed = 0  # Web API calls being held by `delay` right now
        self.rng = random.Random(seed)
        # Recorded state.
        self.calls: list[Call] = []
        self.failed_calls: list[Call] = []
        self.ephemerals: list[Ephemeral] = []
        self.response_posts: list[ResponsePost] = []
        self.files: dict[str, FakeFile] = {}
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, User] = {}
        self.usergroups: dict[str, UserGroup] = {}
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
        self._runner, self.port = await serve(app, self.host, self.port)

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

    def add_usergroup(
        self, id: str, handle: str, users: Iterable[str] = (), *, enabled: bool = True
    ) -> UserGroup:
        """A user group (S…) and its members."""
        group = UserGroup(id=id, handle=handle, users=list(users), enabled=enabled)
        self.usergroups[id] = group
        self._changed("usergroup")
        return group

    def store_message(self, channel: str, text: str, *, user: str | None = None, **fields: Any) -> Message:
        """Store a new top-level message or reply, posted now; by the bot unless `user` is given. `fields` are
        Message's other fields (blocks, thread_ts, metadata, ...)."""
        msg = Message(channel=channel, ts=self._next_ts(), text=text, user=user or self.bot_user_id,
                      bot_id=None if user else self.bot_id, posted_at=self.clock(), **fields)
        self._messages.setdefault(msg.channel, []).append(msg)
        self._index[(msg.channel, msg.ts)] = msg
        self._changed("message", channel=msg.channel, ts=msg.ts)
        return msg

    def add_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        thread_ts: str | None = None,
        source: str = "chat.postEphemeral",
        response_url_id: str | None = None,
    ) -> Ephemeral:
        """Store something only `user` sees, shown now (`source` says what showed it: see Ephemeral)."""
        eph = Ephemeral(channel=channel, user=user, ts=self._next_ts(), text=text, blocks=blocks,
                        thread_ts=thread_ts, source=source, response_url_id=response_url_id, at=self.clock())
        self.ephemerals.append(eph)
        self._changed("ephemeral", channel=channel, ts=eph.ts)
        return eph

    def post_user_message(
        self, channel: str, text: str, *, user: str = "U0001", thread_ts: str | None = None
    ) -> Message:
        """A message a person wrote (not via the API), e.g. a human reply in a bot thread."""
        return self.store_message(channel, text, user=user, thread_ts=thread_ts)

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
        return self.store_message(channel, text, blocks=blocks, metadata=metadata).ts

    # ---- faults -----------------------------------------------------------------------------------

    def fail_next(self, method: str, error: str = "ratelimited", times: int = 1) -> None:
        """The next `times` calls of `method` fail with `error` and are not applied.

        `method` is a Web API method, or "upload" (the upload URL) or "response_url".
        "ratelimited" → HTTP 429 + Retry-After; "server_error"/"internal_error" → 500;
        "service_unavailable" → 503; anything else (channel_not_found, token_revoked, ...) → 200 ok:false.
        """
        self._faults.setdefault(method, []).extend([error] * times)

    def clear_faults(self) -> None:
        """Forget the faults `fail_next` queued: Slack is back."""
        self._faults.clear()

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

    def all_messages(self, channel: str) -> list[Message]:
        """Every message stored in `channel`, thread replies and deleted ones included, in posting order."""
        return list(self._messages.get(channel, []))

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
        """Call `callback(change)` after every change (for a UI to redraw); returns an unsubscribe
        function."""
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

    def _edit(self, msg: Message, *, text: str, blocks: list[dict[str, Any]] | None, **extra: Any) -> None:
        msg.versions.append({"text": msg.text, "blocks": msg.blocks})
        msg.text = text
        msg.blocks = blocks
        for key, value in extra.items():
            setattr(msg, key, value)
        msg.edits += 1
        msg.edited_ts = self._next_ts()
        self._changed("edit", channel=msg.channel, ts=msg.ts)

    def api_message(self, msg: Message, *, include_metadata: bool = True) -> dict[str, Any]:
        """`msg` as the Web API shows it (conversations.history, a click payload's `message`)."""
        out: dict[str, Any] = {
            "type": "message",
            "user": msg.user,
            "text": msg.text,
            "ts": msg.ts,
            "team": self.team_id,
        }
        if msg.bot_id:
            out["bot_id"] = msg.bot_id
            out["app_id"] = self.app_id
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
            replies = self.thread(msg.channel, msg.ts)
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

    def _api_file(self, f: FakeFile, created: int) -> dict[str, Any]:
        """`f` as files.completeUploadExternal and a message's `files` show it."""
        ext = f.filename.rsplit(".", 1)[-1].lower() if "." in f.filename else "text"
        url = f"{PERMALINK_BASE}/files/{self.bot_user_id}/{f.id}/{f.filename}"
        return {
            "id": f.id,
            "name": f.filename,
            "title": f.title or f.filename,
            "filetype": ext,
            "mimetype": "text/plain" if ext in ("txt", "log", "text") else "application/octet-stream",
            "size": len(f.content) if f.content is not None else f.length,
            "user": self.bot_user_id,
            "created": created,
            "url_private": url,
            "permalink": url,
        }

    # ---- internals: checks ------------------------------------------------------------------------

    def _resolve_channel(self, ref: Any) -> Channel:
        ref = str(ref or "").strip()
        if not ref:
            raise SlackApiFault("channel_not_found")
        ch = self.channels.get(ref)
        if ch is None and ref.startswith("U") and ref in self.users:  # posting to a user id opens the DM
            dm = "D" + ref[1:]
            ch = self.channels.get(dm) or self.add_channel(
                dm, self.users[ref].name, private=True, members=[ref]
            )
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
        try:
            blocks = validate_blocks(args.get("blocks"))
        except BlocksRefused as exc:
            raise SlackApiFault(exc.error, **exc.extra) from exc
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
            encoded = args.get(key)
            if isinstance(encoded, str):
                try:
                    args[key] = json.loads(encoded)
                except json.JSONDecodeError:
                    pass  # left as sent; the method's own validation answers
        auth = request.headers.get("Authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        token = bearer if bearer is not None else (body_token if form_body else None)
        return args, token, in_query

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args, token, token_in_query = await self._read_args(request)
        if self.delay > 0:
            self.delayed += 1
            self._changed("delayed")
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.delayed -= 1
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
        wait = self.limits.check(method, str(args.get("channel") or "") or None)
        if wait is not None:
            return self._fault_response(Call(method, args, now, ok=False, error="ratelimited"), wait)
        fault = self._take_fault(method)
        if fault is not None:
            return self._fault_response(Call(method, args, now, ok=False, error=fault))
        needed = SCOPES.get(method, ())
        if needed and self._scope_missing(method, needed, args):
            # "missing_scope: The calling token is not granted the necessary scopes" (conversations.members);
            # Slack names what it needed in `needed` (docs.slack.dev/apis/web-api/#responses, scope errors)
            return self._answer(Call(method, args, now, ok=False, error="missing_scope"),
                                {"needed": ",".join(needed)})
        call = Call(method, args, now)
        try:
            result = handler(args)
        except SlackApiFault as exc:
            call.ok, call.error = False, exc.error
            return self._answer(call, exc.extra)
        except ViewRefused as exc:
            call.ok, call.error = False, exc.error
            return self._answer(
                call, {"response_metadata": {"messages": exc.messages}} if exc.messages else {}
            )
        return self._answer(call, result)

    def _answer(self, call: Call, result: dict[str, Any]) -> web.Response:
        self.calls.append(call)
        self._changed("call")
        if call.ok:
            return web.json_response({"ok": True, **result})
        return web.json_response({"ok": False, "error": call.error, **result})

    def _fault_response(self, call: Call, retry_after: int | None = None) -> web.Response:
        error = call.error or "server_error"
        call.status = _HTTP_FAULTS.get(error, 200)
        self.failed_calls.append(call)
        self._changed("failed_call")
        wait = self.retry_after if retry_after is None else retry_after
        headers = {"Retry-After": str(wait)} if call.status == 429 else None
        wire_error = {"server_error": "internal_error"}.get(error, error)
        return web.json_response({"ok": False, "error": wire_error}, status=call.status, headers=headers)

    # ---- Web API: methods -------------------------------------------------------------------------------

    def _api_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        # auth.test's output (https://docs.slack.dev/reference/methods/auth.test; the shared method
        # reference's auth.test.json): team_id, and on Enterprise Grid the organization's enterprise_id;
        # is_enterprise_install is true for an app installed on the whole organization, which this fake does
        # not model
        answer: dict[str, Any] = {
            "url": f"{PERMALINK_BASE}/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "is_enterprise_install": False,
        }
        if self.enterprise_id is not None:
            answer["enterprise_id"] = self.enterprise_id
        return answer

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
        msg = self.store_message(
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
        return {"channel": ch.id, "ts": msg.ts, "message": self.api_message(msg)}

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
        return {"channel": ch.id, "ts": msg.ts, "text": msg.text, "message": self.api_message(msg)}

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
        eph = self.add_ephemeral(ch.id, user, text or "", blocks,
                                 thread_ts=str(args["thread_ts"]) if args.get("thread_ts") else None)
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
            "messages": [self.api_message(m, include_metadata=include_metadata) for m in page],
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

    def _scope_missing(self, method: str, needed: tuple[str, ...], args: dict[str, Any]) -> bool:
        if method == "conversations.members":  # the scope of the conversation's kind: channels: or groups:
            ch = self.channels.get(str(args.get("channel") or ""))
            kind = "groups:read" if ch is not None and ch.private else "channels:read"
            return kind in self.missing_scopes
        return any(n in self.missing_scopes for n in needed)

    def _api_conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/conversations.members
        (../shared/data/slack-method-reference/conversations.members.json): `channel` required; `limit`
        "default 100" ("Fewer than the requested number of items may be returned"), `cursor` from the previous
        page's `response_metadata.next_cursor` (opaque base64, as Slack's `dXNlcjpVMDYxTkZUVDI=` =
        "user:U061NFTT2"); errors channel_not_found (a channel the bot cannot see: unknown, or private without
        it), invalid_cursor, invalid_limit."""
        ch = self._resolve_channel(args.get("channel"))
        raw_limit = args.get("limit")
        try:
            limit = 100 if raw_limit in (None, "") else int(raw_limit)
        except (TypeError, ValueError):
            raise SlackApiFault("invalid_limit") from None
        if limit < 1:
            raise SlackApiFault("invalid_limit")
        # "we recommend no more than 200 results at a time", at most 1000 (pagination)
        limit = min(limit, 1000)
        members = sorted(ch.members | ({self.bot_user_id} if ch.member else set()))
        start = 0
        if args.get("cursor"):
            try:
                after = base64.b64decode(str(args["cursor"]), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise SlackApiFault("invalid_cursor") from None
            if not after.startswith("user:"):
                raise SlackApiFault("invalid_cursor")
            start = next((i for i, u in enumerate(members) if u >= after.removeprefix("user:")), len(members))
        page = members[start : start + limit]
        rest = members[start + limit :]
        cursor = base64.b64encode(f"user:{rest[0]}".encode()).decode() if rest else ""
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def _api_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """https://docs.slack.dev/reference/methods/usergroups.users.list
        (../shared/data/slack-method-reference/usergroups.users.list.json): `usergroup` required; the answer
        is `users`, a list of user ids (no pagination); no_such_subteam: "No usergroup found with the given
        ID". `include_disabled`: "Include results for disabled User Groups": without it a disabled group's
        members are not listed (an empty list here)."""
        group = self.usergroups.get(str(args.get("usergroup") or ""))
        if group is None:
            raise SlackApiFault("no_such_subteam")
        if not group.enabled and not _truthy(args.get("include_disabled")):
            return {"users": []}
        return {"users": list(group.users)}

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
        api_files = [self._api_file(f, created) for f in done]
        for ch in targets:
            self.store_message(
                ch.id,
                str(args.get("initial_comment") or "")[:MAX_TEXT],
                thread_ts=str(args["thread_ts"]) if args.get("thread_ts") else None,
                files=api_files,
            )
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
                blocks = validate_blocks(blocks)
            except BlocksRefused as exc:
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
        original: replace/delete are ignored and a new ephemeral (or in_channel message) is posted, after
        what Slack showed before (a response_url updates "the original interactive message", the one a user
        interacted with: https://docs.slack.dev/messaging/modifying-messages; a command's `replace_original`
        posts a new message, as Slack's SDK maintainers say in slackapi/bolt-python#1268 and
        slackapi/bolt-js#2287). So `ephemerals` holds what a person sees in the order Slack took it.
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
            msg = self.store_message(
                channel, text, blocks=blocks, thread_ts=str(thread_ts) if thread_ts else None
            )
            post.outcome, post.ts = "in_channel", msg.ts
            return
        eph = self.add_ephemeral(channel, target.user or "", text, blocks,
                                 thread_ts=str(thread_ts) if thread_ts else None, source="response_url",
                                 response_url_id=target.id)
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


def _short(args: Mapping[str, Any], limit: int = 160) -> str:
    text = json.dumps({k: v for k, v in args.items() if k != "blocks"}, default=str)
    if "blocks" in args:
        text += f" +{len(args['blocks']) if isinstance(args['blocks'], list) else '?'} blocks"
    return text if len(text) <= limit else text[: limit - 3] + "..."

