"""`jobstatus-bot demo`: the real bot, offline — vendor simulators, a fake Slack, and a terminal chat.

The terminal plays the Slack client: what you type as `/jobstatus …` is sent to the bot as a signed
slash-command request, `click N` as a signed button click, exactly as Slack would; the bot answers
through the same Bolt app, store, poller and notifier as `jobstatus-bot run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from bot.app import Runtime
from bot.config import Environment, Settings, settings_from_dict
from bot.offline.slack import FakeSlack, SlackUser, render_channel
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer

CHANNEL = "C0001"

# Credentials the simulators accept and the demo config uses (loopback only, not secrets).
DEMO_USER, DEMO_PASSWORD = "jobstatus", "demo-password"
DEMO_TOKEN = "demo-bearer-token"
DEMO_API_KEY = "demo-immuta-key"


def configure_simulators(sim: SimulatorServer) -> None:
    """Give every simulator the demo accounts."""
    for vendor in (sim.fusion, sim.vault, sim.epm_di, sim.planning):
        vendor.basic_users[DEMO_USER] = DEMO_PASSWORD
        vendor.bearer_tokens.add(DEMO_TOKEN)
    for epm in (sim.epm_di, sim.planning):
        epm.identity_domain = "demodomain"
    sim.immuta.api_keys.add(DEMO_API_KEY)


def demo_backends(sim: SimulatorServer, poll_interval: float = 2.0) -> dict[str, Any]:
    """One backend of each type, pointing at the simulators (each base_url carries a path prefix)."""
    basic = {"type": "basic", "username": DEMO_USER, "password": DEMO_PASSWORD}
    return {
        "fusion-demo": {"type": "fusion_jobscheduler", "base_url": sim.base_url("fusion_jobscheduler"),
                        "auth": basic, "poll_interval": poll_interval, "cancel_enabled": True},
        "vault-demo": {"type": "veeva_vault", "base_url": sim.base_url("veeva_vault"), "api_version": "v26.1",
                       "auth": {"type": "vault_session", "username": DEMO_USER, "password": DEMO_PASSWORD},
                       "poll_interval": 10},
        "epm-demo": {"type": "epm_data_integration", "base_url": sim.base_url("epm_data_integration"),
                     "auth": {**basic, "identity_domain": "demodomain"}, "poll_interval": poll_interval},
        "planning-demo": {"type": "epm_planning", "base_url": sim.base_url("epm_planning"), "application": "Vision",
                          "api_version": "v3", "auth": {"type": "bearer", "token": DEMO_TOKEN},
                          "poll_interval": poll_interval},
        "immuta-demo": {"type": "immuta", "base_url": sim.base_url("immuta"),
                        "auth": {"type": "api_key", "key": DEMO_API_KEY}, "poll_interval": poll_interval},
    }


EPM_LOG = """\
2026-11-22 09:00:01,120 INFO  [AIF]: Process Start, Process ID: 1881
2026-11-22 09:00:02,331 INFO  [AIF]: Importing source data from inbox/gl_data.csv
2026-11-22 09:00:04,507 INFO  [AIF]: Rows read: 12450
2026-11-22 09:00:05,918 WARN  [AIF]: Member FY27 not in dimension Years, row skipped
2026-11-22 09:00:06,002 ERROR [AIF]: Error: No periods were identified for loading data into table 'AIF_EBS_GL_BALANCES_STG'.
2026-11-22 09:00:06,004 ERROR [AIF]: Data load failed for location GL_LOC
2026-11-22 09:00:06,210 INFO  [AIF]: Process End, status FAILED
"""

DEMO_JOBS = [
    ("fusion-demo", "44046", "succeeds after ~20 s, with output files"),
    ("fusion-demo", "44047", "fails after ~15 s with a message"),
    ("epm-demo", "1881", "fails after ~12 s: failure message, log path and log excerpt"),
    ("planning-demo", "224", "succeeds after ~15 s"),
    ("vault-demo", "1201", "runs for 10 minutes: try Cancel job"),
    ("immuta-demo", "3f1c9a52-7d4e-4b8a-9f1e-2c6d8e0a4b71", "completes after ~15 s"),
]


def seed_jobs(sim: SimulatorServer) -> None:
    """The demo's jobs; each starts when someone first asks about it."""
    jobs = [
        sim.fusion.add_job(44046, name="ExtractMostLabels", steps=[
            Step(0, "ENQUEUED"), Step(4, "RUNNING"), Step(10, "IN_PROGRESS", {"progress": 60}), Step(20, "SUCCEEDED")],
            output_files=[("ExtractMostLabels_44046.zip", 7_340_032), ("ExtractMostLabels_44046.log", 48_213)]),
        sim.fusion.add_job(44047, name="DataExport", steps=[
            Step(0, "ENQUEUED"), Step(4, "RUNNING"),
            Step(15, "FAILED", {"message": "ORA-01555: snapshot too old: rollback segment number 12 too small"})]),
        sim.epm_di.add_job(1881, name="GL_DATA_LOAD", steps=[
            Step(0, -1), Step(12, "1", {"details": "Data load failed for location GL_LOC: no periods identified"})],
            log_file="outbox/logs/GL_DATA_LOAD_1881.log", log_text=EPM_LOG, output_file="outbox/GL_DATA_LOAD_1881.csv"),
        sim.planning.add_job(224, name="Import Account Metadata", steps=[
            Step(0, -1), Step(15, 0, {"details": "Metadata import was successful"})]),
        sim.vault.add_job(1201, name="Binder Export", steps=[Step(0, "QUEUED"), Step(3, "RUNNING"), Step(600, "SUCCESS")]),
        sim.immuta.add_job("3f1c9a52-7d4e-4b8a-9f1e-2c6d8e0a4b71", steps=[
            Step(0, "created"), Step(3, "active"), Step(15, "completed", {"output": "policy sync: 42 data sources"})]),
    ]
    for job in jobs:
        job.start_on_first_look = True


BANNER = """\
jobstatus demo — the real bot against simulated vendors and a simulated Slack (channel #general).
Type a slash command as you would in Slack, for example:
  /jobstatus watch epm-demo 1881
Demo jobs (each starts when you first look at it):
{jobs}
Other commands here: `show` (the channel with numbered buttons), `click N` (press button N),
`sleep S` (wait S seconds), `help`, `quit`. New messages and edits are printed as they arrive.
"""


class DemoChat:
    """The terminal Slack client: sends what you type to the bot, prints what the bot posts."""

    def __init__(self, slack: FakeSlack, user: SlackUser, out: TextIO) -> None:
        self.slack = slack
        self.user = user
        self.out = out
        self.buttons: dict[int, Any] = {}
        self._seen: dict[str, tuple[int, int]] = {}  # ts -> (edits, replies) already printed
        self._ephemerals_seen = 0

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def show(self) -> None:
        rendered = render_channel(self.slack, CHANNEL, viewer="U0001")
        self.buttons = dict(rendered.buttons)
        self.say(str(rendered))

    def report_changes(self) -> None:
        """Print what is new since last time: new messages, edits, thread replies, answers to you."""
        for msg in self.slack.messages(CHANNEL):
            replies = self.slack.thread(CHANNEL, msg.ts)
            seen = self._seen.get(msg.ts)
            now = (msg.edits, len(replies))
            if seen == now:
                continue
            if seen is None:
                self.say(f"\n[new message in #general]\n  {_plain(msg.text)}")
            elif seen[0] != now[0]:
                self.say(f"[parent updated] {_plain(msg.text)}")
            for r in replies[(seen[1] if seen else 0):]:
                self.say(f"  └ [thread] {_plain(r.text)}")
                for f in r.files or []:
                    self.say(f"      [file] {f.get('name') or f.get('title')}")
            self._seen[msg.ts] = now
        eph = self.slack.ephemerals_for(user="U0001")
        for e in eph[self._ephemerals_seen:]:
            self.say(f"[only visible to you] {_plain(e.text)}")
        self._ephemerals_seen = len(eph)

    async def handle(self, line: str) -> bool:
        """One line typed by the person; False to quit."""
        line = line.strip()
        if not line:
            return True
        if line in ("quit", "exit", "q"):
            return False
        if line == "help":
            self.say(BANNER.format(jobs=_job_lines()))
        elif line == "show":
            self.show()
        elif line.startswith("sleep"):
            with contextlib.suppress(ValueError, IndexError):
                await asyncio.sleep(min(float(line.split()[1]), 600))
        elif line.startswith("click"):
            await self.click(line)
        elif line.startswith("/jobstatus"):
            result = await self.user.command(line[len("/jobstatus"):].strip(), channel_id=CHANNEL)
            if result.status != 200:
                self.say(f"[Slack: the bot answered HTTP {result.status}]")
        else:
            self.say("Type a /jobstatus command, show, click N, sleep S, help or quit.")
        await asyncio.sleep(0.3)
        self.report_changes()
        return True

    async def click(self, line: str) -> None:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            self.say("Usage: click N (run `show` to see the button numbers)")
            return
        if not self.buttons:
            self.show()
        ref = self.buttons.get(int(parts[1]))
        if ref is None:
            self.say(f"No button {parts[1]}; run `show` to see the buttons.")
            return
        self.say(f"[you clicked {ref.action_id.replace('jobstatus_', '')}]")
        await self.user.click(ref.channel, ref.ts, ref.action_id)
        await asyncio.sleep(0.5)
        self.show()


def _plain(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _job_lines() -> str:
    return "\n".join(f"  /jobstatus watch {b} {j}   — {what}" for b, j, what in DEMO_JOBS)


async def run_demo(port: int = 0, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    sim = SimulatorServer()
    await sim.start()
    configure_simulators(sim)
    seed_jobs(sim)
    slack = FakeSlack()
    await slack.start()
    secret = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="jobstatus-demo-") as tmp:
        settings: Settings = settings_from_dict({"backends": demo_backends(sim)}, "<demo config>")
        env = Environment(slack_bot_token=slack.token, slack_signing_secret=secret, slack_api_url=slack.api_url,
                          database_url=f"sqlite:///{Path(tmp) / 'demo.db'}", port=port)
        runtime = Runtime(settings, env, host="127.0.0.1", tick=0.25)
        await runtime.start()
        chat = DemoChat(slack, SlackUser(runtime.events_url, secret, slack), out)
        unsubscribe = slack.subscribe(lambda _change: None)
        chat.say(BANNER.format(jobs=_job_lines()))
        watcher = asyncio.create_task(_follow(chat))
        try:
            loop = asyncio.get_running_loop()
            while True:
                if stdin.isatty():
                    print("> ", end="", file=out, flush=True)
                line = await loop.run_in_executor(None, stdin.readline)
                if not line:  # end of input
                    break
                if not await chat.handle(line):
                    break
        finally:
            watcher.cancel()
            unsubscribe()
            await runtime.stop()
            await slack.stop()
            await sim.stop()
    return 0


async def _follow(chat: DemoChat) -> None:
    """Print changes as they arrive, also while the person is not typing."""
    version = chat.slack.version
    while True:
        version = await chat.slack.changed(after=version)
        await asyncio.sleep(0.2)  # let a burst of edits settle
        chat.report_changes()
