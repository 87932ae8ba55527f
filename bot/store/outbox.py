"""The Slack outbox: what is owed to each watch's thread, claimed before each Slack call, deleted once sent.

Every state change is written in the same transaction as the messages it owes, so a crash can delay a
message but never lose it. A row is claimed (attempts+1, committed) before its Slack call: after a crash a
row with attempts > 0 may already have reached Slack, and the notifier checks before posting a second parent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, aliased
from sqlmodel import col

from bot.domain.jobs import JobEvent, OutboxKind, Reply, Upload, event_payload
from bot.store.leases import free_for
from bot.store.models import Outbox, Watch

# What can be owed: the parent or an update of it (rendered when sent), a reply rendered by its owner,
# a file, or an event the notifier renders when it sends it.
Owed = Literal[OutboxKind.PARENT, OutboxKind.UPDATE] | Reply | Upload | JobEvent


@dataclass(frozen=True)
class OwedMessage:
    """One outbox row as the notifier reads it: with its watch's channel and parent message."""

    id: int
    watch_id: int
    kind: OutboxKind
    payload: dict[str, Any]  # the JSON payload its kind holds (bot.domain.jobs.OutboxKind)
    attempts: int
    created_at: float
    channel: str
    parent_ts: str | None


def _row(what: Owed) -> tuple[OutboxKind, dict[str, Any]]:
    if isinstance(what, OutboxKind):
        return what, {}
    if isinstance(what, Reply):
        return OutboxKind.REPLY, what.payload()
    if isinstance(what, Upload):
        return OutboxKind.FILE, what.payload()
    return OutboxKind.EVENT, event_payload(what)


def owe(s: Session, watch: Watch, what: Owed, now: float) -> bool:
    """Add a message to the outbox. An update is kept once per watch: later ones render the same state."""
    kind, payload = _row(what)
    if kind is OutboxKind.UPDATE:
        # one that is not being sent right now will render the newest state when it goes out
        waiting = s.execute(
            select(col(Outbox.id)).where(
                col(Outbox.watch_id) == watch.pk, col(Outbox.kind) == OutboxKind.UPDATE,
                or_(col(Outbox.attempts) == 0, col(Outbox.next_attempt_at) > now),
            ).limit(1)
        ).scalar()
        if waiting is not None:
            return False
    s.add(Outbox(watch_id=watch.pk, kind=kind, payload=json.dumps(payload, separators=(",", ":")),
                 created_at=now, next_attempt_at=now))
    return True


def owe_many(s: Session, watch_ids: Iterable[int], items: Iterable[Owed], now: float) -> None:
    """Owe the same messages to several watches (e.g. failure details to every channel of a job)."""
    owed = list(items)
    for wid in watch_ids:
        w = s.get(Watch, wid)
        if w is not None:
            for what in owed:
                owe(s, w, what, now)


def _owed(row: Outbox, channel: str, parent_ts: str | None, attempts: int | None = None) -> OwedMessage:
    assert row.id is not None
    return OwedMessage(row.id, row.watch_id, row.kind, json.loads(row.payload),
                       row.attempts if attempts is None else attempts, row.created_at, channel, parent_ts)


# The order owed messages go out in (`sending_order`), by kind: first what happened to a watch whose parent is
# in Slack (events: a state change, an outage, a timeout), so a new state change in a channel never waits
# behind a batch of new watches' parents (issue 20: 40 new parents held another user's failure reply 39 s);
# then parents (all a new watch owes goes into its thread, even what was owed before a new parent replaced a
# lost one: its events follow its parent); then what adds to what happened (replies such as an ended job's
# details, files); parents' updates last (an update renders the newest state whenever it goes, and stands for
# later ones, `owe`). In a burst of N changes in one channel, paced at about one post a second, the N-th
# change's reply so goes out after about N posts, not after the details of all the changes before.
_RANK = {OutboxKind.EVENT: 0, OutboxKind.PARENT: 1, OutboxKind.REPLY: 3, OutboxKind.FILE: 3,
         OutboxKind.UPDATE: 4}
_AFTER_ITS_PARENT = 2  # an event of a watch whose parent is not in Slack yet
_THREAD = (OutboxKind.EVENT, OutboxKind.REPLY, OutboxKind.FILE)


def sending_order(owed: Iterable[OwedMessage]) -> list[OwedMessage]:
    """`owed` in the order it is to be sent: by kind (`_RANK`), then oldest first; but a watch's thread
    messages (events, replies, files) keep their own order: none is ranked before an earlier one of its
    watch (a state change owed after a details reply waits for it)."""
    floor: dict[int, int] = {}  # watch -> the rank of its latest thread message so far
    keyed: list[tuple[int, int, OwedMessage]] = []
    for m in sorted(owed, key=lambda m: m.id):
        rank = _RANK[m.kind]
        if m.kind is OutboxKind.EVENT and m.parent_ts is None:
            rank = _AFTER_ITS_PARENT
        if m.kind in _THREAD:
            rank = floor[m.watch_id] = max(rank, floor.get(m.watch_id, rank))
        keyed.append((rank, m.id, m))
    return [m for _rank, _id, m in sorted(keyed, key=lambda k: (k[0], k[1]))]


def pending(s: Session, now: float, limit: int = 1000, watch_id: int | None = None,
            replica: str | None = None, channel: str | None = None,
            updates: bool = True) -> list[OwedMessage]:
    """What is due by `now` (one watch's only, given `watch_id`; one channel's, given `channel`), in
    `sending_order`. A thread message behind an earlier one of its watch that is not due yet (waiting to
    be retried) is not due either: a watch's messages go in their order. When more than `limit` are due,
    the parents are read first and the updates last. A replica (`replica`) reads only channels no other
    replica holds. `updates=False`: no parents' updates (Slack's chat.update budget has no room now: they
    stay owed, and are not read again and again meanwhile)."""
    earlier = aliased(Outbox)
    # an earlier thread message of the same watch, not due yet (a retry's backoff): this waits too
    waiting = (
        select(col(earlier.id)).where(col(earlier.watch_id) == col(Outbox.watch_id),
                                      col(earlier.id) < col(Outbox.id),
                                      col(earlier.next_attempt_at) > now,
                                      col(earlier.kind) != OutboxKind.UPDATE)
    )
    q = (
        select(Outbox, col(Watch.channel), col(Watch.parent_ts))
        .join(Watch, col(Watch.id) == col(Outbox.watch_id))
        .where(col(Outbox.next_attempt_at) <= now,
               or_(col(Outbox.kind) == OutboxKind.UPDATE, ~waiting.exists()))
        .order_by(col(Outbox.kind) != OutboxKind.PARENT, col(Outbox.kind) == OutboxKind.UPDATE,
                  col(Outbox.id))
        .limit(limit)
    )
    if watch_id is not None:
        q = q.where(col(Outbox.watch_id) == watch_id)
    if channel is not None:
        q = q.where(col(Watch.channel) == channel)
    if not updates:
        q = q.where(col(Outbox.kind) != OutboxKind.UPDATE)
    if replica is not None:
        q = q.where(free_for(replica))  # PostgreSQL's SQL: only replicas, which are on PostgreSQL, ask
    return sending_order(_owed(o, ch, ts) for o, ch, ts in s.execute(q))


def peek(s: Session, outbox_id: int) -> OwedMessage | None:
    row = s.get(Outbox, outbox_id)
    w = s.get(Watch, row.watch_id) if row is not None else None
    return _owed(row, w.channel, w.parent_ts) if row is not None and w is not None else None


def claim(s: Session, outbox_id: int) -> OwedMessage | None:
    """Mark one owed message as being sent (attempts+1, committed before the Slack call); it comes back
    with the attempts made before this one. None when it is gone (sent or dropped by another path)."""
    row = s.get(Outbox, outbox_id)
    w = s.get(Watch, row.watch_id) if row is not None else None
    if row is None or w is None:
        return None
    attempts = row.attempts
    row.attempts += 1
    return _owed(row, w.channel, w.parent_ts, attempts)


def sent(s: Session, outbox_id: int, parent_ts: str | None = None) -> None:
    """Done with a message (sent, or dropped for good); a parent's ts becomes its watch's thread."""
    row = s.get(Outbox, outbox_id)
    if row is None:
        return
    if parent_ts is not None:
        w = s.get(Watch, row.watch_id)
        if w is not None:
            w.parent_ts = parent_ts
    s.delete(row)


def retry_later(s: Session, outbox_id: int, at: float) -> None:
    row = s.get(Outbox, outbox_id)
    if row is not None:
        row.next_attempt_at = at


def release(s: Session, outbox_id: int) -> None:
    """Undo a claim: Slack refused the call before doing anything (the token), so the row is owed as if
    never tried (a parent needs no history check, and an update still stands for later ones)."""
    row = s.get(Outbox, outbox_id)
    if row is not None and row.attempts > 0:
        row.attempts -= 1


def replace_owed(s: Session, outbox_id: int, reply: Reply, now: float) -> None:
    """Owe a thread reply instead of the message `outbox_id` (a file Slack will not take: a note saying
    so)."""
    row = s.get(Outbox, outbox_id)
    w = s.get(Watch, row.watch_id) if row is not None else None
    if row is None or w is None:
        return
    s.delete(row)
    owe(s, w, reply, now)


def forget_parent(s: Session, watch_id: int, now: float) -> None:
    """The parent message is gone (deleted in Slack): post a new one and keep going."""
    w = s.get(Watch, watch_id)
    if w is None:
        return
    w.parent_ts = None
    s.execute(delete(Outbox).where(col(Outbox.watch_id) == watch_id,
                                   col(Outbox.kind).in_((OutboxKind.UPDATE, OutboxKind.PARENT))))
    owe(s, w, OutboxKind.PARENT, now)
