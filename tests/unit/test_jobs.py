"""The outbox payloads: every event survives its JSON row as it was, and a release's reply reads as
written."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.jobs import (
    Change,
    Changed,
    JobEvent,
    JobView,
    Outage,
    Recovered,
    Reply,
    TimedOut,
    Upload,
    change_of,
    event_of,
    event_payload,
    shown_progress,
)
from bot.domain.states import Phase
from bot.domain.status import JobStatus, Link

_text = st.text(max_size=40)
_views = st.builds(
    JobView, backend=_text, job_id=_text, name=st.none() | _text, phase=st.sampled_from(Phase),
    vendor_status=_text, progress=st.none() | st.integers(-10, 200), message=st.none() | _text,
    log_paths=st.lists(_text, max_size=3).map(tuple),
    links=st.lists(st.builds(Link, _text, _text), max_size=2).map(tuple),
    checked_at=st.floats(0, 4e9), error_text=st.none() | _text)
_events: st.SearchStrategy[JobEvent] = st.one_of(
    st.builds(Changed, _views, _text, st.none() | st.sampled_from(Phase), st.none() | _text),
    st.builds(Recovered, _views),
    st.builds(Outage, _views, st.floats(0, 4e9), st.none() | _text),
    st.builds(TimedOut, _views, st.floats(0, 1e6)),
)


@given(_events)
def test_an_event_reads_back_from_its_row_as_it_was_written(event: JobEvent) -> None:
    assert event_of(json.loads(json.dumps(event_payload(event)))) == event


def test_a_reply_row_of_the_last_release_reads_as_it_wrote_it() -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*done*"}}]
    assert (Reply.of_payload({"text": "done", "blocks": blocks, "broadcast": True})
            == Reply("done", blocks, True))
    assert Reply.of_payload({"text": "", "blocks": []}) == Reply(" ", [], False)  # Slack wants some text


def test_a_file_row_reads_its_bytes_back() -> None:
    assert (Upload.of_payload(Upload("a.log", b"\x00\xffERROR\n").payload())
            == Upload("a.log", b"\x00\xffERROR\n"))


def test_a_job_that_failed_or_was_cancelled_shows_its_last_real_progress_not_100() -> None:
    assert shown_progress(Phase.FAILED, 100, 40) == 40  # the last progress seen while it ran
    assert shown_progress(Phase.CANCELLED, 100, None) is None  # none seen: none shown
    assert shown_progress(Phase.FAILED, 30, 40) == 30  # a percentage below 100 is the vendor's own reading
    assert shown_progress(Phase.SUCCEEDED, 100, 40) == 100 and shown_progress(Phase.WARNING, 100, 40) == 100
    assert shown_progress(Phase.RUNNING, 50, 40) == 50
    assert JobView.of_status("f", JobStatus("1", Phase.FAILED, "FAILED", progress=100), 0.0).progress is None


@pytest.mark.parametrize(("backend", "job_id", "name"), [
    ("epm-demo", "1881", "epm-demo-1881.log"),
    ("epm", "../../etc/passwd", "epm-.._.._etc_passwd.log"),
    ("vault", "<!here> 12", "vault-_here_12.log"),
    ("fusion", "", "fusion.log"),
    ("..", "..", "job.log"),
])
def test_a_logs_file_name_is_the_backend_and_job_made_filename_safe(
        backend: str, job_id: str, name: str) -> None:
    upload = Upload.of_log(backend, job_id, b"log")
    assert upload.filename == name and upload.content == b"log"
    assert "/" not in upload.filename and not upload.filename.startswith(".")


@dataclass(frozen=True)
class Knew:
    phase: Phase = Phase.RUNNING
    vendor_status: str = "RUNNING"
    progress: int | None = 40
    name: str | None = "Nightly load"


@pytest.mark.parametrize(("answer", "change"), [
    (JobStatus("1", Phase.RUNNING, "RUNNING", progress=40, name="Nightly load"), Change.NONE),
    # no name in the answer: the name stays
    (JobStatus("1", Phase.RUNNING, "RUNNING", progress=40), Change.NONE),
    (JobStatus("1", Phase.RUNNING, "RUNNING", progress=40, name=""), Change.NONE),
    (JobStatus("1", Phase.RUNNING, "RUNNING", progress=55, name="Nightly load"), Change.SHOWN),
    (JobStatus("1", Phase.RUNNING, "RUNNING", progress=None, name="Nightly load"), Change.SHOWN),
    (JobStatus("1", Phase.RUNNING, "RUNNING", progress=40, name="Nightly load v2"), Change.SHOWN),
    # the vendor's word
    (JobStatus("1", Phase.RUNNING, "WAIT", progress=40, name="Nightly load"), Change.STATE),
    (JobStatus("1", Phase.SUCCEEDED, "RUNNING", progress=40, name="Nightly load"), Change.STATE),
    (JobStatus("1", Phase.FAILED, "ERROR", progress=100, name="Other"), Change.STATE),
])
def test_one_function_says_how_an_answer_changes_a_job(answer: JobStatus, change: Change) -> None:
    assert change_of(Knew(), answer) is change
    assert (change_of(Knew(), answer) >= Change.SHOWN) == (change is not Change.NONE)
