"""Tests of the Veeva Vault adapter: parsing the documented answers, and sessions, limits and cancel on the
simulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.backends.vault import DEFAULT_CLIENT_ID, VeevaVault, parse_status, read_cancel, response_delay
from bot.domain.errors import (
    AuthFailed,
    BadResponse,
    CancelNotSupported,
    CancelRefused,
    Forbidden,
    InvalidJobId,
    JobNotFound,
    Misconfigured,
    RateLimited,
    Unavailable,
)
from bot.domain.states import VAULT, Phase
from bot.domain.status import JobStatus, Link
from bot.offline.vendors.core import FaultPlan, Step
from bot.offline.vendors.server import SimulatorServer
from bot.support.config import ConfigError
from bot.support.logs import FORMATS, formatter
from tests.conftest import FakeClock, backend_config

TYPE = "veeva_vault"
JOBS = "/services/jobs/"
AUTH = "/auth"
BASE = "https://myvault.veevavault.com"

# The example answer of veeva-vault-jobs.txt, verbatim.
DOC_SUCCESS = """{
"responseStatus": "SUCCESS",
"responseMessage": "OK",
"data": {
"id": 1201,
"status": "SUCCESS",
"method": "POST",
"links": [
{
"rel": "self",
"href": "/api/v26.1/services/jobs/1601",
"method": "GET",
"accept": "application/json"
}
],
"created_by": 44533,
"created_date": "2016-04-20T18:14:42.000Z",
"run_start_date": "2016-04-20T18:14:43.000Z",
"run_end_date": "2016-04-20T18:14:44.000Z"
}
}"""
# The cancel answers of NOTES.md: per-job data, `errors` an object on refusal.
DOC_CANCEL_OK = {
    "responseStatus": "SUCCESS",
    "data": [{"responseStatus": "SUCCESS", "data": {"id": 1046892}}],
}
DOC_CANCEL_REFUSED = {"responseStatus": "SUCCESS", "data": [{"responseStatus": "FAILURE", "errors": {
    "type": "OPERATION_NOT_ALLOWED", "message": "Job [1046892] cannot be cancelled in status [RUNNING]."}}]}


def answer(status: str, **data: Any) -> dict[str, Any]:
    return {"responseStatus": "SUCCESS", "data": {"id": 7, "status": status, **data}}


def failure(kind: str, message: str = "text") -> dict[str, Any]:
    return {"responseStatus": "FAILURE", "errors": [{"type": kind, "message": message}]}


# -- parse_status from the documents ---------------------------------------------------------------------
def test_doc_example() -> None:
    s = parse_status(json.loads(DOC_SUCCESS), "1201", BASE)
    assert (s.phase, s.vendor_status, s.terminal, s.message) == (Phase.SUCCEEDED, "SUCCESS", True, None)
    assert s.links == (Link("self", BASE + "/api/v26.1/services/jobs/1601"),)
    facts = dict(s.facts)
    assert facts["Created by"] == "44533"
    assert facts["Started"] == "2016-04-20T18:14:43.000Z" and facts["Ended"] == "2016-04-20T18:14:44.000Z"


def test_relative_links_keep_the_base_url_prefix() -> None:
    s = parse_status(answer("SUCCESS", links=[
        {"rel": "artifacts", "href": "/api/v26.1/services/jobs/7/artifacts"},
        {"rel": "abs", "href": "https://other.example.com/x"},
        {"rel": "evil", "href": "javascript:alert(1)"},
        {"rel": "none"},
    ]), "7", "http://127.0.0.1:1/vault")
    assert s.links == (Link("artifacts", "http://127.0.0.1:1/vault/api/v26.1/services/jobs/7/artifacts"),
                       Link("abs", "https://other.example.com/x"))


@pytest.mark.parametrize(("word", "phase"), sorted(VAULT.items()))
def test_every_vault_word(word: str, phase: Phase) -> None:
    s = parse_status(answer(word), "7")
    assert (s.phase, s.vendor_status) == (phase, word)
    if phase is Phase.FAILED:
        assert s.message  # what the failure word means is said


def test_documented_extra_words() -> None:
    assert parse_status(answer("CANCELLING"), "7").phase is Phase.CANCELLING
    assert parse_status(answer("FAILED_TO_RUN"), "7").phase is Phase.FAILED
    assert parse_status(answer("BRAND_NEW"), "7").phase is Phase.UNKNOWN


def test_warning_errors_become_message_and_types() -> None:
    payload = answer("ERRORS_ENCOUNTERED")
    payload.update(
        responseStatus="WARNING", errors=[{"type": "PARAMETER_REQUIRED", "message": "Row 3: name missing"}]
    )
    s = parse_status(payload, "7")
    assert s.phase is Phase.FAILED
    assert "Row 3: name missing" in (s.message or "")
    assert dict(s.facts)["Vault errors"] == "PARAMETER_REQUIRED"


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("INVALID_DATA", JobNotFound),
        ("INSUFFICIENT_ACCESS", Forbidden),
        ("API_LIMIT_EXCEEDED", RateLimited),
        ("INVALID_SESSION_ID", AuthFailed),
        ("OPERATION_NOT_ALLOWED", BadResponse),
        ("SOMETHING_ELSE", BadResponse),
        ("MALFORMED_URL", Misconfigured),
        ("METHOD_NOT_SUPPORTED", Misconfigured),
    ],
)
def test_failure_answers_map_by_type(kind: str, error: type[Exception]) -> None:
    with pytest.raises(error) as err:
        parse_status(failure(kind), "7")
    assert kind in str(err.value)
    exc = pytest.raises(error, parse_status, {**failure(kind), "responseStatus": "EXCEPTION"}, "7")
    assert exc.value is not None


def test_api_limit_retry_after() -> None:
    with pytest.raises(RateLimited) as err:
        parse_status(failure("API_LIMIT_EXCEEDED"), "7")
    assert err.value.retry_after == 10.0


GARBAGE: list[Any] = [
    None,
    "SUCCESS",
    3,
    [],
    [json.loads(DOC_SUCCESS)],
    {},
    {"responseStatus": 1},
    {"responseStatus": "MAYBE"},
    {"responseStatus": "SUCCESS"},
    {"responseStatus": "SUCCESS", "data": []},
    {"responseStatus": "SUCCESS", "data": "x"},
    {"responseStatus": "SUCCESS", "data": {}},
    {"responseStatus": "SUCCESS", "data": {"status": 1}},
    {"responseStatus": "SUCCESS", "data": {"status": ["RUNNING"]}},
    {"responseStatus": "SUCCESS", "data": {"status": "RUNNING", "links": "x"}},
    {"responseStatus": "SUCCESS", "data": {"status": "RUNNING", "links": ["x"]}},
    {"responseStatus": "SUCCESS", "data": {"status": "RUNNING", "id": "abc"}},
    {"responseStatus": "SUCCESS", "data": {"status": "RUNNING", "id": float("inf")}},
    {"responseStatus": "SUCCESS", "data": {"status": "RUNNING", "id": 8}},  # an answer about another job
    {"responseStatus": "FAILURE"},
    {"responseStatus": "FAILURE", "errors": "x"},
    {"responseStatus": "FAILURE", "errors": [None, 3]},
]


@pytest.mark.parametrize("payload", GARBAGE)
def test_garbage_is_bad_response(payload: Any) -> None:
    with pytest.raises(BadResponse):
        parse_status(payload, "7")


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
                    "responseStatus",
                    "data",
                    "status",
                    "errors",
                    "type",
                    "message",
                    "links",
                    "href",
                    "rel",
                    "id",
                    "progress",
                    "size",
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
def test_fuzz_only_backend_errors_escape(payload: Any) -> None:
    from bot.domain.errors import BackendError

    try:
        assert isinstance(parse_status(payload, "7", BASE), JobStatus)
    except BackendError:
        pass
    try:
        read_cancel(payload, "7")
    except BackendError:
        pass


def test_read_cancel_doc_shapes() -> None:
    assert "CANCELLING" in read_cancel(DOC_CANCEL_OK, "1046892")
    with pytest.raises(CancelRefused) as err:
        read_cancel(DOC_CANCEL_REFUSED, "1046892")
    assert str(err.value) == "Job [1046892] cannot be cancelled in status [RUNNING]."
    as_list = {"responseStatus": "SUCCESS", "data": [{"responseStatus": "FAILURE", "errors": [
        {"type": "INVALID_DATA", "message": "Invalid job_id"}]}]}
    with pytest.raises(CancelRefused, match="Invalid job_id"):
        read_cancel(as_list, "7")
    with pytest.raises(AuthFailed):
        read_cancel(failure("INVALID_SESSION_ID"), "7")
    for bad in ({"responseStatus": "SUCCESS"}, {"responseStatus": "SUCCESS", "data": [1]}, []):
        with pytest.raises(BadResponse):
            read_cancel(bad, "7")


@pytest.mark.parametrize(("header", "seconds"), [
    ("500ms", 0.5), ("500", 0.5), ("0.5s", 0.5), ("2 S", 2.0), (None, 0.0), ("", 0.0), ("soon", 0.0)])
def test_response_delay_header(header: str | None, seconds: float) -> None:
    assert response_delay(header) == seconds


# -- against the simulator -----------------------------------------------------------------------------
Make = Callable[..., VeevaVault]
PASSWORD = "vault-s3cret"


@pytest.fixture
def clock(sim: SimulatorServer) -> FakeClock:
    clock = FakeClock()
    sim.vault.clock = clock  # one clock for the simulator's 10 s rule and the adapter's
    return clock


@pytest.fixture
async def make(sim: SimulatorServer, clock: FakeClock) -> AsyncIterator[Make]:
    made: list[VeevaVault] = []
    sim.vault.basic_users["alice@example.com"] = PASSWORD
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    def _make(password: str = PASSWORD, **kw: Any) -> VeevaVault:
        auth = {"type": "vault_session", "username": "alice@example.com", "password": password}
        backend = VeevaVault("vault", backend_config(sim, TYPE, auth, **kw))
        backend.clock = clock
        backend.sleep = fake_sleep
        backend.slept = slept  # type: ignore[attr-defined]
        made.append(backend)
        return backend

    yield _make
    for backend in made:
        await backend.aclose()


async def test_status_with_session(sim: SimulatorServer, make: Make, clock: FakeClock) -> None:
    sim.vault.add_job(1201, steps=[Step(0, "QUEUED"), Step(5, "RUNNING"), Step(20, "SUCCESS")])
    backend = make()
    assert (await backend.status("1201")).phase is Phase.QUEUED
    clock.advance(10)
    assert (await backend.status("1201")).phase is Phase.RUNNING
    clock.advance(10)
    s = await backend.status("1201")
    assert (s.phase, s.vendor_status) == (Phase.SUCCEEDED, "SUCCESS")
    assert Link("artifacts", sim.base_url(TYPE) + "/api/v25.3/services/jobs/1201/artifacts") in s.links
    assert sim.vault.count("POST", AUTH) == 1  # the session is reused
    sent = [r for r in sim.vault.requests if JOBS in r.path]
    assert {r.headers["Authorization"] for r in sent} == set(sim.vault.sessions)


async def test_ten_second_rule(sim: SimulatorServer, make: Make, clock: FakeClock) -> None:
    sim.vault.add_job(1, state="QUEUED")
    sim.vault.add_job(2, state="RUNNING")
    backend = make()
    assert VeevaVault.min_poll_interval == 10.0
    first = await backend.status("1")
    sim.vault.set_state(1, "RUNNING")
    clock.advance(9.9)
    assert await backend.status("1") is first  # asked too soon: the last answer, no call
    assert (await backend.status("2")).phase is Phase.RUNNING  # the limit is per job
    assert sim.vault.count("GET", JOBS + "1") == 1
    clock.advance(0.1)
    assert (await backend.status("1")).phase is Phase.RUNNING
    assert sim.vault.count("GET", JOBS + "1") == 2


async def test_vault_api_limit_answer_is_rate_limited(sim: SimulatorServer, make: Make) -> None:
    sim.vault.add_job(1)
    backend = make()
    backend.min_poll_interval = 0.0  # as if a second client asked about the same job
    await backend.status("1")
    with pytest.raises(RateLimited) as err:
        await backend.status("1")
    assert err.value.retry_after == 10.0


async def test_relogin_once_on_invalid_session(sim: SimulatorServer, make: Make, clock: FakeClock) -> None:
    sim.vault.add_job(1, state="RUNNING")
    backend = make()
    await backend.status("1")
    sim.vault.expire_sessions()
    clock.advance(10)
    assert (await backend.status("1")).phase is Phase.RUNNING
    assert sim.vault.count("POST", AUTH) == 2
    assert sim.vault.count("GET", JOBS) == 3  # ok, INVALID_SESSION_ID, ok


async def test_session_refused_after_relogin(sim: SimulatorServer, make: Make, clock: FakeClock) -> None:
    sim.vault.add_job(1, state="RUNNING")
    sim.vault.user_of = lambda request: None  # type: ignore[method-assign]  # every session is refused
    backend = make()
    with pytest.raises(AuthFailed):
        await backend.status("1")
    assert sim.vault.count("POST", AUTH) == 2  # first login, one re-login, then give up
    clock.advance(10)
    with pytest.raises(AuthFailed):
        await backend.status("1")  # no login loop: the last sessions never worked
    assert sim.vault.count("POST", AUTH) == 2
    clock.advance(30)
    with pytest.raises(AuthFailed):
        await backend.status("1")
    assert sim.vault.count("POST", AUTH) == 3


async def test_wrong_password(
    sim: SimulatorServer, make: Make, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sim.vault.add_job(1)
    backend = make(password="not-it")
    with pytest.raises(AuthFailed) as err:
        await backend.status("1")
    assert "USERNAME_OR_PASSWORD_INCORRECT" in str(err.value) and "not-it" not in str(err.value)
    clock.advance(10)
    with pytest.raises(
        AuthFailed, match="USERNAME_OR_PASSWORD_INCORRECT.*Not logging in to Vault again for 20 s"
    ):
        await backend.status("1")
    assert sim.vault.count("POST", AUTH) == 1  # never log in in a loop
    assert sim.vault.count("GET", JOBS) == 0
    for log_format in FORMATS:
        assert "not-it" not in "\n".join(formatter(log_format).format(r) for r in caplog.records)


async def test_login_outage_stays_transient(make: Make, clock: FakeClock) -> None:
    backend = make(base_url="http://127.0.0.1:1/vault")  # nothing listens there
    with pytest.raises(Unavailable):
        await backend.status("1")
    clock.advance(10)
    with pytest.raises(RateLimited) as again:  # no second login within 30 s, but still an outage to ride out
        await backend.status("2")
    assert again.value.retry_after == pytest.approx(20)


async def test_session_for_another_vault_is_refused(sim: SimulatorServer, make: Make) -> None:
    sim.vault.add_job(1)
    sim.vault.other_vault = True
    with pytest.raises(AuthFailed, match="another vault") as err:
        await make().status("1")
    assert "other-vault.veevavault.com" in str(err.value)
    assert sim.vault.count("GET", JOBS) == 0


@pytest.mark.parametrize("vaults", [
    [{"id": 2002, "name": "Other", "url": "http://[broken"}],
    [{"id": 1001, "url": "https://elsewhere.example.com/api"}],
    [{"id": 3003, "url": "http://127.0.0.1:1/api"}],  # our host listed, but the session is for vault 1001
])
async def test_login_answers_that_are_not_our_vault(make: Make, vaults: list[dict[str, Any]]) -> None:
    backend = make()
    backend.base_url = "http://127.0.0.1:1/vault"
    payload = {"responseStatus": "SUCCESS", "sessionId": "S", "vaultIds": vaults, "vaultId": 1001}
    with pytest.raises(AuthFailed, match="another vault"):
        backend.session.read_login(payload)


async def test_login_answer_without_vault_urls_is_accepted(make: Make) -> None:
    payload = {"responseStatus": "SUCCESS", "sessionId": " S ", "vaultId": 1001}
    assert make().session.read_login(payload) == "S"


async def test_unknown_job(sim: SimulatorServer, make: Make) -> None:
    with pytest.raises(JobNotFound):
        await make().status("424242")


@pytest.mark.parametrize("text", ["", "abc", "1.5", "-1", "1" * 19, "1/2", "%31", "٣"])
async def test_invalid_job_ids(make: Make, text: str) -> None:
    with pytest.raises(InvalidJobId, match="digits only|19 digits, at most 18$"):
        make().validate_job_id(text)


@pytest.mark.parametrize(("kind", "error"), [
    ("html", BadResponse), ("malformed", BadResponse), ("empty", BadResponse), ("truncated", BadResponse),
    ("wrong_types", BadResponse), ("500", Unavailable), ("503", Unavailable),
])
async def test_faults(sim: SimulatorServer, make: Make, kind: str, error: type[Exception]) -> None:
    sim.vault.add_job(1, state="RUNNING")
    sim.vault.faults = FaultPlan(rate=1.0, kinds=(kind,))
    with pytest.raises(error):
        await make().status("1")


async def test_429_gives_retry_after(sim: SimulatorServer, make: Make) -> None:
    sim.vault.add_job(1)
    sim.vault.faults = FaultPlan(rate=1.0, kinds=("429",), retry_after=4)
    with pytest.raises(RateLimited) as err:
        await make().status("1")
    assert err.value.retry_after == 4.0


async def test_burst_limit_low_spreads_calls(sim: SimulatorServer, make: Make, clock: FakeClock) -> None:
    sim.vault.add_job(1)
    sim.vault.add_job(2)
    sim.vault.burst_limit = 11
    backend = make()
    await backend.status("1")  # 10 calls left in the window (the login has its own limit)
    assert backend.backoff_hint == pytest.approx(300 / 10)
    with pytest.raises(RateLimited) as err:
        await backend.status("2")
    assert err.value.retry_after == pytest.approx(30)
    assert sim.vault.count("GET", JOBS + "2") == 0
    clock.advance(30)
    await backend.status("2")
    assert sim.vault.count("GET", JOBS + "2") == 1


async def test_response_delay_is_honoured(sim: SimulatorServer, make: Make) -> None:
    sim.vault.add_job(1)
    sim.vault.add_job(2)
    sim.vault.response_delay_ms = 20
    backend = make()
    await backend.status("1")
    assert backend.slept == []  # type: ignore[attr-defined]
    await backend.status("2")
    assert backend.slept == [pytest.approx(0.02)]  # type: ignore[attr-defined]


async def test_cancel_accepted(sim: SimulatorServer, make: Make, clock: FakeClock) -> None:
    sim.vault.add_job(1046892, state="QUEUED")
    backend = make()
    assert backend.can_cancel
    assert "CANCELLING" in await backend.cancel("1046892")
    body = [r.body for r in sim.vault.requests if r.path.endswith("/actions/cancel")]
    assert [json.loads(b) for b in body] == [[{"job_id": 1046892}]]
    assert (await backend.status("1046892")).phase is Phase.CANCELLING
    clock.advance(10)
    assert (await backend.status("1046892")).phase is Phase.CANCELLED


@pytest.mark.parametrize(("state", "cancellable", "words"), [
    ("RUNNING", False, "Job [5] cannot be cancelled in status [RUNNING]."),
    ("SUCCESS", True, "Job [5] cannot be cancelled in status [SUCCESS]."),
])
async def test_cancel_refused_verbatim(sim: SimulatorServer, make: Make, state: str, cancellable: bool,
                                       words: str) -> None:
    sim.vault.add_job(5, state=state, cancellable=cancellable)
    with pytest.raises(CancelRefused) as err:
        await make().cancel("5")
    assert str(err.value) == words


async def test_cancel_needs_v25_3(sim: SimulatorServer, make: Make) -> None:
    backend = make(api_version="v24.3")
    assert backend.can_cancel is False
    with pytest.raises(CancelNotSupported, match="Admin > Operations > Job Status"):
        await backend.cancel("1")
    assert sim.vault.count("POST") == 0


async def test_failure_details(sim: SimulatorServer, make: Make) -> None:
    sim.vault.add_job(8, state="ERRORS_ENCOUNTERED")
    sim.vault.set_state(
        8,
        "ERRORS_ENCOUNTERED",
        errors=[
            {"type": "INVALID_DATA", "message": "Row 2: bad value"},
            {"type": "PARAMETER_REQUIRED", "message": "x"},
        ],
    )
    backend = make()
    s = await backend.status("8")
    details = await backend.failure_details(s)
    assert details is not None
    assert details.lines[0].startswith("The job finished, but Vault reported errors. Row 2: bad value")
    assert details.lines[1] == "Vault error types: INVALID_DATA, PARAMETER_REQUIRED"
    assert details.total_errors == 2
    assert Link("artifacts", sim.base_url(TYPE) + "/api/v25.3/services/jobs/8/artifacts") in details.links
    assert "Admin > Operations > Job Status" in (details.hint or "")
    assert await backend.failure_details(parse_status(answer("RUNNING"), "7")) is None


async def test_check_rows(sim: SimulatorServer, make: Make, clock: FakeClock) -> None:
    rows = await make().check()
    assert [(what, ok) for what, ok, _ in rows] == [
        ("reachable", True),
        ("authenticated", True),
        ("API version", True),
    ]
    assert "PromoMats" in rows[1][2]
    # offered (Vault keeps every version), but cancel came in v25.3
    old = await make(api_version="v19.1").check()
    assert old[-1][1] is True and "cancel needs v25.3" in old[-1][2]
    bad = await make(password="nope").check()
    assert [(what, ok) for what, ok, _ in bad] == [("reachable", True), ("authenticated", False)]


@pytest.mark.parametrize("kw", [
    {"auth": {"type": "bearer", "token": "t"}}, {"api_version": "latest"},
])
def test_config_errors(sim: SimulatorServer, kw: dict[str, Any]) -> None:
    auth = kw.pop("auth", {"type": "vault_session", "username": "u", "password": "p"})
    with pytest.raises(ConfigError):
        VeevaVault("vault", backend_config(sim, TYPE, auth, **kw))


# -- Vault's envelope before the HTTP status; the API address; the client id ---------------------------------
def _answer(status: int, body: Any, **headers: str) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers,
                          request=httpx.Request("GET", "https://myvault.veevavault.com/api/v25.3/services/jobs/7"))


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (
            404,
            failure("MALFORMED_URL", "The specified resource cannot be found."),
            Misconfigured,
            "MALFORMED_URL",
        ),
        (400, failure("METHOD_NOT_SUPPORTED", "Not in this version"), Misconfigured, "METHOD_NOT_SUPPORTED"),
        (
            401,
            failure("INVALID_SESSION_ID", "Invalid or expired session ID."),
            AuthFailed,
            "INVALID_SESSION_ID",
        ),
        (400, failure("INVALID_DATA", "Invalid job_id [7]."), JobNotFound, "Invalid job_id [7]."),
        (403, failure("INSUFFICIENT_ACCESS", "not licensed"), Forbidden, "not licensed"),
        (429, failure("API_LIMIT_EXCEEDED", "again in 10 s"), RateLimited, "API_LIMIT_EXCEEDED"),
        (
            500,
            {**failure("UNEXPECTED_ERROR", "Database <down> & out"), "responseStatus": "EXCEPTION"},
            Unavailable,
            # a type we do not act on: the status class, with Vault's words
            "UNEXPECTED_ERROR: Database <down> & out",
        ),
        (
            404,
            "<html><body>Not Found</body></html>",
            Misconfigured,
            "no Vault answer",
        ),  # a 404 that is not Vault
        (502, "<html>Bad Gateway</html>", Unavailable, "HTTP 502"),
    ],
)
async def test_vault_envelope_decides_before_the_http_status(make: Make, status: int, body: Any,
                                                             error: type[Exception], words: str) -> None:
    backend = make(api_version="v25.3")
    with pytest.raises(error) as err:
        backend.raise_for_status(_answer(status, body))
    assert words in str(err.value)
    if error is Misconfigured:
        assert "api_version (v25.3) or base_url" in str(err.value)
    if error is JobNotFound:
        assert "api_version" not in str(err.value)


async def test_retry_after_of_a_429_envelope_wins_over_the_ten_seconds(make: Make) -> None:
    with pytest.raises(RateLimited) as err:
        make().raise_for_status(_answer(429, failure("API_LIMIT_EXCEEDED"), **{"Retry-After": "25"}))
    assert err.value.retry_after == 25.0


async def test_unknown_api_version_is_said_to_be_a_wrong_setting_not_a_missing_job(
        sim: SimulatorServer, make: Make, clock: FakeClock) -> None:
    sim.vault.add_job(1201, state="RUNNING")
    # the vault does not offer it: HTTP 404 and MALFORMED_URL, at /auth already
    backend = make(api_version="v99.1")
    with pytest.raises(Misconfigured) as err:
        await backend.status("1201")
    assert "MALFORMED_URL" in str(err.value) and "api_version (v99.1)" in str(err.value)
    assert not isinstance(err.value, JobNotFound)
    clock.advance(10)
    with pytest.raises(Misconfigured, match="Not logging in to Vault again"):  # and never a login loop
        await backend.status("1201")
    assert sim.vault.count("POST", AUTH) == 1
    rows = await make(api_version="v99.1").check()
    assert [(what, ok) for what, ok, _ in rows] == [("reachable", True), ("API address", False)]
    assert "api_version (v99.1)" in rows[1][2]


async def test_a_wrong_base_url_is_misconfigured_whether_or_not_vault_answers_it(sim: SimulatorServer,
                                                                                make: Make) -> None:
    sim.vault.add_job(1201, state="RUNNING")
    inside = make(base_url=sim.base_url(TYPE) + "/extra")  # a path the vault does not have: its MALFORMED_URL
    with pytest.raises(Misconfigured, match="MALFORMED_URL"):
        await inside.status("1201")
    elsewhere = make(base_url=sim.base_url("fusion_jobscheduler"))  # not a vault at all: a bare 404
    with pytest.raises(Misconfigured, match="no Vault answer"):
        await elsewhere.status("1201")


async def test_an_unknown_job_is_still_not_found(sim: SimulatorServer, make: Make) -> None:
    with pytest.raises(JobNotFound) as err:
        await make().status("424242")
    assert "api_version" not in str(err.value)


async def test_malformed_url_answered_with_http_200_is_misconfigured_too(
    sim: SimulatorServer, make: Make
) -> None:
    backend = make()
    await backend.sign_in()
    sim.vault.versions.remove(backend.api_version)  # as if the vault no longer offered it
    sim.vault.malformed_url = lambda request: sim.vault.reply(  # type: ignore[method-assign]
        {"responseStatus": "FAILURE", "errors": [{"type": "MALFORMED_URL", "message": "no such resource"}]})
    with pytest.raises(Misconfigured, match="no such resource"):
        await backend.status("1")


async def test_every_request_carries_the_client_id_in_veevas_format(sim: SimulatorServer, make: Make,
                                                                   clock: FakeClock) -> None:
    sim.vault.add_job(1046892, state="RUNNING")
    backend = make()
    await backend.status("1046892")
    await backend.cancel("1046892")
    await backend.check()
    assert {r.path.rsplit("/", 1)[-1] for r in sim.vault.requests} >= {"auth", "1046892", "cancel", "api"}
    sent = [{k.lower(): v for k, v in r.headers.items()} for r in sim.vault.requests]  # names are case-blind
    assert {h.get("x-vaultapi-clientid") for h in sent} == {DEFAULT_CLIENT_ID}
    # never `unknown` or `invalid_client_id` in the log
    assert set(sim.vault.client_ids) == {DEFAULT_CLIENT_ID}
    # company-org-team-server-program
    assert len(DEFAULT_CLIENT_ID.split("-")) == 5 and "-server-" in DEFAULT_CLIENT_ID


async def test_the_client_id_is_configurable(sim: SimulatorServer, make: Make) -> None:
    sim.vault.add_job(1, state="RUNNING")
    await make(vault_client_id="verteobiotech-vault-quality-server-jobstatus").status("1")
    assert set(sim.vault.client_ids) == {"verteobiotech-vault-quality-server-jobstatus"}


@pytest.mark.parametrize("value", ["has space", "x" * 101, "semi;colon", ""])
def test_a_client_id_vault_would_log_as_invalid_is_a_config_error(sim: SimulatorServer, value: str) -> None:
    with pytest.raises(ValueError, match="vault_client_id"):
        backend_config(
            sim, TYPE, {"type": "vault_session", "username": "u", "password": "p"}, vault_client_id=value
        )
