"""Block Kit for the parent message, thread replies and ephemeral answers: pure functions, escaped, bounded.

Everything a backend says goes through `esc()` (Slack mrkdwn control characters) and `cut()` (Block Kit
limits, with a visible "(truncated)") before it is placed in a message.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from typing import Any

from bot.domain.actors import API_ACTOR
from bot.domain.durations import human
from bot.domain.jobs import (
    ButtonAction,
    CaughtUp,
    Changed,
    EndedReason,
    Flapping,
    JobEvent,
    JobView,
    Late,
    Outage,
    Recovered,
    Reply,
    Settled,
    TimedOut,
)
from bot.domain.states import Phase
from bot.domain.status import FailureDetails, Link
from bot.support.config import BackendConfig

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
CONTEXT_LIMIT = 2000
TEXT_LIMIT = 3000  # fallback `text`: Slack takes 40k, but notifications show little
TRUNCATED = " …(truncated)"
TRUNCATED_SHORT = "…"

# What a usage line puts after the verb. In mrkdwn `<…>` is link and mention markup, even inside backticks
# (https://api.slack.com/reference/surfaces/formatting#escaping): escaped, people see "<backend> <job-id>".
JOB_ARGS = "&lt;backend&gt; &lt;job-id&gt;"


def esc(text: object) -> str:
    """Escape text for Slack mrkdwn: no markup (links, mentions, <!channel>) survives from a backend."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def who(actor: str) -> str:
    """Who acted, in mrkdwn: a Slack user's mention, or an API client's name (`ci-finance` (API)), with the
    user it mentions when it named one (`ci-finance` (API) for <@U0123ABCD>)."""
    actor, _, mention = actor.partition(" ")
    if actor.startswith(API_ACTOR):
        name = f"`{esc(actor.removeprefix(API_ACTOR))}` (API)"
        return f"{name} for <@{esc(mention)}>" if mention else name
    return f"<@{esc(actor)}>"


def cut(text: str, limit: int) -> str:
    """Bound `text` to `limit` characters, saying so visibly; never splits an &escape; in two."""
    if len(text) <= limit:
        return text
    # a limit shorter than the mark gets its shortest form ("…"): the bound is what Slack enforces
    mark = TRUNCATED if limit >= len(TRUNCATED) else TRUNCATED_SHORT[:limit]
    keep = text[: max(0, limit - len(mark))]
    amp = keep.rfind("&")
    if amp != -1 and ";" not in keep[amp:]:
        keep = keep[:amp]
    return keep + mark


def code(text: str) -> str:
    """Inline code span for a path or id (backticks inside are replaced so they cannot end the span)."""
    return "`" + esc(text).replace("`", "'") + "`"


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object with `verbatim: true`: Slack still renders our markup and our manual mentions
    (`<@U…>`, `<!date^…>`), but no longer turns plain text into links or mentions (a bare URL, a `#channel`
    name, `@here`), so a vendor's words stay words (docs.slack.dev/reference/block-kit/composition-objects/
    text-object, `verbatim`; docs.slack.dev/messaging/formatting-message-text#automatic-parsing). Every mrkdwn
    object the bot sends is one: any may carry a backend's text. `esc()` still takes out `<`, `>` and `&`."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(cut(text, SECTION_LIMIT))}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(cut(text, CONTEXT_LIMIT))]}


def button(text: str, action: ButtonAction, value: str, *, style: str | None = None,
           confirm: dict[str, Any] | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text[:75], "emoji": True},
        "action_id": action.value,
        "value": value[:2000],
    }
    if style:
        b["style"] = style
    if confirm:
        b["confirm"] = confirm
    return b


def slack_date(ts: float) -> str:
    """A Slack date token that renders in the reader's time zone, with a UTC fallback."""
    fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def slack_time(ts: float) -> str:
    """A Slack date token to the minute ("today 06:41" in the reader's time zone), with a UTC fallback."""
    fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time}}|{fallback}>"


def usual_line(job: JobView) -> str | None:
    """"Usually ~14 min (last 10 runs) · expected end today 10:24" for a run under way with a history."""
    if job.usual_s is None or job.usual_runs < 1 or job.phase.terminal:
        return None
    line = f":stopwatch: Usually ~{human(job.usual_s)} (last {plural(job.usual_runs, 'run')})"
    if job.started_at is not None:
        line += f" · expected end {slack_time(job.started_at + job.usual_s)}"
    return line


def state_words(phase: Phase, vendor_status: str) -> str:
    """"failed (ERRORS_ENCOUNTERED)": our phase, and the vendor's own word where it says more."""
    word = vendor_status.strip()
    if not word or word.lower().replace("_", " ") == phase.value:
        return phase.value
    return f"{phase.value} ({esc(word)})"


def title(job: JobView) -> str:
    name = f" · {esc(job.name)}" if job.name else ""
    return f"{job.phase.emoji} *{esc(job.backend)}* job {code(job.job_id)}{name}"


def details_line(cfg: BackendConfig, channel: str) -> str | None:
    """None when a job's details (failure text, output links, logs, attachments) may be posted in `channel`;
    else the line a thread shows in their place."""
    if cfg.details == "anywhere" or channel in cfg.details:
        return None
    if cfg.details:
        return "Details are posted in " + ", ".join(f"<#{esc(c)}>" for c in cfg.details) + "."
    return NO_DETAILS


# the line in place of details where a backend posts none (or, failing closed, one no longer configured)
NO_DETAILS = "Details (failure text, logs, output links) are not posted in Slack for this backend."


def details_allowed(cfg: BackendConfig, channel: str) -> bool:
    """The `details` rule of a backend (who may see what, bot/operations/permissions.py): whether a job's
    details may be posted in `channel` now. Beside the line it shows instead, so both say the same."""
    return details_line(cfg, channel) is None


def without_details(job: JobView) -> JobView:
    """The job as a channel outside its backend's `details` sees it: the state only, without the vendor's
    message (the failure text), log paths and output links (bot/operations/permissions.py)."""
    return dataclasses.replace(job, message=None, log_paths=(), links=())


def parent(job: JobView, *, watcher: str, watch_id: int, active: bool, ended_reason: str | None,
           can_cancel: bool, hidden: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The one message per watch that is kept up to date in place. `hidden`: the channel may not see the
    job's details (`details_line` below): the parent shows the state only."""
    if hidden is not None:
        job = without_details(job)
    fields = [
        mrkdwn(f"*Status*\n{state_words(job.phase, job.vendor_status)}"),
        mrkdwn(f"*Progress*\n{progress_bar(job.progress)}"),
        mrkdwn(f"*Watched by*\n{who(watcher)}"),
        mrkdwn(f"*Last checked*\n{slack_date(job.checked_at)}"),
    ]
    blocks: list[dict[str, Any]] = [
        section(title(job)),
        {"type": "section", "fields": [{**f, "text": cut(f["text"], FIELD_LIMIT)} for f in fields]},
    ]
    if job.message:
        blocks.append(context(esc(job.message)))
    if active and (usual := usual_line(job)) is not None:
        blocks.append(context(usual))
    if job.error_text and active:
        blocks.append(context(f":warning: Last check failed: {esc(job.error_text)}"))
    value = str(watch_id)
    if active:
        buttons = [button("Refresh", ButtonAction.REFRESH, value),
                   button("Stop watching", ButtonAction.STOP, value)]
        if can_cancel and not job.phase.terminal and job.phase is not Phase.CANCELLING:
            buttons.insert(0, button("Cancel job", ButtonAction.CANCEL, value, style="danger", confirm={
                "title": {"type": "plain_text", "text": "Cancel this job?"},
                "text": mrkdwn(cut(f"This asks *{esc(job.backend)}* to cancel job "
                                   f"{code(job.job_id)}. It cannot be undone.", 300)),
                "confirm": {"type": "plain_text", "text": "Cancel job"},
                "deny": {"type": "plain_text", "text": "Keep it running"},
                "style": "danger",
            }))
        blocks.append({"type": "actions", "block_id": "jobstatus_actions", "elements": buttons})
    else:
        if ended_reason == EndedReason.FINISHED:
            blocks.append(context("Finished"))
        else:
            blocks.append(context(f"Not watching: {esc(ended_reason)}" if ended_reason else "Not watching"))
        blocks.append({"type": "actions", "block_id": "jobstatus_actions",
                       "elements": [button("Rewatch", ButtonAction.REWATCH, value)]})
    text = f"{job.backend} job {job.job_id}: {state_words(job.phase, job.vendor_status)}"
    return cut(text, TEXT_LIMIT), blocks


def progress_bar(progress: int | None) -> str:
    if progress is None:
        return "–"
    p = max(0, min(100, progress))
    filled = round(p / 10)
    return f"`{'█' * filled}{'░' * (10 - filled)}` {p}%"


def change(job: JobView, *, watcher: str, old_phase: Phase | None, old_word: str | None,
           hidden: str | None = None) -> Reply:
    """The thread reply for a state change (a failure mentions the watcher and is shown in the channel too).
    `hidden`: the channel may not see the job's details; the reply says the state, and `hidden` (where the
    details are) in their place."""
    had = bool(job.message or job.log_paths or job.links)
    if hidden is not None:
        job = without_details(job)
    was = f" (was {state_words(old_phase, old_word or '')})" if old_phase is not None else ""
    head = f"{job.phase.emoji} *{state_words(job.phase, job.vendor_status)}*{was}"
    blocks = [section(head)]
    lines = []
    broadcast = False
    if job.phase is Phase.FAILED:
        broadcast = True
        blocks = [section(f"{head}\n{who(watcher)}, {esc(job.backend)} job {code(job.job_id)} failed.")]
        if job.message:
            lines.append(section("*Failure message*\n" + _quote(job.message)))
    elif job.message:
        lines.append(context(esc(job.message)))
    if job.phase.terminal and (job.log_paths or job.links):
        lines.append(section(paths_text(job.log_paths, job.links)))
    if hidden is not None and (had or job.phase is Phase.FAILED):
        lines.append(context(hidden))
    blocks += lines
    text = f"{job.backend} job {job.job_id}: {state_words(job.phase, job.vendor_status)}"
    if job.phase is Phase.FAILED and job.message:
        text += f": {esc(job.message)}"
    return Reply(cut(text, TEXT_LIMIT), blocks, broadcast=broadcast)


def _quote(text: str) -> str:
    body = cut(esc(text), SECTION_LIMIT - 100)
    return "\n".join("> " + line for line in body.splitlines() or [""])


def paths_text(paths: Iterable[str], links: Iterable[Link]) -> str:
    out = ["*Logs and outputs*"]
    out += [f"• {code(p)}" for p in paths]
    out += [f"• {esc(link.label)}: {code(link.url)}" for link in links]
    return cut("\n".join(out), SECTION_LIMIT)


def details(job: JobView, d: FailureDetails) -> Reply | None:
    """The reply with what the backend said beyond the status (errors, outputs, links, hints). It follows the
    change reply for the same status (`change`), so what that said already (the message, the job's logs and
    links) is not said again, and each output file is one row, with its link."""
    blocks: list[dict[str, Any]] = []
    lines = [line for line in d.lines if line != job.message]
    if lines:
        body = cut(esc("\n".join(lines)).replace("```", "'''"), SECTION_LIMIT - 60)
        blocks.append(section(f"{errors_head(d.total_errors, len(lines))}\n```{body}```"))
    links = [link for link in d.links if link not in job.links]
    files = [(name, size) for name, size in d.files if name not in job.log_paths]
    if files:
        rows = []
        for name, size in files:
            link = next((link for link in links if link.label == name), None)
            rows.append(f"• {code(name)}" + (f" ({human_size(size)})" if size is not None else "")
                        + (f": {code(link.url)}" if link else ""))
        links = [link for link in links if link.label not in {name for name, _ in files}]
        blocks.append(section(cut("*Output files*\n" + "\n".join(rows), SECTION_LIMIT)))
    if links:
        blocks.append(section(paths_text((), links)))
    if d.hint:
        blocks.append(context(esc(d.hint)))
    if not blocks:
        return None
    return Reply(f"{job.backend} job {job.job_id}: details", blocks[:45], details=True)


def errors_head(total: int | None, shown: int) -> str:
    """The heading over the lines a backend reported: its count counts what is shown, or says both."""
    if total is None:
        return "*Errors reported*"
    if total == 0:
        return f"*No errors reported*; {plural(shown, 'line')} shown"
    if total == shown:
        return f"*Errors reported* ({total})"
    return f"*Errors reported* ({plural(total, 'error')}, {plural(shown, 'line')} shown)"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def note(text: str) -> Reply:
    """A plain thread note (stopped, cancel requested, outage...). `text` is already escaped mrkdwn."""
    return Reply(cut(text, TEXT_LIMIT), [section(text)])


OUTAGE_HEADS = {
    "auth": ":lock: *{b}* refuses the bot's credentials",
    "forbidden": ":lock: The bot's account may not see this job on *{b}*",
    "not_found": ":grey_question: *{b}* no longer knows this job (unknown or purged)",
    "bad_response": ":warning: *{b}* answers with something I cannot read",
    "rate_limited": ":hourglass: *{b}* is rate limiting the bot",
    "refused": ":no_entry: *{b}* refuses the bot's requests",
    "misconfigured": ":wrench: *{b}* is set up wrong (its `api_version` or `base_url`)",
    "too_slow": ":snail: *{b}* answers too slowly",
}
# the kinds of trouble a person must fix: the note says who, not "still trying"
OPERATOR_KINDS = {"auth": "its access", "forbidden": "its access", "misconfigured": "its settings"}


def outage(job: JobView, since: float, error_text: str, kind: str | None = None) -> Reply:
    """The one note when polling has failed for a while; its words say which kind of trouble it is."""
    head = OUTAGE_HEADS.get(kind or "", ":warning: Cannot reach *{b}*").format(b=esc(job.backend))
    fix = OPERATOR_KINDS.get(kind or "")
    tail = (f"Ask the bot's operator to check {fix}." if fix
            else "Still trying; I will say when it answers again.")
    return note(f"{head} since {slack_date(since)}: {esc(error_text)}. {tail}")


def too_slow(backend: str, job_id: str, seconds: float) -> str:
    """A user's check that got no whole answer within its deadline (bot/operations/watching.py `check`):
    nothing is set up, and the user is told so and what to do."""
    return (f"{esc(backend)} answers too slowly right now: "
            f"no answer about job `{esc(job_id)}` within {seconds:g} s, "
            "so I can neither tell its state nor start a watch (nothing was set up). "
            "Try again in a few minutes; if it persists, tell the bot's operator.")


def flapping(job: JobView, states: Sequence[str], changes: int, seconds: float,
             quiet_until_s: float) -> Reply:
    """The one note when a job's state flips too often for a reply each: from now on only the parent
    follows."""
    between = (" and ".join([", ".join(esc(w) for w in states[:-1]), esc(states[-1])]) if len(states) > 1
               else esc(states[0]) if states else "states")
    return note(f":warning: Flapping between {between}: {changes} changes in {human(seconds)}. "
                "I keep the message above current but say nothing more here "
                f"until it holds one state for {human(quiet_until_s)}; "
                "an end is told here as always.")


def settled(job: JobView, held_s: float) -> Reply:
    """The one note when a flapping job has held one state long enough: its changes are told here again."""
    return note(f":white_check_mark: Settled: {state_words(job.phase, job.vendor_status)} "
                f"for {human(held_s)} after flapping. I tell every change here again.")


def recovered(job: JobView) -> Reply:
    return note(f":white_check_mark: *{esc(job.backend)}* answers again. Job is "
                f"{state_words(job.phase, job.vendor_status)}.")


def timed_out(job: JobView, hours: float) -> Reply:
    return note(f":alarm_clock: Stopped watching after {hours:g} h (watch timeout); the job was still "
                f"{state_words(job.phase, job.vendor_status)}. Press *Rewatch* to follow it again.")


def upload_refused(filename: str, path: str | None, error: str) -> Reply:
    """The note instead of a log file Slack would not take in this channel: where the log is."""
    why = ("I can post here but not upload: "
           "invite me to this channel (`/invite @jobstatus`) to get attachments."
           if error == "not_in_channel" else f"Slack refused the upload ({esc(error)}).")
    where = f"\n*Log:* {code(path)}" if path else ""
    return note(f":paperclip: The log {code(filename)} could not be attached in this channel. {why}{where}")


def late(job: JobView, *, watcher: str, seconds: float, late_after: float) -> Reply:
    """The one note when a run takes longer than 90 % of its past runs did."""
    usual = f"; usually ~{human(job.usual_s)}" if job.usual_s is not None else ""
    return note(f":snail: {who(watcher)}, this run is taking longer than usual: "
                f"running for {human(seconds)}, "
                f"while 9 in 10 of its last {plural(job.usual_runs, 'run')} "
                f"took at most {human(late_after)}{usual}. I keep watching and will say when it ends.")


def caught_up(job: JobView, *, watcher: str, old_phase: Phase, old_word: str,
              steps: Iterable[tuple[Phase, float | None]], hidden: str | None = None) -> Reply:
    """The one reply for a job whose state changed while the bot was away: "while I was away: running →
    failed at 06:41", then what a change reply says (a failure mentions the watcher, its message, the
    logs)."""
    path = [state_words(old_phase, old_word)]
    for phase, at in steps:
        path.append(phase.value + (f" at {slack_time(at)}" if at is not None else ""))
    said = change(job, watcher=watcher, old_phase=None, old_word=None, hidden=hidden)
    if hidden is not None:
        job = without_details(job)
    head = f":hourglass: *While I was away:* {' → '.join(path)}"
    text = f"While I was away: {job.backend} job {job.job_id}: {old_phase.value} → {job.phase.value}"
    if job.phase is Phase.FAILED and job.message:
        text += f": {esc(job.message)}"
    return Reply(cut(text, TEXT_LIMIT), [section(head), *said.blocks], broadcast=said.broadcast)


DIGEST_FAILURES = 20  # failures a digest lists one by one; it counts the rest


def thread_link(channel: str, ts: str) -> str:
    """A link to a message when chat.getPermalink gives none: the path of Slack's permalinks
    (/archives/<channel>/p<ts without its dot>) on slack.com."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def digest(day: str, ended: Sequence[tuple[JobView, str | None]]) -> Reply:
    """A channel's daily digest of the jobs that ended since the previous one: counts by outcome, then each
    failure with its message's first line and a link to its thread. `ended`: each job, its thread's link."""
    counts: dict[Phase, int] = {}
    for job, _ in ended:
        counts[job.phase] = counts.get(job.phase, 0) + 1
    order = [p for p in Phase if p in counts]
    summary = ", ".join(f"{counts[p]} {p.value}" for p in order)
    lines = [f":calendar: *Daily digest for {esc(day)}*: "
             f"{plural(len(ended), 'job')} ended since the last one: {summary}"]
    failures = [(job, url) for job, url in ended if job.phase is Phase.FAILED]
    for job, url in failures[:DIGEST_FAILURES]:
        first = (job.message or "").strip().splitlines()[0] if (job.message or "").strip() else "no message"
        link = f" · <{url}|thread>" if url else ""
        name = f" · {esc(job.name)}" if job.name else ""
        lines.append(f"• {job.phase.emoji} *{esc(job.backend)}* {code(job.job_id)}{name}: "
                     f"{esc(cut(first, 300))}{link}")
    if len(failures) > DIGEST_FAILURES:
        lines.append(f"… and {plural(len(failures) - DIGEST_FAILURES, 'more failure')}")
    blocks = [section(lines[0])]
    body = "\n".join(lines[1:])
    while body:  # sections of at most SECTION_LIMIT characters, split between lines
        chunk = body[:SECTION_LIMIT]
        if len(body) > SECTION_LIMIT and "\n" in chunk:
            chunk = chunk[: chunk.rindex("\n")]
        blocks.append(section(chunk))
        body = body[len(chunk):].lstrip("\n")
    return Reply(cut(f"Daily digest for {day}: {plural(len(ended), 'job')} ended: {summary}", TEXT_LIMIT),
                 blocks)


def event_reply(event: JobEvent, hidden: str | None = None) -> Reply:
    """The thread reply for what happened to a job (an outbox `event`, rendered when it is sent). `hidden`:
    the channel may not see the job's details now (`details_line` below)."""
    match event:
        case Changed(job, watcher, old_phase, old_word):
            return change(job, watcher=watcher, old_phase=old_phase, old_word=old_word, hidden=hidden)
        case Recovered(job):
            return recovered(job)
        case Outage(job, since, kind):
            return outage(job, since, job.error_text or "no answer", kind)
        case TimedOut(job, hours):
            return timed_out(job, hours)
        case Late(job, watcher, seconds, late_after):
            return late(job, watcher=watcher, seconds=seconds, late_after=late_after)
        case CaughtUp(job, watcher, old_phase, old_word, steps):
            return caught_up(job, watcher=watcher, old_phase=old_phase, old_word=old_word, steps=steps,
                             hidden=hidden)
        case Flapping(job, states, changes, seconds, quiet_until_s):
            return flapping(job, states, changes, seconds, quiet_until_s)
        case Settled(job, held_s):
            return settled(job, held_s)


def status_ephemeral(job: JobView, hidden: str | None = None) -> list[dict[str, Any]]:
    """The one-off `/jobstatus status` answer. `hidden`: asked in a channel that may not see the job's
    details: the state only, and where the details are."""
    if hidden is not None:
        had = bool(job.message or job.log_paths or job.links)
        job = without_details(job)
        if had:
            return [section(title(job)), section(
                f"*Status:* {state_words(job.phase, job.vendor_status)}   "
                f"*Progress:* {progress_bar(job.progress)}"),
                context(hidden)]
    blocks = [section(title(job)), section(
        f"*Status:* {state_words(job.phase, job.vendor_status)}   *Progress:* {progress_bar(job.progress)}")]
    if job.message:
        blocks.append(section("*Message*\n" + _quote(job.message)))
    if job.log_paths or job.links:
        blocks.append(section(paths_text(job.log_paths, job.links)))
    return blocks
