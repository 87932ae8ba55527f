"""The tables: jobs, watches, their state-change history, the Slack outbox, run durations, daily digests,
replicas and their leases, rotating secrets, and the last minute's watch starts (quotas).

They are the schema's newest revision: a change here comes with a revision in bot/store/migrations/versions/
(tests/unit/store/test_schema.py fails until the two agree)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import Index, String, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.domain import actors
from bot.domain.jobs import JobView, OutboxKind
from bot.domain.runs import FollowMode
from bot.domain.states import Phase
from bot.domain.status import Link

E = TypeVar("E", bound=StrEnum)


class VendorText(TypeDecorator[str]):
    """Text a vendor wrote. PostgreSQL's text types cannot hold NUL (SQLite's can): one NUL in a status
    message would fail the whole batch of poll results written with it, so NULs are dropped on the way in."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


class EnumText(TypeDecorator[E], Generic[E]):
    """A string column whose values are an enum's: stored as the value (what every release wrote), read back
    as the member. A value the enum lacks reads as `unknown` when one is given, else it raises."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], unknown: E | None = None) -> None:
        super().__init__()
        self.enum = enum
        self.unknown = unknown

    def process_bind_param(self, value: E | str | None, dialect: Any) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Any) -> E | None:
        if value is None:
            return None
        try:
            return self.enum(value)
        except ValueError:
            if self.unknown is None:
                raise
            return self.unknown


class Job(SQLModel, table=True):
    """A vendor job, polled once however many channels watch it."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("backend", "job_id"),
        Index("ix_jobs_due", "polling", "next_poll_at"),
        Index("ix_jobs_done", "polling", "checked_at"),  # pruning: jobs no longer polled, by last check
        # replicas on PostgreSQL: each one's leased jobs (bot/store/leases.py)
        Index("ix_jobs_owner", "owner"),
    )

    id: int | None = Field(default=None, primary_key=True)
    backend: str
    job_id: str
    name: str | None = Field(default=None, sa_type=VendorText)
    phase: Phase = Field(default=Phase.UNKNOWN, sa_type=EnumText(Phase, Phase.UNKNOWN))
    vendor_status: str = Field(default="", sa_type=VendorText)
    progress: int | None = None
    message: str | None = Field(default=None, sa_type=VendorText)
    log_paths: str = "[]"  # JSON list
    links: str = "[]"  # JSON list of [label, url]
    polling: bool = True  # has active watches and is not terminal
    next_poll_at: float = 0.0
    errors: int = 0  # consecutive failed polls
    error_kind: str | None = None
    error_text: str | None = Field(default=None, sa_type=VendorText)
    error_since: float | None = None
    outage_noted: bool = False
    timeout_at: float | None = None
    cancel_requested_by: str | None = None  # the Slack user whose cancel the vendor was asked for, and when:
    cancel_requested_at: float | None = None  # one cancel call per job however many clicks arrive at once
    changed_at: float = 0.0
    checked_at: float = 0.0
    created_at: float = 0.0
    # replicas on PostgreSQL: the replica that polls the job while it is live (leases.py)
    owner: str | None = None
    # no longer written: the owner's heartbeat is its jobs' lease; SQLite leaves both alone
    lease_until: float = 0.0
    # "longer than usual" (bot/domain/durations.py): when this run started (the vendor's time, else first seen
    # running), and its past runs' figures as of then: the median, how many runs, the 90th percentile
    started_at: float | None = None
    usual_s: float | None = None
    usual_runs: int = 0
    late_after_s: float | None = None
    late_noted: bool = False  # the one "longer than usual" note is owed already
    # flapping (bot/store/polls.py): since when the job's changes have been too many for a reply each, so only
    # its parents follow them; None while each change gets its reply
    flapping_since: float | None = None

    @property
    def pk(self) -> int:
        """The id of a job that is in the database (every job the store hands out)."""
        assert self.id is not None
        return self.id

    @property
    def log_path_list(self) -> list[str]:
        return list(json.loads(self.log_paths or "[]"))

    def view(self) -> JobView:
        """What a message shows about the job as it is now."""
        return JobView(
            backend=self.backend, job_id=self.job_id, name=self.name, phase=self.phase,
            vendor_status=self.vendor_status, progress=self.progress, message=self.message,
            log_paths=self.log_path_list,
            links=[Link(label, url) for label, url in json.loads(self.links or "[]")],
            checked_at=self.checked_at or self.created_at,
            error_text=self.error_text if self.errors else None,
            started_at=self.started_at, usual_s=self.usual_s, usual_runs=self.usual_runs,
        )


class Watch(SQLModel, table=True):
    """One channel following one job: the parent message and who asked. One per (job, channel), ever: a
    channel that watches a job again gets its earlier thread back (the unique constraint holds it so under
    any concurrency, on SQLite and PostgreSQL alike)."""

    __tablename__ = "watches"
    __table_args__ = (
        UniqueConstraint("job_pk", "channel"),
        Index("ix_watches_channel", "channel", "active"),
        Index("ix_watches_job", "job_pk", "active"),
        Index("ix_watches_ended", "ended_at"),  # pruning: ended watches, oldest first
        Index("ix_watches_user", "user_id", "active"),  # quotas: one user's or API token's active watches
    )

    id: int | None = Field(default=None, primary_key=True)
    job_pk: int = Field(foreign_key="jobs.id")
    channel: str
    user_id: str  # who started it: a Slack user id, or an API token (actors.api_actor); the one with rights
    # a Slack user an API request named: mentioned and pinged on failure, no rights
    mention: str | None = None
    parent_ts: str | None = None
    active: bool = True
    ended_reason: str | None = None  # an EndedReason, or "Slack: <code>" (bot.domain.jobs.slack_ended)
    created_at: float = 0.0
    ended_at: float | None = None
    # the follow (follows.id) whose discovery made this watch (its mode and quiet settings apply); None:
    # started by id. No foreign key: SQLite could add one only by copying the table; follows are never deleted
    follow_id: int | None = Field(default=None, index=True)

    @property
    def pk(self) -> int:
        """The id of a watch that is in the database (every watch the store hands out)."""
        assert self.id is not None
        return self.id

    @property
    def watcher(self) -> str:
        """Who the thread names as watching (messages.who renders it): the starter, and the user it
        mentions."""
        return actors.watcher(self.user_id, self.mention)


class Follow(SQLModel, table=True):
    """A channel (or, `personal`, one person's direct messages from the app) following every run of one
    job name on one backend: discovery makes each new run of the name a watch there (bot/domain/runs.py).
    One per (backend, name, channel), ever: following again after an unfollow takes the row back."""

    __tablename__ = "follows"
    __table_args__ = (
        UniqueConstraint("backend", "name_key", "channel"),
        Index("ix_follows_backend", "backend", "active"),
        Index("ix_follows_channel", "channel", "active"),
    )

    id: int | None = Field(default=None, primary_key=True)
    backend: str
    name: str = Field(sa_type=VendorText)  # the followable name as the vendor spells it
    name_key: str = Field(sa_type=VendorText)  # runs.name_key: what a run's name is matched by
    channel: str  # where its runs are posted: a channel, or the person's direct-message channel with the app
    user_id: str  # who made it: a Slack user id, or an API token (actors.api_actor); the one with rights
    personal: bool = False  # for `user_id` only: posted in their direct messages with the app
    mode: FollowMode = Field(default=FollowMode.ALL, sa_type=EnumText(FollowMode, FollowMode.ALL))
    broadcast: bool = False  # failure replies also sent to the channel (reply_broadcast)
    mention: str | None = None  # a Slack user (U…) or user group (S…) pinged on failure
    snoozed_until: float | None = None  # nothing posted for its runs before then (counted in the digest)
    since: float = 0.0  # when it (last) began: runs that ended before are never posted
    active: bool = True
    created_at: float = 0.0
    ended_at: float | None = None

    @property
    def pk(self) -> int:
        """The id of a follow that is in the database (every follow the store hands out)."""
        assert self.id is not None
        return self.id


class SeenRun(SQLModel, table=True):
    """A run of a followed name as discovery last saw it in its backend's listing: discovery's memory of which
    runs it has made watches of, and the record streaks and deadlines read (the runs of a name, in order, and
    how each ended)."""

    __tablename__ = "seen_runs"
    __table_args__ = (
        UniqueConstraint("backend", "job_id"),
        Index("ix_seen_runs_name", "backend", "name_key", "started_at"),
        Index("ix_seen_runs_seen", "seen_at"),  # pruning: runs older than the retention
    )

    id: int | None = Field(default=None, primary_key=True)
    backend: str
    job_id: str
    name: str = Field(sa_type=VendorText)
    name_key: str = Field(sa_type=VendorText)
    phase: Phase = Field(default=Phase.UNKNOWN, sa_type=EnumText(Phase, Phase.UNKNOWN))
    vendor_status: str = Field(default="", sa_type=VendorText)
    started_at: float | None = None
    ended_at: float | None = None
    seen_at: float = 0.0  # first found by discovery


class WatchStart(SQLModel, table=True):
    """A watch started (created, resumed or rewatched) in the last minute, by whom and where: what the quotas'
    "new watches per minute" count (bot/operations/quotas.py). Only the last minute's rows are kept, so the
    table stays small whatever the traffic; a resumed watch counts again, which its own row could not show."""

    __tablename__ = "watch_starts"
    __table_args__ = (
        Index("ix_watch_starts_actor", "actor", "at"),
        Index("ix_watch_starts_channel", "channel", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    actor: str  # a Slack user id, or an API token (actors.api_actor)
    channel: str
    at: float


class StateChange(SQLModel, table=True):
    """History: every state a job was seen in."""

    __tablename__ = "state_changes"
    __table_args__ = (Index("ix_state_changes_at", "at"),)  # pruning: history older than the retention

    id: int | None = Field(default=None, primary_key=True)
    job_pk: int = Field(foreign_key="jobs.id", index=True)
    at: float
    phase: Phase = Field(sa_type=EnumText(Phase, Phase.UNKNOWN))
    vendor_status: str = Field(sa_type=VendorText)
    message: str | None = Field(default=None, sa_type=VendorText)


class Outbox(SQLModel, table=True):
    """A Slack message owed to a watch's thread, deleted once Slack has it: its kind, and its payload as
    JSON (bot.domain.jobs.OutboxKind says which payload each kind holds)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    watch_id: int = Field(foreign_key="watches.id", index=True)
    kind: OutboxKind = Field(sa_type=EnumText(OutboxKind))
    payload: str = "{}"
    created_at: float = 0.0
    attempts: int = 0
    next_attempt_at: float = 0.0


class RunDuration(SQLModel, table=True):
    """How long one finished run of a job took, by backend and job name (bot/domain/durations.py says which
    name): the history "longer than usual" is measured against, the newest KEEP_RUNS per name."""

    __tablename__ = "run_durations"
    __table_args__ = (Index("ix_run_durations_key", "backend", "name", "ended_at"),)

    id: int | None = Field(default=None, primary_key=True)
    backend: str
    name: str = Field(sa_type=VendorText)
    seconds: float
    ended_at: float


class Digest(SQLModel, table=True):
    """A channel's daily digest: one row per (channel, day), written (rendered) before it is posted, so two
    replicas or a restart never post two for one day; marked sent (`sent_at`), pruned after the retention."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("channel", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str
    day: str  # the digest's day in its time zone, ISO (2026-12-07)
    since: float  # the jobs that ended in [since, until)
    until: float
    text: str = Field(default="", sa_type=VendorText)
    blocks: str = "[]"  # JSON, rendered when the row was claimed
    attempts: int = 0
    next_attempt_at: float = 0.0
    sent_at: float | None = None


class Replica(SQLModel, table=True):
    """A `jobstatus-bot run` process on PostgreSQL, alive while its heartbeat is younger than the lease."""

    __tablename__ = "replicas"

    id: str = Field(primary_key=True)
    started: float
    heartbeat: float


class ChannelLease(SQLModel, table=True):
    """Which replica sends to a Slack channel, until when: one at a time, so a channel's pacing and each
    watch's order hold across replicas (bot/store/leases.py)."""

    __tablename__ = "channel_leases"

    channel: str = Field(primary_key=True)
    owner: str
    lease_until: float


class Secret(SQLModel, table=True):
    """Credentials that rotate (EPM's single-use refresh token): the newest one survives restarts."""

    __tablename__ = "secrets"

    key: str = Field(primary_key=True)
    value: str



class SeenRequest(SQLModel, table=True):
    """The signature of a state-changing Slack request already taken, until its timestamp is too old for the
    signature check anyway: a replay of it is refused, on any replica (bot/inbound/front.py)."""

    __tablename__ = "seen_requests"
    __table_args__ = (Index("ix_seen_requests_expires_at", "expires_at"),)

    signature: str = Field(primary_key=True)
    expires_at: float
