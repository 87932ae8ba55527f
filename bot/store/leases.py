"""Replicas on one PostgreSQL: who is alive, who polls which job, who sends to which Slack channel.

PostgreSQL is the coordinator; there is no protocol of our own. Every time here is the database's clock
(`clock_timestamp()`, epoch seconds), so replicas on hosts whose clocks disagree still agree on leases.

- `replicas`: each replica's heartbeat, written every lease/3. Live: a heartbeat younger than the lease and
  its LISTEN session still connected (see LIVE).
- `jobs.owner`: the replica that polls a job, for as long as that replica is live: its heartbeat is the
  lease of all its jobs at once, so a heartbeat writes no job row (renewing a lease per job rewrote every
  owned row each lease/3: at 25,000 jobs a replica 1 to 3 s of PostgreSQL per heartbeat, holding their row
  locks, and as many dead row versions). A job with no owner or whose owner is no longer live (it died) is
  claimed with `FOR UPDATE SKIP LOCKED`, so two replicas claiming at once never take the same job; each
  takes up to its fair share (ceil(polled jobs / live replicas)) and gives back what is above it when
  replicas join. (`jobs.lease_until`, the per-job lease of revision 0003, is no longer written.)
- `channel_leases`: the replica that sends to a channel; taken over when its lease runs out.

Everything here is PostgreSQL's SQL (tests/e2e/test_replicas.py runs it on a throwaway cluster); SQLite is
one process (bot/store/engine.py locks its file) and never calls it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

NOW = "extract(epoch from clock_timestamp())::float8"
# LISTEN/NOTIFY channel: "balance" (replicas joined or left, jobs given back), "job <pk>"
CHANNEL = "jobstatus"
FORGET_AFTER = 20  # leases: a replica silent this long is deleted from `replicas` (it is long dead)


def db_now(s: Session) -> float:
    return float(s.execute(text(f"SELECT {NOW}")).scalar_one())


@dataclass
class Balance:
    """What one heartbeat did: the jobs this replica owns now, those it took and gave back, live replicas."""

    owned: set[int] = field(default_factory=set)
    claimed: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    live: int = 1
    share: int = 0


def heartbeat(s: Session, replica: str, lease: float) -> int:
    """Say this replica is alive; returns how many are (this one included)."""
    now = db_now(s)
    s.execute(text("INSERT INTO replicas (id, started, heartbeat) VALUES (:id, :now, :now) "
                   "ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat"),
              {"id": replica, "now": now})
    s.execute(text("DELETE FROM replicas WHERE heartbeat < :old"), {"old": now - FORGET_AFTER * lease})
    return int(s.execute(text(f"SELECT count(*) FROM ({LIVE}) AS live"), {"since": now - lease}).scalar_one())


# The live replicas (:since = now - lease): a heartbeat younger than the lease, and the replica's own session
# still connected. Each replica keeps one connection open for LISTEN under its id as `application_name`
# (bot/engine/replicas.py); when its process dies (kill -9, a crash) the operating system closes that
# connection and PostgreSQL drops the session from pg_stat_activity at once, so the others take its jobs at
# their next heartbeat instead of waiting out the lease (which stays the bound for a host that is lost without
# closing its connections). A replica younger than one lease counts as live without the session: it opens it
# before its first heartbeat, but a test's stand-in replica (leases called directly) has none.
LIVE = ("SELECT id FROM replicas WHERE heartbeat >= :since"
        " AND (started >= :since OR id IN (SELECT application_name FROM pg_stat_activity))")


def balance(s: Session, replica: str, lease: float, backends: Sequence[str],
            keep: Sequence[int] = ()) -> Balance:
    """The heartbeat: say this replica is alive (which keeps all its jobs its own), then take jobs with no
    live owner up to its fair share, or give back those above it (the ones due last). Jobs of backends not
    configured are left. `keep`: jobs this replica is polling now or whose next poll time it has not written
    yet; given back last (only when too few others are left: polled back to back, nearly every job is) (the
    taker would poll them again at once, before this poll's answer: twice within a vendor's per-job limit),
    but at a later heartbeat."""
    live = heartbeat(s, replica, lease)
    mine = {"me": replica, "since": db_now(s) - lease, "backends": list(backends), "keep": list(keep)}
    owned = set(s.execute(text("SELECT id FROM jobs WHERE owner = :me AND polling "
                               "AND backend = ANY(:backends)"), mine).scalars())
    s.execute(text("UPDATE jobs SET owner = NULL WHERE owner = :me "
                   "AND NOT (polling AND backend = ANY(:backends))"), mine)  # ended, or its backend left
    total = int(s.execute(text("SELECT count(*) FROM jobs WHERE polling AND backend = ANY(:backends)"),
                          mine).scalar_one())
    share = math.ceil(total / max(live, 1))
    out = Balance(owned=owned, live=live, share=share)
    if len(owned) < share:
        out.claimed = list(s.execute(text(
            "UPDATE jobs SET owner = :me WHERE id IN ("
            " SELECT id FROM jobs WHERE polling AND backend = ANY(:backends)"
            f" AND (owner IS NULL OR owner NOT IN ({LIVE}))"
            " ORDER BY next_poll_at LIMIT :n FOR UPDATE SKIP LOCKED"
            ") RETURNING id"), {**mine, "n": share - len(owned)}).scalars())
        owned.update(out.claimed)
    elif len(owned) > share:
        out.released = list(s.execute(text(
            "UPDATE jobs SET owner = NULL WHERE id IN ("
            " SELECT id FROM jobs WHERE owner = :me"
            " ORDER BY (id = ANY(CAST(:keep AS integer[]))), next_poll_at DESC LIMIT :n FOR UPDATE"
            ") RETURNING id"), {**mine, "n": len(owned) - share}).scalars())
        owned.difference_update(out.released)
    return out


def claim_job(s: Session, replica: str, lease: float, job_pk: int) -> bool:
    """Take one job a user just watched (or watched again) unless a live replica polls it already. Whether
    this replica owns it now."""
    row = s.execute(text(
        "UPDATE jobs SET owner = :me WHERE id = :pk AND polling"
        f" AND (owner IS NULL OR owner = :me OR owner NOT IN ({LIVE})) RETURNING id"),
        {"me": replica, "since": db_now(s) - lease, "pk": job_pk}).first()
    return row is not None


def hold_channels(s: Session, replica: str, lease: float, channels: Sequence[str]) -> set[str]:
    """Take or renew the send lease of each channel that no other live replica holds; returns the channels
    this replica holds now."""
    if not channels:
        return set()
    now = db_now(s)
    return set(s.execute(text(
        "INSERT INTO channel_leases (channel, owner, lease_until)"
        " SELECT c, :me, :until FROM unnest(CAST(:channels AS text[])) AS c ORDER BY c"
        " ON CONFLICT (channel) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until"
        " WHERE channel_leases.owner = excluded.owner OR channel_leases.lease_until < :now"
        " RETURNING channel"), {"me": replica, "until": now + lease, "now": now,
                                "channels": sorted(set(channels))}).scalars())


def free_for(replica: str) -> TextClause:
    """A WHERE clause on `watches`: its channel is not held by another replica (for the notifier's reading of
    what is owed, so channels others send to do not crowd out its own)."""
    return text("NOT EXISTS (SELECT 1 FROM channel_leases AS cl WHERE cl.channel = watches.channel"
                f" AND cl.owner <> :lease_me AND cl.lease_until >= {NOW})").bindparams(lease_me=replica)


def leave(s: Session, replica: str) -> None:
    """A replica stopping cleanly: its jobs and channels are free at once, not after the lease."""
    s.execute(text("UPDATE jobs SET owner = NULL WHERE owner = :me"), {"me": replica})
    s.execute(text("DELETE FROM channel_leases WHERE owner = :me"), {"me": replica})
    s.execute(text("DELETE FROM replicas WHERE id = :me"), {"me": replica})


def notify(s: Session, payload: str) -> None:
    """Tell every replica (delivered when this transaction commits)."""
    s.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload})
