"""A fake Slack channel as a person sees it, in plain text: `render_channel` for a channel, `render_message`
for one message, and `mrkdwn_to_plain` for one text.

What Slack's client turns into something else is turned into it here, as far as plain text can: mentions
(`<@U0001>` → @ana), channel links (`<#C0001>` → #general), special mentions (`<!here>` → @here), links
(`<url|text>` → text), dates (`<!date^…>` → the reader's local time), emoji codes (`:white_check_mark:` → ✅)
and the three escaped characters (https://docs.slack.dev/messaging/formatting-message-text). Buttons are
numbered (`[2] Stop watching`) so a terminal user can name one; `ButtonNumbers` keeps a button's number for as
long as it is on its message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from bot.offline.slack.blockkit import plain_text
from bot.offline.slack.records import Ephemeral, Message


class Workspace(Protocol):
    """What rendering reads of the fake Slack (bot/offline/slack/webapi.py's FakeSlack is one; it imports this
    module to render a channel): names, and the messages of a channel and a thread."""

    bot_name: str

    def all_messages(self, channel: str) -> list[Message]: ...

    def thread(self, channel: str, ts: str) -> list[Message]: ...

    def ephemerals_for(self, user: str | None = None, channel: str | None = None) -> list[Ephemeral]: ...

    def channel_name(self, channel: str) -> str: ...

    def user_name(self, user: str) -> str: ...


class ButtonRef(NamedTuple):
    channel: str
    ts: str
    action_id: str


class ButtonNumbers:
    """Numbers for buttons, given in the order they are first shown and kept: the same button (message and
    action) has the same number in every rendering, so `click 2` means what the person last saw as [2]."""

    def __init__(self, start: int = 1) -> None:
        self._next = start
        self._by_ref: dict[ButtonRef, int] = {}
        self._by_number: dict[int, ButtonRef] = {}

    def number(self, ref: ButtonRef) -> int:
        n = self._by_ref.get(ref)
        if n is None:
            n = self._by_ref[ref] = self._next
            self._by_number[n] = ref
            self._next += 1
        return n

    def get(self, n: int) -> ButtonRef | None:
        return self._by_number.get(n)


class RenderedChannel(str):
    """The rendered text (a str) plus `.buttons`: number → ButtonRef of every button shown, for `click 2`."""

    buttons: dict[int, ButtonRef]

    def __new__(cls, text: str, buttons: dict[int, ButtonRef]) -> RenderedChannel:
        obj = super().__new__(cls, text)
        obj.buttons = buttons
        return obj


# The emoji codes the bot writes (bot/rendering/messages.py, bot/operations/watching.py, a Phase's emoji), as
# Slack's client shows them; a test keeps this in step with the bot's sources. Any other code stays as typed.
EMOJI = {
    "alarm_clock": "⏰",
    "arrows_counterclockwise": "🔄",
    "calendar": "📆",
    "double_vertical_bar": "⏸️",
    "eyes": "👀",
    "grey_question": "❔",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "large_green_circle": "🟢",
    "large_yellow_circle": "🟡",
    "lock": "🔒",
    "no_entry": "⛔",
    "no_entry_sign": "🚫",
    "octagonal_sign": "🛑",
    "paperclip": "📎",
    "red_circle": "🔴",
    "snail": "🐌",
    "stopwatch": "⏱️",
    "warning": "⚠️",
    "white_check_mark": "✅",
    "white_circle": "⚪",
    "wrench": "🔧",
    "x": "❌",
}

_MARKUP = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")  # <target> or <target|label>
_EMOJI_CODE = re.compile(r":([a-z0-9_+'-]+):")
_DATE_TOKEN = re.compile(r"\{(\w+)\}")
_DIM, _BOLD, _RESET = "\x1b[2m", "\x1b[1m", "\x1b[0m"


def emojize(text: str) -> str:
    """`:code:` → the emoji Slack shows, for the codes in EMOJI; other codes (and `12:30:45`) stay."""
    return _EMOJI_CODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mrkdwn_to_plain(text: str, fs: Workspace | None = None, *, now: float | None = None) -> str:
    """Slack's escaped mrkdwn as a person reads it: <@U1> → @ana, <#C1> → #general, <!here> → @here,
    <url|label> → label, <!date^…|fallback> → the date in local time, :x: → ❌, &lt; → <.

    Names come from `fs` (without it, ids stand in); `now` is when the reader looks (for "Today").
    """
    out: list[str] = []
    pos = 0
    for m in _MARKUP.finditer(text):
        out.append(emojize(_unescape(text[pos : m.start()])))
        out.append(_markup(m.group(1), m.group(2), fs, now))
        pos = m.end()
    out.append(emojize(_unescape(text[pos:])))
    return "".join(out)


def _markup(target: str, label: str | None, fs: Workspace | None, now: float | None) -> str:
    """One <…>: https://docs.slack.dev/messaging/formatting-message-text ("Mentioning users", "Mentioning
    groups", "Linking to channels", "Formatting dates", "Special mentions", "Linking to URLs")."""
    label = _unescape(label) if label is not None else None
    if target.startswith("@"):
        return "@" + (label or (fs.user_name(target[1:]) if fs else target[1:]))
    if target.startswith("#"):
        return "#" + (label or (fs.channel_name(target[1:]) if fs else target[1:]))
    if target.startswith("!date^"):
        return slack_date(target, label or "", now=now)
    if target.startswith("!"):  # !here, !channel, !everyone, !subteam^ID
        if label:
            return label
        return "@" + target[1:].split("^")[0]
    return label or _unescape(target)  # a link shows its label; a bare URL shows itself


_ORDINAL = {1: "st", 2: "nd", 3: "rd"}


def slack_date(target: str, fallback: str, *, now: float | None = None) -> str:
    """`!date^{unix}^{format}[^{link}]` as Slack shows it in the reader's time zone (24-hour clock).

    Tokens (https://docs.slack.dev/reference/block-kit/block-elements/date-element, "Date format strings"):
    {date_num} 2014-02-18, {date} February 18th, 2014, {date_short} Feb 18, 2014, {date_long} Tuesday,
    February 18th, 2014, {date_pretty} / {date_short_pretty} / {date_long_pretty} (today, yesterday or
    tomorrow, capitalised where they start the text, else the plain form), {time} 06:39, {time_secs} 06:39:42.
    Anything unreadable shows `fallback`, as Slack does.
    """
    parts = target.split("^")
    try:
        when = time.localtime(int(parts[1]))
        template = parts[2]
    except (IndexError, ValueError, OverflowError, OSError):
        return fallback
    today = time.localtime(time.time() if now is None else now)

    def day(n: int) -> str:
        return f"{n}{'th' if 10 <= n % 100 <= 20 else _ORDINAL.get(n % 10, 'th')}"

    plain = {
        "date_num": time.strftime("%Y-%m-%d", when),
        "date": f"{time.strftime('%B', when)} {day(when.tm_mday)}, {when.tm_year}",
        "date_short": f"{time.strftime('%b', when)} {when.tm_mday}, {when.tm_year}",
        "date_long": f"{time.strftime('%A, %B', when)} {day(when.tm_mday)}, {when.tm_year}",
        "time": time.strftime("%H:%M", when),
        "time_secs": time.strftime("%H:%M:%S", when),
    }
    days_apart = time.mktime((*when[:3], 12, 0, 0, 0, 0, -1)) - time.mktime((*today[:3], 12, 0, 0, 0, 0, -1))
    relative = {-1: "yesterday", 0: "today", 1: "tomorrow"}.get(round(days_apart / 86400))

    def token(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.endswith("_pretty") and name[: -len("_pretty")] in plain:
            if relative is None:
                return plain[name[: -len("_pretty")]]
            return relative.capitalize() if m.start() == 0 else relative
        if name in plain:
            return plain[name]
        raise KeyError(name)

    try:
        return _DATE_TOKEN.sub(token, template)
    except KeyError:
        return fallback


def text_object(obj: Any, fs: Workspace | None = None) -> str:
    """A text object as shown: mrkdwn rendered (mrkdwn_to_plain), plain_text as written, with its emoji codes
    shown as emoji unless it says `"emoji": false`."""
    if isinstance(obj, dict) and obj.get("type") == "plain_text":
        text = plain_text(obj)
        return text if obj.get("emoji") is False else emojize(text)
    return mrkdwn_to_plain(plain_text(obj), fs)


def _rich_text(element: Any, fs: Workspace | None) -> str:
    if isinstance(element, list):
        return "".join(_rich_text(e, fs) for e in element)
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind in ("text", "link"):
        return str(element.get("text") or element.get("url") or "")
    if kind == "emoji":
        name = str(element.get("name"))
        return EMOJI.get(name, f":{name}:")
    if kind == "user":
        user = str(element.get("user_id"))
        return "@" + (fs.user_name(user) if fs else user)
    if kind == "channel":
        channel = str(element.get("channel_id"))
        return "#" + (fs.channel_name(channel) if fs else channel)
    if kind == "rich_text_list":
        return "\n".join("- " + _rich_text(e, fs) for e in element.get("elements") or [])
    inner = _rich_text(element.get("elements") or [], fs)
    return f"```{inner}```" if kind == "rich_text_preformatted" else inner


def _render_blocks(
    fs: Workspace,
    blocks: list[dict[str, Any]],
    channel: str,
    ts: str,
    buttons: dict[int, ButtonRef],
    numbers: ButtonNumbers | None,
) -> list[str]:
    """`blocks` as lines of text; buttons numbered by `numbers` (None: a view's buttons, shown unnumbered)."""
    lines: list[str] = []

    def txt(obj: Any) -> str:
        return text_object(obj, fs)

    def button_label(el: dict[str, Any]) -> str:
        if numbers is None:
            return f"[{txt(el.get('text'))}]"
        ref = ButtonRef(channel, ts, str(el.get("action_id") or ""))
        n = numbers.number(ref)
        buttons[n] = ref
        return f"[{n}] {txt(el.get('text'))}"

    def other_element(el: dict[str, Any]) -> str:
        label = txt(el.get("placeholder")) or el.get("type", "element")
        return f"[{el.get('type', 'element')}: {label}]"

    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(txt(block.get("text")))
        elif kind == "section":
            if block.get("text"):
                lines.extend(txt(block["text"]).splitlines() or [""])
            flds = [txt(f).replace("\n", " ") for f in block.get("fields") or []]
            for i in range(0, len(flds), 2):
                lines.append("   ".join(flds[i : i + 2]))
            acc = block.get("accessory")
            if isinstance(acc, dict):
                if acc.get("type") == "button":
                    lines.append(button_label(acc))
                elif acc.get("type") == "image":
                    lines.append(f"[image: {acc.get('alt_text', '')}]")
                else:
                    lines.append(other_element(acc))
        elif kind == "context":
            parts = [
                f"[image: {el.get('alt_text', '')}]" if el.get("type") == "image" else txt(el)
                for el in block.get("elements") or []
            ]
            lines.append("  ·  ".join(parts))
        elif kind == "divider":
            lines.append("-" * 24)
        elif kind == "actions":
            row = [
                button_label(el) if el.get("type") == "button" else other_element(el)
                for el in block.get("elements") or []
            ]
            lines.append("  ".join(row))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "rich_text":
            lines.extend(_rich_text(block.get("elements") or [], fs).splitlines())
        elif kind == "markdown":
            lines.extend(str(block.get("text", "")).splitlines())
        elif kind == "input":
            el = block.get("element") or {}
            now = (
                el.get("initial_value")
                or (el.get("initial_option") or {}).get("value")
                or el.get("initial_conversation")
                or ("(this conversation)" if el.get("default_to_current_conversation") else "")
            )
            lines.append(f"{txt(block.get('label'))}: {other_element(el)} {now}".rstrip())
        else:
            lines.append(f"[{kind} block]")
    return lines


def render_view(fs: Workspace, view: dict[str, Any]) -> list[str]:
    """A modal or Home tab as lines of text: its title, then its blocks (buttons unnumbered)."""
    title = text_object(view.get("title"), fs) if view.get("title") else ""
    return ([f"== {title} =="] if title else []) + _render_blocks(
        fs, view.get("blocks") or [], "", "", {}, None
    )


def clock_time(ts: str) -> str:
    """A message's time as the client shows it beside the author (local time)."""
    return time.strftime("%H:%M:%S", time.localtime(float(ts)))


def _styles(ansi: bool) -> tuple[Callable[[str], str], Callable[[str], str]]:
    if not ansi:
        return (lambda s: s), (lambda s: s)
    return (lambda s: f"{_DIM}{s}{_RESET}"), (lambda s: f"{_BOLD}{s}{_RESET}")


def render_message(
    fs: Workspace,
    item: Message | Ephemeral,
    numbers: ButtonNumbers,
    *,
    viewer: str | None = None,
    ansi: bool = False,
    buttons: dict[int, ButtonRef] | None = None,
) -> tuple[str, list[str]]:
    """One message or ephemeral as shown: its head (author, time, "only visible to you") and its lines
    (blocks, or the text when it has none; files; "(edited)"). Buttons are numbered by `numbers` and, when
    `buttons` is given, added to it."""
    dim, bold = _styles(ansi)
    shown = {} if buttons is None else buttons
    lines = _render_blocks(fs, item.blocks, item.channel, item.ts, shown, numbers) if item.blocks else []
    if not lines:
        lines = mrkdwn_to_plain(item.text, fs).splitlines() if item.text else []
    if isinstance(item, Message):
        for f in item.files:
            lines.append(f"[file] {f.get('name')} ({f.get('size', 0)} bytes)")
    if item.edits:
        lines = lines or [""]
        lines[-1] = (lines[-1] + " " + dim("(edited)")).lstrip()
    if isinstance(item, Ephemeral):
        who = "you" if viewer else f"you (@{fs.user_name(item.user)})"
        head = dim(f"{fs.bot_name}  {clock_time(item.ts)}  [only visible to {who}]")
        return head, [dim(line) for line in lines or [""]]
    return f"{bold(fs.user_name(item.user))}  {dim(clock_time(item.ts))}", lines or [""]


def render_channel(
    fs: Workspace,
    channel: str,
    *,
    viewer: str | None = None,
    ansi: bool = False,
    start: int = 1,
    numbers: ButtonNumbers | None = None,
) -> RenderedChannel:
    """`channel` as a person sees it: messages with blocks and numbered buttons, "(edited)", thread replies
    indented, files, and ephemerals ("only visible to you"; with `viewer`, only theirs).

    The result is a str; `.buttons` maps each shown number to ButtonRef(channel, ts, action_id). Buttons are
    numbered by `numbers` (to keep numbers across renderings), else from `start` on.
    """
    numbers = numbers or ButtonNumbers(start)
    buttons: dict[int, ButtonRef] = {}
    dim, bold = _styles(ansi)
    out: list[str] = [bold(f"#{fs.channel_name(channel)}"), "=" * 40]

    def visible_ephemerals(thread_ts: str | None) -> list[Ephemeral]:
        return [e for e in fs.ephemerals_for(viewer, channel) if (e.thread_ts or None) == thread_ts]

    def emit(item: Message | Ephemeral, indent: str) -> None:
        head, lines = render_message(fs, item, numbers, viewer=viewer, ansi=ansi, buttons=buttons)
        if isinstance(item, Message) and item.is_reply and item.reply_broadcast and not indent:
            head += "  " + dim("(replied to a thread)")
        out.append(indent + head)
        out.extend(indent + "  " + line for line in lines)

    all_msgs = fs.all_messages(channel)
    parents_ts = {m.ts for m in all_msgs if not m.is_reply}
    top: list[Message | Ephemeral] = [
        m
        for m in all_msgs
        if (not m.is_reply and (not m.deleted or fs.thread(channel, m.ts)))
        or (m.is_reply and m.reply_broadcast and not m.deleted)
    ]
    top.extend(visible_ephemerals(None))
    top.sort(key=lambda x: float(x.ts))
    for item in top:
        out.append("")
        if isinstance(item, Message) and item.deleted:
            out.append(dim("(This message was deleted.)"))
        else:
            emit(item, "")
        if isinstance(item, Message) and not item.is_reply:
            thread: list[Message | Ephemeral] = [*fs.thread(channel, item.ts), *visible_ephemerals(item.ts)]
            thread.sort(key=lambda x: float(x.ts))
            if thread:
                n = len(fs.thread(channel, item.ts))
                out.append("    " + dim(f"{n} {'reply' if n == 1 else 'replies'}"))
            for reply in thread:
                emit(reply, "    | ")
    orphans = [m for m in all_msgs if m.is_reply and not m.deleted and m.thread_ts not in parents_ts]
    for m in orphans:
        out.append("")
        out.append(dim(f"(reply to a message that does not exist: thread_ts={m.thread_ts})"))
        emit(m, "    | ")
    if len(out) == 2:
        out.append(dim("(no messages)"))
    return RenderedChannel("\n".join(out), buttons)
