"""Doubles for the unit tests: a SlackSender that records what the bot sent and refuses what a test queues,
a Backend answering from a dict, and a temp store with a watch in it. No sockets anywhere."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from slack_sdk.webhook import WebhookResponse

from bot.backends.base import Backend
from bot.domain.errors import JobNotFound
from bot.domain.jobs import Reply, Upload
from bot.domain.status import JobStatus
from bot.engine.notifier import Notifier
from bot.engine.poller import Poller
from bot.operations.watching import Watching
from bot.slack.budget import Priority
from bot.slack.sender import SlackError
from bot.store import Store
from bot.support.config import BackendConfig, Settings, settings_from_dict


@dataclass
class Sent:
    method: str
    channel: str
    ts: str  # the message's own ts (a reply's or a parent's); the ts edited, for chat.update
    thread_ts: str | None = None
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    broadcast: bool = False
    watch_id: int | None = None  # a parent's metadata
    filename: str | None = None
    at: float = field(default_factory=time.monotonic)


class SlackDouble:
    """A SlackSender. `refuse(method, code)` queues a refusal with Slack's own code for the next call of that
    Web API method; otherwise every call is recorded in `sent` and succeeds."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.priorities: list[Priority] = []  # each post_reply's, in order
        self.refusals: dict[str, list[SlackError]] = {}
        self.token_refused = False  # auth.test answers invalid_auth while set
        self.auth_tests = 0
        self._ts = (f"1700000000.{n:06d}" for n in itertools.count(1))

    def refuse(self, method: str, code: str, times: int = 1, retry_after: float | None = None) -> None:
        self.refusals.setdefault(method, []).extend(SlackError(method, code, retry_after)
                                                    for _ in range(times))

    def _call(self, method: str) -> str:
        queued = self.refusals.get(method)
        if queued:
            raise queued.pop(0)
        return next(self._ts)

    def of(self, method: str, channel: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.method == method and channel in (None, s.channel)]

    async def post_parent(self, channel: str, text: str, blocks: list[dict[str, Any]], watch_id: int) -> str:
        ts = self._call("chat.postMessage")
        self.sent.append(Sent("chat.postMessage", channel, ts, None, text, blocks, watch_id=watch_id))
        return ts

    async def earlier_parent(self, channel: str, since: float, watch_id: int) -> str | None:
        self._call("conversations.history")
        return next((s.ts for s in self.of("chat.postMessage", channel) if s.watch_id == watch_id), None)

    async def post_reply(self, channel: str, thread_ts: str, reply: Reply,
                         priority: Priority = Priority.DETAIL, ) -> None:
        ts = self._call("chat.postMessage")
        self.priorities.append(priority)
        self.sent.append(Sent("chat.postMessage", channel, ts, thread_ts, reply.text, reply.blocks,
                              reply.broadcast))

    async def post_message(self, channel: str, reply: Reply) -> str:
        ts = self._call("chat.postMessage")
        self.sent.append(Sent("chat.postMessage", channel, ts, None, reply.text, reply.blocks))
        return ts

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        self._call("chat.update")
        if not any(s.ts == ts and s.channel == channel for s in self.sent):
            # chat.update's reference (docs.slack.dev/reference/methods/chat.update): message_not_found,
            # "No message exists with the requested timestamp"
            raise SlackError("chat.update", "message_not_found")
        self.sent.append(Sent("chat.update", channel, ts, None, text, blocks))

    async def upload(self, channel: str, thread_ts: str, upload: Upload) -> None:
        ts = self._call("files.completeUploadExternal")
        self.sent.append(Sent("files.completeUploadExternal", channel, ts, thread_ts,
                              filename=upload.filename))

    async def auth_test(self) -> None:
        self.auth_tests += 1
        self._call("auth.test")
        if self.token_refused:
            raise SlackError("auth.test", "invalid_auth")

    async def permalink(self, channel: str, ts: str) -> str | None:
        self._call("chat.getPermalink")
        return f"https://slack.test/archives/{channel}/p{ts.replace('.', '')}"


# details: anywhere (not the default, which posts them nowhere): these tests are about what is posted and how;
# where details may go is tests/unit/test_permissions.py's and tests/e2e/test_permissions.py's
CONFIG: dict[str, Any] = {"type": "fusion_jobscheduler", "base_url": "https://fusion.test",
                          "auth": {"type": "bearer", "token": "test-token"}, "poll_interval": 30,
                          "details": "anywhere"}


def backend_config(**extra: Any) -> BackendConfig:
    return BackendConfig.model_validate({**CONFIG, **extra})


def settings(**top: Any) -> Settings:
    """Settings with one backend, `fake` (a BackendDouble's name)."""
    return settings_from_dict({"backends": {"fake": CONFIG}, **top})


class BackendDouble(Backend):
    """A Backend whose jobs are what the test sets: `jobs[job_id]` a JobStatus, or an exception to raise (a
    BackendError, or anything else: a bug in an adapter); a job it does not have is JobNotFound."""

    type_name = "double"
    label = "Double"

    def __init__(self, name: str = "fake", config: BackendConfig | None = None, **extra: Any) -> None:
        super().__init__(name, config or backend_config(**extra), http=httpx.AsyncClient())
        self.jobs: dict[str, JobStatus | Exception] = {}
        self.asked: list[str] = []
        self.cancelled: list[str] = []
        self.cancellable = False

    @property
    def can_cancel(self) -> bool:
        return self.cancellable

    def validate_job_id(self, text: str) -> str:
        return text

    async def status(self, job_id: str) -> JobStatus:
        self.asked.append(job_id)
        answer = self.jobs.get(job_id, JobNotFound(f"{self.name} has no job {job_id}"))
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def cancel(self, job_id: str) -> str:
        self.cancelled.append(job_id)
        return "cancel requested"


def backends(*doubles: BackendDouble) -> Mapping[str, Backend]:
    return {b.name: b for b in doubles}


def texts(sent: Iterable[Sent]) -> list[str]:
    return [s.text for s in sent]


async def until(cond: Callable[[], Any] | Callable[[], Awaitable[Any]], what: str,
                timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Wait for a condition (a function, or a coroutine function) with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = cond()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def watching(db: Store, clock: Callable[[], float]) -> tuple[Watching, SlackDouble, BackendDouble]:
    """The operations over the real notifier and poller, with a SlackDouble and one BackendDouble."""
    backend = BackendDouble()
    by_name, slack, config = backends(backend), SlackDouble(), settings()
    notifier = Notifier(db, slack, by_name, clock)
    poller = Poller(db, by_name, notifier.kick, config, clock)
    return Watching(config, by_name, db, poller, notifier, slack, clock), slack, backend


class Recorder:
    """An ack or respond as Bolt injects it: records each call's arguments; respond's answer is a 200."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> WebhookResponse:
        self.calls.append(kwargs)
        return WebhookResponse(url="https://hooks.slack.test/response", status_code=200, body="ok",
                               headers={})

    @property
    def texts(self) -> list[str]:
        return [str(c.get("text", "")) for c in self.calls]
