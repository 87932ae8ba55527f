"""Sends what the outbox owes to Slack: in order per watch, paced per channel, retried, and only once.

A row is claimed (attempts+1, committed) before the Slack call and deleted after it, so a crash in
between leaves it owed. A parent owed again after such a crash is looked for in the channel's history
(by the watch id in its message metadata) before a second one is posted.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages, store
from bot.store import OwedMessage, Store

log = logging.getLogger(__name__)

METADATA_EVENT = "jobstatus_watch"
# Slack: about one message per second per channel.
CHANNEL_GAP = 1.0
# Errors after which sending to that channel/thread cannot work: the watch ends.
FATAL = {"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived", "restricted_action",
         "team_access_not_granted", "invalid_auth", "account_inactive", "token_revoked", "no_permission",
         "ekm_access_denied", "missing_scope", "not_authed"}


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
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.sent_count = 0

    def kick(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Deliver until `stop()`: woken by `kick()`, and every second for retries that fall due."""
        while not self._stopping:
            try:
                await self.drain()
            except Exception:  # a bug must not stop delivery for good
                log.exception("notifier pass failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except TimeoutError:
                pass
            self._wake.clear()

    async def drain(self) -> None:
        rows = await self.db.run(store.pending, self.clock(), 2000)
        by_channel: dict[str, list[OwedMessage]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)
        for channel, items in by_channel.items():
            if channel in self._busy:
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
                if self._stopping:
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

    async def deliver_watch(self, watch_id: int) -> str | None:
        """Send everything owed to one watch now (the command path). Returns a fatal Slack error or None."""
        for item in await self.db.run(store.pending, self.clock() + 3600, 100, watch_id):
            err = await self._send_one(item.id, fatal_out=True)
            if isinstance(err, str):
                return err
            if err is False:
                break
        return None

    async def _send_one(self, outbox_id: int, fatal_out: bool = False) -> bool | str:
        """Send one owed message. True when sent (or nothing to do), False when left for a retry."""
        row = await self.db.run(store.peek, outbox_id)
        if row is None:
            return True
        lock = self._locks.setdefault(row.channel, asyncio.Lock())
        async with lock:
            item = await self.db.run(store.claim, outbox_id)
            if item is None:
                return True  # sent meanwhile by another path
            if item.kind != "parent" and item.parent_ts is None:
                return False  # its parent is not posted yet
            try:
                ts = await self._post(item)
            except SlackApiError as exc:
                error = str(exc.response.get("error", "unknown_error")) if exc.response is not None else "unknown_error"
                return await self._failed(item, error, exc, fatal_out)
            except Exception as exc:  # network trouble after slack_sdk's own retries
                return await self._failed(item, type(exc).__name__, exc, fatal_out)
            await self.db.run(store.sent, item.id, ts)
            self.sent_count += 1
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
        """After a crash mid-send: the parent may be in Slack already. Find it by its metadata."""
        try:
            resp = await self.client.conversations_history(
                channel=item.channel, oldest=str(item.created_at - 5), limit=200, include_all_metadata=True
            )
        except SlackApiError as exc:
            log.warning("cannot read channel history to check for an earlier parent: %s", exc.response.get("error"))
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

    async def _failed(self, item: OwedMessage, error: str, exc: Exception, fatal_out: bool) -> bool | str:
        now = self.clock()
        if error in FATAL:
            log.warning("watch %s: Slack answered %s for channel %s: ending the watch", item.watch_id, error, item.channel)
            if not fatal_out:
                await self.db.run(store.end_watch_for_slack, item.watch_id, error, now)
            return error
        if error == "message_not_found" and item.kind == "update":
            log.warning("watch %s: parent message is gone; posting a new one", item.watch_id)
            await self.db.run(store.forget_parent, item.watch_id, now)
            self.kick()
            return False
        if error in ("no_text", "invalid_blocks", "msg_too_long", "invalid_arguments", "invalid_metadata_format"):
            # our own rendering is at fault: sending it again cannot help; keep the thread going
            log.error("watch %s: Slack refused a %s message (%s); dropped", item.watch_id, item.kind, error)
            await self.db.run(store.sent, item.id, None)
            return True
        delay = min(300.0, 2.0 ** min(item.attempts, 8)) * (0.5 + random.random())
        retry_after = getattr(getattr(exc, "response", None), "headers", {}) or {}
        if isinstance(retry_after, dict) and retry_after.get("Retry-After"):
            try:
                delay = max(delay, float(retry_after["Retry-After"]))
            except ValueError:
                pass
        log.warning("watch %s: sending %s failed (%s); retrying in %.0f s", item.watch_id, item.kind, error, delay)
        await self.db.run(store.retry_later, item.id, now + delay)
        return False


def render_parent_factory(db: Store, can_cancel: Callable[[str], bool]) -> Callable[[int], Any]:
    """The parent message of a watch, rendered from the database as it is now."""

    async def render(watch_id: int) -> tuple[str, list[dict[str, Any]]] | None:
        pair = await db.run(store.watch_and_job, watch_id)
        if pair is None:
            return None
        w, j = pair
        return messages.parent(job_view(j), watcher=w.user_id, watch_id=w.id or 0, active=w.active,
                               ended_reason=w.ended_reason, can_cancel=can_cancel(j.backend))

    return render


def job_view(j: store.Job) -> messages.JobView:
    return messages.JobView(
        backend=j.backend, job_id=j.job_id, name=j.name, phase=j.phase_enum, vendor_status=j.vendor_status,
        progress=j.progress, message=j.message, log_paths=j.log_path_list, links=j.link_list,
        checked_at=j.checked_at or j.created_at, error_text=j.error_text if j.errors else None,
    )
