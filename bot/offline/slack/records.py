"""What the fake Slack records, as plain dataclasses tests read directly (`fs.calls`, `fs.messages(...)`,
...).

Each record reads as an object (`msg.text`) and as a mapping (`msg["text"]`, `msg.get("text")`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import web


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
class UserGroup(_DictLike):
    """A user group (S…): its handle, members, and whether it is enabled."""

    id: str
    handle: str
    users: list[str] = field(default_factory=list)
    enabled: bool = True


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
    """One request that reached FakeSlack. `args` has JSON-encoded fields (blocks, metadata, files)
    decoded."""

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
class Change:
    """Passed to `FakeSlack.subscribe` callbacks on every change of recorded state."""

    # message, edit, delete, ephemeral, file, call, failed_call, delayed, channel, user, socket, envelope, ack
    kind: str
    version: int
    channel: str | None = None
    ts: str | None = None
