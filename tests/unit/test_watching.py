"""Watching's answers over the real store, notifier and poller, with a Slack and a backend double: a backend
named in other letter case is found, a near miss is suggested; a job id is refused in the adapter's words."""

from __future__ import annotations

import pytest

from bot.backends.fusion import FusionJobScheduler
from bot.store import Store
from bot.watching import UserError
from tests.conftest import FakeClock
from tests.unit.doubles import BackendDouble, backend_config, backends, watching


def test_a_backend_named_in_other_letter_case_is_found_and_a_near_miss_is_suggested(
        db: Store, clock: FakeClock) -> None:
    w, _slack, _backend = watching(db, clock)
    doubles = backends(BackendDouble("epm-demo"), BackendDouble("fusion-prod"), BackendDouble("Fusion-Prod"))
    w.backends = doubles
    assert w.backend("EPM-DEMO").name == "epm-demo"
    said = str(pytest.raises(UserError, w.backend, "FUSION-PROD").value)  # two names differ only so: not a guess
    assert said.startswith("There is no backend called `FUSION-PROD`. Did you mean `")
    said = str(pytest.raises(UserError, w.backend, "epm-dmeo").value)
    assert said.startswith("There is no backend called `epm-dmeo`. Did you mean `epm-demo`? Configured backends:")
    said = str(pytest.raises(UserError, w.backend, "zzz").value)
    assert "Did you mean" not in said


def test_a_malformed_job_id_is_answered_with_the_adapters_words_once(db: Store, clock: FakeClock) -> None:
    w, _slack, _backend = watching(db, clock)
    fusion = FusionJobScheduler("fusion-prod", backend_config())
    said = str(pytest.raises(UserError, w.job_id, fusion, "12ab").value)
    assert said == ("'12ab' is not an Oracle Fusion job id: it is the job request id the Job Scheduler API "
                    "returned, digits only, e.g. 44046.")


def test_the_backends_list_names_each_vendor_in_words_beside_its_type(db: Store, clock: FakeClock) -> None:
    w, _slack, _backend = watching(db, clock)
    w.backends = backends(FusionJobScheduler("fake", backend_config()))
    assert "• *fake* — Oracle Fusion (`fusion_jobscheduler`), every 30s" in w.backends_answer().text
