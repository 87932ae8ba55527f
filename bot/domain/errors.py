"""The errors a backend raises: one class for each thing a user must be told, and the outage/failure line
between them.

`str()` of every one is safe to show a user: it never holds a secret (the vendor's own words in it are escaped
by whoever puts them into Slack). `kind` names the class in the database (`Job.error_kind`), so it never
changes.

    BackendError              the backend could not answer as hoped
    ├── InvalidJobId          what the user typed is no job id of this vendor; the text says what one looks
    like ├── JobNotFound           the vendor does not know the job: check the id (and the backend it was
    asked of) ├── AuthFailed            the vendor refused the bot's credentials, even after one fresh token
    or login: │                         the bot's operator must fix the backend's auth settings
    ├── Forbidden             the credentials work, but this account may not see that: the operator must grant
    it ├── Unavailable           network error, timeout, 5xx, maintenance window: an outage to ride out; the
    watch │   │                     goes on (`retry_after`, when the vendor says, is when to ask again)
    │   ├── RateLimited       the vendor (or its published limit) says to slow down: wait `retry_after`
    │   └── TooSlow           no whole answer (connect, headers and body) within the request's total deadline
    ├── BadResponse           the vendor answered something we cannot read (HTML, broken JSON, wrong types,
    too big) │   └── Refused           a 4xx other than 401/403/404/429, with the vendor's own words:
    readable, but no answer │                         about the job
    ├── Misconfigured         the address we call does not exist for the vendor (Vault's MALFORMED_URL): the
    │                         backend's `base_url` or `api_version` is wrong, for every job of the backend
    ├── CancelNotSupported    this backend offers no cancel (or it is turned off): the text says where to
    cancel └── CancelRefused         the vendor refused to cancel this job now, in its own words
"""

from __future__ import annotations

from typing import ClassVar


class BackendError(Exception):
    """A backend could not answer as hoped. `str()` is safe to show to a user: it never holds a secret."""

    kind: ClassVar[str] = "error"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class InvalidJobId(BackendError):
    kind = "invalid_job_id"


class JobNotFound(BackendError):
    kind = "not_found"


class AuthFailed(BackendError):
    """401 after one fresh token or login, or credentials refused at the token/login endpoint."""

    kind = "auth"


class Forbidden(BackendError):
    kind = "forbidden"


class Unavailable(BackendError):
    """Network error, timeout, 5xx, maintenance window: an outage to ride out."""

    kind = "unavailable"


class RateLimited(Unavailable):
    kind = "rate_limited"


class TooSlow(Unavailable):
    """The vendor did not give a whole answer (connect, headers and the whole body) within the request's
    total deadline: it answers too slowly (a drip of bytes, a stalled body, a hung connection)."""

    kind = "too_slow"


class BadResponse(BackendError):
    """The backend answered something we cannot read (HTML, broken JSON, wrong types)."""

    kind = "bad_response"


class Refused(BadResponse):
    """The backend refused the request with a 4xx other than 401/403/404/429, and (usually) said why in its
    own words: readable, but not an answer about the job."""

    kind = "refused"


class Misconfigured(BackendError):
    """The backend says the address we call does not exist for it: the backend's `base_url` or `api_version`
    setting is wrong (Vault's MALFORMED_URL). Not about one job: every job of the backend gets it."""

    kind = "misconfigured"


class CancelNotSupported(BackendError):
    kind = "cancel_not_supported"


class CancelRefused(BackendError):
    kind = "cancel_refused"


class FollowNotSupported(BackendError):
    """The vendor documents no listing of runs, so a job cannot be followed by name there: the message says
    why and what to do instead (watch each run by its id)."""

    kind = "follow_not_supported"
