"""What both simulated Oracle EPM services share: auth (basic, bearer, rotating OAuth), maintenance 503,
files.

Auth, as NOTES.md describes EPM Cloud:
- basic as `identitydomain.username:password` (and, Gen2, the bare `username:password`) against
  `basic_users` ({username: password}, without the domain);
- `Authorization: Bearer <token>` for the tokens in `bearer_tokens` and for access tokens issued by the
  OAuth token endpoint `POST /oauth2/v1/token` (grant_type=refresh_token). Every refresh token is
  **single-use**: using it issues a new one and the old one is refused afterwards (`invalid_grant`).
  Access tokens last `access_token_ttl` seconds on the simulator's clock; `expire_access_tokens()` ends
  them all at once.

`maintenance = True` answers every EPM route with the HTML 503 of the daily maintenance window.
`files` ({name: bytes}) is what the interop API downloads (EPM DI logs), by repository name
(`outbox/logs/X.log`, as List Files names them), kept with `/`; the download answers to those names only
(Oracle's Download page gives a repository file by its path there, "inbox\\s112.csv"). The repository sits at
`server_root` on the server (`/u03/inbox/`: Data Integration has been seen to name a log
`/u03/inbox/outbox/logs/Vision_271.log`), so a server path given to `add_file` is stored under its repository
name.
"""

from __future__ import annotations

import itertools
import secrets as _secrets
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.offline.vendors.core import Clock, VendorSim, basic_credentials, bearer_token, guarded

INTEROP = "/interop/rest/11.1.2.3.600"
TOKEN_PATH = "/oauth2/v1/token"

# Default words EPM sends beside a numeric status code (descriptiveStatus).
DESCRIPTIVE = {
    -1: "Processing",
    0: "Completed",
    1: "Error",
    2: "Cancel Pending",
    3: "Cancelled",
    4: "Invalid Parameter",
    2147483647: "Unknown",
}

MAINTENANCE_HTML = (
    "<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1>"
    "<p>Oracle EPM Cloud is undergoing its daily maintenance. Please try again later.</p></body></html>"
)


def code_of(state: Any) -> int | None:
    """The numeric EPM status code in a scripted state (-1, "0", ...), or None when it is not a number."""
    if isinstance(state, bool):
        return None
    if isinstance(state, int):
        return state
    if isinstance(state, str):
        try:
            return int(state.strip())
        except ValueError:
            return None
    return None


class EpmSimBase(VendorSim):
    """Auth, token endpoint, maintenance switch and interop file download for the EPM simulators."""

    jobs_cancellable = False  # EPM's REST API has no cancel

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.identity_domain = "exampledomain"
        self.bare_username_ok = True  # Gen2 takes `username:password` without the identity domain
        self.maintenance = False
        self.retry_after = 120
        # OAuth: registered clients {client_id: secret or None for public clients}
        self.oauth_clients: dict[str, str | None] = {}
        self.refresh_tokens: set[str] = set()
        self.used_refresh_tokens: set[str] = set()
        self.access_tokens: dict[str, float] = {}  # token -> expiry on the clock
        self.access_token_ttl = 3600.0
        self.files: dict[str, bytes] = {}
        self.server_root = "/u03/inbox/"
        self._serial = itertools.count(1)

    # -- switches tests use -----------------------------------------------------------------------
    def issue_refresh_token(self) -> str:
        """A fresh valid refresh token (what an admin pastes into the config)."""
        tok = f"rt-{next(self._serial)}-{_secrets.token_hex(6)}"
        self.refresh_tokens.add(tok)
        return tok

    def expire_access_tokens(self) -> None:
        now = self.clock()
        for tok in self.access_tokens:
            self.access_tokens[tok] = min(self.access_tokens[tok], now - 1)

    def repository_name(self, path: str) -> str:
        """A file's name in the EPM repository: a server path under `server_root` loses that root; a server
        path elsewhere is no repository file (ValueError)."""
        path = path.replace("\\", "/")
        if path.startswith(self.server_root):
            return path[len(self.server_root):]
        if path.startswith("/") or path[1:3] == ":/":
            raise ValueError(f"{path} is outside the EPM repository ({self.server_root})")
        return path

    def add_file(self, path: str, content: bytes | str) -> None:
        self.files[self.repository_name(path)] = content.encode() if isinstance(content, str) else content

    # -- plumbing ---------------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        """The routes both EPM services have; each service adds its own."""
        return [
            web.post(TOKEN_PATH, self._token),
            web.get(INTEROP + "/applicationsnapshots", self._list_files),
            web.get(INTEROP + "/applicationsnapshots/{name}/contents", self._download),
        ]

    def middlewares(self) -> list[Middleware]:
        return [self._gate]

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.maintenance and not request.path.endswith(TOKEN_PATH):  # the IdP is not EPM: it stays up
            return web.Response(
                status=503, text=MAINTENANCE_HTML, content_type="text/html",
                headers={"Retry-After": str(self.retry_after)},
            )
        return await handler(request)

    def authorized(self, request: web.Request) -> bool:
        token = bearer_token(request)
        if token is not None:
            expiry = self.access_tokens.get(token)
            return token in self.bearer_tokens or (expiry is not None and self.clock() < expiry)
        credentials = basic_credentials(request)
        if credentials is None:
            return False
        login, password = credentials
        domain, dot, user = login.partition(".")
        if dot and domain == self.identity_domain and self.basic_users.get(user) == password:
            return True
        return self.bare_username_ok and self.basic_users.get(login) == password

    async def refusal(self, request: web.Request) -> web.Response | None:
        """A plain 401 with EPM's basic challenge unless the credentials are good."""
        if self.authorized(request):
            return None
        return web.Response(
            status=401, text="Unauthorized", headers={"WWW-Authenticate": 'Basic realm="Oracle EPM Cloud"'}
        )

    @staticmethod
    def epm_error(status: int, details: str, http: int = 200) -> web.Response:
        """An EPM error answer: JSON with a non-zero status and a details text."""
        return web.json_response({"status": status, "details": details, "links": []}, status=http)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id = str(form.get("client_id", ""))
        secret: str | None = None
        credentials = basic_credentials(request)
        if credentials is not None:
            client_id, secret = credentials
        if client_id not in self.oauth_clients or (
            self.oauth_clients[client_id] is not None and self.oauth_clients[client_id] != secret
        ):
            return web.json_response(
                {"error": "invalid_client", "error_description": "Client authentication failed."}, status=401
            )
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        old = str(form.get("refresh_token", ""))
        if old not in self.refresh_tokens:
            reason = "has already been used" if old in self.used_refresh_tokens else "is invalid"
            return web.json_response(
                {"error": "invalid_grant", "error_description": f"The refresh token {reason}."}, status=400
            )
        self.refresh_tokens.discard(old)  # single use: it rotates
        self.used_refresh_tokens.add(old)
        new = self.issue_refresh_token()
        access = f"at-{next(self._serial)}-{_secrets.token_hex(8)}"
        self.access_tokens[access] = self.clock() + self.access_token_ttl
        return web.json_response(
            {"access_token": access, "token_type": "Bearer", "expires_in": int(self.access_token_ttl),
             "refresh_token": new}
        )

    @guarded
    async def _list_files(self, request: web.Request) -> web.Response:
        items = [
            {"name": name, "type": "EXTERNAL", "size": len(data)} for name, data in sorted(self.files.items())
        ]
        return web.json_response({"items": items, "status": 0, "details": None, "links": []})

    @guarded
    async def _download(self, request: web.Request) -> web.Response:
        """Interop download. Errors come back as JSON (HTTP 200 included): a JSON type means it failed."""
        name = request.match_info["name"].replace("\\", "/")
        data = self.files.get(name)
        if data is None:
            return self.epm_error(8, f"EPMIE-00070: Failed to download file. File {name} does not exist.")
        return web.Response(
            body=data, content_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name.rsplit("/", 1)[-1]}"'},
        )
