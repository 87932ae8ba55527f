"""Every path that reads a vendor body reads it with the one cap (bot/backends/http.py): a backend's requests,
each auth flow's token or login endpoint, EPM's download error body. A vendor that sends without end is cut
off at MAX_BODY_BYTES with a BadResponse, never read on. On httpx.MockTransport: no sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.backends import build_backend
from bot.backends.base import Backend
from bot.backends.epm_common import EpmBackend
from bot.backends.http import MAX_BODY_BYTES
from bot.domain.errors import BadResponse
from bot.support.config import BackendConfig

BASE = "https://vendor.example.com"
TOKEN_URL = BASE + "/oauth2/v1/token"
CHUNK = 64 * 1024


class Endless:
    """A body that never ends (well: four times the cap), counting what the reader pulled."""

    def __init__(self) -> None:
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < 4 * MAX_BODY_BYTES:
            self.pulled += CHUNK
            yield b"{" * CHUNK


IMMUTA_JOB = "cefb58a0-cd71-11ec-8e29-81c20d280994"  # Immuta takes only GUIDs: its docs' example
# case -> (backend type, auth settings, other settings, the path whose answer is endless)
SIGN_INS: dict[str, tuple[str, dict[str, Any], dict[str, Any], str]] = {
    "fusion oauth2": ("fusion_jobscheduler", {"type": "oauth2", "token_url": TOKEN_URL, "client_id": "c",
                                              "client_secret": "client-secret-1"}, {}, "/oauth2/v1/token"),
    "epm oauth2_refresh": ("epm_data_integration", {"type": "oauth2_refresh", "token_url": TOKEN_URL,
                                                    "client_id": "c", "client_secret": "client-secret-2",
                                                    "refresh_token": "refresh-token-2"}, {},
                           "/oauth2/v1/token"),
    "immuta key exchange": ("immuta", {"type": "api_key", "key": "api-key-3"}, {},
                            "/bim/apikey/authenticate"),
    "vault login": ("veeva_vault", {"type": "vault_session", "username": "u", "password": "password-4"}, {},
                    "/api/v25.3/auth"),
    "a status request": ("epm_planning", {"type": "bearer", "token": "token-5"}, {"application": "A"},
                         "/HyperionPlanning/rest/v3/applications/A/jobs/7"),
}


def backend_answering(type_name: str, auth: dict[str, Any], extra: dict[str, Any], endless_path: str,
                      body: Endless) -> Backend:
    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path == endless_path:
            return httpx.Response(200, content=body, headers={"content-type": "application/json"})
        return httpx.Response(401, json={"status": 401})

    config = BackendConfig.model_validate({"type": type_name, "base_url": BASE, "auth": auth, **extra})
    backend = build_backend(type_name, config)
    backend.http = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
    return backend


@pytest.mark.parametrize("case", sorted(SIGN_INS))
async def test_an_endless_answer_is_cut_off_at_the_cap(case: str) -> None:
    type_name, auth, extra, path = SIGN_INS[case]
    body = Endless()
    backend = backend_answering(type_name, auth, extra, path, body)
    with pytest.raises(BadResponse, match=f"larger than {MAX_BODY_BYTES // 1024} KiB"):
        await backend.status(IMMUTA_JOB if type_name == "immuta" else "7")
    await backend.aclose()
    assert MAX_BODY_BYTES < body.pulled <= MAX_BODY_BYTES + CHUNK


async def test_an_endless_download_error_body_is_cut_off_at_the_cap() -> None:
    path = "/interop/rest/11.1.2.3.600/applicationsnapshots/x.log/contents"
    body = Endless()
    backend = backend_answering("epm_data_integration", {"type": "bearer", "token": "token-6"}, {},
                                path, body)
    assert isinstance(backend, EpmBackend)
    with pytest.raises(BadResponse, match="larger than"):
        await backend.download(path, lambda chunk: None, max_bytes=10)
    await backend.aclose()
    assert body.pulled <= MAX_BODY_BYTES + CHUNK
