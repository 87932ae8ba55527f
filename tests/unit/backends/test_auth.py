"""The refreshing auth flow (bot/backends/auth.py) on a real httpx.AsyncClient whose transport is
httpx.MockTransport: one renewal on a refusal, a second refusal reaches the caller, concurrent refusals share
one renewal, a refusal a vendor signals in a 200 body, and a failed renewal says so without the secret. No
sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from bot.backends.auth import ClientCredentials, RotatingRefreshToken
from bot.backends.vault import VeevaVault
from bot.domain.errors import AuthFailed, Unavailable
from bot.support.config import BackendConfig, OAuth2ClientCredentials, OAuth2Refresh

API = "https://pod.example.com/api/thing"
TOKEN_URL = "https://idcs.example.com/oauth2/v1/token"
SECRET = "client-S3CRET-value"

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


def streamed(status: int, body: Any, **headers: str) -> httpx.Response:
    """An answer whose body arrives as a stream, as from the network (a flow must read it before it looks)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def stream() -> AsyncIterator[bytes]:
        yield raw

    return httpx.Response(status, content=stream(), headers={"content-type": "application/json", **headers})


class Vendor:
    """A token endpoint and one API endpoint that accepts only the tokens it has issued and not yet
    revoked."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.token_requests: list[httpx.Request] = []
        # the Authorization each API request carried (a retry is the same object)
        self.api_requests: list[str] = []
        self.api_gate: Callable[[], Awaitable[None]] | None = None  # runs before the API answers
        self.token_answer: Callable[[httpx.Request], httpx.Response] | None = None

    def revoke(self) -> None:
        self.valid.clear()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.token_requests.append(request)
            if self.token_answer is not None:
                return self.token_answer(request)
            token = f"tok-{len(self.issued) + 1}"
            self.issued.append(token)
            self.valid.add(token)
            return streamed(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
        self.api_requests.append(request.headers.get("Authorization", ""))
        sent = self.api_requests[-1].removeprefix("Bearer ")
        if self.api_gate is not None:
            await self.api_gate()
        if sent in self.valid:
            return streamed(200, {"ok": True, "token": sent})
        return streamed(401, {"title": "Unauthorized", "status": 401})


def client_credentials(**kw: Any) -> ClientCredentials:
    settings = OAuth2ClientCredentials(type="oauth2", token_url=TOKEN_URL, client_id="cid",
                                       client_secret=SECRET)
    return ClientCredentials("fusion", settings, **kw)


def client_for(vendor: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(vendor), timeout=httpx.Timeout(7.0),
                             headers={"User-Agent": "jobstatus-bot", "Accept": "application/json"})


async def test_a_401_gets_one_new_token_and_one_retry() -> None:
    vendor = Vendor()
    auth = client_credentials()
    async with client_for(vendor) as http:
        assert (await http.get(API, auth=auth)).json()["token"] == "tok-1"
        vendor.revoke()
        answer = await http.get(API, auth=auth)
    assert answer.status_code == 200 and answer.json()["token"] == "tok-2"
    assert len(vendor.token_requests) == 2
    assert vendor.api_requests == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


async def test_a_second_401_reaches_the_caller() -> None:
    vendor = Vendor()
    vendor.token_answer = lambda request: streamed(200, {"access_token": "dead-on-arrival"})
    auth = client_credentials()
    async with client_for(vendor) as http:
        answer = await http.get(API, auth=auth)
    assert answer.status_code == 401
    # one renewal, one retry, no more
    assert len(vendor.token_requests) == 2 and len(vendor.api_requests) == 2


async def test_concurrent_401s_share_one_renewal() -> None:
    vendor = Vendor()
    auth = client_credentials()
    calls = 6
    async with client_for(vendor) as http:
        await http.get(API, auth=auth)
        vendor.revoke()
        arrived = 0
        all_in = asyncio.Event()

        async def gate() -> None:  # every request is in flight with the revoked token before any is answered
            nonlocal arrived
            arrived += 1
            if arrived >= calls:
                all_in.set()
            await all_in.wait()

        vendor.api_gate = gate
        answers = await asyncio.wait_for(
            asyncio.gather(*(http.get(API, auth=auth) for _ in range(calls))), 10)
    assert {a.status_code for a in answers} == {200}
    assert len(vendor.token_requests) == 2  # the first token, then one renewal for all six refusals
    assert {a.json()["token"] for a in answers} == {"tok-2"}


async def test_concurrent_first_requests_share_one_token() -> None:
    vendor = Vendor()
    auth = client_credentials()
    async with client_for(vendor) as http:
        answers = await asyncio.gather(*(http.get(API, auth=auth) for _ in range(5)))
    assert {a.status_code for a in answers} == {200} and len(vendor.token_requests) == 1


async def test_a_token_is_renewed_before_its_lifetime_ends() -> None:
    vendor = Vendor()
    now = [1000.0]
    auth = client_credentials(clock=lambda: now[0])
    async with client_for(vendor) as http:
        await http.get(API, auth=auth)
        now[0] += 3600 - 61  # expires_in 3600, renewed a minute early: still good
        await http.get(API, auth=auth)
        assert len(vendor.token_requests) == 1
        now[0] += 2
        await http.get(API, auth=auth)
    assert len(vendor.token_requests) == 2 and len(vendor.api_requests) == 3  # no 401 needed first


async def test_token_requests_carry_the_requests_timeout_and_identity_and_the_secret_only_in_basic() -> None:
    vendor = Vendor()
    async with client_for(vendor) as http:
        await http.get(API, auth=client_credentials())
    (sent,) = vendor.token_requests
    # never a token request without a timeout
    assert sent.extensions["timeout"] == httpx.Timeout(7.0).as_dict()
    assert (sent.headers["User-Agent"] == "jobstatus-bot"
            and sent.headers["Authorization"].startswith("Basic "))
    assert parse_qs(sent.content.decode()) == {"grant_type": ["client_credentials"]}
    assert SECRET not in sent.content.decode()


async def test_a_refused_renewal_is_auth_failed_without_the_secret() -> None:
    vendor = Vendor()
    vendor.token_answer = lambda request: streamed(401, {
        "error": "invalid_client", "error_description": f"Client secret {SECRET} is not valid for cid"})
    async with client_for(vendor) as http:
        with pytest.raises(AuthFailed) as err:
            await http.get(API, auth=client_credentials())
    said = str(err.value)
    assert "invalid_client" in said and "[hidden]" in said and SECRET not in said
    assert vendor.api_requests == []  # no request goes out without a token


async def test_a_failed_renewal_leaves_no_token_so_the_next_request_renews_first() -> None:
    vendor = Vendor()
    auth = client_credentials()
    async with client_for(vendor) as http:
        await http.get(API, auth=auth)
        vendor.revoke()
        vendor.token_answer = lambda request: streamed(503, b"down", **{"Retry-After": "9"})
        # the token endpoint's outage is an outage, with its Retry-After
        with pytest.raises(Unavailable) as err:
            await http.get(API, auth=auth)
        assert err.value.retry_after == 9.0
        vendor.token_answer = None
        assert (await http.get(API, auth=auth)).status_code == 200
    assert len(vendor.token_requests) == 3
    # the dead token is not sent again
    assert vendor.api_requests == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


async def test_every_refresh_token_refused_is_auth_failed_without_any_of_them() -> None:
    refused: list[str] = []

    def token_answer(request: httpx.Request) -> httpx.Response:
        sent = parse_qs(request.content.decode())["refresh_token"][0]
        refused.append(sent)
        return streamed(400, {"error": "invalid_grant", "error_description": f"token {sent} was used"})

    class Store:
        async def get_secret(self, key: str) -> str | None:
            return "rt-stored-0123456789"

        async def put_secret(self, key: str, value: str) -> None:
            raise AssertionError("nothing to store")

    vendor = Vendor()
    vendor.token_answer = token_answer
    settings = OAuth2Refresh(type="oauth2_refresh", token_url=TOKEN_URL, client_id="cid",
                             client_secret=SECRET, refresh_token="rt-configured-0123456789")
    async with client_for(vendor) as http:
        with pytest.raises(AuthFailed) as err:
            await http.get(API, auth=RotatingRefreshToken("epm", settings, Store()))
    # the stored one, then the configured one
    assert refused == ["rt-stored-0123456789", "rt-configured-0123456789"]
    for secret in (*refused, SECRET):
        assert secret not in str(err.value)
    assert "invalid_grant" in str(err.value)


async def test_sign_in_gets_a_token_without_sending_the_request() -> None:
    vendor = Vendor()
    auth = client_credentials()
    async with client_for(vendor) as http:
        await auth.sign_in(http, API)
        assert len(vendor.token_requests) == 1 and vendor.api_requests == []
        await http.get(API, auth=auth)
    assert len(vendor.token_requests) == 1  # the request uses the token sign_in got


# -- a refusal signalled in a 200 body: Vault's INVALID_SESSION_ID -------------------------------------------
VAULT = "https://myvault.veevavault.com"
INVALID_SESSION = {"responseStatus": "FAILURE", "errors": [{"type": "INVALID_SESSION_ID",
                                                             "message": "Invalid or expired session ID."}]}


def vault_with(dead: set[str]) -> tuple[VeevaVault, list[str], list[str]]:
    """A VeevaVault over MockTransport whose sessions S1, S2, ... are refused (HTTP 200) when in `dead`."""
    logins: list[str] = []
    calls: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth"):
            logins.append(f"S{len(logins) + 1}")
            return streamed(200, {"responseStatus": "SUCCESS", "sessionId": logins[-1], "vaultId": 1,
                                "vaultIds": [{"id": 1, "name": "V", "url": VAULT + "/api"}]})
        session = request.headers["Authorization"]
        calls.append(session)
        if session in dead:
            return streamed(200, INVALID_SESSION)
        return streamed(200, {"responseStatus": "SUCCESS", "data": {"id": 7, "status": "RUNNING"}})

    config = BackendConfig.model_validate({"type": "veeva_vault", "base_url": VAULT,
                                           "auth": {"type": "vault_session", "username": "u",
                                                    "password": "pw-0123"}})
    backend = VeevaVault("vault", config, http=httpx.AsyncClient(transport=httpx.MockTransport(vendor)))
    return backend, logins, calls


async def test_a_refusal_in_a_200_body_gets_one_new_session_and_one_retry() -> None:
    backend, logins, calls = vault_with(dead={"S1"})
    status = await backend.status("7")
    await backend.aclose()
    assert status.vendor_status == "RUNNING"
    assert logins == ["S1", "S2"] and calls == ["S1", "S2"]


async def test_a_second_refusal_in_a_200_body_reaches_the_caller() -> None:
    backend, logins, calls = vault_with(dead={"S1", "S2", "S3"})
    with pytest.raises(AuthFailed, match="INVALID_SESSION_ID"):
        await backend.status("7")
    await backend.aclose()
    assert logins == ["S1", "S2"] and calls == ["S1", "S2"]


async def test_the_body_a_flow_reads_is_the_body_the_caller_gets() -> None:
    backend, _, _ = vault_with(dead=set())
    answer = await backend.request("GET", "/api/v25.3/services/jobs/7")
    await backend.aclose()
    # read once, with the cap, kept for the caller
    assert json.loads(answer.content)["data"]["status"] == "RUNNING"
