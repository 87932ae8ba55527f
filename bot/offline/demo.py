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
from typing import TextIO

from bot.app import Runtime
from bot.config import Environment, Settings, settings_from_dict
from bot.offline.setup import DEMO_JOBS, configure_simulators, demo_backends, seed_jobs
from bot.offline.slack import ButtonRef, FakeSlack, SlackUser, render_channel
from bot.offline.vendors.server import SimulatorServer

CHANNEL = "C0001"

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
        self.buttons: dict[int, ButtonRef] = {}
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
