"""`jobstatus-bot demo` as a person uses it.

On a pseudo-terminal (the real process, read through a terminal model, typed into a key at a time): the the
quickstart's walk-through (docs/quickstart.md), a message arriving while you type, Ctrl-C and Ctrl-D. Piped:
the transcript. In process, against the harness's bot: the confirm dialog (backing out sends nothing), a click
printing only what it changed, and the live lines rendered as Slack shows them.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.offline.demo import DemoChat
from bot.offline.slack import render_channel
from tests.conftest import Harness
from tests.e2e.terminal import Screen, Terminal

QUICKSTART = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"
QUESTION = re.compile(r"^(.*\? \[y/N\]) (.*)$")  # a confirm dialog's question, and the answer typed


def demo_argv() -> list[str]:
    """The installed command, as a person runs it (`python -m bot` where the script is not installed)."""
    script = Path(sys.executable).with_name("jobstatus-bot")
    return [str(script), "demo"] if script.exists() else [sys.executable, "-m", "bot", "demo"]


def demo_env() -> dict[str, str]:
    env = dict(os.environ, TERM="xterm-256color", PYTHONUTF8="1")
    env.pop("NO_COLOR", None)  # the colours are the terminal's business: the screen model skips them
    return env


@pytest.fixture
def demo() -> Iterator[Terminal]:
    term = Terminal(demo_argv(), demo_env())
    try:
        term.wait_until(prompt_is_empty, 60, "the first prompt")
        yield term
    finally:
        term.kill()


def prompt_is_empty(screen: Screen) -> bool:
    return screen.cursor_line == ">"


def normal(line: str) -> str:
    """A line without what differs from run to run: clock times and loopback ports."""
    line = re.sub(r"\b\d\d:\d\d:\d\d\b", "hh:mm:ss", line)
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:port", line).rstrip()


def walkthrough() -> list[str]:
    """The lines of the quickstart's walk-through (its ```text blocks, up to the page's next section)."""
    text = QUICKSTART.read_text(encoding="utf-8")
    section = text[text.index("### A walk-through"):]
    section = section[: section.index("\n## ")] if "\n## " in section else section
    blocks = re.findall(r"^```text\n(.*?)^```$", section, re.M | re.S)
    assert blocks, "no walk-through in docs/quickstart.md"
    return [line for block in blocks for line in block.splitlines()]


# ---- on a pseudo-terminal ------------------------------------------------------------------------------


def test_the_quickstart_walkthrough_is_what_a_person_typing_at_normal_speed_sees(demo: Terminal) -> None:
    lines = walkthrough()
    typed = [(line[2:], None) if line.startswith("> ") else (m.group(2), m.group(1))
             for line in lines if line.startswith("> ") or (m := QUESTION.match(line))]
    assert typed[-1] == ("quit", None)
    for text, question in typed[:-1]:
        if question is None:
            demo.wait_until(prompt_is_empty, 60, "the prompt")
        else:
            demo.wait_until(lambda s, q=question: s.cursor_line == q, 60, repr(question))
        demo.pause(1.5)  # reading what came
        demo.type(text + "\r", per_key=0.08)
    expected = {normal(line) for line in lines[:-1] if line.strip()}

    def missing(screen: Screen) -> list[str]:
        return sorted(expected - {normal(line) for line in screen.lines})

    try:
        demo.wait_until(lambda s: not missing(s), 90, "every line of the walk-through")
    except AssertionError as exc:
        raise AssertionError(f"the walk-through's lines not on the screen: {missing(demo.screen)}") from exc
    demo.wait_until(prompt_is_empty, 60, "the prompt")
    demo.type("quit\r")
    assert demo.exit_status() == 0
    shown = demo.screen.lines
    assert sum("Asked vault-demo to cancel" in line for line in shown) == 1
    denied = shown.index('[you clicked "Keep it running": nothing was sent]')
    assert denied < next(i for i, line in enumerate(shown) if "Asked vault-demo to cancel" in line)
    assert "Traceback" not in demo.screen.text()


def test_a_message_arriving_while_you_type_is_printed_above_the_prompt_and_your_line_stays(
    demo: Terminal,
) -> None:
    demo.type("/jobstatus watch fusion-demo 44046\r")  # it starts running about 4 s after this first look
    demo.shows("Watching fusion-demo job `44046`: updates go to the thread.")
    demo.wait_until(prompt_is_empty, 60, "the prompt")
    demo.type("/jobstatus sta")  # half a line
    demo.shows("🔄 *running* (was queued (ENQUEUED))", timeout=60)
    demo.wait_until(
        lambda s: s.cursor_line == "> /jobstatus sta", 30, "the prompt redrawn with the half line"
    )
    screen = demo.screen
    news = next(i for i, line in enumerate(screen.lines) if "(was queued (ENQUEUED))" in line)
    assert news < screen.row and not any(screen.lines[screen.row + 1 :])  # the news above, the prompt last
    assert sum("/jobstatus sta" in line for line in screen.lines) == 1  # not left behind, not glued to a line

    demo.type("tus fusion-demo 44046\r")  # the line goes on from where it was
    demo.shows("*Status:* running")
    demo.wait_until(prompt_is_empty, 60, "the prompt")
    demo.type("quit\r")
    assert demo.exit_status() == 0


@pytest.mark.parametrize("when", ["at the prompt", "while the demo is busy"])
def test_ctrl_c_stops_the_demo_at_once_without_a_traceback(demo: Terminal, when: str) -> None:
    demo.type("/jobstatus watch vault-demo 1201\r")
    demo.shows("Watching vault-demo job `1201`: updates go to the thread.")
    demo.wait_until(prompt_is_empty, 60, "the prompt")
    if when == "while the demo is busy":
        demo.type("sleep 600\r")
        # Ctrl-C is a signal only once the prompt has given the terminal back: while prompt_toolkit holds it
        # raw (ISIG off) the key is a byte, which a prompt that has just taken its line never reads, so it
        # would wait in the input until `sleep 600` ended. On a busy machine the prompt takes its time to
        # leave: wait for the terminal mode the demo keeps while acting on a line (bot/offline/demo.py
        # _keys_held: no echo, not line by line, ISIG on).
        demo.wait_until(lambda _: demo.tty_mode() == {"ISIG"}, 60, "the demo acting on `sleep 600`")
    else:
        demo.type("/jobstatus li")
        demo.pause(0.5)
        assert "ISIG" not in demo.tty_mode()  # the prompt holds the terminal raw: Ctrl-C comes as a key
    demo.child.sendintr()
    assert demo.exit_status(timeout=30) == 130  # 128 + SIGINT, as a shell reports Ctrl-C
    assert "Traceback" not in "".join(demo.raw)


def test_ctrl_d_ends_the_demo(demo: Terminal) -> None:
    demo.child.sendeof()
    assert demo.exit_status(timeout=30) == 0
    assert "Traceback" not in "".join(demo.raw)


# ---- piped ------------------------------------------------------------------------------------------------


def test_piped_input_is_echoed_after_its_prompt_so_the_output_reads_as_a_transcript() -> None:
    script = "/jobstatus watch vault-demo 1201\nclick 1\nn\nclick 9\nclick\nfrobnicate\nquit\n"
    out = subprocess.run(demo_argv(), input=script, capture_output=True, text=True, timeout=120,
                         env=demo_env())
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert (
        "> /jobstatus watch vault-demo 1201\n" in text
        and "  [1] Cancel job  [2] Refresh  [3] Stop watching" in text
    )
    assert "> click 1\n  ┌ Cancel this job?\n" in text
    assert "Cancel job? [y/N] n\n[you clicked \"Keep it running\": nothing was sent]" in text
    assert "Asked vault-demo" not in text and "Cancel requested" not in text
    assert (
        "There is no button [9]." in text and "Usage: click N" in text and "Type a /jobstatus command" in text
    )
    assert "\x1b[" not in text  # no terminal codes in a transcript
    assert "Traceback" not in out.stderr


# ---- in process, against the harness's bot -----------------------------------------------------------------


class Answers:
    """The person at the keyboard, answering the demo's questions from a list; records the questions."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.questions: list[str] = []

    async def __call__(self, prompt: str) -> str | None:
        self.questions.append(prompt)
        return self.answers.pop(0) if self.answers else None


def button(text: str, label: str) -> int:
    """The number of the last button called `label` printed in `text`."""
    return int(re.findall(rf"\[(\d+)\] {re.escape(label)}", text)[-1])


async def test_the_cancel_dialog_asks_first_and_backing_out_sends_nothing(harness: Harness) -> None:
    h = harness
    h.sim.vault.add_job(1201, name="Binder Export", state="RUNNING")
    answers = Answers("n", "y")
    chat = DemoChat(h.slack, h.user, out := io.StringIO(), answers)
    await chat.handle("/jobstatus watch vault-demo 1201")
    cancel = button(out.getvalue(), "Cancel job")
    seen = len(h.slack.ephemerals_for("U0001"))

    chat.out = out = io.StringIO()
    await chat.handle(f"click {cancel}")
    assert answers.questions == ["Cancel job? [y/N] "]
    assert out.getvalue() == (
        "  ┌ Cancel this job?\n"
        "  │ This asks *vault-demo* to cancel job `1201`. It cannot be undone.\n"
        "  └ [Keep it running]  [Cancel job]\n"
        '[you clicked "Keep it running": nothing was sent]\n'
    )
    assert h.sim.vault.count("POST", "cancel") == 0 and len(h.slack.ephemerals_for("U0001")) == seen

    await chat.handle(f"click {cancel}")
    assert answers.questions == ["Cancel job? [y/N] "] * 2
    assert h.sim.vault.count("POST", "cancel") == 1
    assert "Asked vault-demo to cancel job `1201`." in out.getvalue()


async def test_a_click_prints_only_what_it_changed_rendered_as_slack_shows_it(harness: Harness) -> None:
    h = harness
    h.sim.vault.add_job(1201, name="Binder Export", state="RUNNING")
    h.sim.fusion.add_job(44046, name="ExtractMostLabels", state="RUNNING")
    chat = DemoChat(h.slack, h.user, out := io.StringIO(), Answers())
    await chat.handle("/jobstatus watch vault-demo 1201")
    stop = button(out.getvalue(), "Stop watching")
    await chat.handle("/jobstatus watch fusion-demo 44046")
    assert render_channel(h.slack, "C0001", numbers=chat.numbers).buttons[stop].action_id == "jobstatus_stop"

    chat.out = out = io.StringIO()
    await chat.handle(f"click {stop}")
    printed = out.getvalue()
    assert printed.startswith('[you clicked "Stop watching"]\n')
    assert "fusion-demo" not in printed  # the other job's message did not change
    assert printed.count("*vault-demo* job `1201`") == 2  # the clicked message, and its thread's title
    assert "  Not watching: stopped\n" in printed and "(edited)" in printed
    assert "🛑 Stopped watching (by @ana). Press *Rewatch* to follow it again." in printed
    assert len(printed.splitlines()) < len(render_channel(h.slack, "C0001").splitlines()) / 2
    rewatch = button(printed, "Rewatch")

    chat.out = out = io.StringIO()
    await chat.handle(f"click {stop}")  # that button went with the edit
    await chat.handle("click 99")
    await chat.handle("/jobstatus watch fusion-demo 44046")  # answered with a link to the thread
    await chat.handle("/jobstatus list")
    printed = out.getvalue()
    assert f"Button [{stop}] is no longer on its message" in printed and "There is no button [99]." in printed
    assert "This channel already watches fusion-demo job `44046`: see its thread." in printed
    assert "• *fusion-demo* `44046` · ExtractMostLabels: running (by @ana) — thread" in printed
    assert "<@" not in printed and "<http" not in printed and not re.search(r":[a-z_]+:", printed)

    chat.out = out = io.StringIO()
    await chat.handle("show")  # the whole channel, with the same button numbers
    assert out.getvalue() == render_channel(h.slack, "C0001", viewer="U0001", numbers=chat.numbers) + "\n"
    assert out.getvalue().startswith("#general\n") and "fusion-demo" in out.getvalue()
    assert f"[{rewatch}] Rewatch" in out.getvalue()


async def test_home_prints_the_home_tab_and_shortcut_fills_and_submits_the_modal(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(44046, name="ExtractMostLabels", state="RUNNING")
    answers = Answers("fusion-demo", "4404x", "", "fusion-demo", "44046", "")
    chat = DemoChat(h.slack, h.user, out := io.StringIO(), answers)
    await chat.handle("home")
    assert (
        "Your watches\n@ana, you watch no job." in out.getvalue()
        and "• *fusion-demo*: ⚪ no job polled now" in out.getvalue()
    )

    chat.out = out = io.StringIO()
    await chat.handle("shortcut")  # a job id the vendor could not have: refused on its field, nothing sent
    assert "== Watch a job ==\nBackend: [static_select: Choose a backend]" in out.getvalue()
    assert answers.questions == ["Backend? ", "Job id? ", "Post updates in? "]
    assert "  job_id: '4404x' is not an Oracle Fusion job id" in out.getvalue() and h.parents() == []

    chat.out = out = io.StringIO()
    await chat.handle("shortcut")
    printed = out.getvalue()
    assert '[you clicked "Watch"; the modal closed]' in printed
    assert "Watching fusion-demo job `44046`: updates go to the thread." in printed
    await chat.handle("home")
    assert (
        "*fusion-demo* `44046` · ExtractMostLabels" in out.getvalue() and "[Stop watching]" in out.getvalue()
    )
