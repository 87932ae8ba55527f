"""Settings: the YAML config file (with ${ENV} expansion) and the environment, checked into typed models."""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot.domain import quotas
from bot.domain.slack_limits import LIMITS

BACKEND_TYPES = ("fusion_jobscheduler", "veeva_vault", "epm_data_integration", "epm_planning", "immuta")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class ConfigError(Exception):
    """The config cannot be used; the message names the file, the backend and the field."""


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as "30", "30s", "2m", "1h"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30, \"30s\" or \"2m\"")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration such as 30, \"30s\" or \"2m\", got {value!r}")
    if seconds <= 0:
        raise ValueError("must be more than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    """A part of the config file: unknown keys are mistakes, and each field's docstring is its description,
    which the docs' configuration reference prints (docs/hooks.py), so the reference is the code's own
    words."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class BasicAuth(_Strict):
    """`auth: {type: basic}`: HTTP Basic, any vendor but Immuta."""

    type: Literal["basic"]
    """`basic`"""
    username: str
    """the service account's user name"""
    password: str = Field(repr=False)
    """its password (by `${ENV}`)"""
    identity_domain: str | None = None
    """EPM: the identity domain, sent as `identitydomain.username`"""


class BearerAuth(_Strict):
    """`auth: {type: bearer}`: a fixed bearer token."""

    type: Literal["bearer"]
    """`bearer`"""
    token: str = Field(repr=False)
    """the token (by `${ENV}`)"""


class OAuth2ClientCredentials(_Strict):
    """`auth: {type: oauth2}`: OAuth 2 client credentials (Fusion)."""

    type: Literal["oauth2"]
    """`oauth2`"""
    token_url: str
    """the identity provider's token endpoint"""
    client_id: str
    """the OAuth client's id"""
    client_secret: str = Field(repr=False)
    """the OAuth client's secret (by `${ENV}`)"""
    scope: str | None = None
    """the scope to ask for, if the provider needs one"""


class OAuth2Refresh(_Strict):
    """`auth: {type: oauth2_refresh}`: OAuth 2 refresh token (EPM), which rotates on every use; the newest is
    kept in the database, encrypted under `JOBSTATUS_SECRET_KEYS`."""

    type: Literal["oauth2_refresh"]
    """`oauth2_refresh`"""
    token_url: str
    """the identity provider's token endpoint"""
    client_id: str
    """the OAuth client's id"""
    client_secret: str | None = Field(default=None, repr=False)
    """the OAuth client's secret, for a confidential client (by `${ENV}`)"""
    refresh_token: str = Field(repr=False)
    """the first refresh token, used until the database keeps a newer one (by `${ENV}`)"""


class VaultSession(_Strict):
    """`auth: {type: vault_session}`: Vault's session id from `/auth` (Vault)."""

    type: Literal["vault_session"]
    """`vault_session`"""
    username: str
    """the Vault user"""
    password: str = Field(repr=False)
    """its password (by `${ENV}`)"""


class ApiKey(_Strict):
    """`auth: {type: api_key}`: an API key (Immuta)."""

    type: Literal["api_key"]
    """`api_key`"""
    key: str = Field(repr=False)
    """the API key (by `${ENV}`)"""
    exchange: bool = True
    """exchange the key at `/bim/apikey/authenticate` for a token; `false`: send the raw key"""


Auth = Annotated[
    BasicAuth | BearerAuth | OAuth2ClientCredentials | OAuth2Refresh | VaultSession | ApiKey,
    Field(discriminator="type"),
]


class BackendConfig(_Strict):
    """One entry of `backends:`, by the name users type."""

    type: Literal["fusion_jobscheduler", "veeva_vault", "epm_data_integration", "epm_planning", "immuta"]
    """which vendor API this is"""
    base_url: str
    """`https://host` or `https://host/prefix`; vendor paths are appended. A plain `http://` address is logged
    once at start (credentials would cross the network unencrypted), except this machine's own"""
    auth: Auth
    """how the bot signs in: one of the `auth` types below"""
    poll_interval: Duration = 30.0
    """seconds between polls of one job (Vault: at least 10 s, its per-job limit; a smaller value is logged at
    start and shown in `/jobstatus backends`)"""
    max_poll_interval: Duration | None = None
    """a job unchanged for long is polled less often, up to this (a tenth of its quiet time); none: never"""
    timeout: Duration = 30.0
    """seconds one request may take in all: connecting, the headers and the whole body (backends/http.py);
    past it the poll fails as "answers too slowly" (an outage, retried with backoff)"""
    max_concurrency: int = Field(default=8, ge=1, le=256)
    """requests under way to this backend at once; a user's request gets the next free one before scheduled
    polls, and scheduled polls never take the last one"""
    http2: bool = False
    """`true`: httpx's own transport, HTTP/2 where offered; `false`: HTTP/1.1 keep-alive over aiohttp, about a
    third of the CPU per request"""
    watch_timeout: Duration | None = None
    """overrides the global `watch_timeout` (Fusion's `timeoutThreshold` is used when the job has one)"""
    api_version: str | None = None
    """the vendor's API version (default: Vault `v25.3`, Planning `v3`)"""
    application: str | None = None
    """Planning: the application's name"""
    cancel_enabled: bool = False
    """Fusion: offer the ESS cancel endpoint"""
    vault_client_id: str | None = None
    """Vault: the `X-VaultAPI-ClientID` sent on every request (none:
    `jobstatus-chatops-slack-server-jobstatusbot`); letters, digits, `.`, `_`, `-`, at most 100"""
    # Who may do what (bot/operations/permissions.py decides, at every action): `users` may use the backend at
    # all (Slack user ids U…/W… and user group ids S…; None = everyone), in `channels` (None = anywhere);
    # `cancel` is `owner` (the person who first watched the job, anywhere), `anyone`, or users/user groups
    # (admins always may); failure text, output links, logs and attachments are posted only in the `details`
    # channels (`anywhere` opts in to every channel; the default, none, keeps them out of Slack).
    users: list[str] | None = None
    """who may use this backend at all: Slack user ids (`U…`/`W…`) and user group ids (`S…`); none:
    everyone"""
    channels: list[str] | None = None
    """channel ids where this backend may be used (none: anywhere); a channel taken out ends its watches at
    the next start, each with one thread note"""
    cancel: Literal["owner", "anyone"] | list[str] = "owner"
    """who may cancel: `owner` (the person who first watched the job), `anyone`, or user and user group ids;
    `admins` always may"""
    details: Literal["anywhere"] | list[str] = []
    """channel ids where failure text, log and output paths, links, excerpts and logs are posted (elsewhere
    the state and where the details are); `anywhere`: every channel"""

    @field_validator("users")
    @classmethod
    def _users(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            for who in v:
                _people_id(who)
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_channel_id(c) for c in v]

    @field_validator("details", mode="before")
    @classmethod
    def _details(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [_channel_id(c) for c in v]
        if v is None:
            raise ValueError("leave `details` out (nowhere in Slack), "
                             "or write `anywhere` or a list of channel ids")
        return v

    @field_validator("cancel", mode="before")
    @classmethod
    def _cancel(cls, v: Any) -> Any:
        # issue 19, item 1: watching the job in a channel of one's own made anyone "a watcher"
        if v == "watcher":
            raise ValueError("`watcher` is no longer a cancel rule "
                             "(anyone could become a watcher by watching the job in a channel of their own): "
                             "write `owner` (the person who first watched the job), "
                             "a list of user or user group ids, or `anyone`")
        if isinstance(v, list):
            for who in v:
                _people_id(who)
        return v

    def allows_channel(self, channel: str | None) -> bool:
        """Whether `channels` lets the backend be used in `channel` (None: not in a channel, e.g. the Home
        tab): the one reading of that rule, for the permission check, the listeners and the notifier alike."""
        return channel is None or self.channels is None or channel in self.channels

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http(s) URL such as https://host or https://host/prefix")
        return v.rstrip("/")

    @field_validator("vault_client_id")
    @classmethod
    def _vault_client_id(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if info.data.get("type") != "veeva_vault":
            raise ValueError("only veeva_vault backends send a Vault client id")
        # Vault's rule (limited.veevavault.dev/medical/vault-api/references/client-id/, "Format"): letters and
        # digits, `.`, `_` and `-`, at most 100 characters; anything else is logged by Vault as
        # invalid_client_id.
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", v):
            raise ValueError("a Vault client id is letters, digits, '.', '_' or '-', at most 100 characters, "
                             "e.g. mycompany-vault-ops-server-jobstatus")
        return v


def _people_id(v: Any) -> str:
    """A Slack user id (U…, or W… on Enterprise Grid) or user group id (S…), as a config list holds them."""
    if not isinstance(v, str) or not re.fullmatch(r"[UWS][A-Z0-9]{1,30}", v):
        raise ValueError(f"{v!r} is not a Slack user id (U…/W…) or user group id (S…): "
                         "use the id, not the @name "
                         "(in Slack: the person's profile, ⋮, Copy member ID; a group's id is in its URL)")
    return v


def _channel_id(v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[CG][A-Z0-9]{1,30}", v):
        raise ValueError(f"{v!r} is not a Slack channel id: use the id (C…), not the #name "
                         "(in Slack: the channel's name, then About, at the bottom)")
    return v


class DigestConfig(_Strict):
    """A channel's daily digest (bot/engine/digests.py): posted at `at` (24-hour "HH:MM") in `timezone` (an
    IANA time zone name, from the system's time zone database), about the jobs of the channel that ended since
    the previous one."""

    channel: str
    """the channel's id (not its `#name`)"""
    at: str
    """a 24-hour local time, quoted (`"07:30"`)"""
    timezone: str = "UTC"
    """an IANA time zone name from the system's time zone database"""

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        if not re.fullmatch(r"[CG][A-Z0-9]{2,30}", v):
            raise ValueError(f"{v!r} is not a Slack channel id: use the id (C…), not the #name "
                             "(in Slack: the channel's name, then About, at the bottom)")
        return v

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, v: Any) -> str:
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 24 * 60:
            v = f"{v // 60}:{v % 60:02d}"  # YAML 1.1 reads an unquoted 17:30 as the base-60 number 1050
        m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", v.strip()) if isinstance(v, str) else None
        if m is None:
            raise ValueError(
                f"{v!r} is not a time of day: use 24-hour \"HH:MM\" in quotes, such as \"07:30\""
            )
        return f"{int(m.group(1)):02d}:{m.group(2)}"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}: use an IANA name such as Europe/Berlin, "
                             "America/New_York or UTC") from None
        return v


API_TOKEN_MIN = 24  # characters: `openssl rand -hex 16` gives 32
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")  # a Slack user id (W…: Enterprise Grid)


class ApiToken(_Strict):
    """One client of the HTTP API (bot/inbound/api.py): its secret and what it may watch (None: any)."""

    token: str = Field(repr=False)
    """the client's secret, at least 24 characters (by `${ENV}`; e.g. `openssl rand -hex 32`)"""
    backends: list[str] | None = None
    """only these backends (none: any)"""
    channels: list[str] | None = None
    """only these channels (none: any)"""
    users: list[str] = []
    """the Slack users a request may name as `user`: mentioned in the thread and pinged on failure, never
    given rights over the watch, which stays the token's (default none: a token cannot make the bot ping
    anyone)"""

    @field_validator("users")
    @classmethod
    def _user_ids(cls, v: list[str]) -> list[str]:
        for u in v:
            if not _USER_ID.fullmatch(u):
                raise ValueError(f"{u[:40]!r} is not a Slack user id such as U0123ABCD")
        return v

    @field_validator("token")
    @classmethod
    def _long(cls, v: str) -> str:  # the message never holds the token
        if len(v.strip()) < API_TOKEN_MIN or v != v.strip():
            raise ValueError(f"a token is at least {API_TOKEN_MIN} characters without surrounding spaces "
                             "(e.g. `openssl rand -hex 32`), set by ${ENV}")
        return v


class ApiConfig(_Strict):
    """`api:`: the HTTP API's clients by name (the name is what a thread says, e.g. who stopped a watch)."""

    tokens: dict[str, ApiToken]
    """the clients by name (letters, digits, `-`, `_`, `.`)"""

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, v: dict[str, ApiToken]) -> dict[str, ApiToken]:
        if not v:
            raise ValueError("at least one token is needed (or leave `api:` out: no API)")
        seen: dict[str, str] = {}
        for name, t in v.items():
            if not _NAME.fullmatch(name):
                raise ValueError(f"token name {name!r}: use letters, digits, '-', '_' or '.'")
            if t.token in seen:
                raise ValueError(
                    f"tokens {seen[t.token]!r} and {name!r} are the same: give each client its own"
                )
            seen[t.token] = name
        return v


class Quota(_Strict):
    """One identity's limits (bot/domain/quotas.py): active watches at once, and watches started in a
    minute."""

    active: int = Field(ge=1)
    """active watches at once"""
    per_minute: int = Field(ge=1)
    """new watches in any 60 s"""


class QuotasConfig(_Strict):
    """`quotas:`: per Slack user, per API token and per channel; the defaults and their reasons are in
    bot/domain/quotas.py. A scope given in the config replaces that scope's defaults (both figures)."""

    user: Quota = Quota(active=quotas.USER_ACTIVE, per_minute=quotas.USER_PER_MINUTE)
    """each Slack user's watches (a *Rewatch* counts for whoever clicks)"""
    token: Quota = Quota(active=quotas.TOKEN_ACTIVE, per_minute=quotas.TOKEN_PER_MINUTE)
    """each API token's watches"""
    channel: Quota = Quota(active=quotas.CHANNEL_ACTIVE, per_minute=quotas.CHANNEL_PER_MINUTE)
    """each channel's watches, whoever starts them"""


class Settings(_Strict):
    """The config file's top level."""

    backends: dict[str, BackendConfig]
    """the backends by name (letters, digits, `-`, `_`, `.`); a name is what users type"""
    api: ApiConfig | None = None
    """the HTTP API's clients (bot/inbound/api.py); none: no API, its routes answer 404"""
    admins: list[str] = []
    """Slack user ids that may cancel any job of a backend they may use (its `users` and `channels` still
    apply)"""
    watch_timeout: Duration = 24 * 3600.0
    """a watch ends (with a thread note and Rewatch) after this long"""
    outage_note_after: Duration = 300.0
    """a backend failing this long gets one thread note, and one when it answers again"""
    history_retention: Duration = 90 * 86400.0
    """state changes, ended watches and posted digests older than this are deleted, every 10 minutes; active
    watches and what is owed to Slack stay"""
    lease_seconds: Duration = Field(default=15.0, ge=3.0)
    """replicas on PostgreSQL: a replica that stops heartbeating has its jobs and channels taken over after
    this; each heartbeats every third of it"""
    digests: list[DigestConfig] = []
    """daily digests, at most one per channel (bot/engine/digests.py)"""
    quotas: QuotasConfig = QuotasConfig()
    """watches per user, API token and channel (bot/operations/quotas.py)"""
    slack_limits: dict[str, int] = {}
    """Slack's budget: calls per minute per workspace by Slack method, over the built-in figures of Slack's
    tiers (bot/slack/budget.py: `chat.update: 50`, `views.publish: 100`, `files.getUploadURLExternal: 100`,
    `files.completeUploadExternal: 100`, `conversations.history: 50`, `chat.postMessage: 1200`), e.g.
    `{chat.update: 100}` when Slack grants the app more; with replicas, each spends its share"""

    @field_validator("backends")
    @classmethod
    def _names(cls, v: dict[str, BackendConfig]) -> dict[str, BackendConfig]:
        if not v:
            raise ValueError("at least one backend is needed")
        for name in v:
            if not _NAME.fullmatch(name):
                raise ValueError(f"backend name {name!r}: use letters, digits, '-', '_' or '.'")
        return v

    @field_validator("digests")
    @classmethod
    def _one_digest_per_channel(cls, v: list[DigestConfig]) -> list[DigestConfig]:
        seen: set[str] = set()
        for d in v:
            if d.channel in seen:
                raise ValueError(f"channel {d.channel} has two digests: one a day per channel")
            seen.add(d.channel)
        return v

    @field_validator("slack_limits")
    @classmethod
    def _slack_limits(cls, v: dict[str, int]) -> dict[str, int]:
        for method, per_minute in v.items():
            if method not in LIMITS:
                raise ValueError(f"slack_limits: {method!r} has no budget; the methods that have one are "
                                 f"{', '.join(sorted(LIMITS))}")
            if per_minute < 1:
                raise ValueError(f"slack_limits: {method} {per_minute}: give calls per minute, at least 1 "
                                 f"(Slack's own figure is {LIMITS[method]})")
        return v

    @field_validator("api")
    @classmethod
    def _api_backends(cls, v: ApiConfig | None, info: ValidationInfo) -> ApiConfig | None:
        configured: dict[str, BackendConfig] | None = info.data.get("backends")  # None: wrong, said already
        for name, t in (v.tokens if v is not None and configured is not None else {}).items():
            unknown = sorted(set(t.backends or ()) - set(configured or ()))
            if unknown:
                raise ValueError(f"token {name!r}: backends {unknown} are not configured")
        return v


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(node: Any, where: str, path: str, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _expand(v, where, f"{path}.{k}" if path else str(k), env) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, where, f"{path}[{i}]", env) for i, v in enumerate(node)]
    if isinstance(node, str):
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: {path}: environment variable {name} is not set")

        return _ENV_REF.sub(sub, node)
    return node


def load_settings(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Settings:
    """Read and check the config file; every problem is a ConfigError naming file, backend and field."""
    env = dict(os.environ if env is None else env)
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the config file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with a 'backends:' key")
    raw = _expand(raw, where, "", env)
    return settings_from_dict(raw, where)


def settings_from_dict(raw: dict[str, Any], where: str = "<config>") -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where)) from None


def _describe(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err["loc"]]
        # drop discriminator tags pydantic puts in the location (e.g. 'basic' for auth unions)
        if len(loc) >= 2 and loc[0] == "backends":
            backend = loc[1]
            field = ".".join(p for p in loc[2:] if p not in _AUTH_TAGS and p not in BACKEND_TYPES)
            lines.append(f"{where}: backend '{backend}': field '{field or '(backend)'}': {err['msg']}")
        else:
            lines.append(f"{where}: field '{'.'.join(loc) or '(top level)'}': {err['msg']}")
    return "\n".join(lines)


_AUTH_TAGS = {"basic", "bearer", "oauth2", "oauth2_refresh", "vault_session", "api_key"}


@dataclass(frozen=True)
class Variable:
    """One environment variable the bot reads: what it sets, its default, what it means, and which commands
    read it. ENVIRONMENT is the one list: `Environment.from_env` reads those with a field, bot/support/logs.py
    the LOG_* ones (before anything else), `--help` prints it, and the docs print it (docs/hooks.py)."""

    name: str
    # the Environment attribute it sets; None: read by bot/support/logs.py, before anything else
    field: str | None
    default: str  # "" = unset
    meaning: str
    commands: tuple[str, ...] = ("run",)


ENVIRONMENT: tuple[Variable, ...] = (
    Variable("SLACK_BOT_TOKEN", "slack_bot_token", "", "the bot token (`xoxb-…`)"),
    Variable("SLACK_SIGNING_SECRET", "slack_signing_secret", "",
             "verifies that requests come from Slack (HTTP mode)"),
    Variable("SLACK_APP_TOKEN", "slack_app_token", "",
             "an app-level token (`xapp-…`, scope `connections:write`): use Socket Mode"),
    Variable("SLACK_API_URL", "slack_api_url", "https://slack.com/api/",
             "Slack Web API base URL (GovSlack, a proxy, or the tests' fake Slack)"),
    Variable("JOBSTATUS_CONFIG", "config_path", "./jobstatus.yaml", "the config file", ("run", "check")),
    Variable("DATABASE_URL", "database_url", "sqlite:///./jobstatus.db",
             "SQLAlchemy URL of the database: a SQLite file, or PostgreSQL (`postgresql://…`)",
             ("run", "check", "migrate")),
    Variable("JOBSTATUS_SECRET_KEYS", "secret_keys", "",
             "Fernet keys that encrypt the stored secrets (EPM's rotating refresh token), comma-separated: "
             "the first encrypts, all decrypt (rotation). "
             "Needed once an `oauth2_refresh` backend is configured or a secret is stored", ("run", "check")),
    Variable("PORT", "port", "3000",
             "HTTP port: Slack's requests (HTTP mode), the pipeline API (`api:`), `/healthz`, "
             "`/readyz` (ready or not, no details) and `/metrics` unless `METRICS_ADDR` is set"),
    Variable("METRICS_ADDR", "metrics_addr", "",
             "`host:port` of a second listener for `/metrics` and the detailed `/healthz` and `/readyz`; "
             "when set, the public port no longer serves `/metrics`"),
    Variable("LOG_FORMAT", None, "text",
             "`text`: readable lines; `json`: one JSON object a line (bot/support/logs.py)",
             ("run", "check", "demo", "migrate")),
    Variable("LOG_LEVEL", None, "", "`DEBUG`, `INFO`, `WARNING`, `ERROR`; `--log-level` wins over it "
             "(unset: `INFO` for run and migrate, `WARNING` for demo and check)",
             ("run", "check", "demo", "migrate")),
)
_DEFAULT = {v.field: v.default for v in ENVIRONMENT if v.field}


def environment_help(command: str) -> str:
    """The environment variables `command` reads, for its `--help`."""
    rows = [v for v in ENVIRONMENT if command in v.commands]
    width = max(len(v.name) for v in rows) + 4
    lines = ["environment variables:"]
    for v in rows:
        text = f"{v.meaning.replace('`', '')} (default: {v.default or 'unset'})"
        lines += textwrap.wrap(text, 100, break_on_hyphens=False, initial_indent=f"  {v.name:<{width - 2}}",
                               subsequent_indent=" " * width)
    if command == "check":
        lines.append("  and every ${NAME} the config file names")
    return "\n".join(lines)


class Environment(BaseModel):
    """What the process takes from its environment (the variables of ENVIRONMENT)."""

    model_config = ConfigDict(frozen=True)

    slack_bot_token: str = Field(default=_DEFAULT["slack_bot_token"], repr=False)
    slack_signing_secret: str = Field(default=_DEFAULT["slack_signing_secret"], repr=False)
    slack_app_token: str | None = Field(default=None, repr=False)
    slack_api_url: str = _DEFAULT["slack_api_url"]
    config_path: str = _DEFAULT["config_path"]
    database_url: str = Field(default=_DEFAULT["database_url"], repr=False)  # may hold a password
    port: int = Field(default=int(_DEFAULT["port"]), ge=0, le=65535)
    secret_keys: str | None = Field(default=None, repr=False)
    metrics_addr: str | None = None

    @field_validator("slack_app_token", "secret_keys")
    @classmethod
    def _unset(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("metrics_addr")
    @classmethod
    def _host_port(cls, v: str | None) -> str | None:
        if not v:
            return None
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("wants host:port, such as 127.0.0.1:9100 (port 0: any free port)")
        return v

    @property
    def metrics_host_port(self) -> tuple[str, int] | None:
        """METRICS_ADDR as (host, port); an IPv6 host may be given in brackets."""
        if self.metrics_addr is None:
            return None
        host, _, port = self.metrics_addr.rpartition(":")
        return host.strip("[]"), int(port)

    @field_validator("slack_api_url")
    @classmethod
    def _slash(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Environment:
        """Each variable of ENVIRONMENT, empty meaning unset; a value that cannot be used is a ConfigError."""
        e = os.environ if env is None else env
        values = {v.field: e.get(v.name) or v.default for v in ENVIRONMENT if v.field}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            names = {v.field: v.name for v in ENVIRONMENT if v.field}
            raise ConfigError("\n".join(
                f"environment variable {names.get(str(err['loc'][0]), err['loc'][0])}: {err['msg']}"
                for err in exc.errors(include_url=False, include_input=False))) from None
