"""Run durations: the percentile, the usual figures, the history key, the vendor's times, and words."""

from __future__ import annotations

import pytest

from bot.domain import durations
from bot.domain.states import Phase
from bot.domain.status import JobStatus


def test_percentile_interpolates_between_the_closest_ranks() -> None:
    values = [float(v) for v in range(1, 11)]  # 1..10
    assert durations.percentile(values, 50) == pytest.approx(5.5)
    assert durations.percentile(values, 90) == pytest.approx(9.1)
    assert durations.percentile(values, 100) == 10.0 and durations.percentile(values, 0) == 1.0
    assert durations.percentile([7.0], 90) == 7.0
    assert durations.percentile([30.0, 10.0, 20.0], 50) == 20.0  # order does not matter
    with pytest.raises(ValueError):
        durations.percentile([], 90)


def test_usual_has_no_late_threshold_before_five_runs() -> None:
    assert durations.usual([]) is None
    four = durations.usual([600.0, 660.0, 720.0, 780.0])
    assert four is not None and four.runs == 4 and four.late_after_s is None and four.median_s == 690.0
    five = durations.usual([600.0, 660.0, 720.0, 780.0, 840.0])
    assert five is not None and five.late_after_s == pytest.approx(816.0) and five.median_s == 720.0


def test_the_key_is_the_vendors_name_else_the_job_name_fact_else_none() -> None:
    assert (durations.run_key(JobStatus("1", Phase.RUNNING, "RUNNING", name=" Nightly load "))
            == "Nightly load")
    immuta = JobStatus("1", Phase.RUNNING, "running", facts=(("Job type", "sdd"), ("Job name", "scan")))
    assert durations.run_key(immuta) == "scan"
    assert durations.run_key(JobStatus("1", Phase.RUNNING, "RUNNING", facts=(("Started", "x"),))) is None
    assert durations.run_key(JobStatus("1", Phase.RUNNING, "RUNNING", name="   ")) is None


def test_vendor_times_are_iso_8601_utc_unless_zoned_and_never_in_the_future() -> None:
    now = 1_766_000_000.0  # 2025-12-17T19:33:20Z
    st = JobStatus("1", Phase.SUCCEEDED, "SUCCEEDED", facts=(
        ("Started", "2025-12-17T19:00:00Z"), ("Ended", "2025-12-17T20:10:00+01:00")))
    assert durations.vendor_time(st, "Started", now) == now - 2000
    assert durations.vendor_time(st, "Ended", now) == now - 2000 + 600
    naive = JobStatus("1", Phase.RUNNING, "RUNNING", facts=(("Started", "2025-12-17T19:00:00"),))
    assert durations.vendor_time(naive, "Started", now) == now - 2000
    for bad in ("yesterday", "2031-01-01T00:00:00Z", ""):
        assert durations.vendor_time(JobStatus("1", Phase.RUNNING, "R", facts=(("Started", bad),)), "Started",
                                     now) is None
    assert durations.vendor_time(st, "Queued", now) is None


@pytest.mark.parametrize(("seconds", "words"), [
    (0, "0 s"), (44.6, "45 s"), (89, "1 min"), (14 * 60 + 10, "14 min"), (3600, "1 h"),
    (2 * 3600 + 5 * 60, "2 h 5 min"),
])
def test_human_durations(seconds: float, words: str) -> None:
    assert durations.human(seconds) == words
