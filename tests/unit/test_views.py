"""The Home tab and the modal as views Slack takes (the fake Slack's checks: slack_sdk's View and Block Kit
limits), the submission reader, the job id found in a message, and refusals turned plain for a field."""

from __future__ import annotations

from typing import Any

import pytest

from bot.backends.epm_common import validate_epm_job_id
from bot.domain.jobs import ButtonAction, JobView
from bot.domain.states import Phase
from bot.offline.slack.views import Views
from bot.rendering import views
from tests.unit.doubles import BackendDouble


def checked(view: dict[str, Any]) -> dict[str, Any]:
    return Views._checked_view(view, view["type"])  # raises ViewRefused for what Slack refuses


def job(job_id: str, phase: Phase = Phase.RUNNING, progress: int | None = 40) -> JobView:
    return JobView(backend="fusion-prod", job_id=job_id, name="Import <Payables>", phase=phase,
                   vendor_status="RUNNING", progress=progress, message=None, log_paths=[], links=[],
                   checked_at=1_766_000_000.0)


def test_home_lists_watches_with_stop_on_the_active_ones_and_the_backends_health() -> None:
    watches = [views.HomeWatch(7, "C1", job("44046"), True, None, "https://x/p1"),
               views.HomeWatch(3, "C2", job("1881", Phase.SUCCEEDED, None), False, "finished", None)]
    health = [views.Health("epm", 0, 0), views.Health("fusion-prod", 4, 4, 1.0, "unavailable"),
              views.Health("vault", 2, 0)]
    view = checked(views.home("U1", watches, 0, health, 1_766_000_100.0))
    text = str(view)
    stops = [b["accessory"] for b in view["blocks"] if "accessory" in b]
    assert [(s["action_id"], s["value"]) for s in stops] == [(ButtonAction.STOP.value, "7")]
    assert "Import &lt;Payables&gt;" in text and "<https://x/p1|thread>" in text and "<#C2>" in text
    assert "outage since" in text and "4 of 4 jobs failing: unavailable" in text
    assert "no job polled now" in text and "answering (2 jobs polled)" in text


def test_home_stays_within_100_blocks_however_many_watches() -> None:
    many = [views.HomeWatch(i, "C1", job(str(i)), True, None, None) for i in range(200)]
    view = checked(views.home("U1", many, 35, [], 0.0))
    assert len(view["blocks"]) <= 100
    assert "…and 195 more" in str(view)


def test_home_of_someone_without_watches_says_how_to_start() -> None:
    assert "Watch a job" in str(checked(views.home("U1", [], 0, [], 0.0)))


def test_the_modal_is_a_view_slack_takes_with_what_it_proposes() -> None:
    view = checked(views.watch_modal(["epm", "fusion-prod"], channel="C9", job_id="44046",
                                     backend="fusion-prod"))
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["backend"]["element"]["initial_option"]["value"] == "fusion-prod"
    assert blocks["job_id"]["element"]["initial_value"] == "44046"
    assert blocks["channel"]["element"]["initial_conversation"] == "C9"
    assert blocks["channel"]["element"]["response_url_enabled"] is True
    assert len(view["title"]["text"]) <= 24 and len(view["submit"]["text"]) <= 24


def test_the_global_modal_defaults_to_the_current_conversation_and_one_backend_is_chosen() -> None:
    view = checked(views.watch_modal(["epm"]))
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["channel"]["element"]["default_to_current_conversation"] is True
    assert blocks["backend"]["element"]["initial_option"]["value"] == "epm"


def test_without_backends_the_modal_says_so_and_has_nothing_to_submit() -> None:
    view = checked(views.watch_modal([]))
    assert "submit" not in view and "No backend is configured" in str(view)


def test_submission_reads_the_state_and_anything_broken_as_empty() -> None:
    state = {"values": {
        "backend": {"backend": {"type": "static_select", "selected_option": {"value": "epm"}}},
        "job_id": {"job_id": {"type": "plain_text_input", "value": " 44046 "}},
        "channel": {"channel": {"type": "conversations_select", "selected_conversation": "C1"}}}}
    assert views.Submission.of({"state": state}) == views.Submission("epm", "44046", "C1")
    assert (views.Submission.of({"state": {"values": {"backend": "x", "job_id": None}}})
            == views.Submission("", "", ""))
    assert views.Submission.of({}) == views.Submission("", "", "")


class EpmIds(BackendDouble):
    def validate_job_id(self, text: str) -> str:
        return validate_epm_job_id(text, "EPM", "digits only")


@pytest.mark.parametrize(("text", "expected"), [
    ("ESS request 44046 failed again", ("44046", None)),
    ("nothing here", (None, None)),
    ("at 12:30 job 0077 ended", ("77", None)),  # the first word with a digit that a backend takes
])
def test_job_id_in_a_message(text: str, expected: tuple[str | None, str | None]) -> None:
    found = views.job_id_in(text, {"epm": EpmIds()})
    assert found == (expected[0], "epm" if expected[0] else None)


def test_plain_undoes_mrkdwn_for_a_field_error() -> None:
    said = ("Backend `fusion` may not be watched in this channel (its `channels` setting allows: <#C2>). "
            "&lt;x&gt;")
    assert (views.plain(said)
            == "Backend fusion may not be watched in this channel (its channels setting allows: #C2). <x>")
