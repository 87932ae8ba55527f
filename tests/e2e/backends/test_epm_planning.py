"""Oracle EPM Planning: the document's examples (stray `}}` included), auth, outages, paged job details."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.backends.epm_common import parse_epm_body
from bot.backends.epm_planning import EpmPlanning, child_job_id, format_item, parse_status
from bot.backends.values import lenient_json
from bot.domain.errors import (
    AuthFailed,
    BadResponse,
    CancelNotSupported,
    InvalidJobId,
    JobNotFound,
    Unavailable,
)
from bot.domain.states import EPM_CODES, EPM_WORDS, Phase
from bot.domain.status import JobStatus
from bot.offline.vendors.core import FaultPlan, Step
from bot.offline.vendors.epm_planning import DOC_ERROR_EXAMPLE
from bot.offline.vendors.server import SimulatorServer
from bot.support.config import ConfigError
from tests.conftest import backend_config

TYPE = "epm_planning"

# The document's examples, verbatim.
DOC_METADATA_EXAMPLE = """{
"status": 0,
"details": "Metadata import was successful",
"jobId": 224,
"jobName": "Import Account Metadata",
"descriptiveStatus": "Completed",
"links": [{
"rel": "self",
"href": "https://<BASE-URL>/HyperionPlanning/rest/v3/applications/test2/jobs/224",
"action": "GET"
}, {
"rel": "job-details",
"href": "https://<BASE-URL>/HyperionPlanning/rest/v3/applications/test2/jobs/224/details",
"action": "GET"
}]
}"""

DOC_REFRESH_ERROR_EXAMPLE = """{
"status": 1,
"details": "An error occurred while updating the relational database.",
"jobStatus": "Error",
"jobId": 145,
"jobName": "Refresh Database",
"links": [{
"rel": "self",
"href": "https://<BASE-URL>/HyperionPlanning/rest/v3/applications/PS4app1/jobs/145",
"action": "GET"
}}, {
"rel": "job-details",
"href": "https://<BASE-URL>/HyperionPlanning/rest/v3/applications/test2/jobs/145/details",
"action": "GET"
}]
}"""


class MemorySecrets:
    """An in-memory SecretStore (the store itself is not under test)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def get_secret(self, key: str) -> str | None:
        return self.data.get(key)

    async def put_secret(self, key: str, value: str) -> None:
        self.data[key] = value


# -- parse_status --------------------------------------------------------------------------------------

def test_doc_metadata_import_example() -> None:
    st_ = parse_epm_body(DOC_METADATA_EXAMPLE.encode(), "224", TYPE)
    assert st_.phase is Phase.SUCCEEDED
    assert st_.vendor_status == "0 Completed"
    assert st_.message == "Metadata import was successful"
    assert st_.name == "Import Account Metadata"
    assert [(link.label, link.url) for link in st_.links] == [
        ("Job details", "https://<BASE-URL>/HyperionPlanning/rest/v3/applications/test2/jobs/224/details")
    ]


def test_doc_error_example_with_its_stray_brace() -> None:
    with pytest.raises(ValueError):
        json.loads(DOC_REFRESH_ERROR_EXAMPLE)  # strictly it is not JSON ...
    assert lenient_json(DOC_REFRESH_ERROR_EXAMPLE.encode())["jobId"] == 145  # ... lenient_json repairs it
    st_ = parse_epm_body(DOC_REFRESH_ERROR_EXAMPLE.encode(), "145", TYPE)
    assert st_.phase is Phase.FAILED
    assert st_.vendor_status == "1 Error"
    assert st_.message == "An error occurred while updating the relational database."
    assert [link.label for link in st_.links] == ["Job details"]
    assert DOC_ERROR_EXAMPLE == DOC_REFRESH_ERROR_EXAMPLE  # the simulator serves the very same text


@pytest.mark.parametrize("code", sorted(EPM_CODES))
def test_every_status_code(code: int) -> None:
    assert parse_status({"status": code, "jobId": 3}, "3").phase is EPM_CODES[code]
    assert parse_status({"status": f" {code} ", "jobId": "3"}, "3").phase is EPM_CODES[code]


@pytest.mark.parametrize("word", sorted(EPM_WORDS))
def test_every_word(word: str) -> None:
    assert parse_status({"descriptiveStatus": word.title()}, "3").phase is EPM_WORDS[word]
    assert parse_status({"jobStatus": word}, "3").phase is EPM_WORDS[word]


def test_unknown_status_word_is_unknown_not_an_error() -> None:
    st_ = parse_status({"status": "Frobnicating"}, "3")
    assert (st_.phase, st_.vendor_status) == (Phase.UNKNOWN, "Frobnicating")


def test_code_and_word_disagreeing() -> None:
    assert parse_status({"status": -1, "descriptiveStatus": "Completed"}, "3").phase is Phase.SUCCEEDED
    assert parse_status({"status": 1, "descriptiveStatus": "Processing"}, "3").phase is Phase.FAILED


@pytest.mark.parametrize(
    "payload",
    [None, "x", 7, [DOC_METADATA_EXAMPLE], {}, {"status": ""}, {"status": {"code": 1}}, {"status": [1]},
     {"status": False}, {"jobStatus": 1}, {"status": 0, "jobId": 225}],
)
def test_garbage_is_bad_response(payload: Any) -> None:
    with pytest.raises(BadResponse):
        parse_status(payload, "224")


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["status", "jobStatus", "descriptiveStatus", "details", "jobId", "links"]),
        st.none()
        | st.integers()
        | st.text(max_size=6)
        | st.lists(st.integers(), max_size=2)
        | st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
    )
)
def test_any_shape_gives_a_status_or_a_backend_error(payload: dict[str, Any]) -> None:
    try:
        assert isinstance(parse_status(payload, "224"), JobStatus)
    except (BadResponse, JobNotFound):
        pass


def test_format_item_is_generic() -> None:
    assert format_item({"recordType": "Account", "recordName": "4110", "message": "Member not found"}) == \
        "[Account 4110] Member not found"
    assert format_item({"messageType": "ERROR", "code": 12, "what": "odd"}) == "code=12, what=odd"
    assert format_item("plain text") == "plain text"
    assert format_item([1, 2]) == "[1, 2]"
    assert format_item({"details": "null", "msgText": "from msgText"}) == "from msgText"


def test_child_job_id_by_key_or_link() -> None:
    assert child_job_id({"childJobId": 8}) == "8"
    assert child_job_id({"links": [{"href": "https://h/jobs/145/childjobs/9/details"}]}) == "9"
    assert child_job_id({"message": "x"}) is None
    assert child_job_id("x") is None


# -- against the simulator ------------------------------------------------------------------------------

@pytest.fixture
async def make(sim: SimulatorServer) -> AsyncIterator[Callable[..., EpmPlanning]]:
    made: list[EpmPlanning] = []

    def _make(auth: dict[str, Any] | None = None, secrets: Any = None, **kw: Any) -> EpmPlanning:
        kw.setdefault("application", "Vision")
        backend = EpmPlanning("planning", backend_config(sim, TYPE, auth, **kw), secrets=secrets)
        made.append(backend)
        return backend

    sim.planning.bearer_tokens.add("test-token")
    yield _make
    for backend in made:
        await backend.aclose()


async def test_job_ids_and_config(sim: SimulatorServer, make) -> None:
    backend = make()
    assert backend.validate_job_id("224") == "224"
    for bad in ["", "x1", "1.5", "1" * 19, "1/2"]:
        with pytest.raises(InvalidJobId):
            backend.validate_job_id(bad)
    with pytest.raises(ConfigError) as err:
        EpmPlanning("p", backend_config(sim, TYPE))
    assert "application" in str(err.value)


async def test_status_script_and_path(sim: SimulatorServer, make) -> None:
    sim.planning.add_job(224, name="Import Account Metadata",
                         steps=[Step(0, -1), Step(0, 0, {"details": "Metadata import was successful"})])
    st_ = await make(api_version="v3").status("224")
    assert (st_.phase, st_.vendor_status, st_.message) == (Phase.SUCCEEDED, "0 Completed",
                                                           "Metadata import was successful")
    assert sim.planning.requests[-1].path.endswith("/HyperionPlanning/rest/v3/applications/Vision/jobs/224")
    assert st_.links[0].url.endswith("/applications/Vision/jobs/224/details")


async def test_stray_brace_answer_is_repaired(sim: SimulatorServer, make) -> None:
    sim.planning.add_job(
        77, state=1, stray_brace=True, details="An error occurred while updating the database."
    )
    st_ = await make().status("77")
    assert st_.phase is Phase.FAILED and st_.vendor_status == "1 Error"
    assert st_.links and st_.links[0].label == "Job details"


async def test_doc_example_served_verbatim(sim: SimulatorServer, make) -> None:
    sim.planning.add_job(145, raw_body=DOC_ERROR_EXAMPLE)
    st_ = await make().status("145")
    assert st_.phase is Phase.FAILED and st_.name == "Refresh Database"


async def test_unknown_job_and_other_application(sim: SimulatorServer, make) -> None:
    sim.planning.add_job(5, state=0, application="Other")
    backend = make()
    for job in ("5", "6"):
        with pytest.raises(JobNotFound):
            await backend.status(job)


async def test_basic_auth_with_identity_domain(sim: SimulatorServer, make) -> None:
    sim.planning.basic_users["planner"] = "pw-123"
    sim.planning.add_job(1, state=0)
    backend = make(
        {"type": "basic", "username": "planner", "password": "pw-123", "identity_domain": "exampledomain"}
    )
    assert (await backend.status("1")).phase is Phase.SUCCEEDED
    header = sim.planning.requests[-1].headers["Authorization"]
    assert base64.b64decode(header[6:]).decode() == "exampledomain.planner:pw-123"
    with pytest.raises(AuthFailed):
        await make({"type": "basic", "username": "planner", "password": "bad",
                    "identity_domain": "exampledomain"}).status("1")


async def test_oauth_rotation_and_expiry(sim: SimulatorServer, make) -> None:
    sim.planning.oauth_clients["cid"] = "csecret"
    sim.planning.add_job(1, state=-1)
    first = sim.planning.issue_refresh_token()
    auth = {
        "type": "oauth2_refresh",
        "token_url": sim.base_url(TYPE) + "/oauth2/v1/token",
        "client_id": "cid",
        "client_secret": "csecret",
        "refresh_token": first,
    }
    secrets = MemorySecrets()
    backend = make(auth, secrets)
    await backend.status("1")
    stored = secrets.data["planning:refresh_token"]
    assert stored != first and stored in sim.planning.refresh_tokens
    sim.planning.expire_access_tokens()
    assert (await backend.status("1")).phase is Phase.RUNNING
    assert sim.planning.count("POST", "/oauth2/v1/token") == 2
    assert secrets.data["planning:refresh_token"] not in (first, stored)
    # a refused refresh token is AuthFailed: the one refresh after 401 is not repeated forever
    sim.planning.refresh_tokens.clear()
    sim.planning.expire_access_tokens()
    with pytest.raises(AuthFailed):
        await backend.status("1")
    # the stored token was refused, then the configured one (already used): two tries, then AuthFailed
    assert sim.planning.count("POST", "/oauth2/v1/token") == 4


async def test_maintenance_window_is_an_outage(sim: SimulatorServer, make) -> None:
    sim.planning.add_job(1, state=-1)
    sim.planning.maintenance = True
    with pytest.raises(Unavailable):
        await make().status("1")


@pytest.mark.parametrize("kind", ["html", "malformed", "empty", "wrong_types"])
async def test_unreadable_answers_are_bad_response(sim: SimulatorServer, make, kind: str) -> None:
    sim.planning.add_job(1, state=0)
    sim.planning.faults = FaultPlan(rate=1.0, kinds=(kind,))
    with pytest.raises(BadResponse):
        await make().status("1")


async def test_cancel_is_not_offered(make) -> None:
    with pytest.raises(CancelNotSupported) as err:
        await make().cancel("1")
    assert "Jobs" in str(err.value)


def _detail_requests(sim: SimulatorServer, part: str) -> list[dict[str, list[str]]]:
    return [parse_qs(r.query) for r in sim.planning.requests if r.path.endswith(part)]


async def test_failure_details_reads_every_page_of_errors(sim: SimulatorServer, make) -> None:
    items = [{"recordType": "Account", "recordName": f"A{i:03}", "message": f"Member A{i:03} not found"}
             for i in range(60)]
    items += [
        {"messageType": "INFO", "message": "Loaded 10 rows"},
        {"messageType": "WARNING", "message": "w"},
    ]
    sim.planning.add_job(300, state=1, details_items=items, details="Import data failed")
    backend = make()
    details = await backend.failure_details(await backend.status("300"))
    assert details is not None
    reqs = _detail_requests(sim, "/jobs/300/details")
    assert [r["offset"] for r in reqs] == [["0"], ["25"], ["50"]]
    assert all(r["q"] == ['{"messageType":"ERROR"}'] and r["limit"] == ["25"] for r in reqs)
    assert details.total_errors == 60
    assert details.lines[0] == "[Account A000] Member A000 not found"
    assert len(details.lines) <= 40 and "Loaded 10 rows" not in " ".join(details.lines)
    assert details.hint and "of 60 lines" in details.hint
    assert details.links and details.links[0].label == "Job details"


async def test_failure_details_exactly_one_full_page(sim: SimulatorServer, make) -> None:
    sim.planning.add_job(301, state=1, details_items=[{"message": f"e{i}"} for i in range(25)])
    backend = make()
    details = await backend.failure_details(await backend.status("301"))
    assert details is not None and details.total_errors == 25
    assert len(_detail_requests(sim, "/jobs/301/details")) == 1  # hasMore false ends it


async def test_failure_details_of_child_jobs(sim: SimulatorServer, make) -> None:
    sim.planning.add_job(
        400, name="Import Metadata", state=1, details="One or more child jobs have failed",
        child_jobs={
            "8": {"name": "Account", "status": 1,
                  "items": [{"recordName": f"M{i}", "message": "Parent member does not exist"}
                            for i in range(30)]},
            "9": {"name": "Entity", "status": 0, "items": []},
            "10": {"name": "Product", "status": 1, "items": [{"message": "Invalid alias"}]},
        },
    )
    backend = make()
    details = await backend.failure_details(await backend.status("400"))
    assert details is not None
    assert details.total_errors == 31
    assert details.lines[0] == "child job 8 (Account): [M0] Parent member does not exist"
    assert details.lines[-1] == "child job 10 (Product): Invalid alias"
    assert [r["offset"] for r in _detail_requests(sim, "/childjobs/8/details")] == [["0"], ["25"]]
    assert len(_detail_requests(sim, "/childjobs/10/details")) == 1
    assert not _detail_requests(sim, "/childjobs/9/details")  # succeeded children are not listed as errors


async def test_failure_details_survive_a_details_outage(sim: SimulatorServer, make) -> None:
    sim.planning.add_job(500, state=1, details="Refresh failed", details_items=[{"message": "x"}])
    backend = make()
    st_ = await backend.status("500")
    sim.planning.faults = FaultPlan(rate=1.0, kinds=("503",))
    details = await backend.failure_details(st_)
    assert details is not None and details.lines == ("Refresh failed",)
    assert details.hint and "could not be read" in details.hint


async def test_failure_details_without_errors_shows_the_message(sim: SimulatorServer, make) -> None:
    sim.planning.add_job(501, state=1, details="Cube refresh failed")
    backend = make()
    details = await backend.failure_details(await backend.status("501"))
    assert details is not None and details.lines == ("Cube refresh failed",) and details.total_errors == 0


async def test_check_rows(sim: SimulatorServer, make) -> None:
    rows = await make().check()
    assert [ok for _, ok, _ in rows] == [True, True]
    rows = await make(application="Nope").check()
    assert rows[-1][1] is False and "Vision" in rows[-1][2]


# -- Planning's error bodies reach the user -----------------------------------------------------------------
async def test_a_refused_request_says_plannings_own_words_not_just_the_status(
    sim: SimulatorServer, make
) -> None:
    sim.planning.add_job(224, state=0)
    backend = make(application="Visionx")  # Planning has no such application: HTTP 400 and its error body
    with pytest.raises(BadResponse) as err:
        await backend.status("224")
    assert "HTTP 400: The application Visionx does not exist or you do not have access to it." in str(
        err.value
    )


async def test_a_refused_details_listing_says_why_in_the_hint(sim: SimulatorServer, make) -> None:
    sim.planning.add_job(225, state=1, details_items=[{"message": "x"}])
    backend = make()
    st_ = await backend.status("225")
    backend.application = "Gone"  # as if the application were renamed between the status and the details
    details = await backend.failure_details(st_)
    assert details is not None and "The application Gone does not exist" in (details.hint or "")
