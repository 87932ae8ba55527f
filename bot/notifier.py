"""Sends what the outbox owes to Slack: in order per watch, paced per channel, retried, and only once.

A row is claimed (attempts+1, committed) before the Slack call and deleted after it, so a crash in
between leaves it owed. A parent owed again after such a crash is looked for in the channel's history
(by the watch id in its message metadata) before a second one is posted.

What a Slack error does is decided in one place, bot/slack_errors.py: retry (after Retry-After when
Slack sends one, and nothing more goes to that channel meanwhile), drop that message, post a new parent,
end the watch, cost only the upload, or stop sending. Stopping is for token trouble: the notifier holds
everything owed, says so once in the log and on /healthz (`slack_state`), and probes `auth.test` on a
backoff; the first probe that passes resumes sending. An error no table knows is retried with backoff
UNKNOWN_TRIES times, then its message is dropped with an ERROR log line.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages, store
from bot.slack_errors import Outcome, classify, retry_after
from bot.store import OwedMessage, Store

log = logging.getLogger(__name__)

METADATA_EVENT = "jobstatus_watch"
# Slack: about one message per second per channel.
CHANNEL_GAP = 1.0
UNKNOWN_TRIES = 5  # sends of a message that meet an error no table knows, before it is dropped
BACKOFF_FIRST = 1.0  # seconds before a message is sent again after a failure without Retry-After, doubling...
BACKOFF_MAX = 300.0  # ...up to this (with jitter)
PROBE_FIRST = 5.0  # seconds to the first auth.test after Slack refused the token; doubling from there...
PROBE_MAX = 300.0  # ...up to this
NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)  # after slack_sdk's own connection retries


@dataclass(frozen=True)
class Stopped:
    """Why nothing is sent: the Slack error that stopped it, and since when (wall clock)."""

    error: str
    since: float

    def __str__(self) -> str:
        return f"{self.error} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.since))}"


class Notifier:
    def __init__(
        self,
        db: Store,
        client: AsyncWebClient,
        render_parent: Callable[[int], Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.client = client
        self.render_parent = render_parent  # async (watch_id) -> (text, blocks) | None
        self.clock = clock
        self._wake = asyncio.Event()
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_post: dict[str, float] = {}
        self._held: dict[str, float] = {}  # channel -> monotonic time before which Slack asked us to wait
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.sent_count = 0
        self.stopped: Stopped | None = None
        self.probe_first = PROBE_FIRST
        self._probes = 0  # auth.test probes that failed since a message last went out
        self._next_probe = 0.0
        self._said_stopped: str | None = None  # the stop already logged, until a message goes out again

    def kick(self) -> None:
        self._wake.set()

    def slack_state(self) -> str:
        """"ok", or why sending is stopped ("token_revoked since 2026-...Z"): for /healthz and readiness."""
        return "ok" if self.stopped is None else str(self.stopped)

    async def run(self) -> None:
        """Deliver until `stop()`: woken by `kick()`, and every second for retries that fall due."""
        while not self._stopping:
            try:
                if self.stopped is not None:
                    await self._probe()
                else:
                    await self.drain()
            except Exception:  # a bug must not stop delivery for good
                log.exception("notifier pass failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except TimeoutError:
                pass
            self._wake.clear()

    async def drain(self) -> None:
        if self.stopped is not None:
            return
        rows = await self.db.run(store.pending, self.clock(), 2000)
        by_channel: dict[str, list[OwedMessage]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)
        for channel, items in by_channel.items():
            if channel in self._busy or self._is_held(channel):
                continue
            self._busy.add(channel)
            task = asyncio.create_task(self._channel(channel, items))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self, grace: float = 10.0) -> None:
        """Let in-flight sends finish (what is not sent stays owed in the outbox)."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)

    async def _channel(self, channel: str, items: list[OwedMessage]) -> None:
        sent = False
        try:
            blocked: set[int] = set()  # watches whose earlier message failed: keep their order
            for item in items:
                if self._stopping or self.stopped is not None or self._is_held(channel):
                    return
                if item.watch_id in blocked:
                    continue
                if await self._send_one(item.id) is True:
                    sent = True
                else:
                    blocked.add(item.watch_id)
        finally:
            self._busy.discard(channel)
            if sent:
                self.kick()  # what was owed meanwhile to this channel goes out now, not at the next sweep

    def _is_held(self, channel: str) -> bool:
        until = self._held.get(channel)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self._held[channel]
        return False

    async def deliver_watch(self, watch_id: int) -> str | None:
        """Send everything owed to one watch now (the command path). Returns the Slack error that refuses
        the watch for good (it is not ended: the caller undoes it), or None (sent, or left owed)."""
        for item in await self.db.run(store.pending, self.clock() + 3600, 100, watch_id):
            if self.stopped is not None:
                break
            err = await self._send_one(item.id, first=True)
            if isinstance(err, str):
                return err
            if err is False:
                break
        return None

    async def _send_one(self, outbox_id: int, first: bool = False) -> bool | str:
        """Send one owed message. True when done with it (sent, dropped, nothing to do), False when it is
        left owed for later, or the Slack error that ended its watch."""
        row = await self.db.run(store.peek, outbox_id)
        if row is None:
            return True
        if row.kind != "parent" and row.parent_ts is None:
            return False  # its parent is not posted yet
        lock = self._locks.setdefault(row.channel, asyncio.Lock())
        async with lock:
            if self.stopped is not None or self._is_held(row.channel):
                return False
            item = await self.db.run(store.claim, outbox_id)
            if item is None:
                return True  # sent meanwhile by another path
            try:
                ts = await self._post(item)
            except SlackApiError as exc:
                return await self._failed(item, _method_of(exc), _error_of(exc), exc, first)
            except NETWORK_ERRORS as exc:  # the network, after slack_sdk's own retries: transient
                return await self._retry(item, type(exc).__name__, None)
            except Exception as exc:  # SlackRequestError (a failed upload step) or a bug of ours
                log.warning("watch %s: sending %s raised %s", item.watch_id, item.kind, type(exc).__name__,
                            exc_info=True)
                return await self._unknown(item, type(exc).__name__, first)
            await self.db.run(store.sent, item.id, ts)
            self.sent_count += 1
            self._said_stopped = None
            self._probes = 0
            return True

    async def _post(self, item: OwedMessage) -> str | None:
        if item.kind == "parent":
            if item.attempts > 0:
                found = await self._find_parent(item)
                if found:
                    log.info("parent of watch %s was already posted before a restart (ts %s)", item.watch_id, found)
                    return found
            rendered = await self.render_parent(item.watch_id)
            if rendered is None:
                return None
            text, blocks = rendered
            await self._pace(item.channel)
            resp = await self.client.chat_postMessage(
                channel=item.channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"watch_id": item.watch_id}},
            )
            return str(resp["ts"])
        if item.kind == "update":
            rendered = await self.render_parent(item.watch_id)
            if rendered is not None:
                text, blocks = rendered
                await self.client.chat_update(channel=item.channel, ts=item.parent_ts, text=text, blocks=blocks)
            return None
        p = item.payload
        await self._pace(item.channel)
        if item.kind == "file":
            await self.client.files_upload_v2(
                channel=item.channel, thread_ts=item.parent_ts, filename=p["filename"], title=p["filename"],
                content=base64.b64decode(p["content_b64"]),
            )
            return None
        await self.client.chat_postMessage(
            channel=item.channel, thread_ts=item.parent_ts, text=p.get("text") or " ", blocks=p.get("blocks") or None,
            reply_broadcast=bool(p.get("broadcast")), unfurl_links=False, unfurl_media=False,
        )
        return None

    async def _find_parent(self, item: OwedMessage) -> str | None:
        """After a crash mid-send: the parent may be in Slack already. Find it by its metadata.

        When Slack will not let us look (no history scope, say), the parent is posted: a second parent is
        better than none. Transient trouble and token trouble are the send's own (raised)."""
        try:
            resp = await self.client.conversations_history(
                channel=item.channel, oldest=str(item.created_at - 5), limit=200, include_all_metadata=True
            )
        except SlackApiError as exc:
            error = _error_of(exc)
            if classify("conversations.history", error) in (Outcome.RETRY, Outcome.STOP_SENDING):
                raise
            log.warning("cannot read channel history to check for an earlier parent: %s", error)
            return None
        for msg in resp.get("messages", []):
            meta = msg.get("metadata") or {}
            if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("watch_id") == item.watch_id:
                return str(msg["ts"])
        return None

    async def _pace(self, channel: str) -> None:
        last = self._last_post.get(channel)
        now = time.monotonic()
        if last is not None and now - last < CHANNEL_GAP:
            await asyncio.sleep(CHANNEL_GAP - (now - last))
        self._last_post[channel] = time.monotonic()

    # -- what a Slack error does (bot/slack_errors.py says which) ---------------------------------------
    async def _failed(self, item: OwedMessage, method: str, error: str, exc: SlackApiError,
                      first: bool) -> bool | str:
        outcome = classify(method, error)
        if outcome is None:
            return await self._unknown(item, f"{method}: {error}", first)
        if outcome is Outcome.RETRY:
            return await self._retry(item, error, retry_after(getattr(exc.response, "headers", None)))
        if outcome is Outcome.STOP_SENDING:
            self._stop(error)
            await self.db.run(store.release, item.id)  # refused before anything happened: owed as before
            return False
        if outcome is Outcome.REPOST_PARENT:
            log.warning("watch %s: the parent message cannot be edited or replied to (%s); posting a new one",
                        item.watch_id, error)
            await self.db.run(store.forget_parent, item.watch_id, self.clock())
            self.kick()
            return False
        if outcome is Outcome.NO_UPLOAD:
            return await self._no_upload(item, error)
        if outcome is Outcome.DROP and item.kind != "parent":
            log.error("watch %s: Slack refused a %s message for good (%s); dropped it, the thread goes on",
                      item.watch_id, item.kind, error)
            await self.db.run(store.sent, item.id, None)
            return True
        # END_WATCH, or a parent Slack will never take (nothing could be threaded under it)
        return await self._end_watch(item, error, first)

    async def _retry(self, item: OwedMessage, error: str, after: float | None) -> bool:
        if after is not None:
            delay = after
            self._held[item.channel] = time.monotonic() + after  # Slack asked: nothing to this channel meanwhile
        else:
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** min(item.attempts, 16)) * (0.5 + random.random())
        log.warning("watch %s: sending %s failed (%s); retrying in %.0f s", item.watch_id, item.kind, error, delay)
        await self.db.run(store.retry_later, item.id, self.clock() + delay)
        return False

    async def _unknown(self, item: OwedMessage, what: str, first: bool) -> bool | str:
        """An error no table knows: retried with backoff UNKNOWN_TRIES times, then dropped (a file costs
        its upload, a parent its watch)."""
        if item.attempts + 1 < UNKNOWN_TRIES:
            return await self._retry(item, f"{what}, not in Slack's error table", None)
        log.error("watch %s: sending %s failed %d times (%s, not in Slack's error table); dropped it",
                  item.watch_id, item.kind, UNKNOWN_TRIES, what)
        if item.kind == "file":
            return await self._no_upload(item, what)
        if item.kind == "parent":
            return await self._end_watch(item, what, first)
        await self.db.run(store.sent, item.id, None)
        return True

    async def _end_watch(self, item: OwedMessage, error: str, first: bool) -> str:
        if first:
            return error  # the command path undoes the new watch and tells the user
        log.warning("watch %s: Slack answered %s for channel %s: ending the watch", item.watch_id, error, item.channel)
        await self.db.run(store.end_watch_for_slack, item.watch_id, error, self.clock())
        return error

    async def _no_upload(self, item: OwedMessage, error: str) -> bool:
        """The upload is refused: drop the file, and say in the thread where the log is instead."""
        filename = str(item.payload.get("filename") or "the log")
        pair = await self.db.run(store.watch_and_job, item.watch_id)
        paths = pair[1].log_path_list if pair is not None else []
        path = next((p for p in paths if p.replace("\\", "/").rsplit("/", 1)[-1] == filename), None)
        log.warning("watch %s: Slack refused the upload of %s (%s); the thread says where the log is instead",
                    item.watch_id, filename, error)
        await self.db.run(store.replace_owed, item.id, messages.upload_refused(filename, path, error), self.clock())
        self.kick()
        return True

    def _stop(self, error: str) -> None:
        """Token trouble: send nothing until an auth.test passes. Logged once per stop, not per message."""
        if self.stopped is not None:
            return
        self.stopped = Stopped(error, self.clock())
        self._next_probe = time.monotonic() + self._probe_delay()
        level = logging.INFO if self._said_stopped == error else logging.ERROR
        log.log(level, "Slack refuses the bot (%s): sending stopped, everything owed stays in the outbox; "
                       "checking with auth.test in %g s, then less often (up to every %g s)",
                error, self._probe_delay(), PROBE_MAX)
        self._said_stopped = error

    def _probe_delay(self) -> float:
        return min(PROBE_MAX, self.probe_first * 2.0 ** min(self._probes, 16))

    async def _probe(self) -> None:
        if self.stopped is None or time.monotonic() < self._next_probe:
            return
        try:
            await self.client.auth_test()
        except (SlackApiError, *NETWORK_ERRORS) as exc:
            self._probes += 1
            self._next_probe = time.monotonic() + self._probe_delay()
            why = _error_of(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
            log.debug("auth.test: %s; next check in %g s", why, self._probe_delay())
            return
        log.info("Slack accepts the bot's token again (it was stopped: %s); sending what is owed", self.stopped)
        self.stopped = None
        self.kick()


def _error_of(exc: SlackApiError) -> str:
    resp = exc.response
    return str(resp.get("error") or "unknown_error") if resp is not None else "unknown_error"


def _method_of(exc: SlackApiError) -> str:
    """The Web API method that answered (files_upload_v2 and the parent check call more than one)."""
    return str(getattr(exc.response, "api_url", "") or "").rstrip("/").rsplit("/", 1)[-1]


def render_parent_factory(db: Store, can_cancel: Callable[[str], bool]) -> Callable[[int], Any]:
    """The parent message of a watch, rendered from the database as it is now."""

    async def render(watch_id: int) -> tuple[str, list[dict[str, Any]]] | None:
        pair = await db.run(store.watch_and_job, watch_id)
        if pair is None:
            return None
        w, j = pair
        return messages.parent(job_view(j), watcher=w.user_id, watch_id=w.id or 0, active=w.active,
                               ended_reason=w.ended_reason,
                               can_cancel=can_cancel(j.backend) and j.cancel_requested_at is None)

    return render


def job_view(j: store.Job) -> messages.JobView:
    return messages.JobView(
        backend=j.backend, job_id=j.job_id, name=j.name, phase=j.phase_enum, vendor_status=j.vendor_status,
        progress=j.progress, message=j.message, log_paths=j.log_path_list, links=j.link_list,
        checked_at=j.checked_at or j.created_at, error_text=j.error_text if j.errors else None,
    )
