"""The database: jobs, watches, state-change history, the Slack outbox, and the few queries the bot needs.

All access goes through one worker thread (`Store.run`), so the event loop never blocks on the database
and SQLite sees one writer. Every state change is written in the same transaction as the Slack messages
it owes (the outbox), so a crash can delay a message but never lose it.

SQLite (the default) and PostgreSQL (`postgresql://…`, through psycopg 3) are both tested: nothing here
is dialect-specific beyond the SQLite connection setup below and the upsert of a secret.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import (
    Index,
    String,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel, create_engine

from bot.backends.base import JobStatus, Link
from bot.backends.errors import BackendError
from bot.backends.states import Phase

T = TypeVar("T")


class VendorText(TypeDecorator[str]):
    """Text a vendor wrote. PostgreSQL's text types cannot hold NUL (SQLite's can): one NUL in a status
    message would fail the whole batch of poll results written with it, so NULs are dropped on the way in."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


class Job(SQLModel, table=True):
    """A vendor job, polled once however many channels watch it."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("backend", "job_id"),
        Index("ix_jobs_due", "polling", "next_poll_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    backend: str
    job_id: str
    name: str | None = Field(default=None, sa_type=VendorText)
    phase: str = Phase.UNKNOWN.value
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

    @property
    def phase_enum(self) -> Phase:
        try:
            return Phase(self.phase)
        except ValueError:
            return Phase.UNKNOWN

    @property
    def log_path_list(self) -> list[str]:
        return list(json.loads(self.log_paths or "[]"))

    @property
    def link_list(self) -> list[Link]:
        return [Link(label, url) for label, url in json.loads(self.links or "[]")]


class Watch(SQLModel, table=True):
    """One channel following one job: the parent message and who asked. One per (job, channel), ever: a
    channel that watches a job again gets its earlier thread back (the unique constraint holds it so under
    any concurrency, on SQLite and PostgreSQL alike)."""

    __tablename__ = "watches"
    __table_args__ = (
        UniqueConstraint("job_pk", "channel"),
        Index("ix_watches_channel", "channel", "active"),
        Index("ix_watches_job", "job_pk", "active"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_pk: int = Field(foreign_key="jobs.id")
    channel: str
    user_id: str
    parent_ts: str | None = None
    active: bool = True
    ended_reason: str | None = None
    created_at: float = 0.0
    ended_at: float | None = None


class StateChange(SQLModel, table=True):
    """History: every state a job was seen in."""

    __tablename__ = "state_changes"

    id: int | None = Field(default=None, primary_key=True)
    job_pk: int = Field(foreign_key="jobs.id", index=True)
    at: float
    phase: str
    vendor_status: str = Field(sa_type=VendorText)
    message: str | None = Field(default=None, sa_type=VendorText)


class Outbox(SQLModel, table=True):
    """A Slack message owed to a watch's thread. Deleted once Slack has it.

    kind: "parent" (post the parent, rendered when sent), "update" (chat.update the parent, rendered
    when sent; at most one pending per watch), "reply" (a thread reply; payload holds text/blocks).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    watch_id: int = Field(foreign_key="watches.id", index=True)
    kind: str
    payload: str = "{}"
    created_at: float = 0.0
    attempts: int = 0
    next_attempt_at: float = 0.0


class Secret(SQLModel, table=True):
    """Credentials that rotate (EPM's single-use refresh token): the newest one survives restarts."""

    __tablename__ = "secrets"

    key: str = Field(primary_key=True)
    value: str


@dataclass
class Applied:
    """What applying one poll result did."""

    changed: bool = False
    owed: int = 0  # outbox rows written
    terminal: bool = False
    became_terminal: bool = False
    ended_watches: list[int] = field(default_factory=list)
    polling: bool = True  # the job is still polled after this


def engine_url(url: str) -> str:
    """`DATABASE_URL` as SQLAlchemy takes it: `postgres://` and `postgresql://` without a driver mean psycopg 3
    (the `postgres` extra); SQLAlchemy alone would want psycopg2 for the one and refuse the other."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


class Store:
    def __init__(self, url: str) -> None:
        url = engine_url(url)
        sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True  # a server restart or an idle-connection reaper costs no transaction
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except ImportError as exc:
            from bot.config import ConfigError

            driver = make_url(url).get_driver_name()
            raise ConfigError(f"DATABASE_URL wants the {driver} driver, which is not installed ({exc}); for "
                              "PostgreSQL: pip install 'jobstatus[postgres]'") from exc
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin_immediate)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    def create_schema(self) -> None:
        SQLModel.metadata.create_all(self.engine)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(session, *args, **kwargs)` in one transaction on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn, args, kwargs)

    def _call(self, fn: Callable[..., T], args: Sequence[Any], kwargs: dict[str, Any]) -> T:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            return fn(session, *args, **kwargs)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.engine.dispose()

    # -- secrets (SecretStore) -------------------------------------------------------------------
    async def get_secret(self, key: str) -> str | None:
        return await self.run(lambda s: (row.value if (row := s.get(Secret, key)) else None))

    async def put_secret(self, key: str, value: str) -> None:
        await self.run(put_secret, key, value)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # read-then-write transactions must take the write lock up front, or concurrent writers lose updates
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# -- queries: plain functions taking a session, run through Store.run -------------------------------


def put_secret(s: Session, key: str, value: str) -> None:
    """Store a secret's newest value. An upsert: `jobstatus-bot check` may store one while `run` does too."""
    dialect = s.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        stmt = insert(Secret).values(key=key, value=value)
        s.execute(stmt.on_conflict_do_update(index_elements=[Secret.key], set_={"value": stmt.excluded.value}))
        return
    row = s.get(Secret, key)
    if row is None:
        s.add(Secret(key=key, value=value))
    else:
        row.value = value


def find_job(s: Session, backend: str, job_id: str) -> Job | None:
    return s.execute(select(Job).where(Job.backend == backend, Job.job_id == job_id)).scalars().first()


def active_watch_in(s: Session, job_pk: int, channel: str) -> Watch | None:
    q = select(Watch).where(Watch.job_pk == job_pk, Watch.channel == channel, Watch.active == True)  # noqa: E712
    return s.execute(q).scalars().first()


def watch_in(s: Session, job_pk: int, channel: str) -> Watch | None:
    """The channel's watch of a job, active or ended (the active or newest one in a database from before
    the unique constraint)."""
    q = (select(Watch).where(Watch.job_pk == job_pk, Watch.channel == channel)
         .order_by(Watch.active.desc(), Watch.id.desc()))
    return s.execute(q).scalars().first()


def watches_of(s: Session, job_pk: int, *, active: bool | None = True) -> list[Watch]:
    """The watches of a job: the active ones, the ended ones (active=False), or all (None)."""
    q = select(Watch).where(Watch.job_pk == job_pk)
    if active is not None:
        q = q.where(Watch.active == active)  # noqa: E712
    return list(s.execute(q).scalars())


def channel_watches(s: Session, channel: str) -> list[tuple[Watch, Job]]:
    q = (
        select(Watch, Job)
        .join(Job, Job.id == Watch.job_pk)
        .where(Watch.channel == channel, Watch.active == True)  # noqa: E712
        .order_by(Watch.id)
    )
    return [(w, j) for w, j in s.execute(q).all()]


def watch_and_job(s: Session, watch_id: int) -> tuple[Watch, Job] | None:
    w = s.get(Watch, watch_id)
    if w is None:
        return None
    return w, s.get(Job, w.job_pk)


def owe(s: Session, watch: Watch, kind: str, payload: str = "{}", now: float | None = None) -> bool:
    """Add a message to the outbox. An "update" is kept once per watch: later ones render the same state."""
    now = time.time() if now is None else now
    if kind == "update":
        # one that is not being sent right now will render the newest state when it goes out
        waiting = s.execute(
            select(Outbox.id).where(
                Outbox.watch_id == watch.id, Outbox.kind == "update",
                or_(Outbox.attempts == 0, Outbox.next_attempt_at > now),
            ).limit(1)
        ).scalar()
        if waiting is not None:
            return False
    s.add(Outbox(watch_id=watch.id, kind=kind, payload=payload, created_at=now, next_attempt_at=now))
    return True


def set_status_fields(job: Job, st: JobStatus) -> None:
    job.phase = st.phase.value
    job.vendor_status = st.vendor_status
    job.name = st.name or job.name
    job.progress = st.progress
    job.message = st.message
    job.log_paths = json.dumps(list(st.log_paths))
    job.links = json.dumps([[link.label, link.url] for link in st.links])


def create_watch(
    s: Session,
    backend: str,
    st: JobStatus,
    channel: str,
    user_id: str,
    *,
    now: float,
    interval: float,
    watch_timeout: float,
    first_reply: str | None,
    again_note: str | None = None,
) -> tuple[Watch, Job, str]:
    """The watch of `st`'s job in `channel`: (watch, job, what), `what` being

    "created": a new watch, its parent (and `first_reply`, the result of a job that has ended) owed;
    "resumed": the channel's earlier watch, stopped or timed out, follows the job again in its own thread
        (with `again_note`), or, when the job has ended since, gets `first_reply` there, once;
    "exists": the channel watches it now, or followed it to its end: nothing to do but link the thread.

    The job row is shared by every channel watching it; its state is taken from `st` only when no other
    watch is following it already (otherwise the poller owns it).
    """
    job = find_job(s, backend, st.job_id)
    existing = None
    if job is None:
        job = Job(backend=backend, job_id=st.job_id, created_at=now, changed_at=now, checked_at=now)
        set_status_fields(job, st)
        job.polling = False
        s.add(job)
        s.flush()
        s.add(StateChange(job_pk=job.id, at=now, phase=job.phase, vendor_status=job.vendor_status, message=job.message))
    else:
        existing = watch_in(s, job.id, channel)  # type: ignore[arg-type]
        if existing is not None and (existing.active or existing.ended_reason == "finished"):
            return existing, job, "exists"
        if not job.polling:
            if job.phase != st.phase.value or job.vendor_status != st.vendor_status:
                s.add(StateChange(job_pk=job.id, at=now, phase=st.phase.value, vendor_status=st.vendor_status,
                                  message=st.message))
                job.changed_at = now
            set_status_fields(job, st)
            job.checked_at = now
    if existing is not None:
        _resume(s, existing, job, st, now, interval, watch_timeout, first_reply, again_note)
        return existing, job, "resumed"
    watch = Watch(job_pk=job.id, channel=channel, user_id=user_id, created_at=now)
    if st.terminal:
        watch.active = False
        watch.ended_reason = "finished"
        watch.ended_at = now
    s.add(watch)
    s.flush()
    if not st.terminal:
        _start_polling(job, now, interval * random.uniform(0.5, 1.0))  # spreads jobs watched at once
        limit = st.timeout_s if st.timeout_s else watch_timeout
        job.timeout_at = max(job.timeout_at or 0.0, now + limit)
    owe(s, watch, "parent", now=now)
    if first_reply:
        owe(s, watch, "reply", first_reply, now=now)
    return watch, job, "created"


def _resume(s: Session, watch: Watch, job: Job, st: JobStatus, now: float, interval: float, watch_timeout: float,
            result: str | None, note: str | None) -> None:
    """An ended watch of this channel, back: in its own thread (a new parent only if it never had one)."""
    if watch.parent_ts is None and s.execute(
            select(Outbox.id).where(Outbox.watch_id == watch.id, Outbox.kind == "parent").limit(1)).scalar() is None:
        owe(s, watch, "parent", now=now)
    if st.terminal:
        watch.ended_reason = "finished"
        watch.ended_at = now
        if result:
            owe(s, watch, "reply", result, now=now)
        owe(s, watch, "update", now=now)
        return
    restart_watch(s, watch, now, interval, watch_timeout, note)


def _start_polling(job: Job, now: float, delay: float) -> None:
    if not job.polling:
        job.polling = True
        job.next_poll_at = now + delay
        job.errors = 0
        job.error_since = None
        job.outage_noted = False


def claim_cancel(s: Session, backend: str, job_id: str, user: str, now: float) -> tuple[str, float] | None:
    """Record that `user` is asking the vendor to cancel the job now. Returns who asked before, and when,
    if someone did (then nobody asks again). One conditional UPDATE decides: atomic on SQLite and on
    PostgreSQL (the second of two concurrent updates waits for the first, then finds the row taken)."""
    job = find_job(s, backend, job_id)
    if job is None:  # an admin cancelling a job nobody watches: the row remembers the request
        job = Job(backend=backend, job_id=job_id, polling=False, created_at=now, changed_at=now, checked_at=now)
        s.add(job)
        s.flush()
    took = s.execute(
        update(Job).where(Job.id == job.id, Job.cancel_requested_at == None)  # noqa: E711
        .values(cancel_requested_by=user, cancel_requested_at=now)
    ).rowcount
    if took:
        return None
    s.refresh(job)
    return str(job.cancel_requested_by), float(job.cancel_requested_at or now)


def release_cancel(s: Session, backend: str, job_id: str, user: str, at: float) -> None:
    """The vendor did not take `user`'s cancel: the next one may ask again (a row kept only for it goes)."""
    job = find_job(s, backend, job_id)
    if job is None or job.cancel_requested_by != user or job.cancel_requested_at != at:
        return
    job.cancel_requested_by = job.cancel_requested_at = None
    if not watches_of(s, job.id, active=None):  # type: ignore[arg-type]
        s.delete(job)


def discard_watch(s: Session, watch_id: int) -> None:
    """Undo a watch whose parent could not be posted (e.g. the bot is not in the channel)."""
    w = s.get(Watch, watch_id)
    if w is None:
        return
    s.execute(delete(Outbox).where(Outbox.watch_id == watch_id))
    job_pk = w.job_pk
    s.delete(w)
    s.flush()
    others = s.execute(select(func.count()).select_from(Watch).where(Watch.job_pk == job_pk)).scalar_one()
    job = s.get(Job, job_pk)
    if job is not None:
        if others == 0:
            s.execute(delete(StateChange).where(StateChange.job_pk == job_pk))
            s.delete(job)
        else:
            _refresh_polling(s, job)


def _refresh_polling(s: Session, job: Job) -> None:
    n = s.execute(
        select(func.count()).select_from(Watch).where(Watch.job_pk == job.id, Watch.active == True)  # noqa: E712
    ).scalar_one()
    job.polling = n > 0 and not job.phase_enum.terminal


def end_watch(s: Session, watch: Watch, reason: str, now: float, note: str | None = None) -> None:
    """Stop a watch (stopped by a user, timed out, channel gone...); the parent shows Rewatch."""
    if not watch.active:
        return
    watch.active = False
    watch.ended_reason = reason
    watch.ended_at = now
    if note:
        owe(s, watch, "reply", note, now=now)
    owe(s, watch, "update", now=now)
    job = s.get(Job, watch.job_pk)
    if job is not None:
        s.flush()
        _refresh_polling(s, job)


def restart_watch(s: Session, watch: Watch, now: float, interval: float, watch_timeout: float,
                  note: str | None) -> Job:
    job = s.get(Job, watch.job_pk)
    assert job is not None
    watch.active = True
    watch.ended_reason = None
    watch.ended_at = None
    if note:
        owe(s, watch, "reply", note, now=now)
    owe(s, watch, "update", now=now)
    _start_polling(job, now, 0.0)
    job.timeout_at = max(job.timeout_at or 0.0, now + watch_timeout)
    return job


_TRACKED = (Job.id, Job.backend, Job.job_id, Job.phase, Job.vendor_status, Job.progress, Job.name, Job.errors,
            Job.error_kind, Job.changed_at, Job.next_poll_at)


def polling_jobs(s: Session) -> list[tuple[Any, ...]]:
    """What the poller's schedule needs of every polled job (the order of poller.Tracked's fields)."""
    return [tuple(r) for r in s.execute(select(*_TRACKED).where(Job.polling == True)).all()]  # noqa: E712


def polling_job(s: Session, job_pk: int) -> tuple[Any, ...] | None:
    row = s.execute(select(*_TRACKED).where(Job.id == job_pk, Job.polling == True)).first()  # noqa: E712
    return tuple(row) if row is not None else None


def job_state(s: Session, job_pk: int) -> tuple[Any, ...] | None:
    row = s.execute(select(*_TRACKED).where(Job.id == job_pk)).first()
    return tuple(row) if row is not None else None


def polling_ids(s: Session) -> set[int]:
    return set(s.execute(select(Job.id).where(Job.polling == True)).scalars())  # noqa: E712


_SET_NEXT_POLL = update(Job).where(Job.id == bindparam("pk")).values(next_poll_at=bindparam("at"))


def set_next_polls(s: Session, items: Sequence[tuple[int, float]]) -> None:
    """Unchanged jobs' next poll times, in one executemany. Plain Core: a job deleted meanwhile is skipped
    (the ORM's bulk update by primary key would raise StaleDataError and lose the whole batch)."""
    if items:
        s.connection().execute(_SET_NEXT_POLL, [{"pk": pk, "at": at} for pk, at in items])


def apply_status(
    s: Session,
    job_pk: int,
    st: JobStatus,
    now: float,
    next_poll_at: float,
    render_change: Callable[[Job, Watch, Phase, str], str],
    render_recovered: Callable[[Job], str] | None,
    force_update: bool = False,
) -> Applied:
    """Record a successful poll. A state change writes history and owes a reply to every active watch."""
    out = Applied()
    job = s.get(Job, job_pk)
    if job is None:
        return out
    old_phase, old_word = job.phase_enum, job.vendor_status
    changed = st.phase.value != job.phase or st.vendor_status != job.vendor_status
    visible = changed or st.progress != job.progress or (st.name and st.name != job.name) or force_update
    recovered = job.outage_noted
    job.checked_at = now
    job.errors = 0
    job.error_kind = None
    job.error_text = None
    job.error_since = None
    job.outage_noted = False
    job.next_poll_at = next_poll_at
    watches = watches_of(s, job_pk) if (changed or visible or recovered) else []
    if changed:
        set_status_fields(job, st)
        job.changed_at = now
        s.add(StateChange(job_pk=job_pk, at=now, phase=st.phase.value, vendor_status=st.vendor_status, message=st.message))
        out.changed = True
    elif visible:
        set_status_fields(job, st)
    for w in watches:
        if recovered and render_recovered is not None:
            out.owed += owe(s, w, "reply", render_recovered(job), now=now)
        if changed:
            out.owed += owe(s, w, "reply", render_change(job, w, old_phase, old_word), now=now)
        if visible or changed:
            out.owed += owe(s, w, "update", now=now)
    if st.terminal:
        out.terminal = True
        out.became_terminal = changed and not old_phase.terminal
        job.polling = False
        for w in watches or watches_of(s, job_pk):
            w.active = False
            w.ended_reason = "finished"
            w.ended_at = now
            out.ended_watches.append(w.id)  # type: ignore[arg-type]
    return out


def apply_results(
    s: Session,
    items: Sequence[tuple[int, JobStatus | BackendError, float, float, bool]],
    render_change: Callable[[Job, Watch, Phase, str], str],
    render_recovered: Callable[[Job], str] | None,
) -> list[Applied]:
    """Write a batch of poll results (job, answer or error, when, next poll, forced) in one transaction."""
    out = []
    for job_pk, res, now, due, force in items:
        if isinstance(res, JobStatus):
            applied = apply_status(s, job_pk, res, now, due, render_change, render_recovered, force)
        else:
            apply_error(s, job_pk, res, now, due)
            applied = Applied()
            if force:
                for w in watches_of(s, job_pk):
                    applied.owed += owe(s, w, "update", now=now)
        job = s.get(Job, job_pk)
        applied.polling = bool(job and job.polling)
        out.append(applied)
    return out


def owe_many(s: Session, watch_ids: Iterable[int], items: Iterable[tuple[str, str | None]], now: float) -> None:
    """Owe the same messages to several watches (e.g. failure details to every channel of a job)."""
    items = [(k, p) for k, p in items if p]
    for wid in watch_ids:
        w = s.get(Watch, wid)
        if w is not None:
            for kind, payload in items:
                owe(s, w, kind, payload, now=now)


def apply_error(s: Session, job_pk: int, err: BackendError, now: float, next_poll_at: float) -> None:
    """Record a failed poll (the outage note, if it comes to that, is `note_outages`' business)."""
    job = s.get(Job, job_pk)
    if job is None:
        return
    job.errors += 1
    job.error_kind = err.kind
    job.error_text = str(err)[:500]
    if job.error_since is None:
        job.error_since = now
    job.next_poll_at = next_poll_at


def note_outages(s: Session, now: float, outage_after: float, render_outage: Callable[[Job], str]) -> int:
    """One note per watch for each job whose polls have failed for `outage_after` seconds (once per outage)."""
    jobs = s.execute(
        select(Job).where(
            Job.polling == True, Job.errors > 0, Job.outage_noted == False,  # noqa: E712
            Job.error_since <= now - outage_after,
        )
    ).scalars().all()
    owed = 0
    for job in jobs:
        job.outage_noted = True
        for w in watches_of(s, job.id):  # type: ignore[arg-type]
            owed += owe(s, w, "reply", render_outage(job), now=now)
    return owed


def expire_watches(s: Session, now: float, render_timeout: Callable[[Job], str]) -> int:
    """End every watch of jobs past their watch timeout."""
    jobs = s.execute(
        select(Job).where(Job.polling == True, Job.timeout_at != None, Job.timeout_at <= now)  # noqa: E711,E712
    ).scalars().all()
    owed = 0
    for job in jobs:
        note = render_timeout(job)
        for w in watches_of(s, job.id):
            end_watch(s, w, "timed out", now, note)
            owed += 2
        job.polling = False
    return owed


# -- outbox -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwedMessage:
    id: int
    watch_id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    created_at: float
    channel: str
    parent_ts: str | None


def pending(s: Session, now: float, limit: int = 1000, watch_id: int | None = None) -> list[OwedMessage]:
    q = (
        select(Outbox, Watch.channel, Watch.parent_ts)
        .join(Watch, Watch.id == Outbox.watch_id)
        .where(Outbox.next_attempt_at <= now)
        .order_by(Outbox.id)
        .limit(limit)
    )
    if watch_id is not None:
        q = q.where(Outbox.watch_id == watch_id)
    return [
        OwedMessage(o.id, o.watch_id, o.kind, json.loads(o.payload), o.attempts, o.created_at, ch, ts)
        for o, ch, ts in s.execute(q).all()
    ]


def peek(s: Session, outbox_id: int) -> OwedMessage | None:
    row = s.get(Outbox, outbox_id)
    w = s.get(Watch, row.watch_id) if row is not None else None
    if row is None or w is None:
        return None
    return OwedMessage(row.id, row.watch_id, row.kind, json.loads(row.payload), row.attempts, row.created_at,
                       w.channel, w.parent_ts)


def end_watch_for_slack(s: Session, watch_id: int, error: str, now: float) -> None:
    """Slack will not take messages for this watch any more (channel gone, archived, bot removed)."""
    w = s.get(Watch, watch_id)
    if w is None:
        return
    w.active = False
    w.ended_reason = f"Slack: {error}"
    w.ended_at = now
    s.execute(delete(Outbox).where(Outbox.watch_id == watch_id))
    job = s.get(Job, w.job_pk)
    if job is not None:
        s.flush()
        _refresh_polling(s, job)


def claim(s: Session, outbox_id: int) -> OwedMessage | None:
    """Mark one owed message as being sent (attempts+1, committed before the Slack call).

    After a crash a row with attempts > 0 may already have reached Slack: the notifier checks before
    posting a second parent.
    """
    row = s.get(Outbox, outbox_id)
    if row is None:
        return None
    w = s.get(Watch, row.watch_id)
    if w is None:
        return None
    attempts = row.attempts
    row.attempts += 1
    return OwedMessage(row.id, row.watch_id, row.kind, json.loads(row.payload), attempts, row.created_at, w.channel,
                       w.parent_ts)


def sent(s: Session, outbox_id: int, parent_ts: str | None = None) -> None:
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


def replace_owed(s: Session, outbox_id: int, payload: str, now: float) -> None:
    """Owe a thread reply instead of the message `outbox_id` (a file Slack will not take: a note saying so)."""
    row = s.get(Outbox, outbox_id)
    if row is None:
        return
    s.delete(row)
    s.add(Outbox(watch_id=row.watch_id, kind="reply", payload=payload, created_at=now, next_attempt_at=now))


def drop_watch_outbox(s: Session, watch_id: int) -> None:
    s.execute(delete(Outbox).where(Outbox.watch_id == watch_id))


def forget_parent(s: Session, watch_id: int, now: float) -> None:
    """The parent message is gone (deleted in Slack): post a new one and keep going."""
    w = s.get(Watch, watch_id)
    if w is None:
        return
    w.parent_ts = None
    s.execute(delete(Outbox).where(Outbox.watch_id == watch_id, Outbox.kind.in_(("update", "parent"))))
    s.add(Outbox(watch_id=watch_id, kind="parent", created_at=now, next_attempt_at=now))


def counts(s: Session) -> dict[str, int]:
    def n(model: Any, *where: Any) -> int:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())

    return {
        "jobs_polling": n(Job, Job.polling == True),  # noqa: E712
        "watches_active": n(Watch, Watch.active == True),  # noqa: E712
        "outbox": n(Outbox),
    }
