"""Reading vendor values defensively: lenient JSON, display text, numbers, and URLs built from user or vendor
text."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)


def path_segment(value: str) -> str:
    """URL-encode one path segment so user text can never change which URL is called."""
    return quote(value, safe="")


def absolute_url(base_url: str, href: Any) -> str | None:
    """A vendor link as an absolute http(s) URL: `/api/...` hangs off `base_url` (prefix kept); other schemes
    are dropped."""
    if not isinstance(href, str) or not href.strip():
        return None
    link = href.strip()
    if link.lower().startswith(("http://", "https://")):
        return link
    if ":" in link.split("/", 1)[0]:  # javascript:, mailto:, ... never become a link
        return None
    return f"{base_url.rstrip('/')}/{link.lstrip('/')}"


def lenient_json(raw: bytes) -> Any:
    """Parse JSON, repairing one documented vendor quirk: stray closing brackets (`}}` in an array).

    Raises ValueError when the text is not JSON even after the repair.
    """
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    repaired = _drop_unbalanced_closers(text)
    if repaired == text:
        raise ValueError("not JSON")
    result = json.loads(repaired)
    log.info("repaired malformed JSON from backend (dropped unbalanced closing brackets)")
    return result


def _drop_unbalanced_closers(text: str) -> str:
    out: list[str] = []
    stack: list[str] = []
    in_str = False
    escape = False
    pairs = {"}": "{", "]": "["}
    for ch in text:
        if in_str:
            out.append(ch)
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]":
            if not stack or stack[-1] != pairs[ch]:
                continue  # a closer that closes nothing open: drop it
            stack.pop()
        out.append(ch)
    return "".join(out)


def as_text(value: Any) -> str | None:
    """A vendor field as display text: None, "" and the string "null" mean nothing."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return None if value in ("", "null", "None") else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def as_int(value: Any) -> int | None:
    """A vendor number that may come as a string ("50"), a float or garbage."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None  # NaN and ±Infinity are garbage too
    if isinstance(value, str):
        try:
            return as_int(float(value.strip()))
        except ValueError:
            return None
    return None


# A listing of runs (Backend.recent_runs) reads at most this many pages in one go: past it, what is read is
# answered and the cap logged. 50 pages of 200 runs is 10,000 runs in one discovery interval.
MAX_LIST_PAGES = 50


def epoch_seconds(value: Any, default_zone: tzinfo = UTC) -> float | None:
    """A vendor's ISO 8601 time ("2020-12-16T07:00:00.000Z", "…+02:00") as epoch seconds, in the zone it
    carries; a time without a zone is read in `default_zone` (the vendor's documented zone). None for no time
    or one that does not parse: a listing shows the run without it rather than losing the run."""
    text = as_text(value)
    if text is None:
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=default_zone)
    return when.timestamp()


def iso_utc(epoch: float, millis: bool = False) -> str:
    """Epoch seconds as UTC `YYYY-MM-DDTHH:MM:SSZ` (with `.SSS` when `millis`), the form the vendors' date
    filters take."""
    when = datetime.fromtimestamp(epoch, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond // 1000:03d}" if millis else "") + "Z"
