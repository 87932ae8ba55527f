"""The demo's world, shared with the tests and the benchmark: the simulators' accounts, one backend of each
type pointing at them, and the demo's scripted jobs.

`configure_simulators` gives every simulator the accounts `demo_backends` logs in with; `seed_jobs` adds the
jobs the demo's banner lists (DEMO_JOBS), each starting when someone first asks about it.
"""

from __future__ import annotations

from typing import Any, Protocol

from bot.offline.vendors.core import Step
from bot.offline.vendors.epm_di import EpmDiSim
from bot.offline.vendors.epm_planning import PlanningSim
from bot.offline.vendors.fusion import FusionSim
from bot.offline.vendors.immuta import ImmutaSim
from bot.offline.vendors.vault import VaultSim

# Credentials the simulators accept and the demo config uses (loopback only, not secrets).
DEMO_USER, DEMO_PASSWORD = "jobstatus", "demo-password"
DEMO_TOKEN = "demo-bearer-token"
DEMO_API_KEY = "demo-immuta-key"
DEMO_PIPELINE_TOKEN = "demo-pipeline-token-loopback-only"  # the bot's own HTTP API (bot/inbound/api.py)


class Simulators(Protocol):
    """The five simulators by vendor, as SimulatorServer has them (and the benchmark's simulator process)."""

    @property
    def fusion(self) -> FusionSim: ...

    @property
    def vault(self) -> VaultSim: ...

    @property
    def epm_di(self) -> EpmDiSim: ...

    @property
    def planning(self) -> PlanningSim: ...

    @property
    def immuta(self) -> ImmutaSim: ...


class SimulatorUrls(Protocol):
    """Where the simulators answer: a base URL per backend type."""

    def base_url(self, type_name: str) -> str: ...


def configure_simulators(sim: Simulators) -> None:
    """Give every simulator the demo accounts."""
    for vendor in (sim.fusion, sim.vault, sim.epm_di, sim.planning):
        vendor.basic_users[DEMO_USER] = DEMO_PASSWORD
        vendor.bearer_tokens.add(DEMO_TOKEN)
    for epm in (sim.epm_di, sim.planning):
        epm.identity_domain = "demodomain"
    sim.immuta.api_keys.add(DEMO_API_KEY)


# #general, where the demo's person is: its threads show failure text, logs and files
DEMO_DETAILS = ["C0001"]


def demo_backends(sim: SimulatorUrls, poll_interval: float = 2.0) -> dict[str, Any]:
    """One backend of each type, pointing at the simulators (each base_url carries a path prefix). Each posts
    its details in #general (`details`: by default a backend posts them nowhere in Slack)."""
    basic = {"type": "basic", "username": DEMO_USER, "password": DEMO_PASSWORD}
    backends: dict[str, dict[str, Any]] = {
        "fusion-demo": {
            "type": "fusion_jobscheduler",
            "base_url": sim.base_url("fusion_jobscheduler"),
            "auth": basic,
            "poll_interval": poll_interval,
            "cancel_enabled": True,
        },
        "vault-demo": {
            "type": "veeva_vault",
            "base_url": sim.base_url("veeva_vault"),
            "api_version": "v26.1",
            "auth": {"type": "vault_session", "username": DEMO_USER, "password": DEMO_PASSWORD},
            "poll_interval": 10,
        },
        "epm-demo": {
            "type": "epm_data_integration",
            "base_url": sim.base_url("epm_data_integration"),
            "auth": {**basic, "identity_domain": "demodomain"},
            "poll_interval": poll_interval,
        },
        "planning-demo": {
            "type": "epm_planning",
            "base_url": sim.base_url("epm_planning"),
            "application": "Vision",
            "api_version": "v3",
            "auth": {"type": "bearer", "token": DEMO_TOKEN},
            "poll_interval": poll_interval,
        },
        "immuta-demo": {
            "type": "immuta",
            "base_url": sim.base_url("immuta"),
            "auth": {"type": "api_key", "key": DEMO_API_KEY},
            "poll_interval": poll_interval,
        },
    }
    for b in backends.values():
        b["details"] = list(DEMO_DETAILS)
    return backends


EPM_LOG = """\
2026-11-22 09:00:01,120 INFO  [AIF]: Process Start, Process ID: 1881
2026-11-22 09:00:02,331 INFO  [AIF]: Importing source data from inbox/gl_data.csv
2026-11-22 09:00:04,507 INFO  [AIF]: Rows read: 12450
2026-11-22 09:00:05,918 WARN  [AIF]: Member FY27 not in dimension Years, row skipped
2026-11-22 09:00:06,002 ERROR [AIF]: Error: No periods were identified for loading data into table \
'AIF_EBS_GL_BALANCES_STG'.
2026-11-22 09:00:06,004 ERROR [AIF]: Data load failed for location GL_LOC
2026-11-22 09:00:06,210 INFO  [AIF]: Process End, status FAILED
"""

DEMO_JOBS = [
    ("vault-demo", "1201", "runs for 10 minutes: try Stop watching, Rewatch, Cancel job"),
    ("epm-demo", "1881", "fails after ~12 s: failure message, log path, log excerpt, log file"),
    ("fusion-demo", "44046", "succeeds after ~20 s, with output files"),
    ("fusion-demo", "44047", "fails after ~15 s with a message"),
    ("planning-demo", "224", "succeeds after ~15 s"),
    ("immuta-demo", "3f1c9a52-7d4e-4b8a-9f1e-2c6d8e0a4b71", "completes after ~15 s"),
]


# The demo's job that nobody starts by hand: Fusion's own scheduler starts a run of it every minute
# (VendorSim.schedule), to follow by its job definition. Its runs succeed, fail three times in a row, then
# are back to normal ("SFFFS", over and over): a failure streak and its end within five minutes.
DEMO_SCHEDULE = ("GL Nightly Load", "JobDefinition://oracle/apps/ess/financials/generalLedger/GlNightlyLoad")


def seed_jobs(sim: Simulators) -> None:
    """The demo's jobs; each starts when someone first asks about it."""
    jobs = [
        sim.fusion.add_job(
            44046,
            name="ExtractMostLabels",
            steps=[
                Step(0, "ENQUEUED"),
                Step(4, "RUNNING"),
                Step(10, "IN_PROGRESS", {"progress": 60}),
                Step(20, "SUCCEEDED"),
            ],
            output_files=[
                ("ExtractMostLabels_44046.zip", 7_340_032),
                ("ExtractMostLabels_44046.log", 48_213),
            ],
        ),
        sim.fusion.add_job(
            44047,
            name="DataExport",
            steps=[
                Step(0, "ENQUEUED"),
                Step(4, "RUNNING"),
                Step(
                    15,
                    "FAILED",
                    {"message": "ORA-01555: snapshot too old: rollback segment number 12 too small"},
                ),
            ],
        ),
        sim.epm_di.add_job(
            1881,
            name="GL_DATA_LOAD",
            steps=[
                Step(0, -1),
                Step(12, "1", {"details": "Data load failed for location GL_LOC: no periods identified"}),
            ],
            log_file="outbox/logs/GL_DATA_LOAD_1881.log",
            log_text=EPM_LOG,
            output_file="outbox/GL_DATA_LOAD_1881.csv",
        ),
        sim.planning.add_job(
            224,
            name="Import Account Metadata",
            steps=[Step(0, -1), Step(15, 0, {"details": "Metadata import was successful"})],
        ),
        sim.vault.add_job(1201, name="Binder Export", steps=[Step(0, "RUNNING"), Step(600, "SUCCESS")]),
        sim.immuta.add_job(
            "3f1c9a52-7d4e-4b8a-9f1e-2c6d8e0a4b71",
            steps=[
                Step(0, "created"),
                Step(3, "active"),
                Step(15, "completed", {"output": "policy sync: 42 data sources"}),
            ],
        ),
    ]
    for job in jobs:
        job.start_on_first_look = True
    name, definition = DEMO_SCHEDULE
    sim.fusion.schedule(name, every=60, pattern="SFFFS", queued_for=3, runs_for=20, definition=definition)
    # a cancelled Vault job stays CANCELLING for a while: longer than Vault's 10 s between two status calls of
    # one job, so the thread shows both steps whenever the cancel comes
    sim.vault.cancel_delay = 15.0


def demo_api() -> dict[str, Any]:
    """The `api:` section of the demo's config: one client, `demo-pipeline`, that may watch anything."""
    return {"tokens": {"demo-pipeline": {"token": DEMO_PIPELINE_TOKEN}}}


def api_curl(port: int) -> str:
    """The `curl` a pipeline would run to have the demo bot watch a job (one line, to copy)."""
    body = '{"backend": "fusion-demo", "job_id": "44046", "channel": "C0001"}'
    return (f"curl -s -X POST http://127.0.0.1:{port}/api/v1/watches -H 'Authorization: Bearer "
            f"{DEMO_PIPELINE_TOKEN}' -d '{body}'")
