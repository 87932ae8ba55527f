"""Tests of the Oracle Fusion job scheduler adapter: parsing the documented answers, and against the
simulator."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.backends.fusion import (
    MAX_FILE_PAGES,
    MAX_FILES,
    FusionJobScheduler,
    parse_output_files,
    parse_status,
)
from bot.domain.errors import (
    AuthFailed,
    BadResponse,
    CancelNotSupported,
    CancelRefused,
    InvalidJobId,
    JobNotFound,
    RateLimited,
    Unavailable,
)
from bot.domain.states import FUSION, Phase
from bot.domain.status import JobStatus
from bot.offline.vendors.core import FaultPlan, Step
from bot.offline.vendors.server import SimulatorServer
from bot.support.config import ConfigError
from tests.conftest import FakeClock, backend_config

TYPE = "fusion_jobscheduler"
STATUS = "/jobscheduler/v1/jobRequests/"
TOKEN = "/oauth2/v1/token"

# The four example answers of oracle-fusion-jobscheduler.txt, verbatim.
DOC_ENQUEUED = """{
  "jobDetails": {
    "jobRequestId": 44046,
    "jobRequest": {
      "serviceName": "boss",
      "jobDefinitionName": "DataExport",
      "systemDerivedVersion": "1260",
      "jobSubmitter": "RODS_EXTRACTION_USER",
      "description": "ExtractMostLabels-Test-OMS::ExtractMostLabels::Full::Immediate",
      "requestParameters": {
        "submit.argument1": "ExtractMostLabels",
        "submit.argument2": "Full Data Extract"
      },
      "jobRetryNumber": 0,
      "timeoutThreshold": 36000,
      "type": "BATCH"
    },
    "jobStatus": "ENQUEUED",
    "jobProgress": {
      "jobRequestId": 44046,
      "status": "ENQUEUED",
      "message": "Job Request has been enqueued",
      "startTime": "2025-12-18T07:38:58Z",
      "endTime": "2025-12-18T07:38:59Z",
      "completedPercentage": "0",
      "completed": false
    }
  }
}"""
DOC_RUNNING = """{
  "jobDetails": {
    "jobRequestId": 44046,
    "jobStatus": "RUNNING",
    "jobProgress": {
      "status": "RUNNING",
      "message": "Job status is changed to RUNNING",
      "completedPercentage": "50",
      "completed": false
    }
  }
}"""
DOC_IN_PROGRESS = """{
  "jobDetails": {
    "jobRequestId": 31682,
    "jobStatus": "IN_PROGRESS",
    "jobProgress": {
      "status": "IN_PROGRESS",
      "message": "Job Request is in progress",
      "completedPercentage": "0",
      "completed": false
    }
  }
}"""
DOC_SUCCEEDED = """{
  "jobDetails": {
    "jobRequestId": 31664,
    "jobStatus": "SUCCEEDED",
    "jobProgress": {
      "status": "SUCCEEDED",
      "message": "Job status is changed to SUCCEEDED",
      "completedPercentage": "100",
      "completed": true
    }
  }
}"""


def answer(status: str, *, completed: bool = False, message: str = "m", job_id: int = 7) -> dict[str, Any]:
    return {"jobDetails": {"jobRequestId": job_id, "jobStatus": status, "jobProgress": {
        "status": status, "message": message, "completedPercentage": "10", "completed": completed}}}


# -- parse_status from the documents ---------------------------------------------------------------------
def test_doc_enqueued() -> None:
    s = parse_status(json.loads(DOC_ENQUEUED), "44046")
    assert (s.phase, s.vendor_status, s.progress) == (Phase.QUEUED, "ENQUEUED", 0)
    assert s.name == "ExtractMostLabels-Test-OMS::ExtractMostLabels::Full::Immediate"
    assert s.timeout_s == 36000
    facts = dict(s.facts)
    assert facts["Definition"] == "DataExport" and facts["Started"] == "2025-12-18T07:38:58Z"
    assert "Ended" not in facts  # endTime is set while ENQUEUED: never read as completion
    assert s.message is None and not s.terminal


def test_doc_running_then_in_progress_drops_progress() -> None:
    running = parse_status(json.loads(DOC_RUNNING), "44046")
    in_progress = parse_status(json.loads(DOC_IN_PROGRESS), "31682")
    assert (running.phase, running.progress) == (Phase.RUNNING, 50)
    assert (in_progress.phase, in_progress.vendor_status, in_progress.progress) == (
        Phase.RUNNING,
        "IN_PROGRESS",
        0,
    )
    assert running.timeout_s is None and running.name is None  # no jobRequest in these answers


def test_doc_succeeded() -> None:
    s = parse_status(json.loads(DOC_SUCCEEDED), "31664")
    assert (s.phase, s.vendor_status, s.progress, s.terminal) == (Phase.SUCCEEDED, "SUCCEEDED", 100, True)
    assert s.message is None


def test_succeeded_needs_completed_true() -> None:
    for completed in (False, None, "false"):
        payload = answer("SUCCEEDED", completed=completed)  # type: ignore[arg-type]
        assert parse_status(payload, "7").phase is Phase.RUNNING
    assert parse_status(answer("SUCCEEDED", completed="true"), "7").phase is Phase.SUCCEEDED  # type: ignore[arg-type]


def test_failed_carries_the_message() -> None:
    s = parse_status(answer("FAILED", completed=True, message="ORA-01555: snapshot too old"), "7")
    assert (s.phase, s.message) == (Phase.FAILED, "ORA-01555: snapshot too old")


@pytest.mark.parametrize(("word", "phase"), sorted(FUSION.items()))
def test_every_fusion_word(word: str, phase: Phase) -> None:
    s = parse_status(answer(word, completed=phase.terminal), "7")
    assert (s.phase, s.vendor_status) == (phase, word)


@pytest.mark.parametrize("word", ["CANCELED", "CANCELLED", "WARNING", "PAUSED", "ERROR"])
def test_client_seen_words(word: str) -> None:
    assert parse_status(answer(word, completed=True), "7").phase is not Phase.UNKNOWN


# Every ESS request state the issue lists, and whether it ends the watch, as Oracle describes it (states.py
# quotes the descriptions): the saas-batch `completed` flag is not documented for them, so it must not matter.
ESS_STATES = {
    "COMPLETED": False, "EXPIRED": True, "FINISHED": True, "VALIDATION_FAILED": True, "SCHEDULE_ENDED": True,
    "ERROR_AUTO_RETRY": False, "ERROR_MANUAL_RECOVERY": False, "PENDING_VALIDATION": False, "BLOCKED": False,
    "HOLD": False, "WAIT": False, "READY": False, "UNKNOWN": False, "ERROR": True, "WARNING": True,
    "SUCCEEDED": True, "CANCELLED": True, "CANCELLING": False, "PAUSED": False, "RUNNING": False,
}


@pytest.mark.parametrize(("word", "terminal"), sorted(ESS_STATES.items()))
@pytest.mark.parametrize("completed", [False, True])
def test_every_ess_state_is_mapped_and_its_word_stays_visible(word: str, terminal: bool, completed: bool,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot")
    s = parse_status(answer(word, completed=completed), "7")
    assert word in FUSION and s.vendor_status == word
    assert s.terminal is (terminal and (completed or word != "SUCCEEDED"))  # SUCCEEDED alone needs completed
    assert not [r for r in caplog.records if "unknown Fusion status" in r.getMessage()]


@pytest.mark.parametrize(
    ("word", "phase"),
    [
        ("EXPIRED", Phase.FAILED),
        ("VALIDATION_FAILED", Phase.FAILED),
        ("FINISHED", Phase.SUCCEEDED),
        ("SCHEDULE_ENDED", Phase.SUCCEEDED),
        ("ERROR_MANUAL_RECOVERY", Phase.PAUSED),
        ("ERROR_AUTO_RETRY", Phase.QUEUED),
        ("COMPLETED", Phase.RUNNING),
        ("UNKNOWN", Phase.UNKNOWN),
    ],
)
def test_ess_states_phases(word: str, phase: Phase) -> None:
    s = parse_status(answer(word, message="ESS said why"), "7")
    assert s.phase is phase
    if phase in (Phase.FAILED, Phase.PAUSED, Phase.UNKNOWN):
        assert s.message == "ESS said why"  # where it matters, Fusion's message is shown with the word


def test_unknown_word_is_unknown_not_an_error() -> None:
    s = parse_status(answer("SOMETHING_NEW"), "7")
    assert (s.phase, s.vendor_status, s.message) == (Phase.UNKNOWN, "SOMETHING_NEW", "m")


def test_status_falls_back_to_job_status_and_lower_case() -> None:
    s = parse_status({"jobDetails": {"jobStatus": "running"}}, "7")
    assert (s.phase, s.vendor_status) == (Phase.RUNNING, "running")


GARBAGE: list[Any] = [
    None,
    "RUNNING",
    42,
    1.5,
    True,
    [],
    [DOC_RUNNING],
    {},
    {"jobDetails": None},
    {"jobDetails": []},
    {"jobDetails": "RUNNING"},
    {"jobDetails": {}},
    {"jobDetails": {"jobProgress": []}},
    {"jobDetails": {"jobProgress": "RUNNING"}},
    {"jobDetails": {"jobProgress": {"status": 5}}},
    {"jobDetails": {"jobProgress": {"status": {"a": 1}}}},
    {"jobDetails": {"jobProgress": {"status": ["RUNNING"]}}},
    {"jobDetails": {"jobProgress": {"status": "  "}}},
    {"jobDetails": {"jobStatus": None}},
    {"jobDetails": {"jobStatus": "RUNNING", "jobRequest": [1]}},
    {"jobDetails": {"jobStatus": "RUNNING", "jobRequestId": {"id": 7}}},
    {"jobDetails": {"jobStatus": "RUNNING", "jobRequestId": "abc"}},
    {"jobDetails": {"jobStatus": "RUNNING", "jobRequestId": "Infinity"}},
    {"jobDetails": {"jobStatus": "RUNNING", "jobRequestId": 8}},  # an answer about another job
]


@pytest.mark.parametrize("payload", GARBAGE)
def test_garbage_is_bad_response(payload: Any) -> None:
    with pytest.raises(BadResponse):
        parse_status(payload, "7")


def test_odd_minor_fields_are_ignored() -> None:
    payload = answer("RUNNING")
    payload["jobDetails"]["jobProgress"].update(completedPercentage={"x": 1}, message=["m"], startTime=3)
    s = parse_status(payload, "7")
    assert (s.phase, s.progress) == (Phase.RUNNING, None)
    payload["jobDetails"]["jobProgress"]["completedPercentage"] = "250"
    assert parse_status(payload, "7").progress == 100
    for odd in ("Infinity", "NaN", "1e400", float("inf")):
        payload["jobDetails"]["jobProgress"]["completedPercentage"] = odd
        assert parse_status(payload, "7").progress is None
    payload["jobDetails"]["jobRequest"] = {"timeoutThreshold": "-Infinity"}
    assert parse_status(payload, "7").timeout_s is None


ODD_WORDS = [
    "RUNNING",
    "SUCCESS",
    "SUCCEEDED",
    "FAILURE",
    "true",
    "Infinity",
    "-inf",
    "NaN",
    "1e400",
    "7",
    " 7 ",
]
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(ODD_WORDS),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "jobDetails",
                    "jobProgress",
                    "jobRequest",
                    "status",
                    "jobStatus",
                    "completed",
                    "completedPercentage",
                    "message",
                    "jobRequestId",
                    "timeoutThreshold",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_fuzz_only_bad_response_escapes(payload: Any) -> None:
    try:
        assert isinstance(parse_status(payload, "7"), JobStatus)
    except BadResponse:
        pass
    try:
        parse_output_files(payload, "https://h")
    except BadResponse:
        pass


def test_output_files_parse() -> None:
    payload = {
        "items": [
            {
                "fileName": "a.zip",
                "fileSize": 12,
                "timeCreated": "t",
                "checksum": "c",
                "$context": {
                    "links": {
                        "enclosure": {
                            "href": "/api/saas-batch/jobfilemanager/v1/jobRequests/1/outputFiles/a.zip"
                        }
                    }
                },
            },
            {
                "fileName": "b.log",
                "fileSize": "3",
                "$context": {"links": {"enclosure": {"href": "javascript:alert(1)"}}},
            },
        ]
    }
    page = parse_output_files(payload, "https://pod.example.com/prefix")
    assert page.files == [("a.zip", 12), ("b.log", 3)] and (page.has_more, page.total) == (False, None)
    assert [(link.label, link.url) for link in page.links] == [
        ("a.zip", "https://pod.example.com/prefix/api/saas-batch/jobfilemanager/v1/jobRequests/1/outputFiles/a.zip")]
    for bad in ({"items": "x"}, {"items": [1]}, {"items": [{"fileSize": 1}]}, []):
        with pytest.raises(BadResponse):
            parse_output_files(bad, "https://h")


# -- against the simulator -----------------------------------------------------------------------------
Make = Callable[..., FusionJobScheduler]


@pytest.fixture
async def make(sim: SimulatorServer) -> AsyncIterator[Make]:
    made: list[FusionJobScheduler] = []
    sim.fusion.basic_users["etl"] = "s3cret-pw"
    sim.fusion.bearer_tokens.add("tok-1")
    sim.fusion.oauth_clients["cid"] = "client-s3cret"

    def _make(auth: dict[str, Any] | None = None, **kw: Any) -> FusionJobScheduler:
        backend = FusionJobScheduler(
            "fusion", backend_config(sim, TYPE, auth or {"type": "bearer", "token": "tok-1"}, **kw)
        )
        made.append(backend)
        return backend

    yield _make
    for backend in made:
        await backend.aclose()


def oauth(sim: SimulatorServer, secret: str = "client-s3cret") -> dict[str, Any]:
    return {
        "type": "oauth2",
        "token_url": sim.base_url(TYPE) + TOKEN,
        "client_id": "cid",
        "client_secret": secret,
    }


@pytest.mark.parametrize("auth", [
    {"type": "basic", "username": "etl", "password": "s3cret-pw"},
    {"type": "bearer", "token": "tok-1"},
    None,  # oauth2, filled in below
])
async def test_status_with_each_auth(sim: SimulatorServer, make: Make, auth: dict[str, Any] | None) -> None:
    sim.fusion.add_job(44046, name="ExtractMostLabels", state="RUNNING")
    s = await make(auth or oauth(sim)).status("44046")
    assert (s.job_id, s.phase, s.vendor_status, s.progress, s.name) == (
        "44046", Phase.RUNNING, "RUNNING", 50, "ExtractMostLabels")
    assert s.timeout_s == 36000


@pytest.mark.parametrize("auth", [
    {"type": "basic", "username": "etl", "password": "wrong-pw"},
    {"type": "bearer", "token": "wrong-token"},
])
async def test_wrong_credentials(sim: SimulatorServer, make: Make, auth: dict[str, Any]) -> None:
    sim.fusion.add_job(1)
    with pytest.raises(AuthFailed) as err:
        await make(auth).status("1")
    assert "wrong" not in str(err.value)


async def test_wrong_client_secret_never_shown(sim: SimulatorServer, make: Make) -> None:
    sim.fusion.add_job(1)
    with pytest.raises(AuthFailed) as err:
        await make(oauth(sim, secret="not-the-secret")).status("1")
    assert "not-the-secret" not in str(err.value) and "invalid_client" in str(err.value)
    assert sim.fusion.count("GET", STATUS) == 0


async def test_oauth_token_cached_until_expiry(sim: SimulatorServer, make: Make) -> None:
    sim.fusion.add_job(1, state="RUNNING")
    backend = make(oauth(sim))
    clock = FakeClock()
    backend.clock = clock
    for _ in range(3):
        await backend.status("1")
    assert sim.fusion.count("POST", TOKEN) == 1
    clock.advance(3600)  # expires_in: a new token before the next call, without a 401 first
    await backend.status("1")
    assert sim.fusion.count("POST", TOKEN) == 2
    assert sim.fusion.count("GET", STATUS) == 4


async def test_oauth_refresh_once_on_401(sim: SimulatorServer, make: Make) -> None:
    sim.fusion.add_job(1, state="RUNNING")
    backend = make(oauth(sim))
    await backend.status("1")
    sim.fusion.revoke_tokens()
    assert (await backend.status("1")).phase is Phase.RUNNING
    assert sim.fusion.count("POST", TOKEN) == 2
    assert sim.fusion.count("GET", STATUS) == 3  # ok, 401, ok again


async def test_oauth_second_401_is_auth_failed(sim: SimulatorServer, make: Make) -> None:
    sim.fusion.add_job(1)
    sim.fusion.token_ttl = -1  # every token is dead on arrival
    with pytest.raises(AuthFailed):
        await make(oauth(sim)).status("1")
    assert sim.fusion.count("POST", TOKEN) == 2
    assert sim.fusion.count("GET", STATUS) == 2


async def test_oauth_concurrent_calls_share_one_token(sim: SimulatorServer, make: Make) -> None:
    for i in range(5):
        sim.fusion.add_job(i, state="RUNNING")
    backend = make(oauth(sim))
    results = await asyncio.gather(*(backend.status(str(i)) for i in range(5)))
    assert {r.phase for r in results} == {Phase.RUNNING}
    assert sim.fusion.count("POST", TOKEN) == 1


async def test_oauth_concurrent_401s_share_one_refresh(sim: SimulatorServer, make: Make) -> None:
    for i in range(5):
        sim.fusion.add_job(i, state="RUNNING")
    backend = make(oauth(sim))
    await backend.status("0")
    sim.fusion.revoke_tokens()
    results = await asyncio.gather(*(backend.status(str(i)) for i in range(5)))
    assert {r.phase for r in results} == {Phase.RUNNING}
    assert sim.fusion.count("POST", TOKEN) == 2


async def test_timeline_follows_the_documented_quirks(sim: SimulatorServer, make: Make) -> None:
    clock = FakeClock()
    sim.fusion.clock = clock
    sim.fusion.add_job(44046, name="Extract", steps=[
        Step(0, "ENQUEUED"), Step(3, "RUNNING"), Step(5, "IN_PROGRESS"), Step(8, "SUCCEEDED")])
    backend = make()
    seen = []
    for _ in range(4):
        s = await backend.status("44046")
        seen.append((s.phase, s.vendor_status, s.progress))
        clock.advance(3)
    assert seen == [(Phase.QUEUED, "ENQUEUED", 0), (Phase.RUNNING, "RUNNING", 50),
                    (Phase.RUNNING, "IN_PROGRESS", 0), (Phase.SUCCEEDED, "SUCCEEDED", 100)]


async def test_failure_details_lists_output_files(sim: SimulatorServer, make: Make) -> None:
    sim.fusion.add_job(9, state="FAILED", output_files=[("ESS_L_9.log", 2048), ("extract.zip", None)])
    sim.fusion.set_state(9, "FAILED", message="Extract failed: ORA-00942")
    backend = make()
    s = await backend.status("9")
    assert (s.phase, s.message) == (Phase.FAILED, "Extract failed: ORA-00942")
    details = await backend.failure_details(s)
    assert details is not None
    assert details.lines == ("Extract failed: ORA-00942",)
    assert details.files == (("ESS_L_9.log", 2048), ("extract.zip", None))
    assert details.links[0].url == (
        sim.base_url(TYPE) + "/api/saas-batch/jobfilemanager/v1/jobRequests/9/outputFiles/"
        # the enclosure is the file's content, as in Oracle's example
        "ESS_L_9.log/content"
    )
    assert "Scheduled Processes" in (details.hint or "")
    assert await backend.failure_details(parse_status(answer("RUNNING", job_id=9), "9")) is None


async def test_failure_details_survive_a_broken_file_list(sim: SimulatorServer, make: Make) -> None:
    backend = make()
    s = parse_status(answer("FAILED", completed=True, message="boom", job_id=404), "404")
    details = await backend.failure_details(s)  # the simulator has no job 404: no files, still the message
    assert details is not None and details.lines == ("boom",) and details.files == ()


async def test_unknown_job_is_not_found(sim: SimulatorServer, make: Make) -> None:
    with pytest.raises(JobNotFound):
        await make().status("123456")


@pytest.mark.parametrize("text", ["", "abc", "12a", "-1", "1" * 19, "12/34", "../1", "1 2", "٣"])
async def test_invalid_job_ids(make: Make, text: str) -> None:
    with pytest.raises(InvalidJobId) as err:
        make().validate_job_id(text)
    assert "digits only" in str(err.value) or str(err.value).endswith("19 digits, at most 18")


def test_valid_job_id_is_trimmed(make: Make) -> None:
    assert make().validate_job_id(" 44046 ") == "44046"


@pytest.mark.parametrize(("kind", "error"), [
    ("html", BadResponse), ("malformed", BadResponse), ("empty", BadResponse), ("truncated", BadResponse),
    ("wrong_types", BadResponse), ("500", Unavailable), ("503", Unavailable),
])
async def test_faults(sim: SimulatorServer, make: Make, kind: str, error: type[Exception]) -> None:
    sim.fusion.add_job(1, state="RUNNING")
    sim.fusion.faults = FaultPlan(rate=1.0, kinds=(kind,))
    with pytest.raises(error):
        await make().status("1")


async def test_429_gives_retry_after(sim: SimulatorServer, make: Make) -> None:
    sim.fusion.add_job(1)
    sim.fusion.faults = FaultPlan(rate=1.0, kinds=("429",), retry_after=7)
    with pytest.raises(RateLimited) as err:
        await make().status("1")
    assert err.value.retry_after == 7.0


async def test_cancel_off_by_default(sim: SimulatorServer, make: Make) -> None:
    sim.fusion.add_job(1, state="RUNNING")
    backend = make()
    assert backend.can_cancel is False
    with pytest.raises(CancelNotSupported) as err:
        await backend.cancel("1")
    assert "Scheduled Processes" in str(err.value)
    assert sim.fusion.count("POST", "/cancel") == 0


async def test_cancel_running_job(sim: SimulatorServer, make: Make) -> None:
    clock = FakeClock()
    sim.fusion.clock = clock
    sim.fusion.add_job(1, state="RUNNING")
    backend = make(cancel_enabled=True)
    assert backend.can_cancel is True
    assert "CANCELLING" in await backend.cancel("1")
    assert (await backend.status("1")).phase is Phase.CANCELLING
    clock.advance(sim.fusion.cancel_delay)
    s = await backend.status("1")
    assert (s.phase, s.vendor_status, s.terminal) == (Phase.CANCELLED, "CANCELLED", True)


async def test_cancel_refused_shows_fusion_words(sim: SimulatorServer, make: Make) -> None:
    sim.fusion.add_job(1, state="SUCCEEDED")
    with pytest.raises(CancelRefused) as err:
        await make(cancel_enabled=True).cancel("1")
    assert "Request 1 cannot be cancelled in state SUCCEEDED." in str(err.value)


async def test_cancel_unknown_to_ess(sim: SimulatorServer, make: Make) -> None:
    with pytest.raises(CancelRefused) as err:
        await make(cancel_enabled=True).cancel("77")
    assert "Scheduled Processes" in str(err.value)


async def test_check_rows(sim: SimulatorServer, make: Make) -> None:
    rows = await make(oauth(sim)).check()
    assert [(what, ok) for what, ok, _ in rows] == [
        ("reachable", True), ("authenticated", True), ("job scheduler API v1", True)]
    bad = await make({"type": "basic", "username": "etl", "password": "nope"}).check()
    assert ("authenticated", False) in [(what, ok) for what, ok, _ in bad]
    token_refused = await make(oauth(sim, secret="nope")).check()
    assert [(what, ok) for what, ok, _ in token_refused] == [("authenticated", False)]


def test_vault_session_auth_is_a_config_error(sim: SimulatorServer) -> None:
    cfg = backend_config(sim, TYPE, {"type": "vault_session", "username": "u", "password": "p"})
    with pytest.raises(ConfigError, match="auth.type"):
        FusionJobScheduler("fusion", cfg)


# -- output files are paged ----------------------------------------------------------------------------------
def _files_requests(sim: SimulatorServer, job_id: int) -> list[dict[str, list[str]]]:
    return [
        parse_qs(r.query)
        for r in sim.fusion.requests
        if r.path.endswith(f"/jobRequests/{job_id}/outputFiles")
    ]


async def test_output_files_follow_the_pages_as_in_oracles_example(sim: SimulatorServer, make: Make) -> None:
    sim.fusion.files_max_limit = 1  # Oracle's example: one item, "totalItems": 2
    sim.fusion.add_job(44055, state="SUCCEEDED", output_files=[("44055_S_carriers_1.zip", 2876),
                                                                ("44055_S_carriers_2.zip", 1024)])
    backend = make()
    details = await backend.failure_details(await backend.status("44055"))
    assert details is not None
    assert details.files == (("44055_S_carriers_1.zip", 2876), ("44055_S_carriers_2.zip", 1024))
    assert [link.label for link in details.links] == ["44055_S_carriers_1.zip", "44055_S_carriers_2.zip"]
    assert "more output files" not in (details.hint or "") and details.lines == ()
    assert [q["offset"] for q in _files_requests(sim, 44055)] == [["0"], ["1"]]


async def test_many_output_files_are_bounded_and_the_rest_counted_from_total_items(sim: SimulatorServer,
                                                                                    make: Make) -> None:
    sim.fusion.files_max_limit = 2
    names = [(f"part_{i:03}.zip", i) for i in range(45)]
    sim.fusion.add_job(7, state="FAILED", output_files=names)
    backend = make()
    details = await backend.failure_details(await backend.status("7"))
    assert details is not None
    assert details.files == tuple(names[:MAX_FILES]) and len(details.links) == MAX_FILES
    # from totalItems, not only what was read; said with the hint, not among the job's errors
    assert f"…and {45 - MAX_FILES} more output files." in (details.hint or "")
    assert not [line for line in details.lines if "output files" in line]
    assert len(_files_requests(sim, 7)) == MAX_FILE_PAGES  # bounded


def _paging_vendor(pages: Callable[[int], dict[str, Any]]) -> httpx.AsyncClient:
    """A stand-in Fusion for answers the simulator never gives (no totalItems; an offset it ignores)."""
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/outputFiles"):
            return httpx.Response(200, json=pages(int(request.url.params.get("offset", "0"))))
        return httpx.Response(404, json={"title": "Not Found", "status": 404})
    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def _item(name: str) -> dict[str, Any]:
    return {"fileName": name, "fileSize": 1}


async def test_pages_without_total_items_say_that_more_were_not_read(sim: SimulatorServer) -> None:
    http = _paging_vendor(lambda offset: {"items": [_item(f"f{offset}")], "hasMore": True, "offset": offset})
    backend = FusionJobScheduler("fusion", backend_config(sim, TYPE), http=http)
    details = await backend.failure_details(parse_status(answer("FAILED", completed=True), "7"))
    assert details is not None and len(details.files) == MAX_FILE_PAGES
    assert f"…and more output files: Fusion said there were more, but not how many ({MAX_FILE_PAGES} read)" \
        in (details.hint or "")
    await backend.aclose()


async def test_a_server_that_ignores_the_offset_is_not_read_twice(sim: SimulatorServer) -> None:
    http = _paging_vendor(lambda offset: {"items": [_item("a"), _item("b")], "hasMore": True, "offset": 0,
                                          "totalItems": 9})
    backend = FusionJobScheduler("fusion", backend_config(sim, TYPE), http=http)
    details = await backend.failure_details(parse_status(answer("FAILED", completed=True), "7"))
    assert details is not None and details.files == (("a", 1), ("b", 1))
    assert "…and 7 more output files" in (details.hint or "")
    await backend.aclose()


async def test_an_ess_final_state_from_the_simulator_ends_the_job(sim: SimulatorServer, make: Make) -> None:
    sim.fusion.add_job(31, steps=[Step(0, "WAIT"), Step(0, "READY")])
    backend = make()
    assert (await backend.status("31")).phase is Phase.QUEUED
    for word, terminal in (("COMPLETED", False), ("ERROR_MANUAL_RECOVERY", False), ("EXPIRED", True)):
        sim.fusion.set_state(31, word)
        s = await backend.status("31")
        assert (s.vendor_status, s.terminal) == (word, terminal)
