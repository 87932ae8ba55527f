"""The installed command as a real process: config errors, serving, and kill -9 then restart into the same
thread."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import yaml

from bot.offline.setup import configure_simulators, demo_backends
from bot.offline.slack import FakeSlack, SlackUser
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer

SECRET = "process-test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot_env(tmp_path: Path, slack: FakeSlack, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "SLACK_BOT_TOKEN": slack.token, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.api_url,
        "JOBSTATUS_CONFIG": str(tmp_path / "jobstatus.yaml"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "PORT": str(port),
    })
    env.pop("SLACK_APP_TOKEN", None)
    return env


async def start_bot(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['PORT']}/healthz"
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):  # a minute: on a busy machine importing the bot alone can take seconds
            if proc.poll() is not None:
                raise AssertionError(f"bot exited with {proc.returncode}:\n{log.read_text()}")
            try:
                async with session.get(url) as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("bot did not come up:\n" + log.read_text())


def test_config_error_names_file_backend_field_and_refuses_to_start(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("backends:\n  fusion-prod:\n    type: fusion_jobscheduler\n    base_url: https://x\n"
                   "    auth: {type: basic, username: u, password: p}\n    poll_interval: often\n")
    env = dict(os.environ, JOBSTATUS_CONFIG=str(cfg), SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s")
    out = subprocess.run(
        [sys.executable, "-m", "bot", "run"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert (
        str(cfg) in out.stderr
        and "backend 'fusion-prod'" in out.stderr
        and "field 'poll_interval'" in out.stderr
    )


def test_a_setting_the_adapter_needs_is_a_config_error_too(tmp_path: Path) -> None:
    cfg = tmp_path / "planning.yaml"
    cfg.write_text("backends:\n  planning:\n    type: epm_planning\n    base_url: https://epm.example.com\n"
                   "    auth: {type: basic, username: u, password: p}\n")
    env = dict(os.environ, JOBSTATUS_CONFIG=str(cfg), SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s",
               DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", PORT="0")
    out = subprocess.run(
        [sys.executable, "-m", "bot", "run"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2, out.stderr
    assert (
        str(cfg) in out.stderr and "backend 'planning'" in out.stderr and "field 'application'" in out.stderr
    )


async def test_kill_9_and_restart_keeps_posting_into_the_same_thread(tmp_path: Path) -> None:
    sim = SimulatorServer()
    await sim.start()
    configure_simulators(sim)
    slack = FakeSlack()
    await slack.start()
    port = free_port()
    (tmp_path / "jobstatus.yaml").write_text(
        yaml.safe_dump({"backends": demo_backends(sim, poll_interval=0.5)})
    )
    env = bot_env(tmp_path, slack, port)
    log = tmp_path / "bot.log"
    proc = await start_bot(env, log)
    try:
        sim.fusion.add_job(44046, steps=[Step(0, "RUNNING")])
        user = SlackUser(f"http://127.0.0.1:{port}/slack/events", SECRET, slack)
        result = await user.command("watch fusion-demo 44046")
        await result.wait_responses(2)  # "Checking …", then the answer
        [parent] = slack.messages("C0001")

        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        sim.fusion.set_state(44046, "FAILED", message="killed while you were away")
        proc = await start_bot(env, log)
        await slack.wait_for(lambda: any("killed while you were away" in r.text
                                         for r in slack.thread("C0001", parent.ts)), timeout=20)
        assert [m.ts for m in slack.messages("C0001")] == [parent.ts]
        assert "resuming 1 active watches" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "jobstatus stopped" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        await slack.stop()
        await sim.stop()


async def test_a_second_process_on_the_same_sqlite_file_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    sim = SimulatorServer()  # never asked: backends are needed to start, not to refuse
    slack = FakeSlack()
    await slack.start()
    (tmp_path / "jobstatus.yaml").write_text(yaml.safe_dump({"backends": demo_backends(sim)}))
    log = tmp_path / "first.log"
    first = await start_bot(bot_env(tmp_path, slack, free_port()), log)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "bot", "run"],
            env=bot_env(tmp_path, slack, free_port()),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2, second.stderr
        db = tmp_path / "bot.db"
        assert f"the SQLite database {db} is in use by another jobstatus-bot process" in second.stderr
        assert f"{db}.lock" in second.stderr and "PostgreSQL" in second.stderr
        assert first.poll() is None  # the first one serves on, untouched
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0
        # the lock went
        again = await start_bot(bot_env(tmp_path, slack, free_port()), tmp_path / "again.log")
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=20) == 0
    finally:
        if first.poll() is None:
            first.kill()
        await slack.stop()
