"""How long a job's runs usually take, and when a run is longer than usual: pure functions.

A run's history key is its backend and its name: the name the vendor gives (`JobStatus.name`: EPM's
jobName, Fusion's description or job definition), else the name among its facts (Immuta's "Job name"). A
job without a name (Vault's jobs have none) has no history: its id never comes back, so nothing to compare.

A run lasts from its start to its end: the vendor's own times where it gives them (the "Started" and
"Ended" facts: Fusion's startTime and endTime, Vault's run_start_date and run_end_date), else the time the
bot first saw it running and the time it saw it end (so within a poll interval). Only runs that succeeded
(with or without warnings) are history: a failed or cancelled run stops early and would pull "usual" down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.domain.states import Phase
from bot.domain.status import JobStatus

KEEP_RUNS = 50  # finished runs kept per key: the newest ones
MIN_RUNS = 5  # past runs needed before a run can be "longer than usual"
LATE_PERCENTILE = 90.0
RECORDED = frozenset({Phase.SUCCEEDED, Phase.WARNING})  # outcomes whose durations are history
UNDER_WAY = frozenset({Phase.RUNNING, Phase.PAUSED, Phase.CANCELLING})  # started, not ended


def run_key(st: JobStatus) -> str | None:
    """The name a job's runs are kept under (with its backend), or None: no history for it."""
    if st.name and st.name.strip():
        return st.name.strip()[:200]
    named = fact(st, "Job name")
    return named.strip()[:200] if named and named.strip() else None


def fact(st: JobStatus, label: str) -> str | None:
    return next((value for key, value in st.facts if key == label), None)


def vendor_time(st: JobStatus, label: str, now: float) -> float | None:
    """The vendor's time in the fact `label` ("Started", "Ended") as epoch seconds: ISO 8601, UTC when it
    names no zone. None when absent, unreadable, or later than now (a clock that is off is no measure)."""
    text = fact(st, label)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ts = when.timestamp()
    return ts if 0 < ts <= now + 60 else None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Usual:
    """Past runs' figures: the median, how many runs, and the duration past which a run is late (None with
    fewer than MIN_RUNS runs)."""

    median_s: float
    runs: int
    late_after_s: float | None


def usual(seconds: Sequence[float]) -> Usual | None:
    """The figures of past runs' durations; None without any."""
    if not seconds:
        return None
    late = percentile(seconds, LATE_PERCENTILE) if len(seconds) >= MIN_RUNS else None
    return Usual(percentile(seconds, 50.0), len(seconds), late)


def human(seconds: float) -> str:
    """"45 s", "14 min", "2 h 5 min": a duration as people say it, rounded."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" if rest == 0 else f"{hours} h {rest} min"
