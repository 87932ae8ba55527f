"""Watching's answers over the real store, notifier and poller, with a Slack and a backend double: a refusal
says what is true (the job ended, there is no such job, the channel does not watch it), the permission rule
only when it is the reason; a backend named in other letter case is found, a near miss is suggested."""

from __future__ import annotations

import pytest

from bot import store
from bot.backends.fusion import FusionJobScheduler
from bot.domain.states import Phase
from bot.domain.status import JobStatus
from bot.operations.refusals import UserError
from bot.operations.watching import Watching
from bot.store import PollResult, Store
from bot.support.config import settings_from_dict
from tests.conftest import FakeClock
from tests.unit.doubles import CONFIG, BackendDouble, backend_config, backends, watching


@pytest.fixture
async def rig(db: Store, clock: FakeClock) -> tuple[Watching, BackendDouble]:
    w, _slack, backend = watching(db, clock)
    backend.cancellable = True
    backend.jobs["44046"] = JobStatus("44046", Phase.RUNNING, "RUNNING")
    return w, backend


async def _refused(coro: object) -> str:
    with pytest.raises(UserError) as refused:
        await coro  # type: ignore[misc]
    return str(refused.value)


async def _ends(w: Watching, backend: BackendDouble, clock: FakeClock, phase: Phase = Phase.FAILED,
                word: str = "ERROR") -> None:
    """The poller reads the job's end (as it would at its next poll)."""
    job = await w.db.run(store.find_job, "fake", "44046")
    assert job is not None
    backend.jobs["44046"] = JobStatus("44046", phase, word, message="ORA-01555")
    await w.db.run(store.apply_results, [PollResult(job.pk, backend.jobs["44046"], clock(), clock() + 30)])


async def test_the_watcher_cancelling_a_job_that_ended_is_told_it_ended_with_its_final_state(
        rig: tuple[Watching, BackendDouble], clock: FakeClock) -> None:
    w, backend = rig
    await w.watch(backend, "44046", "C1", "U1")
    await _ends(w, backend, clock)
    said = await _refused(w.cancel(backend, "44046", "C1", "U1"))
    assert said == "fake job `44046` has already ended (failed (ERROR)): there is nothing to cancel."
    assert backend.cancelled == []


async def test_the_cancel_button_of_a_watch_whose_job_ended_says_so_too(
        rig: tuple[Watching, BackendDouble], clock: FakeClock) -> None:
    w, backend = rig
    await w.watch(backend, "44046", "C1", "U1")
    [(watch, _)] = await w.db.run(store.channel_watches, "C1")
    await _ends(w, backend, clock, Phase.CANCELLED, "CANCELED")
    said = await _refused(w.cancel_watch(watch.pk, "U1"))
    assert said == "fake job `44046` has already ended (cancelled (CANCELED)): there is nothing to cancel."


async def test_an_admin_cancelling_a_job_that_ended_is_told_so_before_the_vendor_is_asked(
        db: Store, clock: FakeClock) -> None:
    w, _slack, backend = watching(db, clock)
    w.settings = settings_from_dict({"backends": {"fake": CONFIG}, "admins": ["UADMIN"]})
    backend.cancellable = True
    backend.jobs["77"] = JobStatus("77", Phase.SUCCEEDED, "SUCCEEDED")  # never watched: the vendor is asked
    said = await _refused(w.cancel(backend, "77", "C1", "UADMIN"))
    assert said == "fake job `77` has already ended (succeeded): there is nothing to cancel."
    assert backend.asked == ["77"] and backend.cancelled == []


async def test_a_job_id_the_vendor_does_not_know_is_said_to_be_unknown(
        rig: tuple[Watching, BackendDouble]) -> None:
    w, backend = rig
    said = await _refused(w.cancel(backend, "999", "C1", "U1"))
    assert said == "fake has no job `999`. Check the id (and that it is a Double job id)."


async def test_the_owner_may_cancel_from_any_channel_and_watching_it_elsewhere_gives_no_right(
        rig: tuple[Watching, BackendDouble]) -> None:
    w, backend = rig
    await w.watch(backend, "44046", "C2", "U1")  # U1 watched it first: its owner
    await w.watch(backend, "44046", "C9", "U2")  # U2 watches it in a channel of their own (issue 19, item 1)
    said = await _refused(w.cancel(backend, "44046", "C9", "U2"))
    assert said == ("Only <@U1>, who first watched it (the `cancel: owner` rule of `fake`), or an admin may "
                    "cancel this job.")
    assert backend.cancelled == []
    answer = await w.cancel(backend, "44046", "C1", "U1")  # the owner, in a channel that does not watch it
    assert answer.text.startswith("Asked fake to cancel job `44046`.") and backend.cancelled == ["44046"]


async def test_the_rule_is_named_when_it_is_the_reason(rig: tuple[Watching, BackendDouble]) -> None:
    w, backend = rig
    await w.watch(backend, "44046", "C1", "U1")
    said = await _refused(w.cancel(backend, "44046", "C1", "U2"))
    assert said == ("Only <@U1>, who first watched it (the `cancel: owner` rule of `fake`), or an admin may "
                    "cancel this job.")
    answer = await w.cancel(backend, "44046", "C1", "U1")
    assert answer.text.startswith("Asked fake to cancel job `44046`.") and backend.cancelled == ["44046"]


def test_a_backend_named_in_other_letter_case_is_found_and_a_near_miss_is_suggested(
        db: Store, clock: FakeClock) -> None:
    w, _slack, _backend = watching(db, clock)
    doubles = backends(BackendDouble("epm-demo"), BackendDouble("fusion-prod"), BackendDouble("Fusion-Prod"))
    w.backends = doubles
    assert w.backend("EPM-DEMO").name == "epm-demo"
    # two names differ only so: not a guess
    said = str(pytest.raises(UserError, w.backend, "FUSION-PROD").value)
    assert said.startswith("There is no backend called `FUSION-PROD`. Did you mean `")
    said = str(pytest.raises(UserError, w.backend, "epm-dmeo").value)
    assert said.startswith("There is no backend called `epm-dmeo`. Did you mean `epm-demo`? Backends "
                           "anyone may use:")
    said = str(pytest.raises(UserError, w.backend, "zzz").value)
    assert "Did you mean" not in said


def test_a_malformed_job_id_is_answered_with_the_adapters_words_once(db: Store, clock: FakeClock) -> None:
    w, _slack, _backend = watching(db, clock)
    fusion = FusionJobScheduler("fusion-prod", backend_config())
    said = str(pytest.raises(UserError, w.job_id, fusion, "12ab").value)
    assert said == ("'12ab' is not an Oracle Fusion job id: it is the job request id the Job Scheduler API "
                    "returned, digits only, e.g. 44046.")


async def test_the_backends_list_names_each_vendor_in_words_beside_its_type(
        db: Store, clock: FakeClock) -> None:
    w, _slack, _backend = watching(db, clock)
    w.backends = backends(FusionJobScheduler("fake", backend_config()))
    assert ("• *fake* — Oracle Fusion (`fusion_jobscheduler`), every 30s"
            in (await w.backends_answer("U1")).text)


async def test_a_watch_says_which_watch_it_is_and_whether_this_request_started_it(
        rig: tuple[Watching, BackendDouble]) -> None:
    """What the HTTP API answers with (bot/inbound/api.py): the same operation as the slash command's."""
    w, backend = rig
    first = await w.watch(backend, "44046", "C1", "api:ci-finance")
    again = await w.watch(backend, "44046", "C1", "U2")
    elsewhere = await w.watch(backend, "44046", "C2", "U2")
    assert (first.new, again.new, elsewhere.new) == (True, False, True)
    assert again.watch_id == first.watch_id != elsewhere.watch_id
    [(watch, _)] = await w.db.run(store.channel_watches, "C1")
    assert (watch.pk, watch.user_id) == (first.watch_id, "api:ci-finance")


async def test_each_refusal_of_a_watch_names_its_kind(rig: tuple[Watching, BackendDouble]) -> None:
    w, backend = rig
    with pytest.raises(UserError) as unknown:
        w.backend("nope")
    with pytest.raises(UserError) as missing:
        await w.watch(backend, "424242", "C1", "U1")
    assert (unknown.value.code, missing.value.code) == ("unknown_backend", "job_not_found")
