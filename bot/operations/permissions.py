"""Who may see and do what (issue 19): one place that decides, at the moment of every action, whichever way
it comes in (slash command, button, modal, shortcut, Home tab), and for existing watches as the rules are now.

The rules are each backend's config (bot/support/config.py `BackendConfig`): `users` (who may use it at all),
`channels` (where), `cancel` (`owner`, `anyone`, or users/user groups) and `details` (the channels where
failure text, output links, logs and attachments are posted); plus the top-level `admins`, who may always
cancel.

`decide` is the pure decision (the unit test table holds it: who × action × rule × channel). `Permissions`
puts Slack's answers into it: the members of user groups (`usergroups.users.list`) and of channels
(`conversations.members`), each cached for a while, and it fails closed: when Slack cannot say and nothing is
cached, the answer is a refusal that says to try again, never a yes.

The `details` rule is the one rule the engine applies too (every reply the poller and the notifier make): it
is bot/rendering/messages.py's `details_allowed` and `details_line`, beside the line shown in the details'
place, so the engine needs nothing of the operations above it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.rendering.messages import esc
from bot.rendering.messages import who as who_acted
from bot.support.config import BackendConfig, Settings

log = logging.getLogger(__name__)

# usergroups.users.list is rate-limit tier 2, "20+ per minute" (docs.slack.dev/reference/methods/
# usergroups.users.list; ../shared/data/slack-method-reference/SOURCE.md): a group is read at most once per
# GROUP_TTL, so a busy workspace never nears it; someone removed from a group loses its rights within it.
GROUP_TTL = 300.0
# conversations.members is tier 4, "100+ per minute": membership changes more often (people leave channels),
# so a short cache: the modal and the Home tab ask about a few channels a minute per person.
MEMBERS_TTL = 60.0
# ...but what a person does or opens now is judged by who is in the channel now: a click, a modal's submission
# and the opening of the Home tab ask Slack again (`fresh`; one publish asks about each channel once). Only
# the Home tab's refreshes on a job's change use the cache.
MEMBERS_PAGE = 200  # conversations.members' `limit` ("default 100"; Slack's pagination advises at most 1000)
CACHE_KEPT = 10_000  # groups and channels remembered before the cache starts over
# `/jobstatus status` per person: a token bucket of STATUS_BURST, refilled at STATUS_PER_MINUTE. Someone
# checking the jobs they care about never meets it; someone trying ids in sequence gets 10 a minute, not
# thousands.
STATUS_PER_MINUTE = 10
STATUS_BURST = 5


class Action(StrEnum):
    """What a person asks for; every way in maps to one of these."""

    WATCH = "watch"  # slash command, modal, Rewatch
    STATUS = "status"
    UNWATCH = "unwatch"  # slash command, Stop watching (message or Home tab)
    CANCEL = "cancel"  # slash command, Cancel job
    REFRESH = "refresh"


class Denied(Exception):
    """A refusal, in words for the person (escaped mrkdwn), saying what to do instead."""

    def __init__(self, text: str, code: str = "forbidden") -> None:
        super().__init__(text)
        self.code = code


class Unknowable(Exception):
    """Slack could not say who is in a group or a channel, and nothing is cached: the caller refuses."""


@dataclass(frozen=True)
class Who:
    """The person asking, and what Slack says about them: the user groups of the backend's rules they are
    in."""

    user: str
    groups: frozenset[str] = frozenset()


def _listed(who: Who, ids: Iterable[str]) -> bool:
    return any(i == who.user or (i.startswith("S") and i in who.groups) for i in ids)


def decide(cfg: BackendConfig, backend: str, admins: Iterable[str], who: Who, action: Action,
           channel: str | None, *, owner: str | None = None) -> str | None:
    """None when `who` may do `action` on backend `backend` in `channel` (None: not in a channel, e.g. the
    Home tab); else why not, in words for them. `owner` is the job's owner (`job_owner`), for a cancel."""
    b = esc(backend)
    admin = who.user in set(admins)
    if cfg.users is not None and not _listed(who, cfg.users):  # admins too: `admins` widens cancel, not use
        return (f"You may not use backend `{b}`: "
                "its `users` setting names the people and user groups who may. "
                "Ask the bot's operator to add you.")
    if not cfg.allows_channel(channel):
        allowed = ", ".join(f"<#{esc(c)}>" for c in cfg.channels or ()) or "none"
        return (f"Backend `{b}` may not be used in this channel (its `channels` setting allows: {allowed}).")
    if action is not Action.CANCEL or admin or cfg.cancel == "anyone":
        return None
    if isinstance(cfg.cancel, list):
        if _listed(who, cfg.cancel):
            return None
        return (f"Only the people and user groups in `{b}`'s `cancel` setting (or an admin) "
                "may cancel its jobs.")
    if owner is not None and owner == who.user:
        return None
    if owner is None:
        return ("Nobody watches this job yet, so it has no owner: "
                f"under the `cancel: owner` rule of `{b}` it is "
                "cancelled by the person who first watches it, or by an admin.")
    return (f"Only {who_acted(owner)}, who first watched it (the `cancel: owner` rule of `{b}`), "
            "or an admin may cancel this job.")


def groups_in(cfg: BackendConfig, admins: Iterable[str] = ()) -> set[str]:
    """The user group ids a backend's rules name (whose members Slack must be asked for)."""
    ids = list(cfg.users or ()) + (list(cfg.cancel) if isinstance(cfg.cancel, list) else [])
    return {i for i in ids if i.startswith("S")}


@dataclass
class Bucket:
    tokens: float
    at: float


@dataclass
class StatusLimit:
    """`/jobstatus status` per person: a token bucket (STATUS_BURST, refilled at STATUS_PER_MINUTE)."""

    clock: Callable[[], float] = time.monotonic
    per_minute: float = STATUS_PER_MINUTE
    burst: float = STATUS_BURST
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def wait(self, user: str) -> float:
        """0 when `user` could ask now; else the seconds until they may. Takes nothing."""
        b = self.buckets.get(user)
        if b is None:
            return 0.0
        tokens = min(self.burst, b.tokens + (self.clock() - b.at) * self.per_minute / 60.0)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) * 60.0 / self.per_minute

    def take(self, user: str) -> float:
        """0 when `user` may ask now (one token taken); else the seconds until they may."""
        now = self.clock()
        rate = self.per_minute / 60.0
        b = self.buckets.get(user)
        if b is None:
            if len(self.buckets) >= CACHE_KEPT:
                self.buckets = {u: x for u, x in self.buckets.items()
                                if x.tokens + (now - x.at) * rate < self.burst}
            b = self.buckets[user] = Bucket(self.burst, now)
        b.tokens, b.at = min(self.burst, b.tokens + (now - b.at) * rate), now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / rate


class Permissions:
    """`decide` with Slack's answers about user groups and channel members, cached; fails closed."""

    def __init__(self, settings: Settings, client: AsyncWebClient | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self.status_limit = StatusLimit(clock)
        # a watch's misses (ids the vendor does not know) have an allowance of their own, as large: asking
        # `status` a few times never keeps a person from watching a job, and ids still cannot be tried faster
        self.miss_limit = StatusLimit(clock)
        self.group_ttl = GROUP_TTL
        self.members_ttl = MEMBERS_TTL
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    def config(self, backend: str) -> BackendConfig | None:
        return self.settings.backends.get(backend) if self.settings is not None else None

    async def check(self, backend: str, user: str, action: Action, channel: str | None,
                    *, owner: str | None = None) -> None:
        """Raise Denied unless `user` may do `action` on `backend` in `channel` now."""
        cfg = self.config(backend)
        if cfg is None:
            raise Denied(f"There is no backend called `{esc(backend)}` any more.", "unknown_backend")
        try:
            who = Who(user, await self._groups_of(user, groups_in(cfg)))
        except Unknowable as exc:
            raise Denied(f"I cannot check who may use `{esc(backend)}` right now (Slack: {esc(exc)}); "
                         "nothing was done. Try again in a minute.", "unavailable") from None
        why = decide(cfg, backend, self.settings.admins, who, action, channel, owner=owner)
        if why is not None:
            raise Denied(why, "channel_not_allowed" if "`channels` setting" in why else "forbidden")

    def limit_status(self, user: str) -> None:
        wait = self.status_limit.take(user)
        if wait > 0:
            raise Denied(f"You asked for {STATUS_PER_MINUTE} statuses a minute already "
                         f"(at most {STATUS_BURST} at once). "
                         f"Try again in {math.ceil(wait)} s, or watch the job to follow it.", "rate_limited")

    def may_probe(self, user: str) -> None:
        """Before a watch asks the vendor about a job: refuse when the person's misses (ids the vendor does
        not know, `missed`) have used up an allowance as large as `status` has, so `watch` is no faster an id
        oracle than `status`."""
        wait = self.miss_limit.wait(user)
        if wait > 0:
            raise Denied(f"You asked about {STATUS_PER_MINUTE} job ids a minute that do not exist "
                         "(or that the bot may not show), the most one person may. "
                         f"Try again in {math.ceil(wait)} s, and check the id first.", "rate_limited")

    def missed(self, user: str) -> None:
        """A watch asked about an id the vendor does not know: one from the person's allowance of misses."""
        self.miss_limit.take(user)

    async def _groups_of(self, user: str, groups: set[str]) -> frozenset[str]:
        """The groups among `groups` that `user` is in."""
        mine = set()
        for g in sorted(groups):
            if user in await self.group_members(g):
                mine.add(g)
        return frozenset(mine)

    async def group_members(self, group: str) -> frozenset[str]:
        """A user group's members (https://docs.slack.dev/reference/methods/usergroups.users.list; scope
        usergroups:read), cached GROUP_TTL. A group Slack does not know (no_such_subteam) has no members."""
        now = self.clock()
        cached = self._groups.get(group)
        if cached is not None and now - cached[0] < self.group_ttl:
            return cached[1]
        if self.client is None:
            raise Unknowable("no Slack client")
        try:
            resp = await self.client.usergroups_users_list(usergroup=group)
            members = frozenset(str(u) for u in resp.get("users") or ())
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "error")
            if error != "no_such_subteam":
                log.warning("usergroups.users.list %s: %s", group, error)
                if cached is not None:  # what Slack said last is better than nothing, and no wider
                    return cached[1]
                raise Unknowable(error) from None
            members = frozenset()
        except Exception as exc:  # the network: the same as a refusal
            log.warning("usergroups.users.list %s failed: %s", group, type(exc).__name__)
            if cached is not None:
                return cached[1]
            raise Unknowable("unreachable") from None
        if len(self._groups) >= CACHE_KEPT:
            self._groups.clear()
        self._groups[group] = (now, members)
        return members

    async def is_member(self, user: str, channel: str, *, fresh: bool = False) -> bool:
        """Whether `user` is in `channel` (https://docs.slack.dev/reference/methods/conversations.members;
        scopes channels:read and groups:read), cached MEMBERS_TTL; asked again when `fresh` (a person's own
        action, judged by the members now). A channel the bot cannot see (channel_not_found: a private channel
        it is not in) has no members it can vouch for: False. Raises Unknowable when Slack cannot answer
        now."""
        now = self.clock()
        cached = self._members.get(channel)
        if fresh or cached is None or now - cached[0] >= self.members_ttl:
            if self.client is None:
                raise Unknowable("no Slack client")
            members: set[str] = set()
            cursor: str | None = None
            try:
                while True:
                    resp = await self.client.conversations_members(channel=channel, limit=MEMBERS_PAGE,
                                                                   **({"cursor": cursor} if cursor else {}))
                    members.update(str(u) for u in resp.get("members") or ())
                    cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
                    if not cursor:
                        break
            except SlackApiError as exc:
                error = str(exc.response.get("error") or "error")
                if error not in ("channel_not_found", "method_not_supported_for_channel_type"):
                    log.warning("conversations.members %s: %s", channel, error)
                    raise Unknowable(error) from None
                members = set()
            except Exception as exc:
                log.warning("conversations.members %s failed: %s", channel, type(exc).__name__)
                raise Unknowable("unreachable") from None
            if len(self._members) >= CACHE_KEPT:
                self._members.clear()
            cached = self._members[channel] = (now, frozenset(members))
        return user in cached[1]
