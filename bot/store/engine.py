"""The database engine and the one thread every transaction runs on (`Store.run`).

One worker thread means the event loop never blocks on the database and SQLite sees one writer. SQLite
(the default) and PostgreSQL (`postgresql://…`, through psycopg 3) are both tested: nothing in the store
is dialect-specific beyond the SQLite connection setup here, the upsert of a secret, the lock a schema
upgrade takes (schema.py), and the leases that let replicas share PostgreSQL (bot/store/leases.py); SQLite
is one process, held by a lock on its file.

What the database holds is the bot's alone: the SQLite file and its -wal and -shm are 0600 whatever the umask
(`own_file`), and the secrets in it are encrypted (bot/store/sealing.py).
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session
from sqlmodel import create_engine

from bot.store import schema, secrets
from bot.store.sealing import Sealer


class InUse(Exception):
    """Another `jobstatus-bot run` serves this SQLite database; the message says which file and what to do."""


P = ParamSpec("P")
T = TypeVar("T")


def engine_url(url: str) -> str:
    """`DATABASE_URL` as SQLAlchemy takes it: `postgres://` and `postgresql://` without a driver mean psycopg
    3 (the `postgres` extra); SQLAlchemy alone would want psycopg2 for the one and refuse the other."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


class Store:
    """The database: `run(fn, ...)` runs `fn(session, ...)` in one transaction on the store's thread."""

    def __init__(self, url: str, secret_keys: str | None = None) -> None:
        url = engine_url(url)
        sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # a server restart or an idle-connection reaper costs no transaction
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except ImportError as exc:
            from bot.support.config import ConfigError

            driver = make_url(url).get_driver_name()
            raise ConfigError(f"DATABASE_URL wants the {driver} driver, which is not installed ({exc}); for "
                              "PostgreSQL: pip install 'jobstatus[postgres]'") from exc
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-beside")
        self.replicated = not sqlite  # PostgreSQL: any number of replicas share it (bot/store/leases.py)
        self._sqlite_file = make_url(url).database if sqlite else None
        self._lock_fd: int | None = None
        self.sealer = Sealer(secret_keys)  # JOBSTATUS_SECRET_KEYS; raises SecretKeyError for a malformed key

    def own_file(self) -> None:
        """SQLite: make the database file 0600 before SQLite opens it, and tighten an existing one (and its
        -wal and -shm). SQLite creates -wal and -shm with the database file's mode (os_unix.c,
        `findCreateFileMode`), so they follow; the umask cannot widen a mode, only narrow it. A directory that
        does not exist is left to SQLite's own error. No-op for PostgreSQL and in-memory SQLite."""
        path = self._sqlite_file
        if not path or path.startswith((":", "file:")) or not os.path.isdir(os.path.dirname(path) or "."):
            return
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        for name in (path, f"{path}-wal", f"{path}-shm"):
            try:
                if os.stat(name).st_mode & 0o077:
                    os.chmod(name, 0o600)
            except FileNotFoundError:
                pass

    def serve_alone(self) -> None:
        """SQLite is one process: take `<database file>.lock` (flock, released when the process ends, however
        it ends), or raise InUse when another process holds it. No-op for PostgreSQL and in-memory SQLite."""
        path = self._sqlite_file
        if not path or path.startswith((":", "file:")) or self._lock_fd is not None:  # in memory, or a URI
            return
        lock = f"{path}.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InUse(f"the SQLite database {path} is in use by another jobstatus-bot process "
                        f"(it holds the lock {lock}). SQLite serves one process; "
                        "to run replicas, point every one at the same PostgreSQL database "
                        "(DATABASE_URL=postgresql://...).") from None
        self._lock_fd = fd

    def upgrade(self) -> schema.Upgrade:
        """Bring the database to the code's schema: create it, recognise 0.1.0's, or upgrade it, under a lock
        (bot/store/schema.py). Raises schema.SchemaTooNew for a database a newer jobstatus upgraded. SQLite's
        file is made the bot's alone first (`own_file`)."""
        self.own_file()
        return schema.upgrade(self.engine)

    def seal_secrets(self) -> int:
        """At start, after `upgrade`: every stored secret encrypted under the first key of
        JOBSTATUS_SECRET_KEYS (plaintext rows of an older version encrypted, rows of an older key
        re-encrypted); how many rows changed. Raises SecretKeyError when secrets are stored and no key is set,
        or a row opens with none of the keys. Blocking: for a thread of its own, before the store's thread has
        work."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            return secrets.reseal_all(session, self.sealer)

    async def run(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(session, *args, **kwargs)` in one transaction on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(self._call, fn, *args, **kwargs))

    async def run_beside(self, fn: Callable[Concatenate[Session, P], T], *args: P.args,
                         **kwargs: P.kwargs) -> T:
        """As `run`, on a thread of its own, so not behind what waits for the store's thread. For a replica's
        heartbeat on PostgreSQL: the poller's writes queued there can hold that thread for longer than a lease
        on a busy machine, and a replica whose heartbeat waits that long is taken for dead while it still
        polls."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._beside, functools.partial(self._call, fn, *args, **kwargs))

    def _call(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            return fn(session, *args, **kwargs)

    def ping(self) -> None:
        """Whether the database answers (raises if not): `SELECT 1` on a pooled connection, for readiness.

        Blocking: run it in a thread of its own, not on the store's (a busy store is not a dead database).
        On the DBAPI connection, so SQLite takes no write lock (the "begin" listener is SQLAlchemy's)."""
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            cur.fetchall()
            cur.close()
        finally:
            conn.close()  # back to the pool (rolled back)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._beside.shutdown(wait=True)
        self.engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # the lock goes with it
            self._lock_fd = None

    # -- the backends' SecretStore ----------------------------------------------------------------------
    async def get_secret(self, key: str) -> str | None:
        stored = await self.run(secrets.get_secret, key)
        return self.sealer.open(stored, key) if stored is not None else None

    async def put_secret(self, key: str, value: str) -> None:
        await self.run(secrets.put_secret, key, self.sealer.seal(value, key))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # read-then-write transactions must take the write lock up front, or concurrent writers lose updates;
    # a migration asks for EXCLUSIVE through the connection's `sqlite_begin` option (bot/store/schema.py)
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    if mode not in ("IMMEDIATE", "EXCLUSIVE"):
        raise ValueError(f"sqlite_begin: {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")
