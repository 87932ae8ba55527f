"""What the benchmark's processes agree on: the five backends, their simulated jobs and the jobs' ids.

The backends are the demo's (`bot.offline.setup.demo_backends`): one of each vendor type. Every benchmark
job of a backend runs the same script (one running state, forever) until the benchmark moves it to its done
state at a moment it records. Job ids are derived from (backend, index), so the bench, the simulator process
and the raw-client process name the same jobs without passing lists around.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Vendor:
    backend: str  # the demo backend name users type
    type_name: str  # config `type`
    sim: str  # attribute of the simulator server (sim.fusion, sim.vault, ...)
    running: Any  # the vendor's own state word/code while the job runs
    done: Any  # the state the benchmark moves a job to (a success)
    id_base: int  # numeric ids: id_base + index
    per_job: bool = True  # one status request per job (False: Immuta's batch POST)


VENDORS: tuple[Vendor, ...] = (
    Vendor("fusion-demo", "fusion_jobscheduler", "fusion", "RUNNING", "SUCCEEDED", 50_000_000),
    Vendor("vault-demo", "veeva_vault", "vault", "RUNNING", "SUCCESS", 60_000_000),
    Vendor("epm-demo", "epm_data_integration", "epm_di", -1, "0", 70_000_000),
    Vendor("planning-demo", "epm_planning", "planning", -1, 0, 80_000_000),
    Vendor("immuta-demo", "immuta", "immuta", "active", "completed", 0, per_job=False),
)
BY_BACKEND = {v.backend: v for v in VENDORS}
BY_TYPE = {v.type_name: v for v in VENDORS}

JOB_NAME = "BenchJob"
# Index ranges: seeded watches use 0..n-1; these sit far above any size.
SAMPLE_BASE = 9_000_000  # jobs watched through signed /jobstatus watch commands
TEMPLATE_INDEX = 9_900_000  # one job per backend the bench asks itself (to learn the status the bot will see)


def job_id(backend: str, index: int) -> str:
    v = BY_BACKEND[backend]
    if v.type_name == "immuta":
        return f"00000000-0000-4000-8000-{index:012x}"
    return str(v.id_base + index)


def split(n: int) -> dict[str, int]:
    """How many of `n` watches go to each backend (round robin over the five)."""
    counts = {v.backend: 0 for v in VENDORS}
    for i in range(n):
        counts[VENDORS[i % len(VENDORS)].backend] += 1
    return counts
