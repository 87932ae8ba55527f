"""The Home tab and the "Watch a job" modal as Block Kit views: pure builders and readers, no I/O.

`home` renders what bot/inbound/home.py gathered (the user's watches, the backends' health); `watch_modal` is
the modal both shortcuts open; `Submission.of` reads what a person submitted in it; `job_id_in` finds a job id
in a message's text for the message shortcut. Limits are Slack's (https://docs.slack.dev/reference/views/
modal-views): a title, submit and close of at most 24 characters, at most 100 blocks; the fake Slack checks
them (bot/offline/slack/views.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.backends.base import Backend
from bot.domain.errors import InvalidJobId
from bot.domain.jobs import ButtonAction, EndedReason, JobView
from bot.rendering import messages
from bot.rendering.messages import code, context, esc, section

# The shortcuts' callback ids, as manifest.yaml declares them, and the modal's.
GLOBAL_SHORTCUT = "jobstatus_watch_global"
MESSAGE_SHORTCUT = "jobstatus_watch_message"
WATCH_MODAL = "jobstatus_watch_modal"
# The modal's input blocks (block_id = action_id): a view_submission's errors are keyed by them.
BACKEND, JOB_ID, CHANNEL = "backend", "job_id", "channel"

HOME_WATCHES = 40  # watches listed on the Home tab (of 100 blocks: one each, and a few around them)
# a static_select's options (https://docs.slack.dev/reference/block-kit/block-elements/select-menu-element)
OPTIONS_MAX = 100
JOB_ID_MAX = 200  # the job id field's max_length: longer than any vendor's id


@dataclass(frozen=True)
class HomeWatch:
    """One line of the Home tab: a watch of the user's, its job, and a link to its thread (if Slack gave
    one)."""

    watch_id: int
    channel: str
    job: JobView
    active: bool
    ended_reason: str | None
    link: str | None


@dataclass(frozen=True)
class Health:
    """What the bot knows of one backend from its polls: `outage_since` is when its polls began to fail, once
    they have failed for as long as the poller waits before it notes an outage in threads."""

    backend: str
    polled: int  # jobs polled now
    failing: int  # of those, the ones whose last poll failed
    outage_since: float | None = None
    error_kind: str | None = None


def health_words(h: Health) -> str:
    if h.outage_since is not None:
        return (f":red_circle: outage since {messages.slack_date(h.outage_since)} "
                f"({h.failing} of {h.polled} jobs failing: {esc(h.error_kind or 'error')})")
    if h.failing:
        return (f":large_yellow_circle: answering; the last poll of {h.failing} of {h.polled} jobs failed "
                f"({esc(h.error_kind or 'error')}), retrying")
    if h.polled:
        return f":large_green_circle: answering ({h.polled} job{'' if h.polled == 1 else 's'} polled)"
    return ":white_circle: no job polled now"


def home(user: str, watches: Sequence[HomeWatch], more: int, health: Sequence[Health], now: float,
         notice: str | None = None) -> dict[str, Any]:
    """The Home tab of `user`: their watches (active first), then every backend's health."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your watches"}}
    ]
    if notice:
        blocks.append(context(notice))
    if not watches:
        blocks.append(section(f"<@{user}>, you watch no job. "
                              f"Start one with `/jobstatus watch {messages.JOB_ARGS}` "
                              "or the *Watch a job* shortcut."))
    for w in watches[:HOME_WATCHES]:
        block = section(_home_line(w))
        if w.active:
            block["accessory"] = messages.button("Stop watching", ButtonAction.STOP, str(w.watch_id))
        blocks.append(block)
    hidden = more + max(0, len(watches) - HOME_WATCHES)
    if hidden:
        blocks.append(context(f"…and {hidden} more; `/jobstatus list` in a channel shows its watches."))
    blocks.append({"type": "divider"})
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": "Backends"}})
    lines = [f"• *{esc(h.backend)}*: {health_words(h)}" for h in health] or ["No backend is configured."]
    blocks.append(section("\n".join(lines)))
    blocks.append(context(f"Updated {messages.slack_date(now)}"))
    return {"type": "home", "blocks": blocks}


def _home_line(w: HomeWatch) -> str:
    job = w.job
    name = f" · {esc(job.name)}" if job.name else ""
    state = messages.state_words(job.phase, job.vendor_status)
    progress = f" · {messages.progress_bar(job.progress)}" if job.progress is not None else ""
    thread = f" · <{w.link}|thread>" if w.link else ""
    ended = ""
    if not w.active:
        ended = (" · finished" if w.ended_reason == EndedReason.FINISHED
                 else f" · not watching ({esc(w.ended_reason)})")
    return (f"{job.phase.emoji} *{esc(job.backend)}* {code(job.job_id)}{name}\n"
            f"{state}{progress} · in <#{w.channel}>{thread}{ended}")


# -- the modal ------------------------------------------------------------------------------------------
def watch_modal(backends: Sequence[str], *, channel: str | None = None, job_id: str | None = None,
                backend: str | None = None) -> dict[str, Any]:
    """The "Watch a job" modal. `channel` is the conversation the shortcut came from, when known (a message
    shortcut); else the channel select starts at the conversation the person is viewing, if Slack knows it.
    Its conversation select has `response_url_enabled`, so the submission carries a response_url for the
    chosen channel: the outcome reaches the person there as the slash command's answer does."""
    view: dict[str, Any] = {"type": "modal", "callback_id": WATCH_MODAL,
                            "title": {"type": "plain_text", "text": "Watch a job"},
                            "close": {"type": "plain_text", "text": "Cancel"}}
    if not backends:
        view["blocks"] = [section("No backend is configured, so there is nothing to watch. "
                                  "Ask the bot's operator to add one.")]
        return view
    options = [{"text": {"type": "plain_text", "text": name[:75]}, "value": name}
               for name in backends[:OPTIONS_MAX]]
    select: dict[str, Any] = {"type": "static_select", "action_id": BACKEND, "options": options,
                              "placeholder": {"type": "plain_text", "text": "Choose a backend"}}
    chosen = next((o for o in options if o["value"] == backend), options[0] if len(options) == 1 else None)
    if chosen is not None:
        select["initial_option"] = chosen
    text_input: dict[str, Any] = {"type": "plain_text_input", "action_id": JOB_ID, "max_length": JOB_ID_MAX,
                                  "placeholder": {"type": "plain_text", "text": "e.g. 44046"}}
    if job_id:
        text_input["initial_value"] = job_id[:JOB_ID_MAX]
    conversation: dict[str, Any] = {"type": "conversations_select", "action_id": CHANNEL,
                                    "response_url_enabled": True,
                                    "filter": {"include": ["public", "private"], "exclude_bot_users": True}}
    if channel:
        conversation["initial_conversation"] = channel
    else:
        conversation["default_to_current_conversation"] = True
    view["submit"] = {"type": "plain_text", "text": "Watch"}
    view["blocks"] = [
        {"type": "input", "block_id": BACKEND, "label": {"type": "plain_text", "text": "Backend"},
         "element": select},
        {"type": "input", "block_id": JOB_ID, "label": {"type": "plain_text", "text": "Job id"},
         "element": text_input},
        {"type": "input", "block_id": CHANNEL, "label": {"type": "plain_text", "text": "Post updates in"},
         "element": conversation},
        context("Same as `/jobstatus watch`: the job's state changes go to a thread in that channel."),
    ]
    return view


@dataclass(frozen=True)
class Submission:
    """What a person submitted in the modal; anything missing or of the wrong type reads as empty."""

    backend: str
    job_id: str
    channel: str

    @classmethod
    def of(cls, view: Mapping[str, Any]) -> Submission:
        state = view.get("state")
        values = state.get("values") if isinstance(state, dict) else None
        values = values if isinstance(values, dict) else {}

        def value(block: str, key: str) -> str:
            entry = values.get(block)
            entry = entry.get(block) if isinstance(entry, dict) else None
            got = entry.get(key) if isinstance(entry, dict) else None
            if key == "selected_option":
                got = got.get("value") if isinstance(got, dict) else None
            return got.strip() if isinstance(got, str) else ""

        return cls(backend=value(BACKEND, "selected_option"), job_id=value(JOB_ID, "value"),
                   channel=value(CHANNEL, "selected_conversation"))


def plain(text: str) -> str:
    """A refusal worded for Slack's mrkdwn, shown where only plain text renders (a modal field's error):
    no code spans, channel mentions as #C…, Slack's three escapes undone."""
    text = re.sub(r"<#([A-Z0-9]+)(?:\|[^>]*)?>", r"#\1", text).replace("`", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*[A-Za-z0-9]|[0-9]")


def job_id_in(text: str, backends: Mapping[str, Backend]) -> tuple[str | None, str | None]:
    """(job id, backend name) proposed for a message's text: the first word holding a digit that one of
    `backends` takes as a job id (the backend only when exactly one takes it), else (None, None)."""
    for token in _TOKEN.findall(text[:4000]):
        if not any(ch.isdigit() for ch in token):
            continue
        takers: list[tuple[str, str]] = []
        for name, b in backends.items():
            try:
                takers.append((name, b.validate_job_id(token)))
            except InvalidJobId:
                continue
        if takers:
            ids = {job for _, job in takers}
            return (takers[0][1] if len(ids) == 1 else token), (takers[0][0] if len(takers) == 1 else None)
    return None, None
