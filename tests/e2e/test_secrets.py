"""Secrets at rest (issue 19, item 7): EPM's rotating refresh token is stored encrypted with the key of
JOBSTATUS_SECRET_KEYS (bot/store/sealing.py), keys rotate, a plaintext row of an older version is encrypted at
start, a missing or wrong key is a clear error at start (never a traceback, never the secret), and the SQLite
file with its -wal and -shm is 0600 whatever the umask. Checked on the files on disk."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from bot.cli import main
from bot.offline.setup import configure_simulators
from bot.offline.slack import FakeSlack
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer
from bot.store import Store
from bot.store.sealing import SecretKeyError
from tests.conftest import SECRET_KEYS, opened
from tests.e2e.test_backends import base_backends, bot_with, epm_oauth

# a stored secret's value: never in a message, a log or a file in clear
LIVE = "live-refresh-token-0123456789"


def rows(db: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return dict(con.execute("SELECT key, value FROM secrets").fetchall())


def raw(db: Path) -> bytes:
    """Every byte SQLite keeps of the database: the file, its write-ahead log and its shared memory."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def stored_in_clear(db: Path, key: str = "epm-demo:refresh_token", value: str = LIVE) -> None:
    """A row as a version before encryption wrote it."""
    store = Store(f"sqlite:///{db}")
    try:
        store.upgrade()
        with store.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO secrets (key, value) VALUES (?, ?)", (key, value))
    finally:
        store.close()


@pytest.fixture
def umask_022() -> Iterator[None]:
    before = os.umask(0o022)  # the usual umask: files 0644 unless the bot says otherwise
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- the rotated token reaches the database encrypted ----------------------------------------------------

async def test_the_rotated_refresh_token_is_stored_encrypted_and_nowhere_in_clear_on_disk(
        sim: SimulatorServer, slack: FakeSlack, tmp_path: Path) -> None:
    configure_simulators(sim)
    first = sim.epm_di.issue_refresh_token()
    backends = base_backends(sim)
    backends["epm-demo"]["auth"] = epm_oauth(sim, first, "epm-client-secret")
    db = tmp_path / "bot.db"
    async with bot_with(sim, slack, tmp_path, backends) as h:
        sim.epm_di.add_job(1991, name="GL_DATA_LOAD", steps=[Step(0, -1)])
        await h.watch("watch epm-demo 1991")
        stored = rows(db)["epm-demo:refresh_token"]
        assert stored.startswith("fernet:")
        live = opened(stored)  # the key of the test's bots opens it: the newest token, which the vendor takes
        assert live in sim.epm_di.refresh_tokens and live != first
        on_disk = raw(db)
        assert live.encode() not in on_disk and first.encode() not in on_disk


# -- a plaintext row of an older version, key rotation, a wrong key ------------------------------------------

def test_a_plaintext_row_is_encrypted_at_start_and_rows_follow_the_first_key(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    stored_in_clear(db)
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()

    store = Store(f"sqlite:///{db}", old)
    try:
        store.upgrade()
        assert store.seal_secrets() == 1  # the plaintext row, encrypted under `old`
    finally:
        store.close()
    sealed = rows(db)["epm-demo:refresh_token"]
    assert sealed.startswith("fernet:") and LIVE not in sealed
    assert Fernet(old).decrypt(sealed.removeprefix("fernet:").encode()).decode() == LIVE

    rotated = Store(f"sqlite:///{db}", f"{new},{old}")  # the new key first, the old one kept after it
    try:
        rotated.upgrade()
        assert rotated.seal_secrets() == 1  # re-encrypted under `new`
        assert rotated.seal_secrets() == 0  # once
    finally:
        rotated.close()
    again = rows(db)["epm-demo:refresh_token"]
    assert Fernet(new).decrypt(again.removeprefix("fernet:").encode()).decode() == LIVE

    wrong = Store(f"sqlite:///{db}", old)  # the old key alone no longer opens it
    try:
        with pytest.raises(SecretKeyError) as refused:
            wrong.seal_secrets()
    finally:
        wrong.close()
    said = str(refused.value)
    assert "epm-demo:refresh_token" in said and "JOBSTATUS_SECRET_KEYS" in said and LIVE not in said
    assert old not in said


async def test_the_store_reads_and_writes_through_the_key(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'bot.db'}", SECRET_KEYS)
    try:
        store.upgrade()
        await store.put_secret("epm-demo:refresh_token", LIVE)
        assert await store.get_secret("epm-demo:refresh_token") == LIVE
        assert await store.get_secret("nothing") is None
        assert opened(rows(tmp_path / "bot.db")["epm-demo:refresh_token"]) == LIVE
    finally:
        store.close()

    keyless = Store(f"sqlite:///{tmp_path / 'bot.db'}")
    try:
        with pytest.raises(SecretKeyError, match="JOBSTATUS_SECRET_KEYS"):
            await keyless.put_secret("epm-demo:refresh_token", LIVE)  # never stored in clear
        with pytest.raises(SecretKeyError, match="JOBSTATUS_SECRET_KEYS"):
            await keyless.get_secret("epm-demo:refresh_token")
    finally:
        keyless.close()


def test_a_malformed_key_names_its_place_not_its_value() -> None:
    with pytest.raises(SecretKeyError) as bad:
        Store("sqlite://", f"{Fernet.generate_key().decode()},not-a-key-at-all")
    assert "key 2 of 2" in str(bad.value) and "not-a-key-at-all" not in str(bad.value)


# -- run and check: a clear error at start, exit 2 ---------------------------------------------------------

def epm_config(tmp_path: Path) -> Path:
    config = tmp_path / "jobstatus.yaml"
    config.write_text(yaml.safe_dump({"backends": {"epm-demo": {
        "type": "epm_data_integration", "base_url": "http://127.0.0.1:9/epm",
        "auth": {"type": "oauth2_refresh", "token_url": "http://127.0.0.1:9/token", "client_id": "c",
                 "refresh_token": LIVE}}}}))
    return config


def fusion_config(tmp_path: Path) -> Path:
    config = tmp_path / "jobstatus.yaml"
    config.write_text(yaml.safe_dump({"backends": {"fusion-demo": {
        "type": "fusion_jobscheduler", "base_url": "http://127.0.0.1:9/fusion",
        "auth": {"type": "basic", "username": "u", "password": "p"}}}}))
    return config


@pytest.fixture
def run_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api/")
    monkeypatch.setenv("PORT", "0")
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.delenv("JOBSTATUS_SECRET_KEYS", raising=False)
    monkeypatch.delenv("METRICS_ADDR", raising=False)
    db = tmp_path / "bot.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    return db


@pytest.mark.parametrize("command", ["run", "check"])
def test_an_oauth2_refresh_backend_without_a_key_is_refused_at_start_saying_what_to_set(
        command: str, run_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("JOBSTATUS_CONFIG", str(epm_config(tmp_path)))
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert "backend epm-demo keeps its rotating refresh token" in err
    assert "set JOBSTATUS_SECRET_KEYS" in err and "Fernet.generate_key()" in err
    assert "Traceback" not in err and LIVE not in err


def test_a_stored_secret_without_a_key_or_with_a_wrong_one_is_refused_at_start(
    run_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBSTATUS_CONFIG", str(fusion_config(tmp_path)))  # no rotating backend any more
    stored_in_clear(run_env)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "holds 1 stored secret(s) (epm-demo:refresh_token)" in err and "set JOBSTATUS_SECRET_KEYS" in err
    assert LIVE not in err and "Traceback" not in err
    assert rows(run_env) == {"epm-demo:refresh_token": LIVE}  # nothing lost

    store = Store(f"sqlite:///{run_env}", SECRET_KEYS)
    try:
        store.seal_secrets()
    finally:
        store.close()
    # not the key it was stored with
    monkeypatch.setenv("JOBSTATUS_SECRET_KEYS", Fernet.generate_key().decode())
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "does not open with any key of JOBSTATUS_SECRET_KEYS" in err and "Traceback" not in err
    assert LIVE not in err


# -- the database's files are the bot's alone ---------------------------------------------------------------

async def test_the_sqlite_file_and_its_wal_and_shm_are_0600_whatever_the_umask(tmp_path: Path,
                                                                               umask_022: None) -> None:
    db = tmp_path / "bot.db"
    store = Store(f"sqlite:///{db}", SECRET_KEYS)
    try:
        store.upgrade()
        await store.put_secret("epm-demo:refresh_token", LIVE)  # a write: the -wal and -shm exist now
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(p.exists() for p in files)
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        store.close()


def test_an_existing_world_readable_database_is_made_0600_at_start(tmp_path: Path, umask_022: None) -> None:
    db = tmp_path / "bot.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")  # leaves -wal and -shm while open
    con.commit()
    files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
    try:
        assert all(mode(p) == 0o644 for p in files)  # as SQLite made them under umask 022
        store = Store(f"sqlite:///{db}")
        try:
            store.own_file()
        finally:
            store.close()
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        con.close()
