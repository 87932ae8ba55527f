"""A throwaway PostgreSQL cluster: Debian's server binaries, a temp dir, 127.0.0.1, a free port.

For the tests (tests/pg.py's fixtures) and the benchmark (`python -m bench.scale`). `PostgresCluster.start()`
runs `initdb` and `pg_ctl start`; `create_database()` hands out empty databases; `stop()` ends the server
and deletes its directory. URLs look like `postgresql+psycopg://postgres@127.0.0.1:<port>/<db>` (trust
authentication: the cluster listens on loopback only and lives as long as its user).

initdb refuses to run as root, so as root (CI) the server runs as the `postgres` system user that Debian's
package creates, through `runuser`.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    pass


def _bindir() -> Path:
    if env := os.environ.get("JOBSTATUS_PG_BINDIR"):
        if not (Path(env) / "initdb").exists():
            raise PostgresUnavailable(f"JOBSTATUS_PG_BINDIR={env} has no initdb")
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresUnavailable("no PostgreSQL server binaries (initdb): install Debian's `postgresql` package "
                              "(.ci/run does so in CI) or set JOBSTATUS_PG_BINDIR")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """One PostgreSQL server in a temp dir; `create_database()` hands out empty databases."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.as_user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SUPERUSER)
            except KeyError as exc:
                raise PostgresUnavailable("running as root and there is no `postgres` system user to run the "
                                          "server as (Debian's postgresql package creates it)") from exc
            self.as_user = SUPERUSER
        self.root = Path(tempfile.mkdtemp(prefix="jobstatus-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.sockets.mkdir()
        self.log = self.root / "server.log"
        if self.as_user is not None:
            entry = pwd.getpwnam(self.as_user)
            for p in (self.root, self.sockets):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        self.port = 0
        self._names = itertools.count(1)

    def _cmd(self, *args: str | Path) -> list[str]:
        prefix = ["runuser", "-u", self.as_user, "--"] if self.as_user else []
        return prefix + [str(a) for a in args]

    def _run(self, *args: str | Path, timeout: float = 60) -> None:
        proc = subprocess.run(
            self._cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if proc.returncode != 0:
            raise PostgresUnavailable(f"`{' '.join(map(str, args))}` failed ({proc.returncode}):\n"
                                      f"{proc.stdout}{proc.stderr}{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "\nserver log:\n" + self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def start(self) -> None:
        self._run(self.bindir / "initdb", "-D", self.data, "-U", SUPERUSER, "--auth=trust", "--no-sync",
                  "--encoding=UTF8", "--locale=C")
        last: Exception | None = None
        # the port is free when picked; another process may take it before the server binds
        for _ in range(3):
            self.port = _free_port()
            opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            try:
                self._run(
                    self.bindir / "pg_ctl",
                    "-D",
                    self.data,
                    "-l",
                    self.log,
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    "30",
                    "start",
                )
                return
            except PostgresUnavailable as exc:
                last = exc
        raise PostgresUnavailable(f"PostgreSQL did not start: {last}")

    def stop(self) -> None:
        if self.data.exists():
            subprocess.run(
                self._cmd(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"),
                capture_output=True,
                timeout=60,
                cwd=self.root,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as con:
            con.execute(sql)

    def create_database(self) -> str:
        name = f"test_{os.getpid()}_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


    def server_pid(self) -> int | None:
        """The postmaster's pid (its backends are its children), or None when it is not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
