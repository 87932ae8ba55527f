"""Oracle EPM Data Integration: status parsing from the vendor's examples, auth flows, outages, log
excerpts."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.backends.epm_common import parse_epm_body
from bot.backends.epm_di import EpmDataIntegration, LogExcerpt, interop_names, parse_status
from bot.domain.errors import (
    AuthFailed,
    BadResponse,
    CancelNotSupported,
    InvalidJobId,
    JobNotFound,
    Unavailable,
)
from bot.domain.states import EPM_CODE_WORDS, EPM_CODES, EPM_WORDS, Phase
from bot.domain.status import JobStatus
from bot.offline.vendors.core import FaultPlan, Step
from bot.offline.vendors.server import SimulatorServer
from bot.support.config import ConfigError
from tests.conftest import backend_config

TYPE = "epm_data_integration"

# The vendor document's example, verbatim (the blog post cuts it off before the closing brace).
DOC_EXAMPLE = """{
  "links": [0],
  "status": "0",
  "details": "null",
  "jobId": "1881",
  "jobStatus": "SUCCESS",
  "logFileName": "outbox/logs/BESSAPP-DB_1881.log",
  "outputFileName": "outbox/BESSAPPJan-06.csv",
  "processType": "EXPORT_MAPPING",
  "executedBy": "admin"
"""


class MemorySecrets:
    """An in-memory SecretStore (the store itself is not under test)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes = 0

    async def get_secret(self, key: str) -> str | None:
        return self.data.get(key)

    async def put_secret(self, key: str, value: str) -> None:
        self.data[key] = value
        self.writes += 1


# -- parse_status: the document's example --------------------------------------------------------------

def test_doc_example_as_published_is_cut_off_and_reported_as_bad_response() -> None:
    with pytest.raises(BadResponse):
        parse_epm_body(DOC_EXAMPLE.encode(), "1881", TYPE)


def test_doc_example_completed() -> None:
    st_ = parse_epm_body((DOC_EXAMPLE + "}").encode(), "1881", TYPE)
    assert st_.phase is Phase.SUCCEEDED
    assert st_.vendor_status == "0 SUCCESS"
    assert st_.message is None  # "details": "null" means nothing
    assert st_.log_paths == ("outbox/logs/BESSAPP-DB_1881.log", "outbox/BESSAPPJan-06.csv")
    assert ("Process type", "EXPORT_MAPPING") in st_.facts
    assert ("Executed by", "admin") in st_.facts
    assert st_.links == ()  # `"links": [0]` holds nothing usable


@pytest.mark.parametrize("code", sorted(EPM_CODES))
@pytest.mark.parametrize("as_string", [True, False])
def test_every_status_code(code: int, as_string: bool) -> None:
    st_ = parse_status({"status": str(code) if as_string else code, "jobId": 7}, "7")
    assert st_.phase is EPM_CODES[code]
    assert EPM_CODE_WORDS[code] in st_.vendor_status


@pytest.mark.parametrize("word", sorted(EPM_WORDS))
def test_every_status_word_alone(word: str) -> None:
    st_ = parse_status({"jobStatus": word.title(), "jobId": "7"}, "7")
    assert st_.phase is EPM_WORDS[word]
    assert st_.vendor_status == word.title()


@pytest.mark.parametrize("word", sorted(EPM_WORDS))
def test_every_descriptive_status_word(word: str) -> None:
    assert parse_status({"descriptiveStatus": word.lower()}, "7").phase is EPM_WORDS[word]


def test_running_code_with_success_word_trusts_the_terminal_word_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.backends.epm_common"):
        st_ = parse_status({"status": -1, "jobStatus": "SUCCESS", "jobId": "31"}, "31")
    assert st_.phase is Phase.SUCCEEDED
    assert st_.vendor_status == "SUCCESS (status -1)"
    assert any("disagree" in r.getMessage() and "31" in r.getMessage() for r in caplog.records)


def test_terminal_code_with_running_word_trusts_the_code() -> None:
    st_ = parse_status({"status": "1", "jobStatus": "RUNNING"}, "32")
    assert st_.phase is Phase.FAILED
    assert st_.vendor_status.startswith("1 Error")


def test_unknown_code_defers_to_the_word() -> None:
    assert parse_status({"status": 2147483647, "jobStatus": "SUCCESS"}, "1").phase is Phase.SUCCEEDED
    unknown = parse_status({"status": 2147483647}, "1")
    assert unknown.phase is Phase.UNKNOWN
    assert unknown.vendor_status == "Integer.MAX_VALUE Unknown"


def test_success_code_with_warning_word_is_a_warning() -> None:
    assert parse_status({"status": 0, "jobStatus": "WARNING"}, "1").phase is Phase.WARNING


def test_undocumented_code_is_unknown_not_an_error() -> None:
    assert parse_status({"status": "7"}, "1").phase is Phase.UNKNOWN


def test_details_and_backslash_log_path_are_kept() -> None:
    st_ = parse_status(
        {"status": 1, "details": "Error: No periods were identified", "jobName": "GL",
         "logFileName": "outbox\\logs\\GL_55.log"},
        "55",
    )
    assert st_.message == "Error: No periods were identified"
    assert st_.log_paths == ("outbox\\logs\\GL_55.log",)
    assert st_.name == "GL"


def test_only_web_links_are_kept() -> None:
    st_ = parse_status({"status": 0, "links": [
        {"rel": "self", "href": "https://epm/aif/rest/V1/jobs/1"},
        {"rel": "log", "href": "javascript:alert(1)"},
        {"rel": "job-details", "href": "https://epm/details"},
        "junk", 0, None,
    ]}, "1")
    assert [(link.label, link.url) for link in st_.links] == [("Job details", "https://epm/details")]


def test_not_found_error_json_answered_with_200_is_job_not_found() -> None:
    with pytest.raises(JobNotFound):
        parse_status({"status": 1, "details": "Job with ID 99 does not exist.", "links": []}, "99")


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        [{"status": 0}],
        "0",
        0,
        1.5,
        True,
        {},
        {"details": "x"},
        {"status": None},
        {"status": {"nested": True}},
        {"status": [0]},
        {"status": True},
        {"status": 1.5},
        {"status": float("nan")},
        {"jobStatus": 5},
        {"jobStatus": ["SUCCESS"]},
        {"status": 0, "descriptiveStatus": {"a": 1}},
        {"status": "0", "jobId": "999"},  # an answer about another job
    ],
)
def test_garbage_is_bad_response(payload: Any) -> None:
    with pytest.raises(BadResponse):
        parse_status(payload, "1881")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_keys = st.sampled_from(["status", "jobStatus", "descriptiveStatus", "details", "jobId", "jobName",
                         "logFileName", "outputFileName", "links", "processType"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_json, st.dictionaries(_keys, _json, max_size=8)))
def test_any_json_gives_a_status_or_a_backend_error(payload: Any) -> None:
    try:
        result = parse_status(payload, "1881")
    except (BadResponse, JobNotFound):
        return
    assert isinstance(result, JobStatus)


# -- job ids ------------------------------------------------------------------------------------------

@pytest.fixture
async def make(sim: SimulatorServer) -> AsyncIterator[Callable[..., EpmDataIntegration]]:
    made: list[EpmDataIntegration] = []

    def _make(auth: dict[str, Any] | None = None, secrets: Any = None, **kw: Any) -> EpmDataIntegration:
        backend = EpmDataIntegration("epm-di", backend_config(sim, TYPE, auth, **kw), secrets=secrets)
        made.append(backend)
        return backend

    sim.epm_di.bearer_tokens.add("test-token")
    yield _make
    for backend in made:
        await backend.aclose()


async def test_job_ids(make: Callable[..., EpmDataIntegration]) -> None:
    backend = make()
    assert backend.validate_job_id(" 1881 ") == "1881"
    assert backend.validate_job_id("0042") == "42"
    for bad in ["", "abc", "12a", "1" * 19, "-1", "1 2", "../1", "１２"]:
        with pytest.raises(InvalidJobId) as err:
            backend.validate_job_id(bad)
        assert "digits only" in str(err.value) or str(err.value).endswith("19 digits, at most 18")


# -- against the simulator ------------------------------------------------------------------------------

async def test_status_follows_the_script_with_string_and_int_codes(sim: SimulatorServer, make) -> None:
    job = sim.epm_di.add_job(1881, name="GL_LOAD", steps=[Step(0, "-1")])
    backend = make()
    st_ = await backend.status("1881")
    assert st_.phase is Phase.RUNNING
    assert st_.name == "GL_LOAD"
    job.set(sim.epm_di.clock(), 1, details="Error: Invalid period")
    st_ = await backend.status("1881")
    assert (st_.phase, st_.vendor_status, st_.message) == (Phase.FAILED, "1 FAILED", "Error: Invalid period")


async def test_documented_disagreement_end_to_end(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_job(7, steps=[Step(0, -1, {"jobStatus": "SUCCESS", "descriptiveStatus": None})])
    assert (await make().status("7")).phase is Phase.SUCCEEDED


async def test_unknown_job_is_not_found(sim: SimulatorServer, make) -> None:
    backend = make()
    with pytest.raises(JobNotFound) as err:
        await backend.status("424242")
    assert "does not exist" in str(err.value)
    sim.epm_di.unknown_job_http = 200  # the same error JSON with HTTP 200
    with pytest.raises(JobNotFound):
        await backend.status("424242")


async def test_basic_auth_with_identity_domain(sim: SimulatorServer, make) -> None:
    sim.epm_di.basic_users["svc_jobs"] = "s3cret-pw"
    sim.epm_di.add_job(1, state="0")
    backend = make({"type": "basic", "username": "svc_jobs", "password": "s3cret-pw",
                    "identity_domain": "exampledomain"})
    assert (await backend.status("1")).phase is Phase.SUCCEEDED
    header = sim.epm_di.requests[-1].headers["Authorization"]
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == "exampledomain.svc_jobs:s3cret-pw"


async def test_basic_auth_bare_username_only_where_allowed(sim: SimulatorServer, make) -> None:
    sim.epm_di.basic_users["svc_jobs"] = "s3cret-pw"
    sim.epm_di.add_job(1, state="0")
    backend = make({"type": "basic", "username": "svc_jobs", "password": "s3cret-pw"})
    assert (await backend.status("1")).phase is Phase.SUCCEEDED
    sim.epm_di.bare_username_ok = False  # a classic (non-Gen2) pod wants the identity domain
    with pytest.raises(AuthFailed) as err:
        await backend.status("1")
    assert "s3cret-pw" not in str(err.value)


async def test_wrong_password_is_auth_failed_without_the_secret(sim: SimulatorServer, make) -> None:
    sim.epm_di.basic_users["svc_jobs"] = "right"
    sim.epm_di.add_job(1, state="0")
    backend = make(
        {
            "type": "basic",
            "username": "svc_jobs",
            "password": "wrong-Pa55",
            "identity_domain": "exampledomain",
        }
    )
    with pytest.raises(AuthFailed) as err:
        await backend.status("1")
    assert "wrong-Pa55" not in str(err.value)


async def test_bearer_token(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_job(1, state="0")
    assert (await make({"type": "bearer", "token": "test-token"}).status("1")).phase is Phase.SUCCEEDED
    with pytest.raises(AuthFailed):
        await make({"type": "bearer", "token": "nope"}).status("1")


def _oauth(sim: SimulatorServer, refresh_token: str) -> dict[str, Any]:
    sim.epm_di.oauth_clients["epm-client"] = "client-secret"
    return {"type": "oauth2_refresh", "token_url": sim.base_url(TYPE) + "/oauth2/v1/token",
            "client_id": "epm-client", "client_secret": "client-secret", "refresh_token": refresh_token}


async def test_oauth_refresh_token_rotates_and_is_persisted(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_job(1, state="0")
    first = sim.epm_di.issue_refresh_token()
    secrets = MemorySecrets()
    backend = make(_oauth(sim, first), secrets)
    for _ in range(3):  # the access token is cached: one refresh for three calls
        assert (await backend.status("1")).phase is Phase.SUCCEEDED
    assert sim.epm_di.count("POST", "/oauth2/v1/token") == 1
    second = secrets.data["epm-di:refresh_token"]
    assert second != first and second in sim.epm_di.refresh_tokens
    assert first in sim.epm_di.used_refresh_tokens  # the configured one is dead now

    sim.epm_di.expire_access_tokens()  # 401 → one refresh → the call is repeated
    assert (await backend.status("1")).phase is Phase.SUCCEEDED
    assert sim.epm_di.count("POST", "/oauth2/v1/token") == 2
    third = secrets.data["epm-di:refresh_token"]
    assert third not in (first, second) and secrets.writes == 2

    # a restart: the config still holds the first (used) token; the stored newest one is used
    restarted = make(_oauth(sim, first), secrets)
    assert (await restarted.status("1")).phase is Phase.SUCCEEDED
    assert secrets.data["epm-di:refresh_token"] not in (first, second, third)

    # without the store, the configured (used) token is refused: AuthFailed, no token in the text
    lost = make(_oauth(sim, first))
    with pytest.raises(AuthFailed) as err:
        await lost.status("1")
    assert "invalid_grant" in str(err.value)
    for secret in (first, second, third, "client-secret"):
        assert secret not in str(err.value)


async def test_oauth_new_configured_token_replaces_a_dead_stored_one(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_job(1, state="0")
    secrets = MemorySecrets()
    secrets.data["epm-di:refresh_token"] = "rt-dead"  # e.g. revoked: an admin pasted a new one in the config
    fresh = sim.epm_di.issue_refresh_token()
    backend = make(_oauth(sim, fresh), secrets)
    assert (await backend.status("1")).phase is Phase.SUCCEEDED
    assert secrets.data["epm-di:refresh_token"] in sim.epm_di.refresh_tokens
    assert fresh in sim.epm_di.used_refresh_tokens


async def test_oauth_token_rotated_by_another_process_is_read_back_from_the_store(
    sim: SimulatorServer, make
) -> None:
    sim.epm_di.add_job(1, state="0")
    first = sim.epm_di.issue_refresh_token()
    secrets = MemorySecrets()
    bot = make(_oauth(sim, first), secrets)
    await bot.status("1")
    check = make(_oauth(sim, first), secrets)  # e.g. `jobstatus-bot check` on the same database
    await check.status("1")  # uses the stored token and stores its successor
    sim.epm_di.expire_access_tokens()
    assert (await bot.status("1")).phase is Phase.SUCCEEDED  # its own token is dead: the store has the newest
    assert secrets.data["epm-di:refresh_token"] in sim.epm_di.refresh_tokens
    # bot, check, bot refused, bot with the stored one
    assert sim.epm_di.count("POST", "/oauth2/v1/token") == 4


async def test_oauth_concurrent_cold_start_refreshes_once(sim: SimulatorServer, make) -> None:
    import asyncio

    for i in range(10):
        sim.epm_di.add_job(i + 1, state="-1")
    backend = make(_oauth(sim, sim.epm_di.issue_refresh_token()), MemorySecrets())
    results = await asyncio.gather(*(backend.status(str(i + 1)) for i in range(10)))
    assert all(r.phase is Phase.RUNNING for r in results)
    assert sim.epm_di.count("POST", "/oauth2/v1/token") == 1


async def test_oauth_public_client_sends_client_id_in_the_form(sim: SimulatorServer, make) -> None:
    sim.epm_di.oauth_clients["public-client"] = None
    sim.epm_di.add_job(1, state="0")
    auth = {"type": "oauth2_refresh", "token_url": sim.base_url(TYPE) + "/oauth2/v1/token",
            "client_id": "public-client", "refresh_token": sim.epm_di.issue_refresh_token()}
    assert (await make(auth, MemorySecrets()).status("1")).phase is Phase.SUCCEEDED


async def test_maintenance_window_is_an_outage(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_job(1, state="-1")
    sim.epm_di.maintenance = True
    with pytest.raises(Unavailable) as err:
        await make().status("1")
    assert "maintenance" in str(err.value)
    assert err.value.retry_after == pytest.approx(120)
    assert not isinstance(err.value, BadResponse)


@pytest.mark.parametrize(
    ("kind", "error"),
    [("html", BadResponse), ("malformed", BadResponse), ("truncated", BadResponse), ("empty", BadResponse),
     ("wrong_types", BadResponse), ("500", Unavailable), ("503", Unavailable)],
)
async def test_faults(sim: SimulatorServer, make, kind: str, error: type[Exception]) -> None:
    sim.epm_di.add_job(1, state="0")
    sim.epm_di.faults = FaultPlan(rate=1.0, kinds=(kind,))
    with pytest.raises(error):
        await make().status("1")


async def test_cancel_is_not_offered(make) -> None:
    backend = make()
    assert backend.capabilities.cancel is False
    with pytest.raises(CancelNotSupported) as err:
        await backend.cancel("1")
    assert "Process Details" in str(err.value)


def test_other_auth_types_are_a_config_error(sim: SimulatorServer) -> None:
    with pytest.raises(ConfigError) as err:
        EpmDataIntegration("x", backend_config(sim, TYPE, {"type": "api_key", "key": "k"}))
    assert "basic" in str(err.value)


async def test_check_rows(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_file("outbox/x.csv", "a")
    rows = await make().check()
    assert rows and all(ok for _, ok, _ in rows)
    rows = await make({"type": "bearer", "token": "bad"}).check()
    assert rows[-1][1] is False


# -- log excerpts ---------------------------------------------------------------------------------------

def _log(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


GL_LOG = _log([
    "2026-05-31 10:00:00,001 INFO  [AIF]: Process Start, Process ID: 1881",
    "2026-05-31 10:00:01,002 INFO  [AIF]: Import data from source",
    "2026-05-31 10:00:02,003 INFO  [AIF]: Validating members",
    "2026-05-31 10:00:03,004 ERROR [AIF]: Error: No periods were identified for loading data into table",
    "    at com.hyperion.aif.Loader.run(Loader.java:81)",
    "    at com.hyperion.aif.Job.exec(Job.java:12)",
    "2026-05-31 10:00:04,005 INFO  [AIF]: Cleaning up",
    "2026-05-31 10:00:05,006 INFO  [AIF]: Cleaning up more",
    "2026-05-31 10:00:06,007 INFO  [AIF]: still cleaning",
    "2026-05-31 10:00:07,008 FATAL [AIF]: java.sql.SQLException: ORA-00001: unique constraint violated",
    "2026-05-31 10:00:08,009 INFO  [AIF]: Process End",
])


def test_log_excerpt_keeps_errors_with_context_and_marks_gaps() -> None:
    ex = LogExcerpt()
    ex.feed(GL_LOG.encode())
    ex.finish()
    assert ex.total_errors == 2
    assert ex.lines == [
        "2026-05-31 10:00:02,003 INFO  [AIF]: Validating members",
        "2026-05-31 10:00:03,004 ERROR [AIF]: Error: No periods were identified for loading data into table",
        "    at com.hyperion.aif.Loader.run(Loader.java:81)",
        "    at com.hyperion.aif.Job.exec(Job.java:12)",
        "…",
        "2026-05-31 10:00:06,007 INFO  [AIF]: still cleaning",
        "2026-05-31 10:00:07,008 FATAL [AIF]: java.sql.SQLException: ORA-00001: unique constraint violated",
        "2026-05-31 10:00:08,009 INFO  [AIF]: Process End",
    ]
    assert ex.content == GL_LOG.encode()


def test_log_excerpt_is_the_same_fed_byte_by_byte_with_crlf() -> None:
    whole = LogExcerpt()
    whole.feed(GL_LOG.encode())
    whole.finish()
    split = LogExcerpt()
    for b in GL_LOG.replace("\n", "\r\n").encode():
        split.feed(bytes([b]))
    split.finish()
    assert split.lines == whole.lines and split.total_errors == 2


def test_log_excerpt_is_bounded_but_counts_every_error() -> None:
    ex = LogExcerpt(max_lines=40, max_chars=3000)
    ex.feed(_log([f"ERROR line {i} " + "x" * 100 for i in range(500)]).encode())
    ex.finish()
    assert ex.total_errors == 500
    assert len(ex.lines) <= 40 and sum(len(line) + 1 for line in ex.lines) <= 3000
    ex = LogExcerpt(line_chars=50)
    ex.feed(b"ERROR " + b"y" * 10_000)
    ex.finish()
    assert len(ex.lines[0]) == 50 and ex.lines[0].endswith("…")


def test_log_excerpt_drops_the_copy_past_the_attachment_limit() -> None:
    ex = LogExcerpt(keep_bytes=100)
    ex.feed(b"a" * 60 + b"\n")
    assert ex.content is not None
    ex.feed(b"b" * 60 + b"\n")
    assert ex.content is None


def test_lowercase_error_words_are_not_error_lines() -> None:
    ex = LogExcerpt()
    ex.feed(b"INFO no errors found, error count 0\nINFO ok\n")
    ex.finish()
    assert ex.total_errors == 0 and ex.lines == []


async def test_failure_details_downloads_the_log_and_shows_error_lines(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_job(
        1881,
        name="GL_LOAD",
        steps=[Step(0, "-1"), Step(0, "1", {"details": "Error: see log"})],
        log_text=GL_LOG,
    )
    backend = make()
    st_ = await backend.status("1881")
    assert st_.log_paths == ("outbox/logs/GL_LOAD_1881.log",)
    details = await backend.failure_details(st_)
    assert details is not None
    assert details.total_errors == 2
    assert details.lines[1].endswith("No periods were identified for loading data into table")
    assert details.attachment == ("GL_LOAD_1881.log", GL_LOG.encode())
    assert details.files == (("outbox/logs/GL_LOAD_1881.log", len(GL_LOG.encode())),)
    # the whole path went URL-encoded as one segment (a raw "/" could not match the simulator's route)
    assert sim.epm_di.count("GET", "/applicationsnapshots/outbox/logs/GL_LOAD_1881.log/contents") == 1


async def test_failure_details_with_a_backslash_log_path(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_job(5, state=1, log_file="outbox\\logs\\GL_5.log", log_text="ERROR [AIF]: bad mapping\n")
    backend = make()
    st_ = await backend.status("5")
    assert st_.log_paths == ("outbox\\logs\\GL_5.log",)
    details = await backend.failure_details(st_)
    assert details is not None and details.lines == ("ERROR [AIF]: bad mapping",)
    assert details.attachment is not None and details.attachment[0] == "GL_5.log"


async def test_big_log_gives_error_lines_and_the_path_not_an_attachment(sim: SimulatorServer, make) -> None:
    # ~1.6 MB a half: past the 1 MB attachment limit and, in all, past the 2 MB read cap
    filler = ("INFO  [AIF]: row processed " + "z" * 80 + "\n") * 15_000
    text = filler + "ERROR [AIF]: the last row failed\n" + filler
    sim.epm_di.add_job(6, state="1", log_text=text)
    backend = make()
    details = await backend.failure_details(await backend.status("6"))
    assert details is not None
    assert details.attachment is None
    assert "ERROR [AIF]: the last row failed" in details.lines
    assert details.hint and "outbox/logs/GL_DATA_LOAD_6.log" in details.hint
    assert details.files[0][1] == len(text.encode())


async def test_missing_log_is_a_hint_not_a_crash(sim: SimulatorServer, make) -> None:
    job = sim.epm_di.add_job(8, state="1", log_text="ERROR x\n")
    sim.epm_di.files.pop(job.data["log_file"])
    backend = make()
    details = await backend.failure_details(await backend.status("8"))
    assert details is not None and details.attachment is None
    assert details.hint and "does not exist" in details.hint  # EPM's own JSON error text


async def test_log_without_error_lines_shows_its_tail(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_job(9, state="1", log_text=_log([f"INFO step {i}" for i in range(20)]))
    backend = make()
    details = await backend.failure_details(await backend.status("9"))
    assert details is not None and details.lines[-1] == "INFO step 19" and details.total_errors == 0
    assert details.hint and "no ERROR" in details.hint


async def test_log_download_refreshes_an_expired_oauth_token(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_job(10, state="1", log_text="FATAL boom\n")
    backend = make(_oauth(sim, sim.epm_di.issue_refresh_token()), MemorySecrets())
    st_ = await backend.status("10")
    sim.epm_di.expire_access_tokens()
    details = await backend.failure_details(st_)
    assert details is not None and details.lines == ("FATAL boom",)
    assert sim.epm_di.count("POST", "/oauth2/v1/token") == 2


async def test_sim_serves_status_as_json_with_string_job_id(sim: SimulatorServer, make) -> None:
    import httpx

    sim.epm_di.add_job(11, state="0")
    async with httpx.AsyncClient() as client:
        resp = await client.get(sim.base_url(TYPE) + "/aif/rest/V1/jobs/11",
                                headers={"Authorization": "Bearer test-token"})
    body = json.loads(resp.content)
    assert body["jobId"] == "11" and body["status"] == "0" and body["details"] == "null"


# -- a server path as logFileName ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "names"),
    [
        ("outbox/logs/GL_1.log", ["outbox/logs/GL_1.log"]),
        ("outbox\\logs\\GL_1.log", ["outbox/logs/GL_1.log"]),
        (
            "/u03/inbox/outbox/logs/Vision_271.log",
            ["outbox/logs/Vision_271.log", "/u03/inbox/outbox/logs/Vision_271.log"],
        ),
        (
            "\\u03\\inbox\\outbox\\logs\\Vision_271.log",
            ["outbox/logs/Vision_271.log", "/u03/inbox/outbox/logs/Vision_271.log"],
        ),
        (
            "D:\\epm\\outbox\\reports\\r.log",
            ["outbox/reports/r.log", "outbox/logs/r.log", "D:/epm/outbox/reports/r.log"],
        ),
        (
            "/u01/data/outbox/x/OUTBOX/logs/a.log",
            ["OUTBOX/logs/a.log", "outbox/logs/a.log", "/u01/data/outbox/x/OUTBOX/logs/a.log"],
        ),
        ("/u03/lcm/Vision_9.log", ["outbox/logs/Vision_9.log", "/u03/lcm/Vision_9.log"]),
    ],
)
def test_interop_names_of_a_log_path(given: str, names: list[str]) -> None:
    assert interop_names(given) == names


async def test_a_server_path_log_is_downloaded_by_its_repository_name(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_job(271, name="Vision", state="1", server_paths=True, log_text=GL_LOG)
    backend = make()
    st_ = await backend.status("271")
    assert st_.log_paths == ("/u03/inbox/outbox/logs/Vision_271.log",)  # as Data Integration gave it
    details = await backend.failure_details(st_)
    assert details is not None and details.total_errors == 2
    assert details.attachment == ("Vision_271.log", GL_LOG.encode())
    assert details.files == (("/u03/inbox/outbox/logs/Vision_271.log", len(GL_LOG.encode())),)
    downloads = [r.path for r in sim.epm_di.requests if r.path.endswith("/contents")]
    assert len(downloads) == 1 and downloads[0].endswith(
        "/applicationsnapshots/outbox/logs/Vision_271.log/contents"
    )


async def test_a_server_path_that_no_name_finds_is_said_and_shown(sim: SimulatorServer, make) -> None:
    # outside the repository: no file there
    sim.epm_di.add_job(272, state="1", log_file="/u09/archive/GL_272.log")
    backend = make()
    details = await backend.failure_details(await backend.status("272"))
    assert details is not None and details.attachment is None
    assert details.files == (("/u09/archive/GL_272.log", None),)  # the path EPM gave, shown
    hint = details.hint or ""
    assert "The log /u09/archive/GL_272.log could not be downloaded" in hint and "does not exist" in hint
    assert "asked the interop API for outbox/logs/GL_272.log, /u09/archive/GL_272.log" in hint
    assert len([r for r in sim.epm_di.requests if r.path.endswith("/contents")]) == 2


async def test_an_outage_while_downloading_stops_at_the_first_name(sim: SimulatorServer, make) -> None:
    sim.epm_di.add_job(273, state="1", server_paths=True, log_text="ERROR x\n")
    backend = make()
    st_ = await backend.status("273")
    sim.epm_di.maintenance = True
    details = await backend.failure_details(st_)
    assert details is not None and "maintenance" in (details.hint or "")
    assert len([r for r in sim.epm_di.requests if r.path.endswith("/contents")]) == 1
