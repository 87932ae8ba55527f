"""The text renderer: Slack's markup as a person reads it, and button numbers that stay put."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from bot.offline.slack import Ephemeral, FakeSlack
from bot.offline.slack.render import (
    EMOJI,
    ButtonNumbers,
    mrkdwn_to_plain,
    render_channel,
    render_message,
    text_object,
)

BOT = Path(__file__).resolve().parents[4] / "bot"


@pytest.fixture
def fs() -> FakeSlack:
    return FakeSlack()  # U0001 ana, U0002 ben; C0001 #general, C0002 #finance-close; not started


def test_mentions_and_channel_links_show_names_from_the_workspace(fs: FakeSlack) -> None:
    assert mrkdwn_to_plain("Stopped watching (by <@U0001>).", fs) == "Stopped watching (by @ana)."
    assert mrkdwn_to_plain("<@U0002>, job failed", fs) == "@ben, job failed"
    assert mrkdwn_to_plain("<@U0001|someone>", fs) == "@someone"  # a label wins, as in Slack
    assert mrkdwn_to_plain("<@U9999>", fs) == "@U9999"  # nobody by that id: the id
    assert mrkdwn_to_plain("allowed: <#C0002>, <#C0001|general>", fs) == "allowed: #finance-close, #general"
    assert mrkdwn_to_plain("<@U0001>") == "@U0001"  # without a workspace, the id


def test_links_show_their_text_and_a_bare_link_its_address(fs: FakeSlack) -> None:
    link = "https://fake.slack.test/archives/C0001/p1766000000000100"
    assert (mrkdwn_to_plain(f"already watched: see <{link}|its thread>.", fs)
            == "already watched: see its thread.")
    assert mrkdwn_to_plain(f"• job — <{link}|thread>", fs) == "• job — thread"
    assert mrkdwn_to_plain("<https://x.test/a?b=1&amp;c=2>", fs) == "https://x.test/a?b=1&c=2"
    assert mrkdwn_to_plain("<mailto:ops@x.test|mail ops>", fs) == "mail ops"
    assert mrkdwn_to_plain("<https://x.test|a &amp; b>", fs) == "a & b"


def test_special_mentions(fs: FakeSlack) -> None:
    assert mrkdwn_to_plain("<!here> the load failed", fs) == "@here the load failed"
    assert mrkdwn_to_plain("<!channel> <!everyone>", fs) == "@channel @everyone"
    assert mrkdwn_to_plain("<!subteam^S012|@finance-ops> look", fs) == "@finance-ops look"


def test_escaped_text_shows_as_typed_and_is_never_markup(fs: FakeSlack) -> None:
    # what a vendor said reaches Slack escaped (bot/rendering/messages.py esc): it reads as typed, not as a
    # mention
    assert mrkdwn_to_plain("&lt;@U0001&gt; &amp;lt; a &gt; b", fs) == "<@U0001> &lt; a > b"
    assert mrkdwn_to_plain("`/jobstatus watch &lt;backend&gt; &lt;job-id&gt;`", fs) == \
        "`/jobstatus watch <backend> <job-id>`"


def test_emoji_codes_show_as_emoji_and_anything_else_stays(fs: FakeSlack) -> None:
    assert mrkdwn_to_plain(":white_check_mark: *succeeded*", fs) == "✅ *succeeded*"
    assert mrkdwn_to_plain(":x: *failed* :warning:", fs) == "❌ *failed* ⚠️"
    assert (mrkdwn_to_plain(":octagonal_sign: Stopped watching (by <@U0001>).", fs)
            == "🛑 Stopped watching (by @ana).")
    assert mrkdwn_to_plain("at 12:30:45, :not_an_emoji_we_know:", fs) == "at 12:30:45, :not_an_emoji_we_know:"
    assert mrkdwn_to_plain("<https://x.test/:x:|link>", fs) == "link"  # inside markup: not text


def test_every_emoji_code_the_bot_writes_shows_as_an_emoji() -> None:
    code = re.compile(r"(?<![\w:]):([a-z][a-z0-9_+-]*):(?![\w:])")
    used = {m.group(1): path.relative_to(BOT.parent)
            for path in BOT.rglob("*.py") if "offline" not in path.parts
            for m in code.finditer(path.read_text(encoding="utf-8"))}
    assert {"white_check_mark", "x", "octagonal_sign", "eyes"} <= used.keys()  # the scan finds them
    assert {name: str(where) for name, where in used.items() if name not in EMOJI} == {}


def _local(y: int, mo: int, d: int, h: int, mi: int, s: int) -> int:
    return int(time.mktime((y, mo, d, h, mi, s, 0, 0, -1)))


def test_dates_read_in_the_readers_time_zone_as_today_yesterday_or_a_date(fs: FakeSlack) -> None:
    ts = _local(2026, 3, 10, 14, 5, 9)
    token = f"<!date^{ts}^{{date_short_pretty}} {{time_secs}}|2026-03-10 14:05 UTC>"
    assert mrkdwn_to_plain(f"*Last checked*\n{token}", fs, now=ts + 60) == "*Last checked*\nToday 14:05:09"
    assert mrkdwn_to_plain(token, fs, now=_local(2026, 3, 11, 9, 0, 0)) == "Yesterday 14:05:09"
    assert mrkdwn_to_plain(token, fs, now=_local(2026, 3, 9, 23, 0, 0)) == "Tomorrow 14:05:09"
    assert mrkdwn_to_plain(token, fs, now=_local(2026, 5, 1, 9, 0, 0)) == "Mar 10, 2026 14:05:09"
    # capitalised where it starts the date's text, as the client does
    assert mrkdwn_to_plain(f"<!date^{ts}^asked {{date_pretty}}|x>", fs, now=ts) == "asked today"
    assert mrkdwn_to_plain(f"<!date^{ts}^{{date_num}} {{time}}|x>", fs) == "2026-03-10 14:05"
    assert mrkdwn_to_plain(f"<!date^{ts}^{{date}}|x>", fs) == "March 10th, 2026"
    assert mrkdwn_to_plain(f"<!date^{ts}^{{date_long}}|x>", fs) == "Tuesday, March 10th, 2026"
    assert mrkdwn_to_plain(f"<!date^{_local(2026, 3, 22, 8, 0, 0)}^{{date}}|x>", fs) == "March 22nd, 2026"
    assert mrkdwn_to_plain(f"<!date^{_local(2026, 3, 13, 8, 0, 0)}^{{date}}|x>", fs) == "March 13th, 2026"
    # what Slack cannot read shows the fallback
    assert mrkdwn_to_plain(f"<!date^{ts}^{{no_such_token}}|the fallback>", fs) == "the fallback"
    assert mrkdwn_to_plain("<!date^soon^{date}|the fallback>", fs) == "the fallback"


def test_plain_text_shows_as_written_with_its_emoji_unless_turned_off(fs: FakeSlack) -> None:
    assert (text_object({"type": "plain_text", "text": "Stop :octagonal_sign: <@U0001>", "emoji": True}, fs)
            == "Stop 🛑 <@U0001>")  # plain text has no markup
    assert text_object({"type": "plain_text", "text": ":x: as typed", "emoji": False}, fs) == ":x: as typed"
    assert text_object({"type": "mrkdwn", "text": ":x: <@U0002>"}, fs) == "❌ @ben"


def _buttons(*actions: str) -> list[dict[str, object]]:
    return [{"type": "actions", "elements": [
        {"type": "button", "action_id": a,
         "text": {"type": "plain_text", "text": a.title()}} for a in actions]}]


def test_a_button_keeps_its_number_for_as_long_as_it_is_on_its_message(fs: FakeSlack) -> None:
    first = fs.store_message("C0001", "job 1", blocks=_buttons("refresh", "stop"))
    numbers = ButtonNumbers()
    assert "[1] Refresh  [2] Stop" in render_channel(fs, "C0001", numbers=numbers)
    second = fs.store_message("C0001", "job 2", blocks=_buttons("refresh", "stop"))
    shown = render_channel(fs, "C0001", numbers=numbers)
    assert "[1] Refresh  [2] Stop" in shown and "[3] Refresh  [4] Stop" in shown
    assert shown.buttons[4] == ("C0001", second.ts, "stop")

    first.blocks = _buttons("rewatch")  # the message changed: its new button gets a new number
    first.edits = 1
    shown = render_channel(fs, "C0001", numbers=numbers)
    assert "[5] Rewatch (edited)" in shown and "[1]" not in shown
    assert set(shown.buttons) == {3, 4, 5} and numbers.get(2) == ("C0001", first.ts, "stop")
    first.blocks = _buttons("refresh", "stop")  # and the old ones are back: their old numbers with them
    assert "[1] Refresh  [2] Stop" in render_channel(fs, "C0001", numbers=numbers)
    assert numbers.get(99) is None
    assert "[5] Refresh" in render_channel(fs, "C0001", start=5)  # without a ButtonNumbers: from `start`


def test_one_message_renders_with_its_head(fs: FakeSlack) -> None:
    msg = fs.store_message("C0001", "fallback", blocks=[
        {"type": "section", "text": {"type": "mrkdwn", "text": ":x: *epm-demo* job `1881` failed, <@U0001>"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Finished"}]},
    ])
    head, lines = render_message(fs, msg, ButtonNumbers())
    assert head.startswith("jobstatus  ") and re.fullmatch(r"jobstatus  \d\d:\d\d:\d\d", head)
    assert lines == ["❌ *epm-demo* job `1881` failed, @ana", "Finished"]
    eph = Ephemeral(channel="C0001", user="U0001", ts=fs._next_ts(), text="Watching <#C0001>: :eyes:")
    head, lines = render_message(fs, eph, ButtonNumbers(), viewer="U0001")
    assert head.endswith("[only visible to you]") and lines == ["Watching #general: 👀"]
    head, _ = render_message(fs, eph, ButtonNumbers(), ansi=True)
    assert head.startswith("\x1b[2m") and "only visible to you (@ana)" in head
