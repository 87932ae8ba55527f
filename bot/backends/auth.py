"""How the adapters authenticate: httpx.Auth flows, so that a request, its sign-in and its one retry are one
`self.http` call.

- basic auth is httpx's own `httpx.BasicAuth`;
- `HeaderAuth`: a fixed Authorization header (a static bearer token; Immuta's raw API key);
- `RefreshingAuth`: get a token; when the vendor refuses it (a 401, or what the vendor says instead: Vault's
  INVALID_SESSION_ID in a 200 body, Immuta's 500) get a new one once and retry once, and a second refusal
  reaches the caller; concurrent requests share one renewal (a lock, and the token each request used compared
  with the current one). `ClientCredentials` (OAuth 2 client credentials: Fusion) and `RotatingRefreshToken`
  (single-use OAuth 2 refresh tokens kept in the secret store: EPM) specialise it here; Immuta's key exchange
  (`immuta.KeyExchange`) and Vault's session (`vault.Session`) in their adapters, beside the answers they
  read.

A flow sends its token requests by yielding them, as httpx's auth protocol has it (httpx/_auth.py, `Auth`: a
flow that does I/O or takes a lock overrides `async_auth_flow`): they go out through the backend's client,
inside the request's place under the backend's concurrency cap, with the request's timeout. Every body a flow
reads is read with the cap (`http.read_body`). No secret goes into an exception text or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import httpx

from bot.backends.http import error_words, read_body, retry_after_seconds
from bot.backends.values import as_int, lenient_json
from bot.domain.errors import AuthFailed, BadResponse, Unavailable
from bot.support.config import OAuth2ClientCredentials, OAuth2Refresh
from bot.support.logs import about

log = logging.getLogger(__name__)

# The credential fields of the auth settings (bot.support.config): what an answer, a log line or a message
# never repeats.
SECRET_FIELDS = ("password", "token", "client_secret", "refresh_token", "key")


class SecretStore(Protocol):
    """Where rotating credentials (EPM's single-use OAuth refresh token) are kept across restarts."""

    async def get_secret(self, key: str) -> str | None: ...

    async def put_secret(self, key: str, value: str) -> None: ...


def secrets_in(settings: object, request: httpx.Request | None = None) -> list[str]:
    """The secrets of `settings` (an auth config) and the credential `request` carried: what a vendor's words
    must never repeat to a user."""
    found = [getattr(settings, field, None) for field in SECRET_FIELDS]
    header = request.headers.get("Authorization") if request is not None else None
    if header:
        found += [header, header.split(" ", 1)[-1]]
    return [s for s in found if isinstance(s, str) and len(s) >= 4]


def basic_header(user: str, password: str) -> str:
    """An `Authorization: Basic` value (RFC 7617), as httpx.BasicAuth sends it."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class HeaderAuth(httpx.Auth):
    """A fixed Authorization header: `HeaderAuth.bearer(token)`, or Immuta's raw API key as it is."""

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def bearer(cls, token: str) -> HeaderAuth:
        return cls(f"Bearer {token}")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._value
        yield request


@dataclass(frozen=True)
class Token:
    """What a sign-in gave: the credential to send, and how long the vendor says it lasts (None: until
    refused)."""

    value: str
    lifetime: float | None = None


class RefreshingAuth(httpx.Auth, ABC):
    """Get a token; when the vendor refuses it, get a new one once and retry once; share one renewal.

    A specialisation says how to ask for a token (`token_request`), how to read the answer (`read_token`: the
    token, or the next request to try), how to send it (`authorize`, a bearer token by default) and what a
    refusal looks like (`refused`, a 401 by default; with `requires_response_body` the body is read first,
    with the cap). A token that has lived its `lifetime` (less a margin) is renewed before it is sent.
    """

    # headers of the request being authorised that the flow's own requests carry too (httpx adds the client's
    # default headers only to the requests it builds, not to those a flow yields)
    carried_headers: ClassVar[tuple[str, ...]] = ("User-Agent", "Accept")

    def __init__(self, name: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.clock = clock
        self._token: str | None = None
        self._expires_at = math.inf
        self._lock = asyncio.Lock()

    # -- what a specialisation provides ------------------------------------------------------------------
    @abstractmethod
    async def token_request(self, request: httpx.Request) -> httpx.Request:
        """The request that starts one renewal (build it with `side_request(..., like=request)`)."""

    @abstractmethod
    async def read_token(self, response: httpx.Response) -> Token | httpx.Request:
        """The token in an answer to a token request (its body read already), or the next request to try;
        a BackendError when there is none to be had."""

    def authorize(self, request: httpx.Request, token: str) -> None:
        request.headers["Authorization"] = f"Bearer {token}"

    async def refused(self, response: httpx.Response) -> bool:
        """Whether the vendor refused the token in this answer to the request it authorised."""
        return response.status_code == 401

    # -- the flow ----------------------------------------------------------------------------------------
    def side_request(self, method: str, url: str, like: httpx.Request, **kwargs: Any) -> httpx.Request:
        """A request of the flow's own (token, login), with `like`'s timeout and carried headers."""
        headers = {
            name: value for name in self.carried_headers if (value := like.headers.get(name)) is not None
        }
        headers.update(kwargs.pop("headers", {}))
        extensions = {"timeout": like.extensions["timeout"]} if "timeout" in like.extensions else {}
        return httpx.Request(method, url, headers=headers, extensions=extensions, **kwargs)

    def _due(self, stale: str | None) -> bool:
        """A new token is needed: none yet, the refused `stale` one is still current, or it has lived its
        time."""
        return self._token is None or self._token == stale or self.clock() >= self._expires_at

    def _keep(self, token: Token) -> None:
        self._token = token.value
        lifetime = token.lifetime
        # renew a little before the vendor's own end: a tenth of the lifetime, at most a minute
        self._expires_at = (
            math.inf if lifetime is None else self.clock() + max(0.0, lifetime - min(60.0, lifetime / 10))
        )

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        stale: str | None = None  # the token the vendor refused
        for retry in (False, True):
            if self._due(stale):
                async with self._lock:
                    if self._due(stale):  # nobody renewed it while this request waited
                        self._token = None  # refused, expired or none: a renewal that fails leaves none
                        step: Token | httpx.Request = await self.token_request(request)
                        while isinstance(step, httpx.Request):
                            answer = yield step
                            await read_body(answer, self.name)
                            step = await self.read_token(answer)
                        self._keep(step)
            used = self._token
            assert used is not None  # renewed above, or current and not refused
            self.authorize(request, used)
            response = yield request
            if self.requires_response_body:
                await read_body(response, self.name)
            if retry or not await self.refused(response):
                return
            # (httpx reads a response it retries; here it is read with the cap)
            await read_body(response, self.name)
            log.info("%s: HTTP %s: the token or session has ended; renewing it once", self.name,
                     response.status_code, extra=about(self.name))
            stale = used

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError(
            f"{type(self).__name__} takes a lock and does I/O: it is for httpx.AsyncClient only"
        )

    async def sign_in(self, http: httpx.AsyncClient, url: str) -> None:
        """Get a token now, exactly as a request to `url` would (for `check`): the flow's token requests go
        out through `http`; the request the flow would then send is not sent."""
        probe = http.build_request("GET", url)
        flow = self.async_auth_flow(probe)
        try:
            step = await flow.__anext__()
            while step is not probe:
                response = await http.send(step, stream=True)
                try:
                    step = await flow.asend(response)
                finally:
                    await response.aclose()
        finally:
            await flow.aclose()


# -- OAuth 2 ------------------------------------------------------------------------------------------
class _InvalidGrant(AuthFailed):
    """The token endpoint refused the grant itself (RFC 6749 section 5.2, `invalid_grant`): for a refresh
    token, used already, expired or revoked."""


@dataclass(frozen=True)
class Grant:
    """A token endpoint's successful answer (RFC 6749 section 5.1)."""

    access_token: str
    lifetime: float
    refresh_token: str | None


def read_grant(response: httpx.Response, name: str, hide: Iterable[str], asked: str) -> Grant:
    """An OAuth 2 token endpoint's answer (its body read already): the grant, or the BackendError it stands
    for.

    RFC 6749 section 5.2: an error answer is HTTP 400 (401 for a client that failed to authenticate) with
    `error` (`invalid_client`, `invalid_grant`, ...) and maybe `error_description`. 429 and 5xx are an outage.
    `asked` is what the bot sent, in words ("client credentials", "refresh token").
    """
    code = response.status_code
    words = error_words(response.content, hide)
    status = f"HTTP {code}: {words}" if words else f"HTTP {code}"
    if code == 429 or code >= 500:
        raise Unavailable(f"{name}: the OAuth token endpoint is having trouble ({status})",
                          retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    try:
        body: Any = lenient_json(response.content)
    except ValueError:
        body = None
    if code in (400, 401, 403):
        error = body.get("error") if isinstance(body, dict) else None
        if error == "invalid_grant":
            raise _InvalidGrant(f"{name}: the OAuth token endpoint refused the grant ({status})")
        refused = "the client id or secret" if error == "invalid_client" else f"our {asked}"
        raise AuthFailed(f"{name}: the OAuth token endpoint refused {refused} ({status})")
    if not 200 <= code < 300:
        raise BadResponse(f"{name}: the OAuth token endpoint answered {status}")
    access = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(access, str) or not access:
        raise BadResponse(f"{name}: the OAuth token endpoint answered without an access token (HTTP {code})")
    assert isinstance(body, dict)
    lifetime = as_int(body.get("expires_in"))
    refresh = body.get("refresh_token")
    return Grant(access, 3600.0 if lifetime is None or lifetime <= 0 else float(lifetime),
                 refresh if isinstance(refresh, str) and refresh else None)


class ClientCredentials(RefreshingAuth):
    """OAuth 2 client credentials (RFC 6749 section 4.4; Fusion's identity domain `/oauth2/v1/token`): the
    token is cached until it expires. The client secret goes only into the token request's Basic header."""

    def __init__(self, name: str, settings: OAuth2ClientCredentials, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name, clock=clock)
        self.settings = settings

    async def token_request(self, request: httpx.Request) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        if self.settings.scope:
            form["scope"] = self.settings.scope
        basic = basic_header(self.settings.client_id, self.settings.client_secret)
        return self.side_request("POST", self.settings.token_url, request, data=form,
                                 headers={"Authorization": basic})

    async def read_token(self, response: httpx.Response) -> Token:
        grant = read_grant(response, self.name, secrets_in(self.settings, response.request),
                           "client credentials")
        return Token(grant.access_token, grant.lifetime)


class RotatingRefreshToken(RefreshingAuth):
    """OAuth 2 refresh-token grant (RFC 6749 section 6) where each refresh token works once (EPM): every grant
    returns a new one, kept in memory and stored in the SecretStore at once (`{backend}:refresh_token`); the
    stored one is used first after a restart.

    When a refresh token is refused (`invalid_grant`), the newest stored one is tried (another process on the
    same database, such as `jobstatus-bot check`, may have used ours and stored its successor), then the
    configured one (an admin may have just put a new one in); when all are refused, AuthFailed.
    """

    def __init__(self, name: str, settings: OAuth2Refresh, secrets: SecretStore | None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name, clock=clock)
        self.settings = settings
        self.secrets = secrets
        self._refresh_token: str | None = None  # loaded from the secret store on first use
        self._trying = ""  # the refresh token the grant under way sends
        self._refused: list[str] = []  # the refresh tokens refused in this renewal

    @property
    def secret_key(self) -> str:
        return f"{self.name}:refresh_token"

    async def token_request(self, request: httpx.Request) -> httpx.Request:
        self._refused = []
        if self._refresh_token is None:
            self._refresh_token = await self._read_store() or self.settings.refresh_token
        return self._grant_request(self._refresh_token, request)

    def _grant_request(self, refresh_token: str, like: httpx.Request) -> httpx.Request:
        self._trying = refresh_token
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        headers = {}
        if self.settings.client_secret:
            headers["Authorization"] = basic_header(self.settings.client_id, self.settings.client_secret)
        else:
            form["client_id"] = self.settings.client_id  # a public client names itself in the form
        return self.side_request("POST", self.settings.token_url, like, data=form, headers=headers)

    async def read_token(self, response: httpx.Response) -> Token | httpx.Request:
        hide = [self._trying, *secrets_in(self.settings, response.request)]
        try:
            grant = read_grant(response, self.name, hide, "refresh token")
        except _InvalidGrant:
            self._refused.append(self._trying)
            nxt = await self._next_refresh_token()
            if nxt is None:
                self._refresh_token = None  # next time, read the store again: an admin may have put a new one
                raise self._all_refused() from None
            self._refresh_token = nxt
            return self._grant_request(nxt, response.request)
        if grant.refresh_token is not None and grant.refresh_token != self._trying:
            # the old one is dead now: keep the new one, in memory first
            self._refresh_token = grant.refresh_token
            await self._persist(grant.refresh_token)
        log.info("%s: OAuth access token refreshed (valid %d s); rotated refresh token %s", self.name,
                 grant.lifetime, "stored" if self.secrets is not None else "kept in memory only",
                 extra=about(self.name))
        return Token(grant.access_token, grant.lifetime)

    def _all_refused(self) -> AuthFailed:
        if self._refused == [self.settings.refresh_token]:
            return AuthFailed(
                f"{self.name}: the OAuth refresh token was refused (invalid_grant): "
                "it was already used or has "
                "expired. Put a new refresh token in the config (or the secret store) to go on."
            )
        return AuthFailed(
            f"{self.name}: the OAuth refresh tokens (stored and configured) were refused (invalid_grant): "
            "put a new refresh token in the config to go on."
        )

    async def _next_refresh_token(self) -> str | None:
        """After those in `_refused` were refused: the newest stored token, else the configured one."""
        stored = await self._read_store()
        if stored and stored not in self._refused:
            log.warning("%s: the refresh token was refused; trying the newest stored one", self.name,
                        extra=about(self.name))
            return stored
        if self.settings.refresh_token not in self._refused:
            log.warning("%s: the stored refresh token was refused; trying the configured one", self.name,
                        extra=about(self.name))
            return self.settings.refresh_token
        return None

    async def _read_store(self) -> str | None:
        if self.secrets is None:
            return None
        try:
            return await self.secrets.get_secret(self.secret_key)
        except Exception as exc:  # the store is not ours to crash on
            log.warning("%s: could not read the stored refresh token (%s); using the configured one",
                        self.name, type(exc).__name__, extra=about(self.name))
            return None

    async def _persist(self, token: str) -> None:
        if self.secrets is None:
            log.warning("%s: no secret store: the rotated refresh token lives in memory only; a restart will "
                        "need a new one", self.name, extra=about(self.name))
            return
        try:
            await self.secrets.put_secret(self.secret_key, token)
        except Exception as exc:
            log.error("%s: could not store the rotated refresh token (%s); a restart will need a new one",
                      self.name, type(exc).__name__, extra=about(self.name))
