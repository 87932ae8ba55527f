"""Backend depth end to end: failure details, cancel refusals, unknown words, rotating credentials, secrets,
Immuta batching, Retry-After, `jobstatus-bot check` and Vault's 10 s rule, through the real bot.

Signed Slack requests go into the real Runtime; the vendor simulators answer behind it; assertions are on
what reached the fake Slack, the simulators' request logs, the log records and the database file.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

from bot.offline.setup import configure_simulators, demo_backends
from bot.offline.slack import FakeSlack, SlackUser
from bot.offline.vendors.core import Step
from bot.offline.vendors.server import SimulatorServer
from bot.support.config import Environment, settings_from_dict
from bot.support.logs import FORMATS, formatter
from tests.conftest import SECRET_KEYS, SIGNING_SECRET, Harness, opened, start_runtime


@pytest.fixture(autouse=True)
def quick_slack_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack's one-message-per-second per channel is the notifier's business (and its tests'); here it would
    only add a second to every thread reply."""
    monkeypatch.setattr("bot.engine.notifier.pace.CHANNEL_GAP", 0.05)


def texts(blocks: list[dict[str, Any]] | None) -> str:
    """A message's blocks as plain text, Slack's &-escapes undone (what a person reads)."""
    return html.unescape(json.dumps(blocks or [], ensure_ascii=False))


def replies_with(h: Harness, words: str, channel: str = "C0001", index: int = 0) -> list[Any]:
    return [r for r in h.replies(channel, index) if words in r.text or words in texts(r.blocks)]


async def reply_with(h: Harness, words: str, channel: str = "C0001", index: int = 0) -> Any:
    await h.slack.wait_for(
        lambda: replies_with(h, words, channel, index), what=f"a thread reply with {words!r}"
    )
    return replies_with(h, words, channel, index)[0]


@asynccontextmanager
async def bot_with(sim: SimulatorServer, slack: FakeSlack, tmp_path: Path, backends: dict[str, Any],
                   **top: Any) -> AsyncIterator[Harness]:
    """The real bot with a config built in the test (for settings that need the simulators' address)."""
    settings = settings_from_dict({"backends": backends, **top}, "<test config>")
    env = Environment(
        slack_bot_token=slack.token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        port=0,
        secret_keys=SECRET_KEYS,
    )
    runtime = await start_runtime(settings, env)
    h = Harness(sim=sim, slack=slack, settings=settings, env=env, runtime=runtime,
                user=SlackUser(runtime.events_url, SIGNING_SECRET, slack))
    try:
        yield h
    finally:
        await h.runtime.stop()


def base_backends(sim: SimulatorServer) -> dict[str, Any]:
    backends = demo_backends(sim, poll_interval=0.2)
    backends["vault-demo"]["poll_interval"] = 0.2
    return backends


def epm_oauth(sim: SimulatorServer, refresh_token: str, client_secret: str) -> dict[str, Any]:
    sim.epm_di.oauth_clients["jobstatus-epm"] = client_secret
    return {"type": "oauth2_refresh", "token_url": sim.base_url("epm_data_integration") + "/oauth2/v1/token",
            "client_id": "jobstatus-epm", "client_secret": client_secret, "refresh_token": refresh_token}


def stored_secrets(db: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return {key: opened(value) for key, value in con.execute("SELECT key, value FROM secrets")}


def token_grants(sim_vendor: Any) -> list[str]:
    """The refresh tokens the bot sent to an EPM token endpoint, in order."""
    return [parse_qs(r.body.decode())["refresh_token"][0] for r in sim_vendor.requests
            if r.method == "POST" and r.path.endswith("/oauth2/v1/token")]


# -- each vendor's failure details reach the thread ------------------------------------------------


async def test_fusion_output_files_with_names_and_sizes_reach_the_thread(harness: Harness) -> None:
    h = harness
    h.sim.fusion.add_job(
        44046,
        name="ExtractMostLabels",
        steps=[Step(0, "RUNNING")],
        output_files=[("ExtractMostLabels_44046.zip", 7_340_032), ("ExtractMostLabels_44046.log", 48_213)],
    )
    await h.watch("watch fusion-demo 44046")
    h.sim.fusion.set_state(44046, "FAILED", message="ESS-07034: extract failed on partition 3")
    failure = await reply_with(h, "ESS-07034")
    assert failure.reply_broadcast is True
    details = await reply_with(h, "Output files")
    body = texts(details.blocks)
    assert "ExtractMostLabels_44046.zip` (7.0 MB)" in body
    assert "ExtractMostLabels_44046.log` (47.1 KB)" in body
    assert (
        f"{h.sim.base_url('fusion_jobscheduler')}/api/saas-batch/jobfilemanager/v1/jobRequests/44046/outputFiles/"
        "ExtractMostLabels_44046.zip" in body
    )
    assert "Tools > Scheduled Processes, request 44046" in body
    assert h.sim.fusion.count("GET", "/jobRequests/44046/outputFiles") == 1


async def test_fusion_paged_output_files_are_all_read_and_the_rest_counted(harness: Harness) -> None:
    h = harness
    h.sim.fusion.files_max_limit = 10  # the server pages on its own, as in Oracle's example
    files = [(f"extract_{i:02}.zip", 1024 * (i + 1)) for i in range(25)]
    h.sim.fusion.add_job(44060, name="Extract", steps=[Step(0, "RUNNING")], output_files=files)
    await h.watch("watch fusion-demo 44060")
    h.sim.fusion.set_state(44060, "FAILED", message="ESS-07034 partition 3")
    details = texts((await reply_with(h, "more output files")).blocks)
    assert "…and 5 more output files" in details
    assert "extract_00.zip" in details and "extract_19.zip" in details and "extract_20.zip" not in details
    assert h.sim.fusion.count("GET", "/jobRequests/44060/outputFiles") == 3


@pytest.mark.parametrize(("word", "says"), [("EXPIRED", "failed"), ("VALIDATION_FAILED", "failed"),
                                            ("FINISHED", "succeeded"), ("SCHEDULE_ENDED", "succeeded")])
async def test_fusion_ess_final_states_end_the_watch_and_others_do_not(
    harness: Harness, word: str, says: str
) -> None:
    h = harness
    h.sim.fusion.add_job(44070, steps=[Step(0, "WAIT")])
    await h.watch("watch fusion-demo 44070")
    h.sim.fusion.set_state(44070, "ERROR_MANUAL_RECOVERY", message="Waiting for an administrator")
    paused = await reply_with(h, "ERROR_MANUAL_RECOVERY")
    assert "paused" in paused.text  # not an end: Oracle says an administrator moves it on
    h.sim.fusion.set_state(44070, word)
    ended = await reply_with(h, word)
    assert says in ended.text
    parent = h.parents()[0]
    await h.slack.wait_for(
        lambda: "jobstatus_rewatch" in json.dumps(h.slack.message("C0001", parent.ts).blocks),
        what="the watch ended",
    )


@pytest.mark.backends(**{"epm-demo": {"details": ["C0001", "C0003"]}})
async def test_epm_log_given_as_a_server_path_is_still_found_or_said_not_to_be(harness: Harness) -> None:
    h = harness
    log = "INFO [AIF]: start\nERROR [AIF]: Member <FY27> & Jan not in dimension\nINFO [AIF]: end\n"
    h.sim.epm_di.add_job(2711, name="Vision", steps=[Step(0, -1)], server_paths=True, log_text=log)
    h.sim.epm_di.add_job(2712, name="Vision", steps=[Step(0, -1)], log_file="/u09/archive/Vision_2712.log")
    h.slack.add_channel("C0003", "ops-epm")
    await h.watch("watch epm-demo 2711")
    await h.watch("watch epm-demo 2712", channel="C0003")
    h.sim.epm_di.set_state(2711, "1", details="Data load failed")
    h.sim.epm_di.set_state(2712, "1", details="Data load failed")
    details = await reply_with(h, "Member <FY27> & Jan")  # the log's error line
    assert "Member &lt;FY27&gt; &amp; Jan" in json.dumps(details.blocks)  # escaped
    # the path as EPM gave it, said once: in the failure reply, not again with the details
    thread = [texts(r.blocks) for r in h.replies()]
    assert sum("/u03/inbox/outbox/logs/Vision_2711.log" in t for t in thread) == 1
    assert "/u03/inbox/outbox/logs/Vision_2711.log" not in texts(details.blocks)
    await h.slack.wait_for(lambda: any(r.files for r in h.replies()), what="the log uploaded")
    missing = texts((await reply_with(h, "could not be downloaded", channel="C0003")).blocks)
    assert "The log /u09/archive/Vision_2712.log could not be downloaded" in missing
    assert "does not exist" in missing  # EPM's own words


async def test_vault_links_error_types_and_the_job_status_page_reach_the_thread(harness: Harness) -> None:
    h = harness
    h.sim.vault.add_job(1301, name="Binder Export", steps=[Step(0, "RUNNING")])
    await h.watch("watch vault-demo 1301")
    h.sim.vault.set_state(1301, "ERRORS_ENCOUNTERED", errors=[
        {"type": "INVALID_DATA", "message": "Row 2: value <none> & more is not allowed"},
        {"type": "PARAMETER_REQUIRED", "message": "Field name__v is required"},
    ])
    failure = await reply_with(h, "ERRORS_ENCOUNTERED")
    assert "Row 2: value &lt;none&gt; &amp; more is not allowed" in json.dumps(failure.blocks)  # escaped
    artifacts = f"{h.sim.base_url('veeva_vault')}/api/v26.1/services/jobs/1301/artifacts"
    assert artifacts in texts(failure.blocks)
    details = await reply_with(h, "Vault error types")
    body = texts(details.blocks)
    # the count counts what is shown: two errors, named on one line
    assert (
        "Vault error types: INVALID_DATA, PARAMETER_REQUIRED" in body and "(2 errors, 1 line shown)" in body
    )
    assert "Admin > Operations > Job Status (job 1301)" in body
    thread = [texts(r.blocks) for r in h.replies()]
    assert sum(artifacts in t for t in thread) == 1 and sum("Logs and outputs" in t for t in thread) == 1


async def test_planning_first_errors_total_over_pages_and_a_failed_child_jobs_cause(harness: Harness) -> None:
    h = harness
    items = [{"recordType": "Account", "recordName": f"A{i:03}", "message": f"Member A{i:03} not found"}
             for i in range(45)]
    h.sim.planning.add_job(226, name="Import Metadata", steps=[Step(0, -1)], details_items=items, child_jobs={
        "3001": {"name": "Entity", "status": 1,
                 "items": [{"recordName": "E100", "message": "Parent member E999 does not exist"}]},
        "3002": {"name": "Product", "status": 0, "items": []},
    })
    await h.watch("watch planning-demo 226")
    h.sim.planning.set_state(226, 1, details="One or more child jobs have failed")
    await reply_with(h, "One or more child jobs have failed")
    details = await reply_with(h, "Errors reported")
    body = texts(details.blocks)
    # 45 errors of its own (two pages) and one failed child job with one error: 46 in all, 40 shown
    assert "Errors reported* (46 errors, 40 lines shown)" in body
    thread = [texts(r.blocks) for r in h.replies()]
    assert (
        sum("Logs and outputs" in t for t in thread) == 1
        and sum("/jobs/226/details" in t for t in thread) == 1
    )
    assert "[Account A000] Member A000 not found" in body
    assert "child job 3001 (Entity): [E100] Parent member E999 does not exist" in body  # the real cause
    pages = [parse_qs(r.query) for r in h.sim.planning.requests if r.path.endswith("/jobs/226/details")]
    assert [p["offset"] for p in pages] == [["0"], ["25"]]
    assert len([r for r in h.sim.planning.requests if r.path.endswith("/childjobs/3001/details")]) == 1
    assert not [r for r in h.sim.planning.requests if "/childjobs/3002/" in r.path]


async def test_immuta_output_reaches_the_thread(harness: Harness) -> None:
    h = harness
    h.sim.immuta.add_job("5c700000-0000-4000-8000-000000000007", steps=[Step(0, "active")])
    await h.watch("watch immuta-demo 5c700000-0000-4000-8000-000000000007")
    h.sim.immuta.set_state(
        "5c700000-0000-4000-8000-000000000007",
        "failed",
        output="policy sync failed for <Sales DB> & 2 others\nretry at 10:00",
    )
    failure = await reply_with(h, "policy sync failed")
    assert failure.reply_broadcast is True
    body = json.dumps(failure.blocks)
    assert "policy sync failed for &lt;Sales DB&gt; &amp; 2 others" in body and "retry at 10:00" in body
    parent = h.parents()[0]
    await h.slack.wait_for(
        lambda: "jobstatus_rewatch" in json.dumps(h.slack.message("C0001", parent.ts).blocks)
    )
    assert not [r for r in h.replies() if "Errors reported" in r.text]  # the output is not said twice


# -- Vault refuses a cancel --------------------------------------------------------------------------


async def test_vault_cancel_refusal_is_shown_verbatim_and_escaped_to_the_user_alone(harness: Harness) -> None:
    h = harness
    refusal = "Job [1401] <Binder Export> & its renditions cannot be cancelled: it is finishing"
    h.sim.vault.add_job(1401, name="Binder Export", steps=[Step(0, "RUNNING")], cancellable=False,
                        cancel_message=refusal)
    await h.watch("watch vault-demo 1401")
    [parent] = h.parents()
    click = await h.user.click("C0001", parent.ts, "jobstatus_cancel")
    assert click is not None and click.status == 200
    [answer] = await click.wait_responses(1)
    assert answer.outcome == "ephemeral"
    assert (
        "Job [1401] &lt;Binder Export&gt; &amp; its renditions cannot be cancelled: it is finishing"
        in answer.text
    )
    assert refusal not in answer.text  # never raw
    assert h.sim.vault.count("POST", "/actions/cancel") == 1
    typed = await h.watch("cancel vault-demo 1401")
    assert "&lt;Binder Export&gt; &amp; its renditions" in typed.responses()[-1].text
    # the thread goes on (messages of one watch go out in order): no "cancel requested" before this reply
    h.sim.vault.set_state(1401, "SUCCESS")
    await reply_with(h, "succeeded")
    assert not replies_with(h, "Cancel requested") and not replies_with(h, "cancel")
    assert len(h.parents()) == 1


# -- Vault: a wrong api_version is a setting to fix, not a missing job; the client id on every request -------


async def test_vault_with_a_wrong_api_version_says_the_setting_is_wrong_and_every_call_names_the_bot(
        sim: SimulatorServer, slack: FakeSlack, tmp_path: Path) -> None:
    from bot.backends.vault import DEFAULT_CLIENT_ID

    configure_simulators(sim)
    sim.vault.job_poll_window = 0.0
    backends = base_backends(sim)
    # not offered: Vault says MALFORMED_URL
    backends["vault-old"] = {**backends["vault-demo"], "api_version": "v99.1"}
    backends["vault-ours"] = {
        **backends["vault-demo"],
        "vault_client_id": "examplepharma-vault-ops-server-jobstatus",
    }
    sim.vault.add_job(1601, name="Binder Export", steps=[Step(0, "RUNNING")])
    async with bot_with(sim, slack, tmp_path, backends) as h:
        h.runtime.backends["vault-ours"].min_poll_interval = 0.0  # type: ignore[misc]  # as the harness does
        refused = (await h.watch("watch vault-old 1601")).responses()[-1].text
        assert "api_version (v99.1) or base_url" in refused and "MALFORMED_URL" in refused
        assert "vault-old is set up wrong" in refused and "Ask the bot's operator to fix" in refused
        assert "has no job" not in refused
        assert not h.parents()  # nothing was set up
        missing = (await h.watch("watch vault-demo 424242")).responses()[-1].text
        # a missing job is still that
        assert "has no job `424242`" in missing and "api_version" not in missing
        assert "Watching" in (await h.watch("watch vault-demo 1601")).responses()[-1].text
        assert "Watching" in (await h.watch("watch vault-ours 1601", channel="C0002")).responses()[-1].text
        sim.vault.set_state(1601, "SUCCESS")
        await reply_with(h, "succeeded")
        await reply_with(h, "succeeded", channel="C0002")
    logged = set(sim.vault.client_ids)  # Vault's API Usage Log: never `unknown`, never `invalid_client_id`
    assert logged == {DEFAULT_CLIENT_ID, "examplepharma-vault-ops-server-jobstatus"}
    assert sim.vault.count("POST", "/auth") >= 3


@pytest.mark.settings(outage_note_after=0.3)
async def test_vault_dropping_the_api_version_mid_watch_gets_a_note_naming_the_setting(
    harness: Harness,
) -> None:
    h = harness
    h.sim.vault.add_job(1602, steps=[Step(0, "RUNNING")])
    await h.watch("watch vault-demo 1602")
    h.sim.vault.versions.remove("v26.1")  # the vault answers MALFORMED_URL from now on
    note = await reply_with(h, "api_version (v26.1) or base_url")
    assert "MALFORMED_URL" in note.text and "no longer knows this job" not in note.text
    assert ":wrench:" in note.text and "Ask the bot's operator to check its settings" in note.text
    assert "Still trying" not in note.text
    h.sim.vault.versions.append("v26.1")
    await reply_with(h, "answers again")
    h.sim.vault.set_state(1602, "SUCCESS")
    await reply_with(h, "succeeded")


# -- Planning refuses a request: its own words, not "answered HTTP 400" --------------------------------------


async def test_planning_refusal_shows_plannings_words(
    sim: SimulatorServer, slack: FakeSlack, tmp_path: Path
) -> None:
    configure_simulators(sim)
    backends = base_backends(sim)
    backends["planning-typo"] = {**backends["planning-demo"], "application": "Vision<2>"}
    sim.planning.add_job(2241, steps=[Step(0, -1)])
    async with bot_with(sim, slack, tmp_path, backends) as h:
        said = (await h.watch("watch planning-typo 2241")).responses()[-1].text
        assert (
            "HTTP 400: The application Vision&lt;2&gt; does not exist or you do not have access to it."
            in said
        )
        assert "planning-typo refused the bot's request" in said and "could not read" not in said
        assert not h.parents()


# -- an unknown status word ----------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["fusion", "epm_di", "immuta"])
async def test_an_unknown_status_word_is_shown_as_is_logged_once_and_the_watch_goes_on(
        harness: Harness, caplog: pytest.LogCaptureFixture, vendor: str) -> None:
    h = harness
    word = f"QUIESCING_{uuid.uuid4().hex[:6].upper()}"  # new to this process: its one warning is ours
    backend, job_id, sim, running, done, path = {
        "fusion": ("fusion-demo", "4401", h.sim.fusion, "RUNNING", "SUCCEEDED", "/jobRequests/4401"),
        "epm_di": ("epm-demo", "4402", h.sim.epm_di, -1, "0", "/jobs/4402"),
        "immuta": ("immuta-demo", "00000000-0000-4000-8000-000000004403", h.sim.immuta, "active", "completed",
                   "/jobs/statuses"),
    }[vendor]
    sim.add_job(job_id, steps=[Step(0, running)])
    caplog.set_level(logging.WARNING, logger="bot")
    await h.watch(f"watch {backend} {job_id}")
    sim.set_state(job_id, word)
    reply = await reply_with(h, word)
    assert "unknown" in reply.text and word in reply.text
    polled = sim.count("POST" if vendor == "immuta" else "GET", path)
    await h.slack.wait_for(lambda: sim.count(None, path) >= polled + 4, poll=0.05, what="more polls")
    warnings = [r for r in caplog.records if word in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "shown as is" in warnings[0].getMessage()
    sim.set_state(job_id, running)
    await reply_with(h, "running")
    sim.set_state(job_id, done)
    await reply_with(h, "succeeded")
    assert len([r for r in caplog.records if word in r.getMessage()]) == 1


# -- EPM's rotating refresh token survives a restart ---------------------------------------------------


async def test_epm_rotated_refresh_token_is_kept_in_the_database_and_used_after_a_restart(
        sim: SimulatorServer, slack: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    configure_simulators(sim)
    first = sim.epm_di.issue_refresh_token()
    backends = base_backends(sim)
    backends["epm-demo"]["auth"] = epm_oauth(sim, first, "epm-client-secret")
    caplog.set_level(logging.INFO, logger="bot")
    db = tmp_path / "bot.db"
    async with bot_with(sim, slack, tmp_path, backends) as h:
        sim.epm_di.add_job(1991, name="GL_DATA_LOAD", steps=[Step(0, -1)])
        await h.watch("watch epm-demo 1991")
        second = stored_secrets(db)["epm-demo:refresh_token"]
        assert (
            second != first
            and second in sim.epm_di.refresh_tokens
            and first in sim.epm_di.used_refresh_tokens
        )

        sim.epm_di.expire_access_tokens()  # the next poll gets 401: one refresh, and the token rotates again
        await h.slack.wait_for(lambda: stored_secrets(db)["epm-demo:refresh_token"] != second, poll=0.05,
                               what="the rotated refresh token stored")
        third = stored_secrets(db)["epm-demo:refresh_token"]
        assert third in sim.epm_di.refresh_tokens and second in sim.epm_di.used_refresh_tokens

        await h.restart()  # the config still says `first`, long used: the database has the newest
        polled = sim.epm_di.count("GET", "/jobs/1991")
        await h.slack.wait_for(lambda: sim.epm_di.count("GET", "/jobs/1991") >= polled + 3, poll=0.05,
                               what="polling after the restart")
        sim.epm_di.set_state(1991, "0")
        await reply_with(h, "succeeded")
        # each token once, the stored one after the restart
        assert token_grants(sim.epm_di) == [first, second, third]
        assert stored_secrets(db)["epm-demo:refresh_token"] in sim.epm_di.refresh_tokens
        assert not replies_with(h, "credentials") and not replies_with(h, "failed")
    assert not [r for r in caplog.records if "refused" in r.getMessage()]


# -- Vault asked to poll more often than it allows -----------------------------------------------------


async def test_vault_poll_interval_below_10s_is_said_at_start_and_in_backends_and_never_polled_faster(
        sim: SimulatorServer, slack: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    configure_simulators(sim)
    backends = base_backends(sim)
    backends["vault-demo"]["poll_interval"] = 1
    caplog.set_level(logging.WARNING, logger="bot")
    async with bot_with(sim, slack, tmp_path, backends) as h:
        starts = [r.getMessage() for r in caplog.records if "poll_interval" in r.getMessage()]
        assert starts == [
            "backend 'vault-demo': poll_interval 1s is below 10s (Vault allows one status call per "
            "job per 10 s); polling every 10s"
        ]
        # the harness lifts Vault's rule
        vars(h.runtime.backends["vault-demo"]).pop("min_poll_interval", None)
        answer = await h.user.command("backends")
        said = str((await answer.wait_responses(1))[-1].text)  # after the ack
        line = next(t for t in said.splitlines() if "vault-demo" in t)
        assert "every 10s (config asks 1s: Vault allows one status call per job per 10 s)" in line
        assert not [t for t in said.splitlines() if "config asks" in t and "vault-demo" not in t]

        sim.vault.add_job(1501, steps=[Step(0, "RUNNING")])  # the simulator enforces 10 s (job_poll_window)
        await h.watch("watch vault-demo 1501")
        [parent] = h.parents()
        for _ in range(3):  # Refresh asks for a poll now; Vault's rule still holds: the last answer is shown
            edits = h.slack.message("C0001", parent.ts).edits
            await h.user.click("C0001", parent.ts, "jobstatus_refresh")
            await h.slack.wait_for(lambda edits=edits: h.slack.message("C0001", parent.ts).edits > edits)
        assert sim.vault.count("GET", "/services/jobs/1501") == 1
        assert "Last check failed" not in texts(h.slack.message("C0001", parent.ts).blocks)


# -- Immuta: one batch request per cycle ---------------------------------------------------------------


def _batches(sim: SimulatorServer, since: int = 0) -> list[tuple[float, list[str]]]:
    """(when, job ids asked) of each POST /jobs/statuses the Immuta simulator received after request
    `since`."""
    return [(r.at, json.loads(r.body)["jobIds"]) for r in sim.immuta.requests[since:]
            if r.method == "POST" and r.path.endswith("/jobs/statuses")]


async def _watch_many_immuta_jobs(h: Harness, n: int) -> list[str]:
    """n running Immuta jobs, each watched in its own channel through the bot's own watch path."""
    backend = h.runtime.backends["immuta-demo"]
    ids = [f"1aa00000-0000-4000-8000-{i:012x}" for i in range(n)]
    for i, job_id in enumerate(ids):
        h.sim.immuta.add_job(job_id, steps=[Step(0, "active")])
        # one per channel: Slack's per-channel pacing stays out
        h.slack.add_channel(f"C9{i:04}", f"immuta-{i}")
    gate = asyncio.Semaphore(10)

    async def one(i: int, job_id: str) -> None:
        async with gate:
            answer = await h.runtime.watching.watch(backend, job_id, f"C9{i:04}", "U0001")
            assert answer.text.startswith("Watching"), answer.text

    await asyncio.gather(*(one(i, j) for i, j in enumerate(ids)))
    await h.slack.wait_for(
        lambda: all(h.slack.messages(f"C9{i:04}") for i in range(n)), what="every parent posted"
    )
    return ids


@pytest.mark.settings(outage_note_after=0.3)
async def test_immuta_batches_carry_many_ids_and_a_forgotten_id_is_unknown_not_failed(
    harness: Harness,
) -> None:
    h = harness
    ids = await _watch_many_immuta_jobs(h, 120)
    start = len(h.sim.immuta.requests)
    forgotten = ids[7]
    del h.sim.immuta.jobs[forgotten]  # purged on Immuta's side
    for done in ids[:3]:
        h.sim.immuta.set_state(done, "completed", output="rows: 12")
    for i in range(3):
        await h.slack.wait_for(lambda i=i: any("succeeded" in r.text for r in h.replies(f"C9{i:04}")),
                               what=f"job {i} succeeded")
    lost = f"C9{7:04}"
    await h.slack.wait_for(lambda: any("unknown or purged" in r.text for r in h.replies(lost)),
                           what="the forgotten job said to be unknown or purged")
    assert not any("failed" in r.text or ":x:" in r.text for r in h.replies(lost))
    assert "failed" not in h.slack.message(lost, h.parents(lost)[0].ts).text
    for i in range(3, 120):  # the others: not disturbed
        assert i == 7 or not h.replies(f"C9{i:04}"), (i, [r.text for r in h.replies(f"C9{i:04}")])

    def asked_twice() -> bool:
        polled = [job_id for _, asked in _batches(h.sim, start) for job_id in asked]
        return all(polled.count(job_id) >= 2 for job_id in ids[3:])

    await h.slack.wait_for(asked_twice, poll=0.05, what="every running job asked about twice")
    batches = _batches(h.sim, start)
    polled = [job_id for _, asked in batches for job_id in asked]
    assert len(batches) <= len(polled) / 10  # in batches, never one request per job
    assert all(len(set(asked)) == len(asked) and set(asked) <= set(ids) for _, asked in batches)
    assert any(forgotten in asked and len(asked) > 1 for _, asked in batches)  # asked beside others: no harm
    ended = len(h.sim.immuta.requests)
    await h.slack.wait_for(lambda: len(_batches(h.sim, ended)) >= 3, poll=0.05, what="more batches")
    assert not [a for _, a in _batches(h.sim, ended) if set(a) & set(ids[:3])]  # ended jobs leave the batch


@pytest.mark.backends(**{"immuta-demo": {"poll_interval": 0.5}})
async def test_immuta_steady_polling_is_one_request_per_interval_with_every_id(harness: Harness) -> None:
    h = harness
    ids = await _watch_many_immuta_jobs(h, 30)
    start = len(h.sim.immuta.requests)
    await h.slack.wait_for(lambda: (b := _batches(h.sim, start)) and b[-1][0] - b[0][0] >= 2.0, timeout=10,
                           poll=0.05, what="2 s of polling")
    batches = _batches(h.sim, start)
    # one per interval (+ the ends)
    assert len(batches) <= 2.0 / 0.5 + 2, [len(asked) for _, asked in batches]
    assert all(sorted(asked) == ids for _, asked in batches[1:]), [len(asked) for _, asked in batches]


# -- Retry-After, and EPM's maintenance window ---------------------------------------------------------


def _status_requests(vendor: Any, path_end: str) -> list[Any]:
    return [r for r in vendor.requests if r.method == "GET" and r.path.endswith(path_end)]


@pytest.mark.parametrize("case", ["fusion-429", "vault-429", "planning-503", "epm-maintenance"])
async def test_retry_after_is_honoured_and_an_outage_is_no_failure(harness: Harness, case: str) -> None:
    h = harness
    backend, vendor, job_id, running, done, path_end = {
        "fusion-429": ("fusion-demo", h.sim.fusion, "7001", "RUNNING", "SUCCEEDED", "/jobRequests/7001"),
        "vault-429": ("vault-demo", h.sim.vault, "7002", "RUNNING", "SUCCESS", "/services/jobs/7002"),
        "planning-503": ("planning-demo", h.sim.planning, "7003", -1, 0, "/jobs/7003"),
        "epm-maintenance": ("epm-demo", h.sim.epm_di, "7004", -1, "0", "/jobs/7004"),
    }[case]
    vendor.add_job(job_id, steps=[Step(0, running)])
    await h.watch(f"watch {backend} {job_id}")
    await h.slack.wait_for(lambda: len(_status_requests(vendor, path_end)) >= 3, poll=0.02, what="polling")
    spoiled = len(_status_requests(vendor, path_end))  # the index of the first request that gets the fault
    if case == "epm-maintenance":
        h.sim.epm_di.retry_after = 2  # EPM says 120
        h.sim.epm_di.maintenance = True
        await h.slack.wait_for(lambda: len(_status_requests(vendor, path_end)) > spoiled, poll=0.01)
        h.sim.epm_di.maintenance = False
    else:
        vendor.fail_job(job_id, case.rsplit("-", 1)[1], retry_after=2)
    await h.slack.wait_for(lambda: len(_status_requests(vendor, path_end)) > spoiled + 2, poll=0.05,
                           what="polling after the Retry-After")
    reqs = _status_requests(vendor, path_end)
    assert not vendor.job_faults.get(job_id)
    assert reqs[spoiled + 1].at - reqs[spoiled].at >= 2.0  # not asked again before Retry-After
    assert reqs[spoiled + 2].at - reqs[spoiled + 1].at < 1.5  # then the usual pace again
    assert max(r.at - q.at for q, r in zip(reqs[:spoiled], reqs[1:spoiled], strict=False)) < 1.5
    vendor.set_state(job_id, done)
    await reply_with(h, "succeeded")
    assert not [r for r in h.replies() if "failed" in r.text or "Cannot reach" in r.text]


# -- no secret leaks -----------------------------------------------------------------------------------

SECRETS = {
    "fusion client secret": "FusionClientSecret-7c1e9a",
    "vault password": "VaultPassword-3b8d2f",
    "epm client secret": "EpmClientSecret-5a6e0c",
    "planning password": "PlanningPassword-9f4b71",
    "immuta api key": "ImmutaApiKey-2d7c88",
    "wrong vault password": "WrongVaultPassword-61aa",
    "wrong fusion password": "WrongFusionPassword-0b3c",
    "wrong fusion client secret": "WrongFusionClientSecret-44e2",
    "wrong immuta key": "WrongImmutaKey-8e1f",
    "wrong planning token": "WrongPlanningToken-c9d0",
}


def _credentials_seen(sim: SimulatorServer) -> set[str]:
    """Every credential the bot sent a simulator: Authorization header values (and their token part) and
    what went into login, token and key-exchange requests."""
    out: set[str] = set()
    for vendor in sim.by_type.values():
        for r in vendor.requests:
            header = r.headers.get("Authorization", "")
            if header:
                out.add(header.split(" ", 1)[-1])
            if r.path.endswith(("/auth", "/oauth2/v1/token", "/bim/apikey/authenticate")) and r.body:
                text = r.body.decode()
                try:
                    out.update(str(v) for v in json.loads(text).values())
                except ValueError:
                    out.update(v[0] for k, v in parse_qs(text).items() if k in ("password", "refresh_token",
                                                                                 "client_secret"))
    return {s for s in out if len(s) >= 8}


def readable(log_format: str, text: str) -> str:
    """Log output as a reader gets it: for JSON lines, each line and its decoded values (a secret JSON escapes
    would not be found in the raw line); every line must be a JSON object."""
    if log_format == "text":
        return text
    return "\n".join([text, *(str(v) for line in text.splitlines() for v in json.loads(line).values())])


@pytest.mark.parametrize("log_format", FORMATS)
async def test_no_secret_reaches_the_logs_slack_or_the_database(
        sim: SimulatorServer, slack: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        log_format: str) -> None:
    configure_simulators(sim)
    sim.vault.job_poll_window = 0.0
    s = SECRETS
    sim.fusion.oauth_clients["jobstatus-fusion"] = s["fusion client secret"]
    sim.vault.basic_users["svc.vault"] = s["vault password"]
    sim.planning.basic_users["svc.planning"] = s["planning password"]
    sim.immuta.api_keys.add(s["immuta api key"])
    first = sim.epm_di.issue_refresh_token()
    fusion_token_url = sim.base_url("fusion_jobscheduler") + "/oauth2/v1/token"
    backends = base_backends(sim)
    backends["fusion-demo"]["auth"] = {
        "type": "oauth2",
        "token_url": fusion_token_url,
        "client_id": "jobstatus-fusion",
        "client_secret": s["fusion client secret"],
    }
    backends["vault-demo"]["auth"] = {
        "type": "vault_session",
        "username": "svc.vault",
        "password": s["vault password"],
    }
    backends["epm-demo"]["auth"] = epm_oauth(sim, first, s["epm client secret"])
    backends["planning-demo"]["auth"] = {
        "type": "basic",
        "username": "svc.planning",
        "identity_domain": "demodomain",
        "password": s["planning password"],
    }
    backends["immuta-demo"]["auth"] = {"type": "api_key", "key": s["immuta api key"]}
    wrong = {
        "vault-wrong": ("vault-demo", {"type": "vault_session", "username": "svc.vault",
                                       "password": s["wrong vault password"]}),
        "fusion-wrong": ("fusion-demo", {"type": "basic", "username": "jobstatus",
                                         "password": s["wrong fusion password"]}),
        "fusion-oauth-wrong": ("fusion-demo", {"type": "oauth2", "token_url": fusion_token_url,
                                               "client_id": "jobstatus-fusion",
                                               "client_secret": s["wrong fusion client secret"]}),
        "immuta-wrong": ("immuta-demo", {"type": "api_key", "key": s["wrong immuta key"]}),
        "planning-wrong": ("planning-demo", {"type": "bearer", "token": s["wrong planning token"]}),
    }
    for name, (like, auth) in wrong.items():
        backends[name] = {**backends[like], "auth": auth}
    # every channel gets the details: the more that reaches Slack, the stronger the test
    for b in backends.values():
        b["details"] = "anywhere"
    for ch in ("C0003", "C0004", "C0005"):
        slack.add_channel(ch, f"ops-{ch}")
    sim.fusion.add_job(
        8101, name="Extract", steps=[Step(0, "RUNNING")], output_files=[("extract_8101.zip", 2048)]
    )
    sim.vault.add_job(8102, name="Binder Export", steps=[Step(0, "RUNNING")])
    sim.epm_di.add_job(
        8103, name="GL_LOAD", steps=[Step(0, -1)], log_text="INFO start\nERROR [AIF]: load failed\n"
    )
    sim.planning.add_job(8104, name="Import Metadata", steps=[Step(0, -1)],
                         details_items=[{"message": "Member X not found"}])
    sim.immuta.add_job("00000000-0000-4000-8000-000000008105", steps=[Step(0, "active")])
    jobs = [
        ("fusion-demo", "8101", "C0001"),
        ("vault-demo", "8102", "C0002"),
        ("epm-demo", "8103", "C0003"),
        ("planning-demo", "8104", "C0004"),
        ("immuta-demo", "00000000-0000-4000-8000-000000008105", "C0005"),
    ]

    caplog.set_level(logging.DEBUG)
    async with bot_with(sim, slack, tmp_path, backends, outage_note_after=0.3) as h:
        for name, job_id, ch in jobs:
            answer = await h.watch(f"watch {name} {job_id}", channel=ch)
            assert "Watching" in answer.responses()[-1].text
        for name, (like, _) in wrong.items():
            # Immuta's: a GUID
            job_id = "00000000-0000-4000-8000-000000008105" if like == "immuta-demo" else "8101"
            refused = await h.watch(f"watch {name} {job_id}", channel="C0001")
            assert "refused the bot's credentials" in refused.responses()[-1].text, refused.responses()[
                -1
            ].text

        # every token and session ends: one new login each, and the watches go on
        logins = {v: _logins(sim, v) for v in ("fusion", "vault", "epm", "immuta")}
        sim.fusion.revoke_tokens()
        sim.vault.expire_sessions()
        sim.epm_di.expire_access_tokens()
        sim.immuta.expire_tokens()
        await h.slack.wait_for(lambda: all(_logins(sim, v) > n for v, n in logins.items()), poll=0.05,
                               what="a fresh login at every vendor")
        # credentials that stop working mid-watch: a note in the thread, then it answers again
        sim.planning.basic_users["svc.planning"] = "changed-by-an-admin"
        await reply_with(h, "refuses the bot's credentials", channel="C0004")
        sim.planning.basic_users["svc.planning"] = s["planning password"]
        await reply_with(h, "answers again", channel="C0004")

        sim.fusion.set_state(8101, "FAILED", message="ESS-07034 extract failed")
        sim.vault.set_state(
            8102, "ERRORS_ENCOUNTERED", errors=[{"type": "INVALID_DATA", "message": "Row 2 bad"}]
        )
        sim.epm_di.set_state(8103, "1", details="Data load failed")
        sim.planning.set_state(8104, 1, details="Import failed")
        sim.immuta.set_state("00000000-0000-4000-8000-000000008105", "failed", output="sync failed")
        for name, job_id, ch in jobs:  # Immuta's only detail is its output, in the failure reply itself
            await reply_with(h, f"{name} job {job_id}: " + ("failed" if name == "immuta-demo" else "details"),
                             channel=ch)
        await h.slack.wait_for(lambda: any(r.files for r in h.replies("C0003")), what="the EPM log uploaded")

        sim.vault.basic_users["svc.vault"] = "changed-by-an-admin"  # a login refused, asked by a user
        sim.vault.expire_sessions()
        status = await h.watch("status vault-demo 8102", channel="C0002")
        assert "refused the bot's credentials" in status.responses()[-1].text
        listing = await h.user.command("backends")
        assert "vault-wrong" in str((await listing.wait_responses(1))[-1].text)  # after the ack
        rotated = sim.epm_di.used_refresh_tokens | sim.epm_di.refresh_tokens - {first}
        assert stored_secrets(tmp_path / "bot.db")["epm-demo:refresh_token"] in sim.epm_di.refresh_tokens

    rotated -= {first}
    secrets = (set(s.values()) | {first} | rotated | _credentials_seen(sim) | set(sim.epm_di.access_tokens)
               | set(sim.immuta.tokens))
    assert len(secrets) > 20

    logs = readable(log_format, "\n".join(formatter(log_format).format(r) for r in caplog.records))
    assert len(caplog.records) > 100
    said = repr([slack.calls, slack.failed_calls, slack.ephemerals, slack.response_posts])
    said += repr([(m, slack.thread(ch, m.ts)) for ch in slack.channels for m in slack.messages(ch)])
    said += "".join((f.content or b"").decode(errors="replace") for f in slack.files.values())
    assert "ERROR [AIF]: load failed" in said and "ESS-07034" in said  # (the right things were captured)
    db_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("bot.db*"))
    with sqlite3.connect(tmp_path / "bot.db") as con:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = repr([con.execute(f"SELECT * FROM {t}").fetchall() for t in tables if t != "secrets"])
    assert "outbox" in tables and "secrets" in tables
    for secret in sorted(secrets):
        assert secret not in logs, f"a secret in the logs: {secret[:4]}…"
        assert secret not in said, f"a secret reached Slack: {secret[:4]}…"
        assert secret not in rows, f"a secret in the database: {secret[:4]}…"
        if secret not in rotated:  # the rotated EPM refresh token is kept, in `secrets` only
            assert secret.encode() not in db_bytes, f"a secret in the database file: {secret[:4]}…"


def _logins(sim: SimulatorServer, vendor: str) -> int:
    return {
        "fusion": lambda: sim.fusion.count("POST", "/oauth2/v1/token"),
        "vault": lambda: sim.vault.count("POST", "/auth"),
        "epm": lambda: sim.epm_di.count("POST", "/oauth2/v1/token"),
        "immuta": lambda: sim.immuta.count("POST", "/bim/apikey/authenticate"),
    }[vendor]()


# -- `jobstatus-bot check` as a real process -----------------------------------------------------------


async def _run_check(env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "check",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _blocks_by_backend(out: str) -> dict[str, list[str]]:
    """`check` prints "checking X …" as each backend's check starts, then, as each ends, a heading line and
    its rows indented under it."""
    blocks: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("checking "):
            continue
        if line and not line.startswith(" "):
            current = line.split(" ", 1)[0]
            blocks[current] = [line]
        elif current:
            blocks[current].append(line)
    return blocks


@pytest.mark.parametrize("log_format", FORMATS)
async def test_check_logs_in_everywhere_reports_each_backend_and_never_prints_a_secret(
        sim: SimulatorServer, tmp_path: Path, log_format: str) -> None:
    configure_simulators(sim)
    s = SECRETS
    sim.fusion.oauth_clients["jobstatus-fusion"] = s["fusion client secret"]
    sim.vault.basic_users["svc.vault"] = s["vault password"]
    sim.planning.basic_users["svc.planning"] = s["planning password"]
    sim.immuta.api_keys.add(s["immuta api key"])
    first = sim.epm_di.issue_refresh_token()
    sim.epm_di.oauth_clients["jobstatus-epm"] = s["epm client secret"]
    backends = demo_backends(sim)
    backends["fusion-demo"]["auth"] = {
        "type": "oauth2", "token_url": sim.base_url("fusion_jobscheduler") + "/oauth2/v1/token",
        "client_id": "jobstatus-fusion", "client_secret": "${FUSION_CLIENT_SECRET}"}
    backends["vault-demo"]["auth"] = {
        "type": "vault_session",
        "username": "svc.vault",
        "password": "${VAULT_PASSWORD}",
    }
    backends["epm-demo"]["auth"] = {
        "type": "oauth2_refresh", "token_url": sim.base_url("epm_data_integration") + "/oauth2/v1/token",
        "client_id": "jobstatus-epm", "client_secret": "${EPM_CLIENT_SECRET}",
        "refresh_token": "${EPM_REFRESH_TOKEN}"}
    backends["planning-demo"]["auth"] = {
        "type": "basic",
        "username": "svc.planning",
        "identity_domain": "demodomain",
        "password": "${PLANNING_PASSWORD}",
    }
    backends["immuta-demo"]["auth"] = {"type": "api_key", "key": "${IMMUTA_KEY}"}
    config = tmp_path / "jobstatus.yaml"
    config.write_text(yaml.safe_dump({"backends": backends}))
    env = dict(
        os.environ,
        JOBSTATUS_CONFIG=str(config),
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        FUSION_CLIENT_SECRET=s["fusion client secret"],
        VAULT_PASSWORD=s["vault password"],
        EPM_CLIENT_SECRET=s["epm client secret"],
        EPM_REFRESH_TOKEN=first,
        PLANNING_PASSWORD=s["planning password"],
        IMMUTA_KEY=s["immuta api key"],
        LOG_FORMAT=log_format,
        # check logs at WARNING unless asked: ask, so the secret scan reads INFO lines too
        LOG_LEVEL="INFO",
        JOBSTATUS_SECRET_KEYS=SECRET_KEYS,
    )

    code, out, err = await _run_check(env)
    assert code == 0, out + err
    blocks = _blocks_by_backend(out)
    assert sorted(blocks) == sorted(backends)
    assert sorted(line for line in out.splitlines() if line.startswith("checking ")) == sorted(
        f"checking {name} …" for name in backends)
    supports = {
        "fusion-demo": "(fusion_jobscheduler) — cancel: yes, logs: yes, batching: no",
        "vault-demo": "(veeva_vault) — cancel: yes, logs: yes, batching: no",
        "epm-demo": "(epm_data_integration) — cancel: no, logs: yes, batching: no",
        "planning-demo": "(epm_planning) — cancel: no, logs: yes, batching: no",
        "immuta-demo": "(immuta) — cancel: no, logs: no, batching: yes",
    }
    for name, lines in blocks.items():
        assert supports[name] in lines[0], lines
        assert len(lines) >= 2 and all(line.startswith("  [ok] ") for line in lines[1:]), lines
    assert "[ok] API version: v26.1 offered" in out
    assert "[ok] OAuth refresh token: access token obtained; rotated refresh token stored" in out
    stored = stored_secrets(tmp_path / "bot.db")["epm-demo:refresh_token"]
    # the check used the token up: the new one is where `run` looks
    assert stored in sim.epm_di.refresh_tokens

    again = await _run_check(env)  # the configured token is dead now; the stored one works
    assert again[0] == 0, again[1] + again[2]

    sim.vault.basic_users["svc.vault"] = "changed-by-an-admin"
    code, out2, err2 = await _run_check(env)
    assert code == 1, out2 + err2
    failing = {
        name: [line for line in lines if "[FAIL]" in line] for name, lines in _blocks_by_backend(out2).items()
    }
    assert {name for name, rows in failing.items() if rows} == {"vault-demo"}
    assert failing["vault-demo"][0].startswith(
        "  [FAIL] authenticated: vault-demo: Vault refused the login for user svc.vault"
    )

    logged = readable(log_format, err + again[2] + err2)  # the log goes to stderr, the report to stdout
    assert "OAuth access token refreshed" in logged
    printed = out + again[1] + out2 + logged
    for secret in (
        set(s.values()) | sim.epm_di.used_refresh_tokens | sim.epm_di.refresh_tokens | _credentials_seen(sim)
    ):
        assert secret not in printed, f"check printed a secret: {secret[:4]}…"
