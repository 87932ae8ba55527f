"""The error reading every adapter shares: a vendor's error envelope, in any body and with any HTTP status, is
read and said (cut) before a bare "HTTP nnn"; the HTTP status class decides the kind of error."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bot.backends.epm_planning import EpmPlanning
from bot.backends.http import ERROR_WORDS_MAX, error_words
from bot.domain.errors import (
    AuthFailed,
    BadResponse,
    Forbidden,
    JobNotFound,
    RateLimited,
    Refused,
    Unavailable,
)
from bot.support.config import BackendConfig


@pytest.mark.parametrize(("body", "words"), [
    # Vault: errors[{type, message}], the first few
    ({"responseStatus": "FAILURE", "errors": [{"type": "MALFORMED_URL", "message": "The specified resource "
                                                                                   "cannot be found."}]},
     "MALFORMED_URL: The specified resource cannot be found."),
    ({"responseStatus": "FAILURE", "errors": {"type": "OPERATION_NOT_ALLOWED", "message": "not now"}},
     "OPERATION_NOT_ALLOWED: not now"),
    # Oracle REST / ESS SimpleExceptionDetail: detail over title, the ESS code in front
    ({"type": "about:blank", "title": "Bad Request", "status": 400,
      "detail": "Request 7 cannot be cancelled.", "errorCode": "ESS-00500"},
     "ESS-00500: Request 7 cannot be cancelled."),
    ({"title": "Not Found", "status": 404}, "Not Found"),
    ({"title": "x", "o:errorCode": "27512", "detail": "27512 is in the text"}, "27512 is in the text"),
    # EPM: details (interop, Data Integration; "null" means nothing), detail/message (Planning)
    ({"status": 8, "details": "EPMIE-00070: Failed to download file.", "links": []},
     "EPMIE-00070: Failed to download file."),
    ({"status": 400, "detail": "Invalid application name Visionx", "message": "com.hyperion.planning.X"},
     "Invalid application name Visionx"),
    ({"status": 1, "details": "null", "message": "Job failed"}, "Job failed"),
    # OAuth 2 token endpoint (RFC 6749 5.2); hapi (Immuta)
    ({"error": "invalid_client", "error_description": "Client authentication failed."},
     "invalid_client: Client authentication failed."),
    ({"error": "invalid_grant"}, "invalid_grant"),
    ({"statusCode": 400, "error": "Bad Request", "message": "jobIds must be an array"},
     "jobIds must be an array"),
    ({"error": {"code": "X1", "message": "nested words"}}, "nested words"),
])
def test_each_vendors_envelope_gives_its_words(body: dict[str, Any], words: str) -> None:
    assert error_words(json.dumps(body).encode()) == words


@pytest.mark.parametrize("raw", [
    b"", b"<html><body><h1>503 Service Unavailable</h1></body></html>", b"Internal Server Error", b"[1, 2]",
    b'{"status": 500}', b'{"errors": "x", "detail": 5, "message": {"a": 1}}', b"null", b'"a string"',
])
def test_bodies_without_an_envelope_say_nothing(raw: bytes) -> None:
    assert error_words(raw) is None


def test_words_are_cut_and_kept_on_one_line() -> None:
    words = error_words(json.dumps({"detail": "line one\nline two " + "x" * 1000}).encode())
    assert words is not None and len(words) == ERROR_WORDS_MAX and words.endswith("…")
    assert words.startswith("line one line two")


def test_the_documented_stray_brace_does_not_hide_the_words() -> None:
    assert error_words(b'{"details": "bad", "links": [{"rel": "self"}}]}') == "bad"


def _backend() -> EpmPlanning:
    config = BackendConfig.model_validate({"type": "epm_planning", "base_url": "http://127.0.0.1:1",
                                           "application": "A", "auth": {"type": "bearer", "token": "t"}})
    return EpmPlanning("planning", config)


def _answer(status: int, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers,
                          request=httpx.Request("GET", "http://127.0.0.1:1/x"))


@pytest.mark.parametrize(("status", "error"), [
    (400, Refused), (401, AuthFailed), (403, Forbidden), (404, JobNotFound), (409, Refused),
    (429, RateLimited), (500, Unavailable), (502, Unavailable),
])
async def test_the_status_class_decides_the_error_and_the_envelope_its_words(
        status: int, error: type) -> None:
    backend = _backend()
    with pytest.raises(error) as err:
        backend.raise_for_status(_answer(status, {"detail": "Words <from> & the vendor", "status": status}))
    assert f"HTTP {status}: Words <from> & the vendor" in str(err.value)  # the caller escapes them
    with pytest.raises(error) as bare:
        backend.raise_for_status(_answer(status, b"<html>oops</html>"))
    assert str(bare.value).endswith(f"HTTP {status})") or str(bare.value).endswith(f"HTTP {status}")
    await backend.aclose()


async def test_retry_after_still_comes_with_the_words() -> None:
    backend = _backend()
    with pytest.raises(RateLimited) as err:
        backend.raise_for_status(_answer(429, {"message": "slow down"}, **{"Retry-After": "7"}))
    assert err.value.retry_after == 7.0 and "slow down" in str(err.value)
    await backend.aclose()


# -- every adapter says the vendor's words before a bare status ----------------------------------------------
VAULT_LOGIN = {"responseStatus": "SUCCESS", "sessionId": "S3SSION", "vaultId": 1,
               "vaultIds": [{"id": 1, "name": "V", "url": "http://127.0.0.1:1/api"}]}
ADAPTERS: dict[str, tuple[dict[str, Any], int, dict[str, Any], type, str]] = {
    # type: (backend settings, HTTP status of the status call, its body, the error, the words the user reads)
    "fusion_jobscheduler": ({"auth": {"type": "bearer", "token": "tok-FUSION-1"}}, 400,
                            {"title": "Bad Request", "status": 400, "errorCode": "ESS-01234",
                             "detail": "Request 7 <is not> a job request"}, BadResponse,
                            "ESS-01234: Request 7 <is not> a job request"),
    "veeva_vault": ({"auth": {"type": "vault_session", "username": "u", "password": "pw-VAULT-1"}}, 500,
                    {"responseStatus": "EXCEPTION",
                     "errors": [{"type": "UNEXPECTED_ERROR", "message": "try later"}]},
                    Unavailable, "UNEXPECTED_ERROR: try later"),
    "epm_data_integration": ({"auth": {"type": "basic", "username": "u", "password": "pw-EPM-1"}}, 400,
                             {"status": 4, "details": "Invalid Parameter: jobId", "links": []}, BadResponse,
                             "Invalid Parameter: jobId"),
    "epm_planning": ({"application": "A",
                      "auth": {"type": "basic", "username": "u", "password": "pw-PLAN-1"}}, 400,
                     {"status": 400, "detail": "Login pw-PLAN-1 refused for u", "message": "x"}, BadResponse,
                     "Login [hidden] refused for u"),  # a credential the vendor repeats is never said
    "immuta": ({"auth": {"type": "api_key", "key": "key-IMMUTA-1", "exchange": False}}, 500,
               {"statusCode": 500, "error": "Internal Server Error", "message": "policy engine down"},
               Unavailable, "policy engine down"),
}


@pytest.mark.parametrize("type_name", sorted(ADAPTERS))
async def test_every_adapter_says_the_vendors_words(type_name: str) -> None:
    from bot.backends import build_backend

    settings, status, body, error, words = ADAPTERS[type_name]

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth"):
            return httpx.Response(200, json=VAULT_LOGIN)
        return httpx.Response(status, json=body)

    config = BackendConfig.model_validate({"type": type_name, "base_url": "http://127.0.0.1:1", **settings})
    backend = build_backend(type_name, config)
    await backend.http.aclose()
    backend.http = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
    with pytest.raises(error) as err:
        # a GUID
        await backend.status("cefb58a0-cd71-11ec-8e29-81c20d280994" if type_name == "immuta" else "7")
    assert f"HTTP {status}: {words}" in str(err.value)
    assert "pw-" not in str(err.value)
    await backend.aclose()
