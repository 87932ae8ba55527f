"""Every vendor word and code pinned to its phase and to whether it ends the watch (bot/domain/states.py).

Each row cites the vendor's own words: the quotes beside the tables in states.py (Oracle's ESS State enum
[ess] and "Statuses of Scheduled Processes" [ui]) and the status documents in ../shared/vendor-docs/ (the
.txt files and NOTES.md). A row's `ends` column is whether the watch stops at that word: a phase is final
when the vendor says the job will not change any more.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from bot.domain import states
from bot.domain.states import (
    EPM_CODE_WORDS,
    EPM_CODES,
    EPM_WORDS,
    FUSION,
    IMMUTA,
    VAULT,
    WORDS_WITH_MEANING,
    Phase,
    carries_meaning,
    lookup,
    worth_a_reply,
)

Q, R, PA, CG, S, W, F, C, U = (Phase.QUEUED, Phase.RUNNING, Phase.PAUSED, Phase.CANCELLING, Phase.SUCCEEDED,
                               Phase.WARNING, Phase.FAILED, Phase.CANCELLED, Phase.UNKNOWN)

# (word, phase, ends the watch, the vendor's words). oracle-fusion-jobscheduler.txt for the saas-batch words.
FUSION_ROWS = [
    ("ENQUEUED", Q, False, "saas-batch: Job Request has been enqueued"),
    ("SCHEDULED", Q, False, "[ess] SCHEDULED: waits for its time"),
    ("WAIT", Q, False, "[ess] hold applies to a request that is in WAIT or READY state"),
    ("READY", Q, False, "[ess] Request has been dispatched and is awaiting processing."),
    ("PENDING_VALIDATION", Q, False, "[ess] The request has been submitted but not yet validated."),
    ("BLOCKED", Q, False, "[ui] currently blocking your process ... automatically fixed. No (in progress)"),
    ("ERROR_AUTO_RETRY", Q, False,
     "[ui] ended with errors but will automatically run again. No (in progress)"),
    ("HOLD", PA, False, "[ui] needs someone to release it before it can continue running. Yes"),
    ("PAUSED", PA, False, "[ess] The request paused for sub-request completion."),
    ("ERROR_MANUAL_RECOVERY", PA, False,
     "[ui] requires an administrator to move the process to a final state."),
    ("RUNNING", R, False, "[ess] Request is being processed."),
    ("IN_PROGRESS", R, False, "saas-batch: Job Request is in progress"),
    ("COMPLETED", R, False, "[ui] postprocessing ... has started. No (in progress)"),
    ("CANCELLING", CG, False, "[ui] currently moving to the Canceled status. No (in progress)"),
    ("SUCCEEDED", S, True, "[ess] The request ran and was successful."),
    ("FINISHED", S, True, "[ui] all processes involved are done running. No (final)"),
    ("SCHEDULE_ENDED", S, True, "[ess] The schedule for the request has ended"),
    ("WARNING", W, True, "NOTES.md: clients also see ... WARNING: ran, ended with warnings"),
    ("ERROR", F, True, "[ess] The request ran and resulted in error. [ui] ended with errors. No (final)"),
    ("FAILED", F, True, "saas-batch: considered failed, the reason in jobProgress.message"),
    ("VALIDATION_FAILED", F, True, "failed validation, so it never runs"),
    ("EXPIRED", F, True, "[ess] The request expired before it could be processed. [ui] You can't restart it"),
    ("CANCELED", C, True, "[ui] The process was canceled, and you can't restart it. No (final)"),
    ("CANCELLED", C, True, "[ess] The request was cancelled."),
    ("UNKNOWN", U, False, "[ess] Unknown or invalid state."),
]
# veeva-vault-jobs.txt: "Possible statuses include SCHEDULED, QUEUED, RUNNING, SUCCESS, ERRORS_ENCOUNTERED,
# QUEUEING, CANCELLED, TIMEOUT, COMPLETED_DUE_TO_INACTIVITY, and MISSED_SCHEDULE"; NOTES.md: "Statuses beyond
# the list in the document: CANCELLING (after a cancel) and FAILED_TO_RUN".
VAULT_ROWS = [
    ("SCHEDULED", Q, False, "a scheduled job waits for its time"),
    ("QUEUEING", Q, False, "being queued"),
    ("QUEUED", Q, False, "queued"),
    ("RUNNING", R, False, "running"),
    ("CANCELLING", CG, False, "NOTES.md: Accepted jobs go CANCELLING then CANCELLED"),
    ("SUCCESS", S, True, "the job succeeded"),
    ("ERRORS_ENCOUNTERED", F, True, "ended with errors"),
    ("FAILED_TO_RUN", F, True, "never ran"),
    ("TIMEOUT", F, True, "stopped for taking too long"),
    ("COMPLETED_DUE_TO_INACTIVITY", F, True, "stopped, inactive: the work was not done"),
    ("MISSED_SCHEDULE", F, True, "its schedule passed unrun"),
    ("CANCELLED", C, True, "NOTES.md: Accepted jobs go CANCELLING then CANCELLED"),
]
# oracle-epm-data-integration-jobs.txt "Job Status Codes": -1 In Progress, 0 Success, 1 Error, 2 Cancel
# Pending, 3 Cancelled, 4 Invalid Parameter, Integer.MAX_VALUE Unknown (Planning: "codes as EPM DI",
# NOTES.md).
EPM_CODE_ROWS = [
    (-1, R, False, "In Progress"),
    (0, S, True, "Success"),
    (1, F, True, "Error"),
    (2, CG, False, "Cancel Pending"),
    (3, C, True, "Cancelled"),
    (4, F, True, "Invalid Parameter"),
    (2147483647, U, False, "Unknown"),
]
# EPM DI's jobStatus word and Planning's descriptiveStatus ("The status of the job, such as Completed or
# Error", oracle-epm-planning-jobs.txt), and the code's own words above as a word.
EPM_WORD_ROWS = [
    ("RUNNING", R, False, "running"),
    ("IN PROGRESS", R, False, "code -1: In Progress"),
    ("IN_PROGRESS", R, False, "code -1: In Progress"),
    ("PROCESSING", R, False, "processing"),
    ("SUCCESS", S, True, "code 0: Success; jobStatus SUCCESS in the DI example"),
    ("COMPLETED", S, True, "Planning: such as Completed or Error"),
    ("WARNING", W, True, "ended with warnings"),
    ("COMPLETED WITH WARNINGS", W, True, "ended with warnings"),
    ("FAILED", F, True, "failed"),
    ("FAILURE", F, True, "failed"),
    ("ERROR", F, True, "code 1: Error; Planning: such as Completed or Error"),
    ("INVALID PARAMETER", F, True, "code 4: Invalid Parameter"),
    ("CANCEL PENDING", CG, False, "code 2: Cancel Pending"),
    ("CANCELLED", C, True, "code 3: Cancelled"),
    ("CANCELED", C, True, "code 3: Cancelled, as spelled elsewhere"),
    ("UNKNOWN", U, False, "Integer.MAX_VALUE: Unknown"),
]
# immuta-jobs.txt: "The job state: active, cancelled, completed, created, expired, failed, or retry.";
# NOTES.md: "created, retry (queued); active (running); completed; failed, expired; cancelled. retry is not
# terminal".
IMMUTA_ROWS = [
    ("created", Q, False, "created (queued)"),
    ("retry", Q, False, "retry (queued) ... not terminal"),
    ("active", R, False, "active (running)"),
    ("completed", S, True, "completed"),
    ("failed", F, True, "failed"),
    ("expired", F, True, "expired: the work was not done"),
    ("cancelled", C, True, "cancelled"),
]
VENDORS: dict[str, tuple[Mapping[Any, Phase], list[tuple[Any, Phase, bool, str]]]] = {
    "Fusion": (FUSION, FUSION_ROWS), "Vault": (VAULT, VAULT_ROWS), "EPM code": (EPM_CODES, EPM_CODE_ROWS),
    "EPM word": (EPM_WORDS, EPM_WORD_ROWS), "Immuta": (IMMUTA, IMMUTA_ROWS),
}
ALL = [(vendor, *row) for vendor, (_, rows) in VENDORS.items() for row in rows]


@pytest.mark.parametrize(("vendor", "word", "phase", "ends", "says"), ALL,
                         ids=[f"{r[0]}:{r[1]}" for r in ALL])
def test_each_vendor_word_has_its_phase_and_ends_the_watch_only_when_final(
        vendor: str, word: Any, phase: Phase, ends: bool, says: str) -> None:
    table = VENDORS[vendor][0]
    assert lookup(table, vendor, word) is phase, says
    assert phase.terminal is ends, says


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_the_rows_are_the_whole_table(vendor: str) -> None:
    table, rows = VENDORS[vendor]
    assert {row[0] for row in rows} == set(table)


def test_the_epm_codes_words_are_the_documents() -> None:
    assert EPM_CODE_WORDS == {code: says for code, _, _, says in EPM_CODE_ROWS}


def test_exactly_the_four_final_phases_end_a_watch_each_with_its_emoji() -> None:
    assert {p for p in Phase if p.terminal} == {S, W, F, C}
    assert {p: p.emoji for p in Phase} == {
        Q: ":hourglass_flowing_sand:", R: ":arrows_counterclockwise:", PA: ":double_vertical_bar:",
        CG: ":no_entry:", S: ":white_check_mark:", W: ":warning:", F: ":x:", C: ":no_entry_sign:",
        U: ":grey_question:",
    }


def test_the_words_with_meaning_are_exactly_trouble_or_someone_to_act() -> None:
    """states.py's reasoning: Fusion's BLOCKED, ERROR_AUTO_RETRY, HOLD, ERROR_MANUAL_RECOVERY; Immuta's
    retry."""
    assert WORDS_WITH_MEANING == {"BLOCKED", "ERROR_AUTO_RETRY", "HOLD", "ERROR_MANUAL_RECOVERY", "RETRY"}
    for word in ("error auto retry", " hold ", "Retry", "error_manual_recovery", "Blocked"):
        assert carries_meaning(word), word  # read in any case, spaces as underscores
    for word in ("PAUSED", "WAIT", "created", "COMPLETED", "HOLDING", ""):
        assert not carries_meaning(word), word


def test_a_new_word_in_the_same_phase_is_told_when_either_side_carries_meaning() -> None:
    assert worth_a_reply(Q, "BLOCKED", Q, "READY") and worth_a_reply(Q, "READY", Q, "BLOCKED")
    assert not worth_a_reply(Q, "READY", Q, "WAIT")
    assert not worth_a_reply(Q, "hold", Q, " HOLD")  # the same word: nothing new
    assert worth_a_reply(Q, None, Q, "BLOCKED") and not worth_a_reply(Q, None, Q, "WAIT")
    assert worth_a_reply(Q, "WAIT", R, "WAIT")  # a new phase, whatever the word
    assert worth_a_reply(R, "RUNNING", PA, "PAUSED")  # whichever way the phases' names sort
    assert worth_a_reply(S, "SUCCESS", C, "SUCCESS") and worth_a_reply(C, "X", S, "X")


def test_an_unknown_word_is_unknown_logged_once_per_vendor_and_word(caplog: pytest.LogCaptureFixture) -> None:
    word = f"NEW_{uuid.uuid4().hex}"
    caplog.set_level(logging.WARNING, logger=states.__name__)
    assert lookup(FUSION, "Fusion", word) is U
    assert lookup(FUSION, "Fusion", word) is U
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [f"unknown Fusion status {word!r}: shown as is, watch goes on"]
    assert lookup(VAULT, "Vault", word) is U  # another vendor's: its own line
    assert len(caplog.records) == 2 and "Vault" in caplog.records[1].getMessage()
    assert not U.terminal  # the watch goes on


def test_garbage_is_unknown_never_an_error(caplog: pytest.LogCaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(states, "_unknown_seen", set())  # what other tests logged does not count here
    caplog.set_level(logging.WARNING, logger=states.__name__)
    marker = uuid.uuid4().hex
    assert lookup(FUSION, "Fusion", [marker]) is U  # unhashable
    assert lookup(EPM_CODES, "EPM", f"0{marker}") is U
    assert lookup(EPM_CODES, "EPM", None) is U
    assert len(caplog.records) == 3
    lookup(VAULT, "Vault", "X" * 79 + "a")
    lookup(VAULT, "Vault", "X" * 79 + "b")  # the same first 80 characters of its repr: logged once
    assert len(caplog.records) == 4
    lookup(VAULT, "Vault", "X" * 78 + "c")  # differs within them: its own line
    assert len(caplog.records) == 5


def test_words_are_read_in_any_case_and_spacing_immuta_in_lower_case() -> None:
    assert lookup(FUSION, "Fusion", " succeeded\n") is S
    assert lookup(VAULT, "Vault", "Errors_Encountered") is F
    assert lookup(EPM_WORDS, "EPM", "completed with warnings ") is W
    assert lookup(IMMUTA, "Immuta", " Completed ") is S  # Immuta's table is in lower case
    assert lookup(IMMUTA, "Immuta", "RETRY") is Q
    assert lookup(EPM_CODES, "EPM", 0) is S and lookup(EPM_CODES, "EPM", -1) is R  # codes are numbers
