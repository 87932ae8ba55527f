"""`jobstatus-bot demo`: the real bot, offline — vendor simulators, a fake Slack, and a terminal chat.

The terminal plays the Slack client: what you type as `/jobstatus …` is sent to the bot as a signed
slash-command request, `click N` as a signed button click (after the button's confirm dialog, if it has one),
exactly as Slack would; the bot answers through the same Bolt app, store, poller and notifier as
`jobstatus-bot run`. What the bot posts is printed as it arrives, rendered as a person reads it in Slack.

On a terminal, the prompt is prompt_toolkit's: messages arriving while you type are printed above it and the
prompt is redrawn with what you had typed. Piped input (a script, a test) is read line by line and echoed
after its prompt, so the output reads as a transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import secrets
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TextIO

from cryptography.fernet import Fernet

from bot.app import Runtime
from bot.offline.setup import DEMO_JOBS, api_curl, configure_simulators, demo_api, demo_backends, seed_jobs
from bot.offline.slack import Ephemeral, FakeSlack, Message, SlackUser
from bot.offline.slack.render import ButtonNumbers, render_channel, render_message, render_view, text_object
from bot.offline.vendors.server import SimulatorServer
from bot.rendering import views
from bot.support.config import Environment, Settings, settings_from_dict

CHANNEL = "C0001"
VIEWER = "U0001"  # the person at the terminal: @ana
PROMPT = "> "
INTERRUPTED = 130  # the exit status of a program stopped by Ctrl-C (128 + SIGINT)

BANNER = """\
jobstatus demo — the real bot against simulated vendors and a simulated Slack; you are @ana in #general.
Type a slash command as you would in Slack, for example:
  /jobstatus watch vault-demo 1201
Demo jobs (each starts when you first look at it):
{jobs}
What the bot posts appears as it arrives. Buttons have numbers: `click N` presses button [N].
Also: `show` (the whole channel), `sleep S` (wait S seconds), `help`, `quit` (or Ctrl-D; Ctrl-C stops \
at once).
`home` shows your Home tab; `shortcut` opens the "Watch a job" modal and asks for its fields.
"""

# shows a prompt, returns the line typed (None: end of input)
ReadLine = Callable[[str], Awaitable[str | None]]


class DemoChat:
    """The terminal Slack client: sends what you type to the bot, prints what changed in #general."""

    def __init__(
        self, slack: FakeSlack, user: SlackUser, out: TextIO, read: ReadLine, *, ansi: bool = False
    ) -> None:
        self.slack = slack
        self.user = user
        self.out = out
        self.read = read
        self.ansi = ansi
        self.numbers = ButtonNumbers()  # one number per button for the whole session: `click N` means [N]
        self._printed: dict[str, list[str]] = {}  # message or ephemeral ts -> the lines last printed for it
        self.busy = False  # acting on a command or click: the feed leaves the printing to it

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def show(self) -> None:
        self.say(render_channel(self.slack, CHANNEL, viewer=VIEWER, ansi=self.ansi, numbers=self.numbers))
        self.report_changes(quiet=True)

    def report_changes(self, *, quiet: bool = False) -> None:
        """Print each message, thread reply and answer to you that is new or changed since it was last
        printed, in the order they were posted. `quiet`: only take note (what `show` has just printed in
        full)."""
        items: list[Message | Ephemeral] = [*self.slack.all_messages(CHANNEL),
                                            *self.slack.ephemerals_for(VIEWER, CHANNEL)]
        items += [e for e in self.slack.ephemerals if e.deleted and e.ts in self._printed]
        for item in sorted(items, key=lambda i: float(i.ts)):
            head, body = render_message(self.slack, item, self.numbers, viewer=VIEWER, ansi=self.ansi)
            if item.deleted:
                if item.ts not in self._printed:
                    continue
                body = ["(This message was deleted.)"]
            if self._printed.get(item.ts) == [head, *body]:
                continue
            self._printed[item.ts] = [head, *body]
            if not quiet:
                self.say("\n" + "\n".join(self._in_thread(item, head, body)))

    def _in_thread(self, item: Message | Ephemeral, head: str, body: list[str]) -> list[str]:
        """`item`'s lines as the feed prints them: a thread reply indented, under the title of its thread."""
        thread_ts = item.thread_ts if isinstance(item, Ephemeral) or item.is_reply else None
        if not thread_ts:
            return [head, *("  " + line for line in body)]
        try:
            parent = self.slack.message(CHANNEL, thread_ts)
            title = render_message(self.slack, parent, ButtonNumbers(), viewer=VIEWER)[1][0]
        except KeyError:
            title = "a deleted message"
        head += f"  in the thread of: {title}"
        if isinstance(item, Message) and item.reply_broadcast:
            head += "  (also sent to the channel)"
        return ["    | " + head, *("    |   " + line for line in body)]

    async def settle(self, quiet: float = 1.2, longest: float = 4.0) -> None:
        """Wait until the bot has posted what it owes right away (no change for `quiet` seconds: a bit more
        than the notifier's pause between two messages to a channel; at most `longest`), then print it: the
        answers to a command come before the next prompt."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + longest
        version = self.slack.version
        while (left := deadline - loop.time()) > 0:
            try:
                version = await self.slack.changed(version, timeout=min(quiet, left))
            except TimeoutError:
                break
        self.report_changes()

    async def handle(self, line: str) -> bool:
        """One line typed by the person; False to quit."""
        word, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if word in ("quit", "exit", "q"):
            return False
        if word in ("/jobstatus", "click"):
            # what the bot answers is printed once it has answered, in the order it was posted: the feed
            # waits meanwhile, so the answers are not split around the next prompt
            self.busy = True
            try:
                await (self.click(rest) if word == "click" else self.command(rest))
                await self.settle()
            finally:
                self.busy = False
        elif word in ("home", "shortcut"):
            self.busy = True
            try:
                await (self.home() if word == "home" else self.shortcut())
                await self.settle()
            finally:
                self.busy = False
        elif word == "show":
            self.show()
        elif word == "sleep":
            try:
                await asyncio.sleep(min(float(rest), 600))
            except ValueError:
                self.say("Usage: sleep S (seconds)")
        elif word == "help":
            self.say(BANNER.format(jobs=_job_lines()))
        elif word:
            self.say("Type a /jobstatus command, click N, home, shortcut, show, sleep S, help or quit.")
        return True

    async def command(self, text: str) -> None:
        """`/jobstatus {text}` typed in #general: a signed slash command to the bot."""
        result = await self.user.command(text, channel_id=CHANNEL)
        if result.status != 200:
            self.say(f"[Slack: the bot answered HTTP {result.status}]")

    async def click(self, arg: str) -> None:
        """Press button [arg]: as the Slack client does, first its confirm dialog, if it has one."""
        if not arg.isdigit():
            self.say("Usage: click N, where [N] is a button's number on a message (`show` prints them all).")
            return
        ref = self.numbers.get(int(arg))
        if ref is None:
            self.say(f"There is no button [{arg}]. Buttons have their number in brackets, as in [1] Refresh; "
                     "`show` prints the channel with them.")
            return
        gone = (f"Button [{arg}] is no longer on its message (the message has changed). "
                "`show` prints the channel as it is now.")
        try:
            button = self.user.button(ref.channel, ref.ts, ref.action_id)
        except LookupError:
            self.say(gone)
            return
        label = text_object(button.get("text"), self.slack)
        confirm = button.get("confirm")
        if isinstance(confirm, dict) and not await self.confirmed(confirm):
            return
        try:
            result = await self.user.click(ref.channel, ref.ts, ref.action_id)
        except LookupError:  # the message changed while its dialog was open
            self.say(gone)
            return
        self.say(f'[you clicked "{label}"]')
        if result is not None and result.status != 200:
            self.say(f"[Slack: the bot answered HTTP {result.status}]")

    async def home(self) -> None:
        """Open the app's Home tab: the bot publishes it (views.publish); printed as text."""
        def published() -> int:
            home = self.slack.homes.get(VIEWER)
            return len(home.published) if home is not None else 0

        before = published()
        await self.user.open_home(VIEWER)
        await self.slack.wait_for(lambda: published() > before, timeout=10)
        self.say("\n".join(["", *render_view(self.slack, self.slack.home_of(VIEWER) or {})]))

    async def shortcut(self) -> None:
        """The "Watch a job" shortcut from #general: the modal the bot opens (views.open), filled in here
        field by field (Enter keeps what it proposes), then submitted; refusals show on their fields."""
        opened = len(self.slack.modals(VIEWER, open_only=False))
        await self.user.shortcut(views.GLOBAL_SHORTCUT, user_id=VIEWER, viewing=CHANNEL)
        await self.slack.wait_for(
            lambda: len(self.slack.modals(VIEWER, open_only=False)) > opened, timeout=10
        )
        modal = self.slack.modals(VIEWER)[-1]
        self.say("\n".join(["", *render_view(self.slack, modal.view)]))
        values: dict[str, str] = {}
        for block in modal.view.get("blocks") or []:
            if block.get("type") != "input":
                continue
            answer = await self.read(f"{text_object(block.get('label'), self.slack)}? ")
            if answer is None:
                return
            if answer.strip():
                values[block["block_id"]] = answer.strip()
        try:
            result = await self.user.submit(modal.id, values)
        except LookupError as exc:
            self.say(f"[not submitted: {exc}]")
            return
        errors = (result.body or {}).get("errors") or {}
        for field, why in errors.items():
            self.say(f"  {field}: {why}")
        if not errors:
            self.say("[you clicked \"Watch\"; the modal closed]")

    async def confirmed(self, confirm: dict[str, object]) -> bool:
        """The button's confirm dialog as the Slack client shows it (title, text, deny and confirm buttons,
        https://docs.slack.dev/reference/block-kit/composition-objects/confirmation-dialog-object), answered
        on the keyboard. Backing out sends nothing, as in Slack."""
        yes, no = (
            text_object(confirm.get("confirm"), self.slack),
            text_object(confirm.get("deny"), self.slack),
        )
        yes_shown = (
            f"\x1b[31m[{yes}]\x1b[0m" if self.ansi and confirm.get("style") == "danger" else f"[{yes}]"
        )
        text = text_object(confirm.get("text"), self.slack).splitlines() or [""]
        self.say("\n".join([f"  ┌ {text_object(confirm.get('title'), self.slack)}",
                            *(f"  │ {line}" for line in text),
                            f"  └ [{no}]  {yes_shown}"]))
        answer = await self.read(f"{yes}? [y/N] ")
        if (answer or "").strip().lower() in ("y", "yes"):
            return True
        self.say(f'[you clicked "{no}": nothing was sent]')
        return False


def _job_lines() -> str:
    width = max(len(f"{b} {j}") for b, j, _ in DEMO_JOBS)
    return "\n".join(f"  /jobstatus watch {f'{b} {j}':<{width}}  {what}" for b, j, what in DEMO_JOBS)


async def run_demo(port: int = 0, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """The demo until `quit`, end of input (Ctrl-D) or Ctrl-C; the exit status (130 after Ctrl-C)."""
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    if isinstance(out, io.TextIOWrapper):  # an emoji the terminal's encoding lacks shows as "?", not a crash
        out.reconfigure(errors="replace")
    secret = secrets.token_hex(16)
    async with contextlib.AsyncExitStack() as running:  # stopped in reverse order, however the demo ends
        sim = SimulatorServer()
        await sim.start()
        running.push_async_callback(sim.stop)
        configure_simulators(sim)
        seed_jobs(sim)
        slack = FakeSlack()
        await slack.start()
        running.push_async_callback(slack.stop)
        tmp = running.enter_context(tempfile.TemporaryDirectory(prefix="jobstatus-demo-"))
        settings: Settings = settings_from_dict(
            {"backends": demo_backends(sim), "api": demo_api()}, "<demo config>"
        )
        env = Environment(
            slack_bot_token=slack.token,
            slack_signing_secret=secret,
            slack_api_url=slack.api_url,
            database_url=f"sqlite:///{Path(tmp) / 'demo.db'}",
            port=port,
            # the demo's database lives as long as its temp dir: so does its key, made here
            secret_keys=Fernet.generate_key().decode(),
        )
        runtime = Runtime(settings, env, host="127.0.0.1", tick=0.25)
        await runtime.start()
        running.push_async_callback(runtime.stop)
        print(
            "A pipeline's way in (docs/api.md: Watch from a pipeline), from another shell: "
            f"{api_curl(runtime.port)}",
            file=out,
            flush=True,
        )
        user = SlackUser(runtime.events_url, secret, slack)
        if stdin.isatty() and out.isatty():
            return await _on_terminal(slack, user)
        return await _converse(DemoChat(slack, user, out, _piped(stdin, out)))


async def _on_terminal(slack: FakeSlack, user: SlackUser) -> int:
    """The chat on a terminal: prompt_toolkit's prompt, kept below whatever is printed meanwhile."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    session: PromptSession[str] = PromptSession()

    async def read(prompt: str) -> str | None:
        try:
            return await session.prompt_async(prompt)
        except EOFError:  # Ctrl-D
            return None

    with patch_stdout(raw=True), _logs_to(sys.stderr):  # raw: the renderer's bold and dim pass through
        chat = DemoChat(slack, user, sys.stdout, read, ansi="NO_COLOR" not in os.environ)
        return await _converse(chat, lambda: _keys_held(sys.stdin.fileno()))


async def _converse(
    chat: DemoChat, busy: Callable[[], contextlib.AbstractContextManager[None]] | None = None
) -> int:
    """Read and act on lines until the person leaves, printing what the bot posts meanwhile; `busy` is
    entered while a line is being acted on."""
    chat.say(BANNER.format(jobs=_job_lines()))
    follower = asyncio.create_task(_follow(chat))
    try:
        while (line := await chat.read(PROMPT)) is not None:
            with (busy or contextlib.nullcontext)():
                if not await chat.handle(line):
                    break
        return 0
    except KeyboardInterrupt:  # Ctrl-C at the prompt (elsewhere it is SIGINT, which cancels the demo)
        return INTERRUPTED
    finally:
        follower.cancel()


async def _follow(chat: DemoChat) -> None:
    """Print changes as they arrive, also while the person is typing."""
    version = chat.slack.version
    while True:
        version = await chat.slack.changed(after=version)
        await asyncio.sleep(0.2)  # let a burst of edits settle
        if not chat.busy:
            chat.report_changes()


def _piped(stdin: TextIO, out: TextIO) -> ReadLine:
    """Lines from a pipe or file, read on a daemon thread (which never holds up the exit), each echoed after
    its prompt as a terminal would show it."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        while True:
            line = stdin.readline() or None
            try:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:  # the demo has ended
                return
            if line is None:
                return

    threading.Thread(target=pump, name="demo-input", daemon=True).start()

    async def read(prompt: str) -> str | None:
        line = await lines.get()
        if line is not None:
            print(prompt + line.rstrip("\n"), file=out, flush=True)
        return line

    return read


@contextlib.contextmanager
def _keys_held(fd: int) -> Iterator[None]:
    """While the demo acts on a line there is no prompt: keys typed meanwhile are neither echoed (they would
    land in the middle of the output) nor taken line by line, but kept for the next prompt, which shows them
    as typed. Ctrl-C still interrupts (ISIG stays on)."""
    import termios

    try:
        before = termios.tcgetattr(fd)
    except termios.error:
        yield
        return
    held = list(before)
    held[3] &= ~(termios.ECHO | termios.ICANON)  # lflags
    termios.tcsetattr(fd, termios.TCSANOW, held)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, before)


@contextlib.contextmanager
def _logs_to(stream: TextIO) -> Iterator[None]:
    """Point the root logger's console handlers at `stream` (patch_stdout's proxy) while in the block, so
    a log line, too, is printed above the prompt instead of through it."""
    handlers = [h for h in logging.getLogger().handlers
                if type(h) is logging.StreamHandler and h.stream in (sys.__stderr__, sys.__stdout__)]
    before = [h.stream for h in handlers]
    for h in handlers:
        h.setStream(stream)
    try:
        yield
    finally:
        for h, old in zip(handlers, before, strict=True):
            h.setStream(old)
