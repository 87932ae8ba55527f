"""The simulators' shared preamble, without a socket: reading credentials, paging, and a vendor's job
defaults."""

from __future__ import annotations

import base64
import uuid

import pytest
from aiohttp.test_utils import make_mocked_request

from bot.offline.vendors.core import basic_credentials, bearer_token, json_id, offset_limit
from bot.offline.vendors.epm_di import EpmDiSim
from bot.offline.vendors.epm_planning import PlanningSim
from bot.offline.vendors.fusion import FusionSim
from bot.offline.vendors.immuta import ImmutaSim
from bot.offline.vendors.vault import VaultSim


def basic(raw: str) -> str:
    return "Basic " + base64.b64encode(raw.encode()).decode()


@pytest.mark.parametrize(("header", "expected"), [
    (basic("ana:s3cret:with:colons"), ("ana", "s3cret:with:colons")),
    (basic("nobody"), ("nobody", "")),
    # base64 of "ana:pw" with a "*", outside the alphabet: refused, not skipped
    ("Basic YW5h*OnB3", ("", "")),
    ("Basic " + base64.b64encode(b"\xff\xfe:pw").decode(), ("", "")),  # not text
    ("Bearer abc", None),
    ("", None),
])
def test_basic_credentials(header: str, expected: tuple[str, str] | None) -> None:
    request = make_mocked_request("GET", "/", headers={"Authorization": header} if header else {})
    assert basic_credentials(request) == expected


def test_bearer_token() -> None:
    assert bearer_token(make_mocked_request("GET", "/", headers={"Authorization": "Bearer t-1"})) == "t-1"
    assert bearer_token(make_mocked_request("GET", "/", headers={"Authorization": basic("a:b")})) is None
    assert bearer_token(make_mocked_request("GET", "/")) is None


@pytest.mark.parametrize(("query", "expected"), [
    ("", (0, 25)), ("offset=50&limit=5", (50, 5)), ("offset=-1", None), ("limit=0", None), ("limit=x", None),
])
def test_offset_limit(query: str, expected: tuple[int, int] | None) -> None:
    assert offset_limit(make_mocked_request("GET", f"/items?{query}"), 25) == expected


def test_json_id_is_a_number_only_when_all_digits() -> None:
    assert (json_id("44046"), json_id(7), json_id("3f1c-9a"), json_id("-1")) == (44046, 7, "3f1c-9a", "-1")


@pytest.mark.parametrize(("sim", "name", "state", "cancellable"), [
    (FusionSim(), "Job", "ENQUEUED", True),
    (VaultSim(), "Job", "QUEUED", True),
    (EpmDiSim(lambda: 0.0), "GL_DATA_LOAD", "-1", False),
    (PlanningSim(lambda: 0.0), "Refresh Database", -1, False),
    (ImmutaSim(lambda: 0.0), "Immuta job", "created", False),
])
def test_a_job_added_with_nothing_gets_its_vendors_defaults(sim: object, name: str, state: object,
                                                           cancellable: bool) -> None:
    assert isinstance(sim, FusionSim | VaultSim | EpmDiSim | PlanningSim | ImmutaSim)
    job = sim.add_job()
    assert (job.name, job.steps[0].state, job.cancellable) == (name, state, cancellable)
    assert sim.jobs[job.job_id] is job
    assert sim.add_job(state="X", name="mine", cancellable=not cancellable).cancellable is not cancellable


def test_job_ids_when_none_is_given() -> None:
    fusion = FusionSim()
    assert [fusion.add_job().job_id for _ in range(2)] == ["1001", "1002"]
    assert uuid.UUID(ImmutaSim(lambda: 0.0).add_job().job_id).version == 4  # Immuta's job ids are UUIDs
    assert EpmDiSim(lambda: 0.0).add_job(7).data["log_file"] == "outbox/logs/GL_DATA_LOAD_7.log"
