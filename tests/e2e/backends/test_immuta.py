"""Immuta: parsing the statuses map, job ids, raw and exchanged API keys, re-auth, and one request per
batch."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.backends.immuta import (
    CHUNK_SIZE,
    PROBE_ID,
    Immuta,
    parse_status,
    parse_statuses,
    validate_immuta_job_id,
)
from bot.domain.errors import (
    AuthFailed,
    BackendError,
    BadResponse,
    CancelNotSupported,
    InvalidJobId,
    JobNotFound,
    Unavailable,
)
from bot.domain.states import IMMUTA, Phase
from bot.domain.status import JobStatus
from bot.offline.vendors.core import FaultPlan, Step
from bot.offline.vendors.server import SimulatorServer
from bot.support.config import ConfigError
from tests.conftest import Harness, backend_config

TYPE = "immuta"
JOB = "3f2b8c1e-9a4d-4e2f-8b1a-5c6d7e8f9a0b"
# the job id in Immuta's own example (documentation.immuta.com/SaaS/developer-guides/api-intro/immuta-v1-api/
# configure-your-instance-of-immuta/jobs, ../shared/vendor-docs/listing/immuta/jobs-statuses-request.json)
EXAMPLE = "cefb58a0-cd71-11ec-8e29-81c20d280994"


def guid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012x}"
KEY = "immuta-api-key-0123456789"


# -- parsing -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", sorted(IMMUTA))
@pytest.mark.parametrize("as_list", [False, True])
def test_every_state_as_string_or_one_element_list(state: str, as_list: bool) -> None:
    entry = {"id": JOB, "state": [state] if as_list else state, "output": None}
    st_ = parse_status(entry, JOB)
    assert st_.phase is IMMUTA[state]
    assert st_.vendor_status == state


def test_retry_is_queued_not_terminal() -> None:
    assert parse_status({"state": "retry"}, JOB).terminal is False


def test_output_is_the_message_and_unknown_state_is_unknown() -> None:
    st_ = parse_status({"id": JOB, "state": "failed", "output": "Error: policy sync failed"}, JOB)
    assert (st_.phase, st_.message) == (Phase.FAILED, "Error: policy sync failed")
    assert parse_status({"state": "Paused-ish"}, JOB).phase is Phase.UNKNOWN
    structured = parse_status({"state": "completed", "output": {"rows": 3}}, JOB)
    assert structured.message == '{"rows":3}'
    long = parse_status({"state": "failed", "output": "x" * 10_000}, JOB)
    assert long.message is not None and len(long.message) <= 3000


@pytest.mark.parametrize(
    "entry",
    [None, "active", ["active"], 3, {}, {"state": None}, {"state": 5}, {"state": []}, {"state": ["a", "b"]},
     {"state": [["active"]]}, {"state": {"v": "active"}}, {"state": "  "}, {"state": "active", "id": "other"},
     {"state": "active", "id": ["x"]}],
)
def test_garbage_entries_are_bad_response(entry: Any) -> None:
    with pytest.raises(BadResponse):
        parse_status(entry, JOB)


def test_parse_statuses_map_missing_ids_and_bad_entries() -> None:
    payload = {JOB: {"id": JOB, "state": "active"}, guid(2): {"id": guid(2), "state": 7}}
    out = parse_statuses(payload, [JOB, guid(2), guid(3)])
    assert isinstance(out[JOB], JobStatus) and out[JOB].phase is Phase.RUNNING
    assert isinstance(out[guid(2)], BadResponse)
    assert isinstance(out[guid(3)], JobNotFound) and "unknown or purged" in str(out[guid(3)])


def test_parse_statuses_tolerates_a_list_of_job_objects_and_uuid_case() -> None:
    out = parse_statuses([{"id": JOB.upper(), "state": "completed"}], [JOB])
    assert isinstance(out[JOB], JobStatus) and out[JOB].phase is Phase.SUCCEEDED


@pytest.mark.parametrize("payload", [None, "x", 5, [1, "two", None, {"status": {"nested": True}}], [None]])
def test_parse_statuses_wrong_shapes(payload: Any) -> None:
    with pytest.raises(BadResponse):
        parse_statuses(payload, [JOB])


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["id", "state", "output", JOB]), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_any_json_gives_statuses_or_backend_errors(payload: Any) -> None:
    try:
        out = parse_statuses(payload, [JOB, "other"])
    except BadResponse:
        return
    assert set(out) == {JOB, "other"}
    assert all(isinstance(v, JobStatus | BackendError) for v in out.values())


def test_job_ids_are_guids_as_immuta_writes_them() -> None:
    """Immuta's schema takes a GUID with dashes or without, in braces or not (Joi's guid rule); the bot sends
    the form Immuta writes ids in, which is also its answer's key."""
    for written in (JOB.upper(), f" {JOB} ", JOB.replace("-", ""), "{" + JOB + "}"):
        assert validate_immuta_job_id(written) == JOB
    assert validate_immuta_job_id(EXAMPLE) == EXAMPLE


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "job-123",
        "12345",
        "job_42-a",
        "x" * 65,
        "../etc",
        "id;drop",
        "é1",
        JOB[:-1],
        JOB + "0",
        "{" + JOB,
        JOB.replace("-", "", 1),
        JOB.replace("a", "g", 1),
    ],
)
def test_anything_but_a_guid_is_refused_with_immutas_own_example(bad: str) -> None:
    with pytest.raises(InvalidJobId) as err:
        validate_immuta_job_id(bad)
    assert str(err.value).endswith(f"is not an Immuta job id: it is the job's globally unique identifier, "
                                   f"e.g. {EXAMPLE}")


# -- against the simulator ------------------------------------------------------------------------------

@pytest.fixture
async def make(sim: SimulatorServer) -> AsyncIterator[Callable[..., Immuta]]:
    made: list[Immuta] = []
    sim.immuta.api_keys.add(KEY)

    def _make(key: str = KEY, exchange: bool = True) -> Immuta:
        backend = Immuta(
            "immuta", backend_config(sim, TYPE, {"type": "api_key", "key": key, "exchange": exchange})
        )
        made.append(backend)
        return backend

    yield _make
    for backend in made:
        await backend.aclose()


def _status_posts(sim: SimulatorServer) -> list[list[str]]:
    return [json.loads(r.body)["jobIds"] for r in sim.immuta.requests if r.path.endswith("/jobs/statuses")]


async def test_raw_api_key(sim: SimulatorServer, make) -> None:
    sim.immuta.add_job(JOB, steps=[Step(0, "active")])
    st_ = await make(exchange=False).status(JOB)
    assert st_.phase is Phase.RUNNING
    assert sim.immuta.requests[-1].headers["Authorization"] == KEY
    assert sim.immuta.count("POST", "/bim/apikey/authenticate") == 0


async def test_wrong_keys_are_auth_failed_without_the_key(sim: SimulatorServer, make) -> None:
    sim.immuta.add_job(JOB, state="active")
    for exchange in (True, False):
        with pytest.raises(AuthFailed) as err:
            await make(key="wrong-key-987", exchange=exchange).status(JOB)
        assert "wrong-key-987" not in str(err.value)


async def test_exchanged_key_and_reauth_after_401(sim: SimulatorServer, make) -> None:
    job = sim.immuta.add_job(JOB, steps=[Step(0, ["active"])])
    backend = make()
    assert (await backend.status(JOB)).phase is Phase.RUNNING
    assert sim.immuta.requests[-1].headers["Authorization"].startswith("Bearer imt-")
    assert sim.immuta.count("POST", "/bim/apikey/authenticate") == 1
    job.set(sim.immuta.clock(), "completed", output="done")
    sim.immuta.expire_tokens()  # → 401 → exchange again once → repeat
    st_ = await backend.status(JOB)
    assert (st_.phase, st_.message) == (Phase.SUCCEEDED, "done")
    assert sim.immuta.count("POST", "/bim/apikey/authenticate") == 2
    assert len(_status_posts(sim)) == 3


async def test_reauth_on_500_meant_as_401(sim: SimulatorServer, make) -> None:
    sim.immuta.add_job(JOB, state="failed", output="boom")
    sim.immuta.auth_error_status = 500
    backend = make()
    await backend.status(JOB)
    sim.immuta.expire_tokens()
    assert (await backend.status(JOB)).phase is Phase.FAILED
    assert sim.immuta.count("POST", "/bim/apikey/authenticate") == 2


async def test_a_real_500_is_unavailable_after_one_reauth(sim: SimulatorServer, make) -> None:
    sim.immuta.add_job(JOB, state="active")
    sim.immuta.faults = FaultPlan(rate=1.0, kinds=("500",))
    with pytest.raises(Unavailable):
        await make().status(JOB)
    assert len(_status_posts(sim)) == 2 and sim.immuta.count("POST", "/bim/apikey/authenticate") == 2


async def test_450_ids_in_one_request(sim: SimulatorServer, make) -> None:
    ids = [guid(i) for i in range(450)]
    for i, job_id in enumerate(ids[:400]):
        sim.immuta.add_job(job_id, state=["completed"] if i % 2 else "active", output=f"out {i}")
    backend = make()
    out = await backend.statuses(ids)
    assert _status_posts(sim) == [ids]
    assert set(out) == set(ids)
    assert isinstance(out[guid(1)], JobStatus) and out[guid(1)].phase is Phase.SUCCEEDED
    assert isinstance(out[guid(2)], JobStatus) and out[guid(2)].phase is Phase.RUNNING
    assert all(isinstance(out[j], JobNotFound) for j in ids[400:])
    assert backend.capabilities.batch is True


async def test_more_ids_are_chunked(sim: SimulatorServer, make) -> None:
    ids = [guid(i) for i in range(1200)]
    for job_id in ids[::7]:
        sim.immuta.add_job(job_id, state="active")
    out = await make().statuses(ids + ["bad id", ids[0]])
    posts = _status_posts(sim)
    assert sorted(len(p) for p in posts) == [200, CHUNK_SIZE, CHUNK_SIZE]
    assert sorted(j for p in posts for j in p) == sorted(ids)  # each id asked once, the bad one never
    assert isinstance(out["bad id"], InvalidJobId)
    assert sum(isinstance(v, JobStatus) for v in out.values()) == len(ids[::7])


async def test_single_status_missing_is_job_not_found(sim: SimulatorServer, make) -> None:
    with pytest.raises(JobNotFound):
        await make().status(JOB)
    assert len(_status_posts(sim)) == 1


@pytest.mark.parametrize("kind", ["html", "malformed", "truncated", "empty", "wrong_types"])
async def test_unreadable_answers_are_bad_response_for_every_id(
    sim: SimulatorServer, make, kind: str
) -> None:
    sim.immuta.add_job(guid(1), state="active")
    sim.immuta.faults = FaultPlan(rate=1.0, kinds=(kind,))
    out = await make().statuses([guid(1), guid(2)])
    assert isinstance(out[guid(1)], BadResponse) and isinstance(out[guid(2)], BadResponse)


async def test_failure_details_add_nothing_beside_the_output(sim: SimulatorServer, make) -> None:
    sim.immuta.add_job(JOB, state="failed", output="Error: could not reach Snowflake\nretry later")
    backend = make()
    st = await backend.status(JOB)
    assert st.message == "Error: could not reach Snowflake\nretry later"  # the state-change reply shows it
    assert await backend.failure_details(st) is None
    sim.immuta.add_job(guid(1), state="failed")
    details = await backend.failure_details(await backend.status(guid(1)))
    assert details is not None and details.lines == () and details.hint and "Immuta UI" in details.hint


async def test_cancel_and_check(sim: SimulatorServer, make) -> None:
    backend = make()
    with pytest.raises(CancelNotSupported) as err:
        await backend.cancel(JOB)
    assert "Immuta UI" in str(err.value)
    assert await backend.check() == [("API key exchange", True, "token received"),
                                     ("jobs API", True, "POST /jobs/statuses answered")]
    assert _status_posts(sim) == [[PROBE_ID]]  # one well-formed id, of no job: an empty list is refused
    rows = await make(key="nope").check()
    assert rows == [("API key exchange", False, rows[0][2])] and "nope" not in rows[0][2]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"jobIds": [], "wait": 0}, '"jobIds" must contain at least 1 items'),
        ({"jobIds": [JOB, "job-123"]}, '"jobIds[1]" must be a valid GUID'),
        ({"jobIds": ["12345"]}, '"jobIds[0]" must be a valid GUID'),
        ({"jobIds": [JOB, JOB]}, '"jobIds[1]" contains a duplicate value'),
        ({"jobIds": [5]}, '"jobIds[0]" must be a string'),
        ({"jobIds": JOB}, '"jobIds" must be an array'),
        ({"wait": 0}, '"jobIds" is required'),
    ],
)
async def test_the_simulator_refuses_what_immutas_schema_refuses(sim: SimulatorServer, body: Any,
                                                                  message: str) -> None:
    """Immuta's swagger (`definitions.jobIds`: minItems 1, unique, each a GUID) in Immuta's error body, with
    the words of the Joi validation it was generated from; and the forms Joi's guid takes are taken."""
    sim.immuta.api_keys.add(KEY)
    sim.immuta.add_job(JOB, state="active")
    async with httpx.AsyncClient(base_url=sim.base_url("immuta"), headers={"Authorization": KEY}) as client:
        refused = await client.post("/jobs/statuses", json=body)
        assert (refused.status_code, refused.json()) == (400, {"statusCode": 400, "error": "Bad Request",
                                                               "message": message})
        for written in (JOB, JOB.upper(), JOB.replace("-", ""), "{" + JOB + "}", PROBE_ID):
            taken = await client.post("/jobs/statuses", json={"jobIds": [written]})
            assert taken.status_code == 200 and taken.json() == ({JOB: {"id": JOB, "state": "active"}}
                                                                 if written == JOB else {})


async def test_check_says_the_jobs_api_is_broken_when_immuta_refuses_the_request(sim: SimulatorServer,
                                                                                  make) -> None:
    sim.immuta.max_job_ids = 0  # Immuta refusing even one id: what the check must report, in Immuta's words
    rows = await make().check()
    assert rows[0] == ("API key exchange", True, "token received")
    assert rows[1][:2] == ("jobs API", False) and "must contain at most 0 items" in rows[1][2]


def test_other_auth_types_are_a_config_error(sim: SimulatorServer) -> None:
    with pytest.raises(ConfigError):
        Immuta("i", backend_config(sim, TYPE, {"type": "basic", "username": "u", "password": "p"}))


# -- through the bot ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["job-123", "12345", "3f2b8c1e-9a4d-4e2f-8b1a"])
@pytest.mark.parametrize("command", ["watch", "status"])
async def test_a_job_id_immuta_would_refuse_is_refused_at_the_command_and_never_sent(
        harness: Harness, command: str, text: str) -> None:
    """In the words every vendor's malformed id gets, with Immuta's own example; not sent to Immuta (whose
    schema would refuse the whole request with a 400 the user would read as "tell the operator")."""
    h = harness
    # even a simulator that knew such an id is not asked
    h.sim.immuta.add_job(text, steps=[Step(0, "active")])
    result = await h.user.command(f"{command} immuta-demo {text}")
    assert result.status == 200
    assert result.ack_text == (
        f"'{text}' is not an Immuta job id: it is the job's globally unique identifier, e.g. {EXAMPLE}."
    )  # as every malformed id is answered
    assert h.sim.immuta.count("POST", "/jobs/statuses") == 0
    assert h.parents() == [] and h.slack.calls_of("chat.postMessage") == []


async def test_a_guid_written_in_capitals_is_watched_as_immuta_writes_it(harness: Harness) -> None:
    h = harness
    h.sim.immuta.add_job(EXAMPLE, steps=[Step(0, "active")])
    answer = await h.watch(f"watch immuta-demo {EXAMPLE.upper()}")
    assert "Watching" in answer.responses()[-1].text
    assert EXAMPLE in h.parents()[0].text
    asked = [json.loads(r.body)["jobIds"] for r in h.sim.immuta.requests if r.path.endswith("/jobs/statuses")]
    assert asked and all(ids == [EXAMPLE] for ids in asked)
