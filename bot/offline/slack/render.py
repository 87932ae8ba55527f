"""A fake Slack channel as a person sees it, in plain text: `render_channel`, and `mrkdwn_to_plain` for one text."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from bot.offline.slack.blockkit import plain_text
from bot.offline.slack.records import Ephemeral, Message

if TYPE_CHECKING:
    from bot.offline.slack.webapi import FakeSlack


class ButtonRef(NamedTuple):
    channel: str
    ts: str
    action_id: str


class RenderedChannel(str):
    """The rendered text (a str) plus `.buttons`: number → ButtonRef, for `click 2` in the demo."""

    buttons: dict[int, ButtonRef]

    def __new__(cls, text: str, buttons: dict[int, ButtonRef]) -> RenderedChannel:
        obj = super().__new__(cls, text)
        obj.buttons = buttons
        return obj


_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_DIM, _BOLD, _RESET = "\x1b[2m", "\x1b[1m", "\x1b[0m"


def mrkdwn_to_plain(text: str, fs: FakeSlack | None = None) -> str:
    """Slack's escaped mrkdwn as a person reads it: <@U1> → @ana, <url|label> → label (url), &lt; → <."""

    def link(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            return "@" + (label or (fs.user_name(target[1:]) if fs else target[1:]))
        if target.startswith("#"):
            return "#" + (label or (fs.channel_name(target[1:]) if fs else target[1:]))
        if target.startswith("!"):
            if label:
                return label
            return "@" + target[1:].split("^")[0]
        return f"{label} ({target})" if label and label != target else target

    return _LINK.sub(link, text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _rich_text(element: Any) -> str:
    if isinstance(element, list):
        return "".join(_rich_text(e) for e in element)
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind in ("text", "link"):
        return str(element.get("text") or element.get("url") or "")
    if kind == "emoji":
        return f":{element.get('name')}:"
    if kind == "user":
        return f"@{element.get('user_id')}"
    if kind == "channel":
        return f"#{element.get('channel_id')}"
    if kind == "rich_text_list":
        return "\n".join("- " + _rich_text(e) for e in element.get("elements") or [])
    inner = _rich_text(element.get("elements") or [])
    return f"```{inner}```" if kind == "rich_text_preformatted" else inner


def _render_blocks(
    fs: FakeSlack,
    blocks: list[dict[str, Any]],
    channel: str,
    ts: str,
    buttons: dict[int, ButtonRef],
    start: int,
) -> list[str]:
    lines: list[str] = []

    def txt(obj: Any) -> str:
        return mrkdwn_to_plain(plain_text(obj), fs)

    def button_label(el: dict[str, Any]) -> str:
        n = start + len(buttons)
        buttons[n] = ButtonRef(channel, ts, str(el.get("action_id") or ""))
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
            lines.extend(_rich_text(block.get("elements") or []).splitlines())
        elif kind == "markdown":
            lines.extend(str(block.get("text", "")).splitlines())
        else:
            lines.append(f"[{kind} block]")
    return lines


def _clock_time(ts: str) -> str:
    return time.strftime("%H:%M:%S", time.localtime(float(ts)))


def render_channel(
    fs: FakeSlack, channel: str, *, viewer: str | None = None, ansi: bool = False, start: int = 1
) -> RenderedChannel:
    """`channel` as a person sees it: messages with blocks and numbered buttons, "(edited)", thread replies
    indented, files, and ephemerals ("only visible to you"; with `viewer`, only theirs).

    The result is a str; `.buttons` maps each shown number to ButtonRef(channel, ts, action_id).
    Numbering starts at `start` (to render several channels with distinct numbers).
    """
    buttons: dict[int, ButtonRef] = {}
    dim = (lambda s: f"{_DIM}{s}{_RESET}") if ansi else (lambda s: s)
    bold = (lambda s: f"{_BOLD}{s}{_RESET}") if ansi else (lambda s: s)
    out: list[str] = [bold(f"#{fs.channel_name(channel)}"), "=" * 40]

    def body(item: Message | Ephemeral) -> list[str]:
        lines = _render_blocks(fs, item.blocks, channel, item.ts, buttons, start) if item.blocks else []
        if not lines:
            lines = mrkdwn_to_plain(item.text, fs).splitlines() if item.text else []
        if isinstance(item, Message):
            for f in item.files:
                lines.append(f"[file] {f.get('name')} ({f.get('size', 0)} bytes)")
        if item.edits:
            lines = lines or [""]
            lines[-1] = (lines[-1] + " " + dim("(edited)")).lstrip()
        return lines or [""]

    def visible_ephemerals(thread_ts: str | None) -> list[Ephemeral]:
        return [e for e in fs.ephemerals_for(viewer, channel) if (e.thread_ts or None) == thread_ts]

    def emit(item: Message | Ephemeral, indent: str) -> None:
        if isinstance(item, Ephemeral):
            who = "you" if viewer else f"you (@{fs.user_name(item.user)})"
            head = f"{fs.bot_name}  {_clock_time(item.ts)}  [only visible to {who}]"
            out.append(indent + dim(head))
            out.extend(indent + "  " + dim(line) for line in body(item))
            return
        head = f"{bold(fs.user_name(item.user))}  {dim(_clock_time(item.ts))}"
        if item.is_reply and item.reply_broadcast and not indent:
            head += "  " + dim("(replied to a thread)")
        out.append(indent + head)
        out.extend(indent + "  " + line for line in body(item))

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
