"""bot/domain/durations.py at its edges: a vendor's time without a zone is UTC whatever zone the bot's machine
is in, the 60 s a vendor's clock may be ahead, the epoch, and where `human` turns seconds into minutes and
hours.

CI runs in UTC, where reading a zoneless time as local time and as UTC agree: the zone tests set TZ to zones
east and west of UTC (and one with a half hour) for their own duration, and restore it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from bot.domain import durations
from bot.domain.states import Phase
from bot.domain.status import JobStatus

NOW = 1_766_000_000.0  # 2025-12-17T19:33:20Z


def _at(text: str) -> JobStatus:
    return JobStatus("1", Phase.SUCCEEDED, "SUCCEEDED", facts=(("Started", text),))


@pytest.fixture(params=["America/Los_Angeles", "Asia/Kolkata", "Pacific/Kiritimati"])
def zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """The process's local zone set to `request.param` (time.tzset), and put back afterwards."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        assert time.localtime(NOW).tm_gmtoff != 0  # the zone took effect: local time is not UTC here
        yield request.param
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_a_zoneless_vendor_time_is_utc_on_a_machine_in_any_zone(zone: str) -> None:
    assert durations.vendor_time(_at("2025-12-17T19:00:00"), "Started", NOW) == NOW - 2000, zone
    assert durations.vendor_time(_at(" 2025-12-17T19:00:00.500 "), "Started", NOW) == NOW - 1999.5
    assert durations.vendor_time(_at("2025-12-17T19:00:00Z"), "Started", NOW) == NOW - 2000
    assert durations.vendor_time(_at("2025-12-17T20:00:00+01:00"), "Started", NOW) == NOW - 2000
    assert durations.vendor_time(_at("2025-12-17T14:00:00-05:00"), "Started", NOW) == NOW - 2000
    # within the 60 s allowance in UTC, but an hour and more ahead if it were read as local time east of UTC
    assert durations.vendor_time(_at("2025-12-17T19:34:20"), "Started", NOW) == NOW + 60


@pytest.mark.parametrize(("text", "seen"), [
    ("2025-12-17T19:34:20Z", NOW + 60),  # a vendor's clock up to a minute ahead is still a measure
    ("2025-12-17T19:34:19.999Z", NOW + 59.999),
    ("2025-12-17T19:34:20.001Z", None),  # past it, the clock is off
    ("2025-12-17T19:34:21Z", None),
    ("2025-12-17T19:33:20Z", NOW),
    ("1970-01-01T00:00:01Z", 1.0),
    ("1970-01-01T00:00:00Z", None),  # no time at all
    ("1969-12-31T23:59:59Z", None),
    ("17/12/2025 19:00", None),
    ("   ", None),
])
def test_the_vendors_clock_may_be_a_minute_ahead_and_no_more(text: str, seen: float | None) -> None:
    got = durations.vendor_time(_at(text), "Started", NOW)
    assert got == (pytest.approx(seen) if seen is not None else None)


@pytest.mark.parametrize(("seconds", "words"), [
    (-5, "0 s"), (0.4, "0 s"), (0.6, "1 s"), (59, "59 s"), (59.4, "59 s"),
    (59.6, "1 min"), (60, "1 min"), (89.4, "1 min"), (89.6, "2 min"), (119, "2 min"),
    (3569, "59 min"), (3571, "1 h"), (3600, "1 h"), (3629, "1 h"), (3631, "1 h 1 min"), (3660, "1 h 1 min"),
    (7199, "2 h"), (2 * 3600 + 59 * 60, "2 h 59 min"), (86400, "24 h"), (90061, "25 h 1 min"),
])
def test_human_turns_seconds_into_minutes_at_a_minute_and_into_hours_at_an_hour(
        seconds: float, words: str) -> None:
    assert durations.human(seconds) == words


def test_a_late_threshold_from_the_fifth_run_on() -> None:
    runs = [600.0, 660.0, 720.0, 780.0, 840.0, 900.0]
    for n, late in ((4, None), (5, 816.0), (6, 870.0)):
        figures = durations.usual(runs[:n])
        assert figures is not None and figures.runs == n
        assert figures.late_after_s == (pytest.approx(late) if late is not None else None), n


def test_only_succeeded_runs_are_history_and_what_is_under_way_has_started() -> None:
    assert durations.RECORDED == {Phase.SUCCEEDED, Phase.WARNING}
    assert durations.UNDER_WAY == {Phase.RUNNING, Phase.PAUSED, Phase.CANCELLING}
    assert (durations.KEEP_RUNS, durations.MIN_RUNS, durations.LATE_PERCENTILE) == (50, 5, 90.0)


def test_the_history_key_is_bounded_and_a_fact_is_found_by_its_exact_label() -> None:
    long = JobStatus("1", Phase.RUNNING, "RUNNING", name="n" * 300)
    assert durations.run_key(long) == "n" * 200
    st = JobStatus("1", Phase.RUNNING, "RUNNING",
                   facts=(("job name", "a"), ("Job name", " b "), ("Job name", "c")))
    assert durations.run_key(st) == "b" and durations.fact(st, "Job name") == " b "
    assert durations.run_key(JobStatus("1", Phase.RUNNING, "R", facts=(("Job name", "  "),))) is None
    assert (durations.run_key(JobStatus("1", Phase.RUNNING, "R", name="", facts=(("Job name", "x" * 300),)))
            == "x" * 200)
