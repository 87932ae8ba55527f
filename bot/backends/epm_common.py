"""What the Oracle EPM adapters (Data Integration and Planning) share: status parsing, auth, outages.

Status (both services): `status` is a numeric code sent as an int or a string; `jobStatus` /
`descriptiveStatus` carry words. When code and word disagree (the vendor's own example pairs -1 with
SUCCESS) the terminal one is trusted and the disagreement logged. `details` may be the string "null".

Auth: basic (`identitydomain.username:password`, or the bare username), a static bearer token, or OAuth 2
with a user-context refresh token that is **single-use and rotates** (`auth.RotatingRefreshToken`: the new one
is persisted through the SecretStore at once, `{backend}:refresh_token`, and read back from there first).
Access tokens are cached until shortly before they expire; a 401 triggers one refresh and one retry. No secret
ever goes into an exception text or a log line.

EPM answers 503 during its daily maintenance window: that is an outage (`Unavailable`), never a job failure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import httpx

from bot.backends.auth import HeaderAuth, RotatingRefreshToken, SecretStore
from bot.backends.base import Backend, digits_job_id
from bot.backends.http import error_words, read_body, retry_after_seconds, unreachable
from bot.backends.values import as_int, as_text, lenient_json
from bot.domain.errors import BackendError, BadResponse, JobNotFound, Unavailable
from bot.domain.states import EPM_CODE_WORDS, EPM_CODES, EPM_WORDS, Phase, lookup
from bot.domain.status import JobStatus, Link
from bot.support.config import BackendConfig, BasicAuth, BearerAuth, ConfigError, OAuth2Refresh
from bot.support.logs import about

log = logging.getLogger(__name__)

MAX_CODE = 2147483647  # Integer.MAX_VALUE: "unknown"
_NOT_FOUND_TEXT = re.compile(r"does not exist|not found|no such job|invalid job", re.IGNORECASE)
_disagreements_logged: set[tuple[str, str, str, str]] = set()


# -- status parsing ---------------------------------------------------------------------------------

def validate_epm_job_id(text: str, label: str, what: str) -> str:
    """An EPM job id: digits only, 1 to 18 of them (leading zeros dropped)."""
    return str(int(digits_job_id(text, label, what)))


def _code_of(raw: Any, vendor: str, job_id: str) -> tuple[int | None, str | None]:
    """(numeric code, word) from the `status` field, which may be an int, a numeric string or a word."""
    if raw is None:
        return None, None
    if isinstance(raw, bool):
        raise BadResponse(f"{vendor}: job {job_id}: 'status' is a boolean, expected a status code")
    if isinstance(raw, int):
        return raw, None
    if isinstance(raw, float):
        if raw != raw or raw != int(raw):
            raise BadResponse(f"{vendor}: job {job_id}: 'status' {raw!r} is not a status code")
        return int(raw), None
    if isinstance(raw, str):
        text = raw.strip()
        if re.fullmatch(r"[+-]?[0-9]{1,12}", text):
            return int(text), None
        return None, (text or None)
    raise BadResponse(f"{vendor}: job {job_id}: 'status' is a {type(raw).__name__}, expected a status code")


def _word_field(payload: dict[str, Any], key: str, vendor: str, job_id: str) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadResponse(f"{vendor}: job {job_id}: '{key}' is a {type(value).__name__}, expected text")
    return as_text(value)


def _code_text(code: int) -> str:
    return "Integer.MAX_VALUE" if code == MAX_CODE else str(code)


def _links(raw: Any) -> tuple[Link, ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for item in raw:
        if not isinstance(item, dict):
            continue  # the DI example sends `"links": [0]`
        rel, href = item.get("rel"), item.get("href")
        if not isinstance(href, str) or rel == "self" or not href.strip().lower().startswith(("https://", "http://")):
            continue  # only web links: never a javascript: or other scheme into a chat message
        label = {"job-details": "Job details"}.get(rel, rel) if isinstance(rel, str) and rel else "Link"
        out.append(Link(label, href.strip()))
    return tuple(out)


def _log_disagreement(vendor: str, job_id: str, code: int, word: str, trusted: str) -> None:
    key = (vendor, job_id, str(code), word)
    if key in _disagreements_logged:
        return
    if len(_disagreements_logged) > 5000:
        _disagreements_logged.clear()
    _disagreements_logged.add(key)
    log.info("%s job %s: status %s and status word %r disagree; trusting the %s", vendor, job_id, code, word,
             trusted, extra=about(job=job_id))


def parse_epm_status(payload: Any, job_id: str, vendor: str) -> JobStatus:
    """Normalise one EPM job status answer (Data Integration or Planning). Raises BadResponse/JobNotFound."""
    if not isinstance(payload, dict):
        raise BadResponse(f"{vendor}: expected a JSON object for job {job_id}, got {type(payload).__name__}")
    try:
        return _parse(payload, job_id, vendor)
    except BackendError:
        raise
    except Exception as exc:  # a shape we did not foresee: never let it escape as a crash
        raise BadResponse(f"{vendor}: unreadable status for job {job_id} ({type(exc).__name__})") from exc


def _parse(payload: dict[str, Any], job_id: str, vendor: str) -> JobStatus:
    code, status_word = _code_of(payload.get("status"), vendor, job_id)
    words = [
        w for w in (
            _word_field(payload, "jobStatus", vendor, job_id),
            _word_field(payload, "descriptiveStatus", vendor, job_id),
            status_word,
        ) if w
    ]
    details = as_text(payload.get("details"))
    answered_id = as_text(payload.get("jobId", payload.get("jobID")))
    if (answered_id is None and as_text(payload.get("jobName")) is None
            and details and _NOT_FOUND_TEXT.search(details)):
        raise JobNotFound(f"{vendor} has no job {job_id}: {details[:200]}")
    if answered_id is not None and as_int(answered_id) != as_int(job_id) and answered_id != job_id:
        raise BadResponse(f"{vendor}: asked about job {job_id}, the answer is about job {answered_id[:40]}")
    if code is None and not words:
        raise BadResponse(f"{vendor}: the answer for job {job_id} has no status")

    code_phase = lookup(EPM_CODES, vendor, code) if code is not None else None
    word, word_phase = None, None
    for w in words:
        p = EPM_WORDS.get(w.strip().upper())
        if p is not None:
            word, word_phase = w, p
            break
    if word is None and words:
        word, word_phase = words[0], lookup(EPM_WORDS, vendor, words[0])

    if code_phase is None:
        assert word_phase is not None and word is not None
        phase, vendor_status = word_phase, word
    elif word_phase is None or word is None:
        phase = code_phase
        vendor_status = f"{_code_text(code)} {EPM_CODE_WORDS.get(code, '')}".strip()  # type: ignore[arg-type]
    elif word_phase == code_phase:
        phase, vendor_status = code_phase, f"{_code_text(code)} {word}"  # type: ignore[arg-type]
    else:
        assert code is not None
        if code_phase == Phase.SUCCEEDED and word_phase == Phase.WARNING:
            trust_word = True  # "success" with warnings: the word says more
        elif word_phase.terminal != code_phase.terminal:
            trust_word = word_phase.terminal  # the documented quirk: trust the terminal one
        else:
            trust_word = code_phase == Phase.UNKNOWN
        if trust_word:
            phase, vendor_status = word_phase, f"{word} (status {_code_text(code)})"
        else:
            phase = code_phase
            vendor_status = (
                f"{_code_text(code)} {EPM_CODE_WORDS.get(code, '')} (said {word})".replace("  ", " ")
            )
        _log_disagreement(vendor, job_id, code, word, "status word" if trust_word else "status code")

    log_paths = tuple(
        p for p in (as_text(payload.get("logFileName")), as_text(payload.get("outputFileName"))) if p
    )
    facts = tuple(
        (label, value)
        for label, key in (
            ("Process type", "processType"), ("Job type", "jobType"), ("Executed by", "executedBy")
        )
        if (value := as_text(payload.get(key))) is not None
    )
    return JobStatus(
        job_id=job_id,
        phase=phase,
        vendor_status=vendor_status,
        name=as_text(payload.get("jobName")),
        message=details,
        log_paths=log_paths,
        links=_links(payload.get("links")),
        facts=facts,
    )


def parse_epm_body(raw: bytes, job_id: str, vendor: str) -> JobStatus:
    """Parse a raw answer body (lenient JSON, as the adapters read it) into a JobStatus."""
    try:
        payload = lenient_json(raw)
    except ValueError as exc:
        raise BadResponse(f"{vendor} sent malformed JSON") from exc
    return parse_epm_status(payload, job_id, vendor)


def bound_lines(
    lines: list[str], *, max_lines: int = 40, max_chars: int = 3000, line_chars: int = 400
) -> list[str]:
    """At most `max_lines` lines and `max_chars` characters in all; long lines are cut with an ellipsis."""
    out: list[str] = []
    used = 0
    for line in lines:
        line = line.rstrip()
        if len(line) > line_chars:
            line = line[: line_chars - 1] + "…"
        if len(out) >= max_lines or used + len(line) + 1 > max_chars:
            break
        out.append(line)
        used += len(line) + 1
    return out


# -- the adapters' base ------------------------------------------------------------------------------

class EpmBackend(Backend):
    """Base of the two EPM adapters: auth per config (one refresh-and-retry on 401 with OAuth), 503 as an
    outage."""

    epm_auth_types = ("basic", "bearer", "oauth2_refresh")

    def __init__(self, name: str, config: BackendConfig, *, secrets: SecretStore | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        super().__init__(name, config, secrets=secrets, http=http)
        auth = config.auth
        if isinstance(auth, BasicAuth):
            login = f"{auth.identity_domain}.{auth.username}" if auth.identity_domain else auth.username
            self.auth = httpx.BasicAuth(login, auth.password)
        elif isinstance(auth, BearerAuth):
            self.auth = HeaderAuth.bearer(auth.token)
        elif isinstance(auth, OAuth2Refresh):
            self.auth = RotatingRefreshToken(name, auth, secrets)
        else:
            raise ConfigError(
                f"backend '{name}': {self.type_name} supports auth types {', '.join(self.epm_auth_types)}, "
                f"not '{auth.type}'"
            )

    async def oauth_check(self) -> list[tuple[str, bool, str]]:
        """The `check` row for OAuth (empty without OAuth): can we refresh, and where the new token went."""
        if not isinstance(self.auth, RotatingRefreshToken):
            return []
        try:
            await self.sign_in()
        except BackendError as exc:
            return [("OAuth refresh token", False, exc.message)]
        where = ("stored in the secret store" if self.secrets is not None
                 else "kept in memory only (no secret store)")
        return [("OAuth refresh token", True, f"access token obtained; rotated refresh token {where}")]

    async def download(self, path: str, sink: Callable[[bytes], None], *, max_bytes: int) -> tuple[int, bool]:
        """Stream a file into `sink` (at most `max_bytes`); returns (bytes read, cut short).

        A JSON content type in the answer is EPM telling an error (even with HTTP 200): BadResponse with
        EPM's own details.
        """
        with unreachable(self.name):
            async with self.sending(), self.http.stream("GET", self.url(path), auth=self.auth) as resp:
                if not 200 <= resp.status_code < 300 or "json" in resp.headers.get("content-type", ""):
                    said = error_words(await read_body(resp, self.name), self.credentials(resp.request))
                    if resp.status_code == 404:
                        raise BadResponse(
                            f"{self.name} has no such file (HTTP 404: {said or 'no details given'})"
                        )
                    self.raise_for_status(resp)
                    raise BadResponse(f"{self.name} could not send the file: {said or 'no details given'}")
                total = 0
                async for chunk in resp.aiter_bytes():
                    if total + len(chunk) > max_bytes:
                        sink(chunk[: max_bytes - total])
                        return max_bytes, True
                    sink(chunk)
                    total += len(chunk)
                return total, False

    def raise_for_status(self, resp: httpx.Response) -> None:
        if resp.status_code == 503:
            raise Unavailable(
                f"{self.name} is unavailable (HTTP 503, most likely EPM's daily maintenance window)",
                retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
            )
        super().raise_for_status(resp)
