"""What users ask of the bot — watch, status, stop, rewatch, cancel, list — shared by slash commands, buttons
and the HTTP API for pipelines (bot/inbound/api.py: watch and stop).

Each operation returns the text to show the user alone (an `Answer`); nothing here talks to Slack except
through the notifier's outbox (and a permalink to a thread), so listeners stay thin. The notes a user's
action writes in a thread are rendered here; the store keeps them as they are.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot import store
from bot.backends.base import Backend, with_article
from bot.backends.http import USER_CHECK_SECONDS, deadline
from bot.domain import actors
from bot.domain.errors import (
    AuthFailed,
    BackendError,
    BadResponse,
    CancelNotSupported,
    CancelRefused,
    Forbidden,
    InvalidJobId,
    JobNotFound,
    Misconfigured,
    Refused,
    TooSlow,
    Unavailable,
)
from bot.domain.jobs import Changed, EndedReason, JobView
from bot.domain.status import JobStatus
from bot.engine.notifier import Notifier, WhoSends
from bot.engine.poller import Poller
from bot.operations import permissions, quotas
from bot.operations.permissions import Action, Denied, Permissions
from bot.operations.refusals import UserError
from bot.rendering import messages
from bot.rendering.messages import esc
from bot.slack.sender import SlackError, SlackSender
from bot.store import Store
from bot.support.config import Settings

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """What to tell the user who asked (ephemeral)."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    ok: bool = True


@dataclass
class Watched(Answer):
    """The answer to a watch request, and the watch it is about: `new` when this request started it (a new
    watch, or the channel's stopped one resumed), else the channel already watched the job."""

    watch_id: int = 0
    new: bool = False


@dataclass
class Watching:
    settings: Settings
    backends: Mapping[str, Backend]
    db: Store
    poller: Poller
    notifier: Notifier
    slack: SlackSender
    clock: Callable[[], float]
    # who may do what (bot/operations/permissions.py); None: the rules without Slack's help
    perms: Permissions | None = None

    def __post_init__(self) -> None:
        if self.perms is None:
            self.perms = Permissions(self.settings, None)

    async def allow(self, backend: str, user: str, action: Action, channel: str | None,
                    *, job_id: str | None = None) -> None:
        """Refuse (UserError) what the permission rules do not allow `user` now. An HTTP API client is held by
        its token's own scope (bot/inbound/api.py); only the backend's `channels` applies to it. A cancel
        under `cancel: owner` is judged against the job's owner (`store.job_owner`)."""
        assert self.perms is not None
        self.perms.settings = self.settings  # the rules are these settings, whoever replaced them
        if user.startswith(actors.API_ACTOR):
            cfg = self.perms.config(backend)
            if cfg is not None and not cfg.allows_channel(channel):
                raise UserError(f"Backend `{esc(backend)}` may not be used in that channel "
                                "(its `channels` setting).", "channel_not_allowed")
            return
        owner = None
        if action is Action.CANCEL and job_id is not None:
            owner = await self.db.run(store.job_owner, backend, job_id)
        try:
            await self.perms.check(backend, user, action, channel, owner=owner)
        except Denied as exc:
            raise UserError(str(exc), exc.code) from None

    # -- checks shared by every request -----------------------------------------------------------
    def backend(self, name: str, channel: str | None = None) -> Backend:
        """The backend a user named: exactly, or in other letter case when no other name differs from it only
        so (`EPM-DEMO` is `epm-demo`); else the answer names them all and suggests the closest."""
        b = self.backends.get(name)
        if b is None:
            same = [n for n in self.backends if n.casefold() == name.casefold()]
            b = self.backends[same[0]] if len(same) == 1 else None
        if b is None:
            # only backends everyone may use are named or guessed: one limited by `users` (a payroll team's)
            # is not told to whoever mistypes a name; its people find it in `/jobstatus backends`
            open_to_all = [n for n, x in self.backends.items() if x.config.users is None]
            names = ", ".join(f"`{esc(n)}`" for n in sorted(open_to_all)) or "none"
            folded = {n.casefold(): n for n in sorted(open_to_all, reverse=True)}
            guess = difflib.get_close_matches(name.casefold(), list(folded), n=1)
            hint = f" Did you mean `{esc(folded[guess[0]])}`?" if guess else ""
            raise UserError(f"There is no backend called `{esc(name[:64])}`.{hint} "
                            f"Backends anyone may use: {names}. "
                            "See `/jobstatus backends` for yours.", "unknown_backend")
        allowed = b.config.channels
        # a backend limited by `users` leaves its `channels` to the permission check (`allow`, which every
        # caller makes), which asks who the person is first: its channels (often private) are named only to
        # its people
        if not b.config.allows_channel(channel) and b.config.users is None:
            raise UserError(f"Backend `{esc(b.name)}` may not be watched in this channel "
                            "(its `channels` setting allows: "
                            + ", ".join(f"<#{esc(c)}>" for c in allowed or ()) + ").", "channel_not_allowed")
        return b

    def job_id(self, backend: Backend, text: str) -> str:
        try:
            return backend.validate_job_id(text)
        except InvalidJobId as exc:  # it says what was typed and what an id is
            raise UserError(f"{esc(exc)}.", "invalid_job_id") from None

    def can_cancel(self, backend_name: str) -> bool:
        b = self.backends.get(backend_name)
        return b is not None and b.can_cancel

    # -- operations -----------------------------------------------------------------------------------
    async def check(self, backend: Backend, job_id: str) -> JobStatus:
        """The job's status for a user who waits for it: within USER_CHECK_SECONDS however slow the vendor is
        (bot/backends/http.py); past that, the answer says the vendor is slow and nothing is set up."""
        seconds = min(USER_CHECK_SECONDS, backend.config.timeout)
        try:
            async with deadline(backend.name, seconds):
                return await backend.status(job_id)
        except TooSlow as exc:
            raise UserError(messages.too_slow(backend.name, job_id, seconds), error_code(exc)) from None
        except BackendError as exc:
            raise UserError(explain(backend, job_id, exc), error_code(exc)) from None

    async def watch(self, backend: Backend, job_id: str, channel: str, user: str,
                    mention: str | None = None) -> Watched:
        """One watch, one thread, per channel and job: asked again, the channel gets its thread back. `user`
        is who asked: a Slack user id, or an API client (`actors.api_actor`); `mention`, a Slack user an API
        client named, is mentioned in the thread without any right over the watch."""
        await self.allow(backend.name, user, Action.WATCH, channel)
        existing = await self.db.run(store.channel_watch, backend.name, job_id, channel)
        if existing is not None and (existing.active or existing.ended_reason == EndedReason.FINISHED):
            return await self._already(existing, backend, job_id)  # no vendor call needed
        await quotas.admit(self.db, self.settings.quotas, user, channel, self.clock())
        person = not user.startswith(actors.API_ACTOR)  # a token is the operator's; its misses are its own
        assert self.perms is not None
        if person:
            try:
                self.perms.may_probe(user)
            except Denied as exc:
                raise UserError(str(exc), exc.code) from None
        try:
            st = await self.check(backend, job_id)
        except UserError as exc:
            if person and exc.code == "job_not_found":  # an id that does not exist: as costly as a `status`
                self.perms.missed(user)
            raise
        now = self.clock()
        watcher = actors.watcher(user, mention)
        first = (Changed(JobView.of_status(backend.name, st, now), watcher, None, None) if st.terminal
                 else None)
        note = messages.note(f":eyes: Watching again (by {messages.who(user)}).")
        watch, job, what = await self.db.run(
            store.create_watch, backend.name, st, channel, user, now=now,
            interval=self.poller.interval(backend.name), watch_timeout=self.watch_timeout(backend),
            first_reply=first, again_note=note, mention=mention,
        )
        if what == "exists":
            return await self._already(watch, backend, job_id)
        # refused for good: the notifier discards a watch just created, ends again one resumed
        # (bot/engine/notifier/outcome.py)
        error = await self.notifier.deliver_watch(
            watch.pk, WhoSends.CREATED if what == "created" else WhoSends.RESUMED
        )
        if error is not None:
            await self.settle(store.Owes(track=job.pk))
            raise UserError(slack_refusal(error), "cannot_post" if error in CANNOT_POST else "slack_refused")
        # the first reply and the rest of the watch
        await self.settle(store.Owes(messages=True, track=job.pk))
        where = "its thread" if what == "resumed" else "the thread"
        if st.terminal:
            await self.poller.details_for(backend, st, [watch.pk])
            text = (f"{esc(backend.name)} job `{esc(job_id)}` has already ended "
                    f"({messages.state_words(st.phase, st.vendor_status)}); I posted its result in {where}.")
        elif what == "resumed":
            text = f"Watching {esc(backend.name)} job `{esc(job_id)}` again: updates go to its thread."
        else:
            text = f"Watching {esc(backend.name)} job `{esc(job_id)}`: updates go to the thread."
        if self.notifier.halted is not None:
            text += (f" Slack refuses my token right now ({esc(self.notifier.halted.error)}): "
                     f"{where} appears once the bot's operator fixes it.")
        return Watched(text, watch_id=watch.pk, new=True)

    async def settle(self, owes: store.Owes) -> None:
        """Apply what a committed write owes: the one place that wakes the notifier (messages were owed) and
        has the poller follow a job (its schedule changed)."""
        if owes.messages:
            self.notifier.kick()
        if owes.track is not None:
            await self.poller.track(owes.track)

    async def _already(self, watch: store.Watch, backend: Backend, job_id: str) -> Watched:
        if watch.parent_ts is None:  # just created by a request beside this one: post it now, or wait for it
            # refused: the request creating it undoes it
            await self.notifier.deliver_watch(watch.pk, WhoSends.BESIDE)
            pair = await self.db.run(store.watch_and_job, watch.pk)
            watch = pair[0] if pair is not None else watch
        link = await self.permalink(watch.channel, watch.parent_ts)
        where = f"<{link}|its thread>" if link else "its thread in this channel"
        if watch.active:
            text = f"This channel already watches {esc(backend.name)} job `{esc(job_id)}`: see {where}."
        else:
            text = (f"This channel already followed {esc(backend.name)} job `{esc(job_id)}` to its end: "
                    f"see {where}.")
        return Watched(text, watch_id=watch.pk)

    async def permalink(self, channel: str, ts: str | None) -> str | None:
        """A link to a thread, when Slack gives one (else the answer names the thread in words)."""
        if not ts:
            return None
        try:
            return await self.slack.permalink(channel, ts)
        except SlackError:
            return None

    def watch_timeout(self, backend: Backend) -> float:
        timeout: float = backend.config.watch_timeout or self.settings.watch_timeout
        return timeout

    async def status(self, backend: Backend, job_id: str, user: str, channel: str) -> Answer:
        """A job's status now, to the person alone: limited per person (`permissions.StatusLimit`), and in a
        channel outside the backend's `details` without the vendor's message, logs and links."""
        await self.allow(backend.name, user, Action.STATUS, channel)
        assert self.perms is not None
        try:
            self.perms.limit_status(user)
        except Denied as exc:
            raise UserError(str(exc), exc.code) from None
        st = await self.check(backend, job_id)
        view = JobView.of_status(backend.name, st, self.clock())
        hidden = messages.details_line(backend.config, channel)
        return Answer(f"{backend.name} job {job_id}: {messages.state_words(st.phase, st.vendor_status)}",
                      messages.status_ephemeral(view, hidden))

    async def unwatch(self, backend: Backend, job_id: str, channel: str, user: str) -> Answer:
        await self.allow(backend.name, user, Action.UNWATCH, channel)
        watch = await self.db.run(store.active_watch, backend.name, job_id, channel)
        if watch is None:
            raise UserError(f"This channel does not watch {esc(backend.name)} job `{esc(job_id)}`. "
                            "See `/jobstatus list`.")
        return await self.stop(watch.pk, user)

    async def stop(self, watch_id: int, user: str) -> Answer:
        pair = await self.db.run(store.watch_and_job, watch_id)
        if pair is not None:  # the rules as they are now, for a click on an old message too
            await self.allow(pair[1].backend, user, Action.UNWATCH, pair[0].channel)
        note = messages.note(f":octagonal_sign: Stopped watching (by {messages.who(user)}). "
                             "Press *Rewatch* to follow it again.")
        owes = await self.db.run(store.stop_watch, watch_id, self.clock(), note)
        if owes is None:
            return Answer("That watch had already stopped.")
        await self.settle(owes)
        return Answer("Stopped watching. The thread stays; *Rewatch* on the message starts again.")

    async def rewatch(self, watch_id: int, user: str) -> Answer:
        pair = await self.db.run(store.watch_and_job, watch_id)
        if pair is None:
            raise UserError("I no longer know that watch; start a new one with `/jobstatus watch`.")
        watch, job = pair
        await self.allow(job.backend, user, Action.WATCH, watch.channel)
        if watch.active:
            return Answer("Already watching this job.")
        backend = self.backend(job.backend, watch.channel)
        await quotas.admit(self.db, self.settings.quotas, user, watch.channel, self.clock())
        st = await self.check(backend, job.job_id)
        if st.terminal:
            await self.settle(await self.db.run(store.refresh_job, job.pk, st, self.clock()))
            return Answer(f"{esc(backend.name)} job `{esc(job.job_id)}` has ended "
                          f"({messages.state_words(st.phase, st.vendor_status)}): nothing to watch.")
        note = messages.note(f":eyes: Watching again (by <@{user}>).")
        await self.settle(await self.db.run(store.rewatch, watch_id, st, self.clock(),
                                            self.watch_timeout(backend), note))
        return Answer(f"Watching {esc(backend.name)} job `{esc(job.job_id)}` again.")

    async def clicked_watch(self, value: str, channel: str, message_ts: str) -> int:
        """The watch a button belongs to: the id it carries (`value`), checked against the channel it was
        clicked in and, once the watch's parent is posted, the message it was on."""
        an_id = value.isascii() and value.isdigit() and len(value) <= 18
        pair = await self.db.run(store.watch_and_job, int(value)) if an_id else None
        if pair is None or pair[0].channel != channel or (
            pair[0].parent_ts and pair[0].parent_ts != message_ts
        ):
            raise UserError("That button does not belong to a watch I know.")
        return pair[0].pk

    async def own_watch(self, value: str, user: str) -> int:
        """The watch a Home tab button belongs to: the id it carries (`value`), a watch of the clicker's own,
        in a channel they are still in (issue 19, item 5: someone removed from a private channel keeps no hold
        on its watches); a watch they may not act on reads as one that is not theirs."""
        an_id = value.isascii() and value.isdigit() and len(value) <= 18
        pair = await self.db.run(store.watch_and_job, int(value)) if an_id else None
        if pair is None or pair[0].user_id != user or not await self.member(user, pair[0].channel):
            raise UserError("That button does not belong to a watch of yours I know.")
        return pair[0].pk

    async def member(self, user: str, channel: str, *, fresh: bool = True) -> bool:
        """Whether `user` is in `channel` now (bot/operations/permissions.py asks Slack; `fresh`: asked anew,
        for what the person does or opens now); when Slack cannot say: no."""
        assert self.perms is not None
        try:
            return await self.perms.is_member(user, channel, fresh=fresh)
        except permissions.Unknowable:
            return False

    async def refresh(self, watch_id: int, user: str) -> Answer | None:
        pair = await self.db.run(store.watch_and_job, watch_id)
        if pair is None:
            return None
        await self.allow(pair[1].backend, user, Action.REFRESH, pair[0].channel)
        await self.poller.poll_now(pair[1].pk)
        return None

    async def cancel(self, backend: Backend, job_id: str, channel: str, user: str) -> Answer:
        """Ask the vendor to cancel, once per job: a second click or command meanwhile is told who asked.

        A refusal says what is true, in this order: the vendor offers no cancel here; the job has ended (its
        final state) or there is no such job (both only in doubt, when this channel's watch is not following
        it); the `cancel` rule, when it is the reason. Who may use the backend here at all is asked first."""
        await self.allow(backend.name, user, Action.REFRESH, channel)
        if not self.can_cancel(backend.name):
            hint = backend.cancel_hint or "Cancel it in the vendor's console."
            raise UserError(
                f"{esc(backend.name)} ({esc(backend.label)}) offers no cancel API here. {esc(hint)}"
            )
        watch = await self.db.run(store.active_watch, backend.name, job_id, channel)
        if watch is None:
            await self.not_ended(backend, job_id)
        await self.allow(backend.name, user, Action.CANCEL, channel, job_id=job_id)
        now = self.clock()
        earlier = await self.db.run(store.claim_cancel, backend.name, job_id, user, now)
        if earlier is not None:
            by, at = earlier
            return Answer(f"A cancel of {esc(backend.name)} job `{esc(job_id)}` "
                          f"was already requested by <@{by}> at {messages.slack_date(at)}; "
                          "I did not ask again.")
        try:
            said = await backend.cancel(job_id)
        except Exception as exc:
            await self.db.run(store.release_cancel, backend.name, job_id, user, now)
            if isinstance(exc, CancelRefused):
                raise UserError(
                    f"{esc(backend.name)} refused to cancel job `{esc(job_id)}`: {esc(exc)}"
                ) from None
            if isinstance(exc, CancelNotSupported):
                raise UserError(esc(exc)) from None
            if isinstance(exc, BackendError):
                raise UserError(explain(backend, job_id, exc)) from None
            raise
        note = messages.note(f":no_entry: Cancel requested by <@{user}>"
                             + (f": {esc(said)}" if said else "."))
        told, owes = await self.db.run(store.note_cancel, backend.name, job_id, note, self.clock())
        await self.settle(owes)
        where = " The thread follows it to the end." if told else ""
        return Answer(f"Asked {esc(backend.name)} to cancel job `{esc(job_id)}`.{where}")

    async def cancel_watch(self, watch_id: int, user: str) -> Answer:
        pair = await self.db.run(store.watch_and_job, watch_id)
        if pair is None:
            raise UserError("I no longer know that watch.")
        watch, job = pair
        return await self.cancel(self.backend(job.backend), job.job_id, watch.channel, user)

    async def not_ended(self, backend: Backend, job_id: str) -> None:
        """Refuse (UserError) a job that has ended, with its final state, or that the vendor does not know.
        What the database knows is enough while a watch follows the job or once it has seen the end; else the
        vendor is asked."""
        job = await self.db.run(store.find_job, backend.name, job_id)
        if job is not None and (job.polling or job.phase.terminal):
            phase, word = job.phase, job.vendor_status
        else:
            st = await self.check(backend, job_id)
            phase, word = st.phase, st.vendor_status
        if phase.terminal:
            raise UserError(f"{esc(backend.name)} job `{esc(job_id)}` has already ended "
                            f"({messages.state_words(phase, word)}): there is nothing to cancel.")

    async def list(self, channel: str) -> Answer:
        rows = await self.db.run(store.channel_watches, channel)
        if not rows:
            return Answer("No job is watched in this channel. "
                          f"Start with `/jobstatus watch {messages.JOB_ARGS}`.")
        lines = []
        for w, j in rows[:40]:
            link = await self.permalink(channel, w.parent_ts)
            name = f" · {esc(j.name)}" if j.name else ""
            state = messages.state_words(j.phase, j.vendor_status)
            thread = f" — <{link}|thread>" if link else ""
            lines.append(f"• *{esc(j.backend)}* `{esc(j.job_id)}`{name}: {state} "
                         f"(by {messages.who(w.watcher)})"
                         f"{thread}")  # a token's watch is the token's, not a person's (`ci` (API) for <@U…>)
        more = f"\n…and {len(rows) - 40} more." if len(rows) > 40 else ""
        text = f"*Watched in this channel ({len(rows)})*\n" + "\n".join(lines) + more
        return Answer(text, [messages.section(text)])

    async def usable(self, user: str) -> tuple[Sequence[str], bool]:
        """The names of the backends `user` may use (their `users` setting), sorted; and whether Slack could
        not say for some (a user group unknown now: those are left out). What names backends to a person (the
        backends list, the modal, the Home tab) names these only: one limited to a payroll team is not told
        to everyone else."""
        assert self.perms is not None
        self.perms.settings = self.settings
        names = []
        unsure = False
        for name in sorted(self.backends):
            try:
                await self.perms.check(name, user, Action.STATUS, None)
            except Denied as exc:
                unsure = unsure or exc.code == "unavailable"
                continue
            names.append(name)
        return names, unsure

    async def backends_answer(self, user: str) -> Answer:
        """The backends `user` may use, each with what it can and where (`usable`): the private channels of a
        backend they may not use are not named either."""
        lines = []
        names, unsure = await self.usable(user)
        for name in names:
            b = self.backends[name]
            can = []
            can.append("cancel" if self.can_cancel(name) else "no cancel")
            if b.capabilities.logs:
                can.append("logs")
            if b.capabilities.batch:
                can.append("batched polling")
            where = ("anywhere" if b.config.channels is None
                     else ", ".join(f"<#{esc(c)}>" for c in b.config.channels))
            interval = self.poller.interval(name)
            every = f"every {interval:g}s"
            if b.config.poll_interval < interval:
                why = b.min_poll_reason or "the vendor's own limit"
                every += f" (config asks {b.config.poll_interval:g}s: {esc(why)})"
            kind = f"{esc(b.label)} (`{esc(b.type_name)}`)"
            lines.append(f"• *{esc(name)}* — {kind}, {every}, {', '.join(can)}; channels: {where}")
        if not lines:
            lines.append("none you may use: ask the bot's operator to add you to a backend's `users`.")
        if unsure:
            lines.append("(Slack could not say now who is in some user groups: "
                         "try again in a minute for the rest.)")
        text = "*Backends you may use*\n" + "\n".join(lines)
        return Answer(text, [messages.section(text)])


def explain(backend: Backend, job_id: str, exc: BackendError) -> str:
    """A backend error in words that say what to do; the error text itself never holds a secret."""
    b, j = esc(backend.name), esc(job_id)
    if isinstance(exc, JobNotFound | Forbidden):
        # issue 19: an id the bot's account may not see reads exactly like one that does not exist, so a
        # person cannot learn by trying ids which jobs exist behind the account's back
        return (f"{b} has no job `{j}`. "
                f"Check the id (and that it is {esc(with_article(backend.label))} job id).")
    if isinstance(exc, AuthFailed):
        return f"{b} refused the bot's credentials. Ask the bot's operator to check the `{b}` auth settings."
    if isinstance(exc, Unavailable):
        return f"{b} cannot be reached right now ({esc(exc)}). Try again in a few minutes."
    if isinstance(exc, Misconfigured):
        return (f"{b} is set up wrong: {esc(exc)}. Ask the bot's operator to fix the `{b}` settings "
                "(`api_version`, `base_url`).")
    if isinstance(exc, Refused):
        return f"{b} refused the bot's request ({esc(exc)}). If it persists, tell the operator."
    if isinstance(exc, BadResponse):
        return (f"{b} answered something I could not read ({esc(exc)}). "
                "Try again; if it persists, tell the operator.")
    return f"{b}: {esc(exc)}"


def error_code(exc: BackendError) -> str:
    """What kind of refusal a backend error is, for UserError.code: the job is unknown, the backend cannot be
    reached now, or it answered but not with the job."""
    if isinstance(exc, JobNotFound | Forbidden):
        return "job_not_found"
    if isinstance(exc, Unavailable):
        return "backend_unavailable"
    return "backend_error"


CANNOT_POST = frozenset({"not_in_channel", "channel_not_found", "is_archived", "channel_is_archived"})


def slack_refusal(error: str) -> str:
    if error in ("not_in_channel", "channel_not_found"):
        return ("I cannot post in this channel. "
                "Invite me first (`/invite @jobstatus`), then run the command again.")
    if error in ("is_archived", "channel_is_archived"):
        return "This channel is archived; I cannot post in it."
    return f"Slack refused my message ({esc(error)}); nothing was set up."

