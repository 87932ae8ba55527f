"""The Runtime without starting it: how Bolt's app and client are built, and each reason /readyz gives."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.app import READY_DB_TIMEOUT, Runtime
from bot.engine.notifier import Halted
from bot.support.config import Environment, settings_from_dict

SETTINGS = settings_from_dict({"backends": {"fusion-prod": {
    "type": "fusion_jobscheduler", "base_url": "https://fa-xxxx.oraclecloud.com",
    "auth": {"type": "basic", "username": "u", "password": "p"}}}})


def environment(tmp_path: Path, **kw: str) -> Environment:
    return Environment(slack_bot_token="xoxb-given", slack_signing_secret="s",
                       slack_api_url="http://127.0.0.1:9/api/",
                       database_url=f"sqlite:///{tmp_path / 'bot.db'}", **kw)


async def test_bolt_does_not_warn_about_slack_bot_token_and_the_client_is_set_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")  # what Bolt reads by itself
    with caplog.at_level(logging.DEBUG):
        runtime = Runtime(SETTINGS, environment(tmp_path))
    try:
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
        assert runtime.app.client is runtime.client
        assert runtime.client.token == "xoxb-given" and runtime.client.base_url == "http://127.0.0.1:9/api/"
        assert [type(h).__name__ for h in runtime.client.retry_handlers] == [
            "AsyncServerErrorRetryHandler", "AsyncConnectionErrorRetryHandler"]
    finally:
        runtime.db.close()


async def ready_runtime(tmp_path: Path, **kw: str) -> Runtime:
    runtime = Runtime(SETTINGS, environment(tmp_path, **kw))
    runtime.db.upgrade()
    await runtime.poller.load()
    return runtime


async def test_ready_when_the_database_answers_and_the_schedule_is_loaded(tmp_path: Path) -> None:
    runtime = await ready_runtime(tmp_path)
    try:
        assert await runtime.not_ready() == []
    finally:
        runtime.db.close()


async def test_not_ready_before_the_schedule_is_loaded_and_while_stopping(tmp_path: Path) -> None:
    runtime = Runtime(SETTINGS, environment(tmp_path))
    try:
        assert await runtime.not_ready() == ["the schedule is not loaded yet"]
        runtime.db.upgrade()
        await runtime.poller.load()
        runtime.stopping = True
        assert await runtime.not_ready() == ["stopping"]
    finally:
        runtime.db.close()


async def test_not_ready_while_the_database_does_not_answer(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-directory" / "bot.db"
    runtime = Runtime(SETTINGS, Environment(slack_bot_token="x", database_url=f"sqlite:///{missing}"))
    try:
        assert await runtime.not_ready() == ["the database does not answer (OperationalError)",
                                             "the schedule is not loaded yet"]
    finally:
        runtime.db.close()


async def test_not_ready_while_slack_refuses_the_token(tmp_path: Path) -> None:
    runtime = await ready_runtime(tmp_path)
    try:
        runtime.notifier.halt.why = Halted("token_revoked", 1_766_000_000.0)
        assert await runtime.not_ready() == [
            "Slack refuses the bot's token: token_revoked since 2025-12-17T19:33:20Z"]
    finally:
        runtime.db.close()


async def test_not_ready_in_socket_mode_until_connected(tmp_path: Path) -> None:
    runtime = await ready_runtime(tmp_path, slack_app_token="xapp-1")
    try:
        assert await runtime.not_ready() == ["not connected to Slack: connecting"]
    finally:
        runtime.db.close()


def test_the_database_gets_less_than_a_default_kubernetes_probe_timeout() -> None:
    assert READY_DB_TIMEOUT < 1.0  # timeoutSeconds defaults to 1: an answer after it is no answer


def test_one_lease_setting_for_the_notifier_and_the_poller_and_no_replica_on_sqlite(tmp_path: Path) -> None:
    """The wiring is the constructor's: the poller's job leases and the notifier's channel leases are one
    setting (they once defaulted to different lengths), and SQLite's one process has no replica id."""
    settings = settings_from_dict({**SETTINGS.model_dump(mode="json", exclude_none=True),
                                   "lease_seconds": 42})
    runtime = Runtime(settings, environment(tmp_path))
    try:
        assert runtime.notifier.leases.seconds == runtime.poller.lease == 42.0
        assert runtime.notifier.leases.replica is None and runtime.poller.replica is None
        assert runtime.replicas is None
    finally:
        runtime.db.close()
