"""Listing runs for following by name (issue 22): each adapter's `recent_runs`/`job_names` against its
simulator on loopback, asserted on what the simulator was asked (its request log), and the simulators' own
scheduler that starts a named job's runs by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from bot.backends.epm_di import EpmDataIntegration
from bot.backends.epm_planning import EpmPlanning
from bot.backends.fusion import ESS_PAGE, LIVE_WORDS, FusionJobScheduler
from bot.backends.immuta import SEARCH_SIZE, Immuta
from bot.backends.values import iso_utc
from bot.backends.vault import LIST_LIMIT, VeevaVault
from bot.domain.errors import AuthFailed, FollowNotSupported, Refused, Unavailable
from bot.domain.states import Phase
from bot.offline.setup import DEMO_SCHEDULE, seed_jobs
from bot.offline.vendors.core import Request, Step, VendorSim
from bot.offline.vendors.server import SimulatorServer
from tests.conftest import FakeClock, backend_config

DAY = 86400.0


@pytest.fixture
def clock(sim: SimulatorServer) -> FakeClock:
    clock = FakeClock()
    for one in sim.by_type.values():
        one.clock = clock
    return clock


def asked(vendor: VendorSim, contains: str) -> list[Request]:
    return [r for r in vendor.requests if contains in r.path]


def query(request: Request) -> dict[str, list[str]]:
    return parse_qs(request.query)


# -- Veeva Vault ------------------------------------------------------------------------------------------

@pytest.fixture
async def vault(sim: SimulatorServer, clock: FakeClock) -> AsyncIterator[VeevaVault]:
    sim.vault.basic_users["alice@example.com"] = "pw"
    backend = VeevaVault("vault", backend_config(
        sim, "veeva_vault", {"type": "vault_session", "username": "alice@example.com", "password": "pw"},
        api_version="v25.3"))
    yield backend
    await backend.aclose()


def vault_job(sim: SimulatorServer, job_id: int, title: str, start: float, end: float | None,
              word: str = "SUCCESS") -> None:
    """A Vault job that started `start` s ago (RUNNING after 1 s) and ends `end` s after its start."""
    steps = [Step(0.0, "QUEUED"), Step(1.0, "RUNNING")] + ([Step(end, word)] if end is not None else [])
    job = sim.vault.add_job(job_id, name=title, steps=steps)
    job.started = sim.vault.clock() - start


async def test_vault_lists_live_and_recently_ended_runs(sim: SimulatorServer, vault: VeevaVault,
                                                        clock: FakeClock) -> None:
    vault_job(sim, 501, "Nightly Binder Export", start=3 * DAY, end=None)  # live, created long ago
    # ended 300 s ago
    vault_job(sim, 502, "User Account Activation", start=600, end=300, word="ERRORS_ENCOUNTERED")
    vault_job(sim, 503, "User Account Activation", start=2 * DAY, end=60)  # ended long before `since`
    since = clock() - 3600
    runs = {run.job_id: run for run in await vault.recent_runs(since)}

    assert set(runs) == {"501", "502"}
    assert runs["501"].name == "Nightly Binder Export" and runs["501"].phase is Phase.RUNNING
    assert runs["502"].phase is Phase.FAILED and runs["502"].vendor_status == "ERRORS_ENCOUNTERED"
    assert runs["502"].ended_at == pytest.approx(clock() - 300, abs=1)
    assert runs["502"].started_at == pytest.approx(clock() - 599, abs=1)
    monitors, histories = asked(sim.vault, "/monitors"), asked(sim.vault, "/histories")
    assert len(monitors) == 1 and len(histories) == 1  # one page each
    assert query(monitors[0]) == {"limit": [str(LIST_LIMIT)], "offset": ["0"]}
    assert query(histories[0])["start_date"] == [iso_utc(since)]


async def test_vault_pages_by_offset_until_the_total(sim: SimulatorServer, vault: VeevaVault,
                                                     clock: FakeClock) -> None:
    for n in range(2 * LIST_LIMIT + 5):
        vault_job(sim, 10_000 + n, f"Job {n % 3}", start=120, end=60)
    runs = await vault.recent_runs(clock() - 3600)

    assert len({run.job_id for run in runs}) == 2 * LIST_LIMIT + 5
    offsets = [query(r)["offset"] for r in asked(sim.vault, "/histories")]
    assert offsets == [["0"], [str(LIST_LIMIT)], [str(2 * LIST_LIMIT)]]
    assert await vault.job_names() == ["Job 0", "Job 1", "Job 2"]


async def test_vault_simulator_refuses_what_vault_refuses(sim: SimulatorServer, vault: VeevaVault) -> None:
    await vault.sign_in()
    for bad in ({"limit": 201}, {"limit": 0}, {"start_date": "2026-12-07"}, {"status": "SUCCESS"}):
        payload = await vault._call("GET", "/api/v25.3/services/jobs/histories", params=bad)
        assert payload["responseStatus"] == "FAILURE", bad
        assert payload["errors"][0]["type"] == "INVALID_DATA"
    ok = await vault._call("GET", "/api/v25.3/services/jobs/monitors", params={"status": "running"})
    assert ok["responseStatus"] == "SUCCESS"


async def test_vault_refusing_a_listing_parameter_is_no_missing_job(sim: SimulatorServer, vault: VeevaVault,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # a listing Vault refuses (a limit over its 200 here) says so, not "no such job"
    monkeypatch.setattr("bot.backends.vault.LIST_LIMIT", 500)
    with pytest.raises(Refused, match="refused the job listing"):
        await vault.recent_runs(0.0)
    assert query(asked(sim.vault, "/monitors")[0])["limit"] == ["500"]


async def test_vault_scheduled_instance_counts_from_its_creation(sim: SimulatorServer, vault: VeevaVault,
                                                                 clock: FakeClock) -> None:
    job = sim.vault.add_job(601, name="Task Reminder Notification",
                            steps=[Step(0.0, "SCHEDULED"), Step(3600.0, "RUNNING")])
    job.started = clock() - 60
    [run] = await vault.recent_runs(clock() - 3600)
    # Vault's run_start_date of a SCHEDULED instance is its due time, an hour ahead: not its start
    assert asked(sim.vault, "/monitors") and run.vendor_status == "SCHEDULED"
    assert run.phase is Phase.QUEUED and run.started_at == pytest.approx(clock() - 60, abs=1)


async def test_vault_listing_error_is_a_backend_error(sim: SimulatorServer, vault: VeevaVault,
                                                      clock: FakeClock) -> None:
    await vault.sign_in()
    sim.vault.expire_sessions()
    sim.vault.basic_users["alice@example.com"] = "changed"
    with pytest.raises(AuthFailed):
        await vault.recent_runs(clock() - 60)


# -- Oracle Fusion (ESS) ----------------------------------------------------------------------------------

@pytest.fixture
async def fusion(sim: SimulatorServer, clock: FakeClock) -> AsyncIterator[FusionJobScheduler]:
    sim.fusion.bearer_tokens.add("tok-1")
    backend = FusionJobScheduler("fusion", backend_config(sim, "fusion_jobscheduler",
                                                          {"type": "bearer", "token": "tok-1"}))
    yield backend
    await backend.aclose()


def fusion_job(sim: SimulatorServer, job_id: int, name: str, start: float, end: float | None,
               word: str = "SUCCEEDED", **data: Any) -> None:
    steps = [Step(0.0, "ENQUEUED"), Step(1.0, "RUNNING")] + ([Step(end, word)] if end is not None else [])
    job = sim.fusion.add_job(job_id, name=name, steps=steps, **data)
    job.started = sim.fusion.clock() - start


GL = "JobDefinition://oracle/apps/ess/financials/generalLedger/GlLoad"


async def test_fusion_lists_by_one_scim_query(sim: SimulatorServer, fusion: FusionJobScheduler,
                                              clock: FakeClock) -> None:
    fusion_job(sim, 71, "GL Load", start=3 * DAY, end=None, definition=GL)  # live since long ago
    fusion_job(sim, 72, "GL Load", start=900, end=100, word="ERROR", definition=GL)  # ended after since
    fusion_job(sim, 73, "GL Load", start=2 * DAY, end=60, definition=GL)  # ended long before
    fusion_job(sim, 74, "Close", start=30, end=None)  # submitted after since
    since = clock() - 3600
    runs = {run.job_id: run for run in await fusion.recent_runs(since)}

    assert set(runs) == {"71", "72", "74"}
    assert runs["71"].name == GL and runs["71"].display_name == "GL Load"
    assert runs["71"].phase is Phase.RUNNING
    assert runs["72"].phase is Phase.FAILED and runs["72"].vendor_status == "ERROR"
    assert runs["72"].ended_at == pytest.approx(clock() - 800, abs=1)
    [request] = asked(sim.fusion, "/ess/rest/scheduler/v1/requests/search/")
    assert request.path.endswith("/search/1")
    q = query(request)
    assert q["orderBy"] == ["submissionTime:asc"]
    at = iso_utc(since, millis=True)
    assert q["q"][0].startswith(f'submissionTime gt "{at}" or processEndTime gt "{at}" or state eq ')
    assert all(f'state eq "{word}"' in q["q"][0] for word in ("WAIT", "RUNNING", "HOLD"))
    assert "SUCCEEDED" not in q["q"][0] and "RUNNING" in LIVE_WORDS


async def test_fusion_pages_until_a_short_page(sim: SimulatorServer, fusion: FusionJobScheduler,
                                               clock: FakeClock) -> None:
    for n in range(ESS_PAGE + 3):
        fusion_job(sim, 1000 + n, "GL Load", start=60, end=None, definition=GL)
    runs = await fusion.recent_runs(clock() - 3600)

    assert len({run.job_id for run in runs}) == ESS_PAGE + 3
    pages = [r.path.rsplit("/", 1)[-1] for r in asked(sim.fusion, "/requests/search/")]
    assert pages == ["1", "2"]
    assert await fusion.job_names() == [GL]


async def test_fusion_simulator_refuses_a_bad_q(sim: SimulatorServer, fusion: FusionJobScheduler) -> None:
    for bad in ('jobDisplayName eq "GL Load"', 'state eq', '(state eq "WAIT"', 'state like "W"'):
        resp = await fusion.http.get(fusion.url("/ess/rest/scheduler/v1/requests"), params={"q": bad},
                                     auth=fusion.auth)
        assert resp.status_code == 400, bad
    resp = await fusion.http.get(fusion.url("/ess/rest/scheduler/v1/requests/search/0"), auth=fusion.auth)
    assert resp.status_code == 400


async def test_fusion_listing_without_credentials(sim: SimulatorServer, fusion: FusionJobScheduler,
                                                  clock: FakeClock) -> None:
    fusion.auth = None  # no credentials: the listing is refused like a status call
    with pytest.raises(AuthFailed):
        await fusion.recent_runs(clock() - 60)


# -- Immuta -----------------------------------------------------------------------------------------------

@pytest.fixture
async def immuta(sim: SimulatorServer, clock: FakeClock) -> AsyncIterator[Immuta]:
    sim.immuta.bearer_tokens.add("imt-fixed")
    backend = Immuta("immuta", backend_config(sim, "immuta", {"type": "bearer", "token": "imt-fixed"}))
    yield backend
    await backend.aclose()


def immuta_job(sim: SimulatorServer, kind: str, start: float, end: float | None,
               word: str = "completed") -> str:
    steps = [Step(0.0, "created"), Step(1.0, "active")] + ([Step(end, word)] if end is not None else [])
    job = sim.immuta.add_job(name=kind, steps=steps)
    job.started = sim.immuta.clock() - start
    return job.job_id


async def test_immuta_lists_by_job_type(sim: SimulatorServer, immuta: Immuta, clock: FakeClock) -> None:
    live = immuta_job(sim, "policyUpdate", start=3 * DAY, end=None)
    failed = immuta_job(sim, "dataSourceSync", start=120, end=60, word="failed")
    immuta_job(sim, "dataSourceSync", start=3 * DAY, end=30)  # ended days ago
    runs = {run.job_id: run for run in await immuta.recent_runs(clock() - 3600)}

    assert set(runs) == {live, failed}
    assert runs[live].name == "policyUpdate" and runs[live].phase is Phase.RUNNING
    assert runs[failed].phase is Phase.FAILED and runs[failed].ended_at == pytest.approx(clock() - 60, abs=1)
    searches = asked(sim.immuta, "/jobs/search")
    assert len(searches) == 2
    assert query(searches[0])["state"] == ["created", "retry", "active"]
    assert "startDate" in query(searches[1]) and query(searches[1])["size"] == [str(SEARCH_SIZE)]
    assert await immuta.job_names() == ["dataSourceSync", "policyUpdate"]


async def test_immuta_pages_by_next(sim: SimulatorServer, immuta: Immuta, clock: FakeClock) -> None:
    sim.immuta.search_page_max = 7  # a server that answers fewer than asked: `next` still reads it all
    ids = {immuta_job(sim, "policyUpdate", start=60, end=None) for _ in range(16)}
    runs = await immuta.recent_runs(clock() - 3600)

    assert {run.job_id for run in runs} == ids
    first = [query(r)["offset"] for r in asked(sim.immuta, "/jobs/search") if "state" in query(r)]
    assert first == [["0"], ["7"], ["14"]]


async def test_immuta_simulator_refuses_bad_filters(sim: SimulatorServer, immuta: Immuta) -> None:
    for bad in ({"size": "0"}, {"startDate": "yesterday"}, {"offset": "-1"}):
        resp = await immuta.http.get(immuta.url("/jobs/search"), params=bad, auth=immuta.auth)
        assert resp.status_code == 400, bad


async def test_immuta_listing_outage(sim: SimulatorServer, immuta: Immuta, clock: FakeClock) -> None:
    sim.immuta.faults.rate = 1.0
    sim.immuta.faults.kinds = ("503",)
    with pytest.raises(Unavailable):
        await immuta.recent_runs(clock() - 60)


# -- Oracle EPM: no listing -------------------------------------------------------------------------------

async def test_epm_refuses_to_follow_with_its_hint(sim: SimulatorServer) -> None:
    di = EpmDataIntegration("epm-di", backend_config(sim, "epm_data_integration"))
    planning = EpmPlanning("planning", backend_config(sim, "epm_planning", application="Vision"))
    try:
        for backend, words in ((di, "Data Integration runs"), (planning, "Export Job Console")):
            assert not backend.can_follow
            with pytest.raises(FollowNotSupported) as caught:
                await backend.recent_runs(0.0)
            assert words in str(caught.value) and "watch each run by its" in str(caught.value)
            assert await backend.job_names() == []
    finally:
        await di.aclose()
        await planning.aclose()
    assert sim.epm_di.requests == [] and sim.planning.requests == []  # nothing was asked


# -- the simulators' own scheduler --------------------------------------------------------------------------

async def test_a_scheduled_job_starts_runs_that_fail_on_its_pattern(sim: SimulatorServer, vault: VeevaVault,
                                                                    clock: FakeClock) -> None:
    plan = sim.vault.schedule("Nightly Load", every=60, pattern="SF", queued_for=1, runs_for=5)
    assert len(plan.run_ids) == 1  # the first run starts at once
    clock.advance(60 * 3 + 10)
    since = clock() - 3600
    runs = sorted(await vault.recent_runs(since), key=lambda run: run.started_at or 0)

    assert [run.job_id for run in runs] == plan.run_ids and len(runs) == 4
    assert [run.phase for run in runs] == [Phase.SUCCEEDED, Phase.FAILED, Phase.SUCCEEDED, Phase.FAILED]
    assert all(run.name == "Nightly Load" for run in runs)
    clock.advance(50)  # the fifth run is due at 240 s: started, still queued
    sim.vault.start_due()
    fifth = sim.vault.jobs[plan.run_ids[-1]]
    assert len(plan.run_ids) == 5 and fifth.current(clock()).state == "QUEUED"
    clock.advance(2)
    assert fifth.current(clock()).state == "RUNNING"
    assert (await vault.status(plan.run_ids[1])).phase is Phase.FAILED  # each run answers by id too


def test_a_schedule_catches_up_at_most_a_bounded_number_of_runs(sim: SimulatorServer,
                                                                clock: FakeClock) -> None:
    plan = sim.immuta.schedule("policyUpdate", every=0.5)
    clock.advance(DAY)
    sim.immuta.start_due()
    assert len(plan.run_ids) == 501 and plan.started == int(DAY / 0.5) + 1  # the first, then the newest 500
    assert sim.immuta.jobs[plan.run_ids[-1]].started == clock()
    with pytest.raises(ValueError):
        sim.fusion.schedule("x", every=60, pattern="SX")


async def test_the_demo_fusion_job_starts_every_minute(sim: SimulatorServer, fusion: FusionJobScheduler,
                                                       clock: FakeClock) -> None:
    seed_jobs(sim)
    name, definition = DEMO_SCHEDULE
    clock.advance(5 * 60 + 10)  # runs at 0, 60, …, 300 s: the one at 300 s is running
    runs = sorted((run for run in await fusion.recent_runs(clock() - 3600) if run.name == definition),
                  key=lambda run: run.started_at or 0)

    assert [run.phase for run in runs] == [Phase.SUCCEEDED, Phase.FAILED, Phase.FAILED, Phase.FAILED,
                                           Phase.SUCCEEDED, Phase.RUNNING]
    assert {run.display_name for run in runs} == {name}
    assert (await fusion.status(runs[1].job_id)).phase is Phase.FAILED  # the saas-batch status by id agrees
    assert (await fusion.status(runs[5].job_id)).phase is Phase.RUNNING
