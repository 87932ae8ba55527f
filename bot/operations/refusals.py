"""The one refusal every operation raises: what the bot will not do, and what to do instead. Its own module
because every operation raises it (watching, quotas) and every way in answers it (bot/inbound/)."""

from __future__ import annotations


class UserError(Exception):
    """A request we refuse, with what to do instead (shown to the user alone). `code` names the reason for
    callers that are not people (the HTTP API turns it into a status, bot/inbound/api.py)."""

    def __init__(self, text: str, code: str = "refused", retry_after: int | None = None) -> None:
        super().__init__(text)
        self.code = code
        self.retry_after = retry_after  # seconds, when asking again later will do (a per-minute quota)
