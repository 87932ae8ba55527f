"""The one normalised state model, and every vendor's status words mapped onto it (one table per vendor)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)


class Phase(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    WARNING = "succeeded with warnings"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def emoji(self) -> str:
        return _EMOJI[self]


_TERMINAL = frozenset({Phase.SUCCEEDED, Phase.WARNING, Phase.FAILED, Phase.CANCELLED})
_EMOJI = {
    Phase.QUEUED: ":hourglass_flowing_sand:",
    Phase.RUNNING: ":arrows_counterclockwise:",
    Phase.PAUSED: ":double_vertical_bar:",
    Phase.CANCELLING: ":no_entry:",
    Phase.SUCCEEDED: ":white_check_mark:",
    Phase.WARNING: ":warning:",
    Phase.FAILED: ":x:",
    Phase.CANCELLED: ":no_entry_sign:",
    Phase.UNKNOWN: ":grey_question:",
}

# Oracle Fusion saas-batch job scheduler: jobProgress.status (and jobDetails.jobStatus). The saas-batch words
# (ENQUEUED, IN_PROGRESS, SUCCEEDED, FAILED: oracle-fusion-jobscheduler.txt) and every ESS request state.
# Terminal or not is Oracle's own word, quoted beside each: [ess] = the ESS Java API's State enum
# (docs.oracle.com/cd/E72987_01/ess/reference-scheduler/oracle/as/scheduler/State.html); [ui] = "Statuses of
# Scheduled Processes" (docs.oracle.com/en/cloud/saas/applications-common/24b/oacpr/statuses-of-scheduled-
# processes.html), whose "Action Required" column says "No (final)", "No (in progress)" or "Yes".
FUSION = {
    "ENQUEUED": Phase.QUEUED,  # saas-batch: "Job Request has been enqueued"
    "SCHEDULED": Phase.QUEUED,
    # [ess] WAIT/READY are where a request waits before it runs (the hold operation applies to "a request that
    # is in WAIT or READY state", op-ess-rest-scheduler-v1-requests-requestid-hold-post.html)
    "WAIT": Phase.QUEUED,
    "READY": Phase.QUEUED,  # [ess] "Request has been dispatched and is awaiting processing."
    "PENDING_VALIDATION": Phase.QUEUED,  # [ess] "The request has been submitted but not yet validated."
    "BLOCKED": Phase.QUEUED,  # [ui] "... currently blocking your process. The situation will be automatically
    # fixed." No (in progress)
    # [ui] "ended with errors but will automatically run again." No (in progress)
    "ERROR_AUTO_RETRY": Phase.QUEUED,
    "HOLD": Phase.PAUSED,  # [ui] "needs someone to release it before it can continue running." Yes
    "PAUSED": Phase.PAUSED,  # [ess] "The request paused for sub-request completion." [ui] No (in progress)
    # [ess] "requires manual intervention in order to be retried or go to a terminal state" [ui] "requires an
    # administrator to move the process to a final state." Yes: not final
    "ERROR_MANUAL_RECOVERY": Phase.PAUSED,
    "RUNNING": Phase.RUNNING,  # [ess] "Request is being processed."
    "IN_PROGRESS": Phase.RUNNING,  # saas-batch: "Job Request is in progress"
    # [ui] "The main part of the process completed, and postprocessing (such as sending notifications and
    # generating output) has started." No (in progress): its result is still to come
    "COMPLETED": Phase.RUNNING,
    "CANCELLING": Phase.CANCELLING,  # [ui] "currently moving to the Canceled status." No (in progress)
    # [ess] "The request ran and was successful." (saas-batch: with completed true)
    "SUCCEEDED": Phase.SUCCEEDED,
    "FINISHED": Phase.SUCCEEDED,  # [ui] "... all processes involved are done running." No (final); each child
    # request keeps its own state
    # [ess] "The schedule for the request has ended, or a request expiration time specified at request
    # submission has been reached." (final: a request that expired unrun is EXPIRED)
    "SCHEDULE_ENDED": Phase.SUCCEEDED,
    # ran and ended with warnings: final (its description is not in the copies we read)
    "WARNING": Phase.WARNING,
    # [ess] "The request ran and resulted in error." [ui] "ended with errors." No (final)
    "ERROR": Phase.FAILED,
    "FAILED": Phase.FAILED,  # saas-batch: "considered failed", the reason in jobProgress.message
    # the request failed validation, so it never runs: final (its description is not in the copies we read;
    # the name and PENDING_VALIDATION's say as much)
    "VALIDATION_FAILED": Phase.FAILED,
    # [ess] "The request expired before it could be processed." [ui] "didn't run ... You can't restart it" No
    # (final): the work was not done
    "EXPIRED": Phase.FAILED,
    "CANCELED": Phase.CANCELLED,  # [ui] "The process was canceled, and you can't restart it." No (final)
    "CANCELLED": Phase.CANCELLED,  # [ess] "The request was cancelled."
    "UNKNOWN": Phase.UNKNOWN,  # [ess] "Unknown or invalid state.": not an end; the watch goes on
}

# Veeva Vault: data.status of /services/jobs/{id}.
VAULT = {
    "SCHEDULED": Phase.QUEUED,
    "QUEUEING": Phase.QUEUED,
    "QUEUED": Phase.QUEUED,
    "RUNNING": Phase.RUNNING,
    "CANCELLING": Phase.CANCELLING,
    "SUCCESS": Phase.SUCCEEDED,
    "ERRORS_ENCOUNTERED": Phase.FAILED,
    "FAILED_TO_RUN": Phase.FAILED,
    "TIMEOUT": Phase.FAILED,
    "COMPLETED_DUE_TO_INACTIVITY": Phase.FAILED,
    "MISSED_SCHEDULE": Phase.FAILED,
    "CANCELLED": Phase.CANCELLED,
}

# Oracle EPM (Data Integration and Planning): the numeric `status` code.
EPM_CODES = {
    -1: Phase.RUNNING,
    0: Phase.SUCCEEDED,
    1: Phase.FAILED,
    2: Phase.CANCELLING,
    3: Phase.CANCELLED,
    4: Phase.FAILED,
    2147483647: Phase.UNKNOWN,  # Integer.MAX_VALUE
}
EPM_CODE_WORDS = {
    -1: "In Progress",
    0: "Success",
    1: "Error",
    2: "Cancel Pending",
    3: "Cancelled",
    4: "Invalid Parameter",
    2147483647: "Unknown",
}
# EPM DI's descriptive `jobStatus` word (and Planning's `jobStatus`/`descriptiveStatus`).
EPM_WORDS = {
    "RUNNING": Phase.RUNNING,
    "IN PROGRESS": Phase.RUNNING,
    "IN_PROGRESS": Phase.RUNNING,
    "PROCESSING": Phase.RUNNING,
    "SUCCESS": Phase.SUCCEEDED,
    "COMPLETED": Phase.SUCCEEDED,
    "WARNING": Phase.WARNING,
    "COMPLETED WITH WARNINGS": Phase.WARNING,
    "FAILED": Phase.FAILED,
    "FAILURE": Phase.FAILED,
    "ERROR": Phase.FAILED,
    "INVALID PARAMETER": Phase.FAILED,
    "CANCEL PENDING": Phase.CANCELLING,
    "CANCELLED": Phase.CANCELLED,
    "CANCELED": Phase.CANCELLED,
    "UNKNOWN": Phase.UNKNOWN,
}

# Immuta: state of POST /jobs/statuses.
IMMUTA = {
    "created": Phase.QUEUED,
    "retry": Phase.QUEUED,
    "active": Phase.RUNNING,
    "completed": Phase.SUCCEEDED,
    "failed": Phase.FAILED,
    "expired": Phase.FAILED,
    "cancelled": Phase.CANCELLED,
}

# -- which vendor words are worth a thread reply -----------------------------------------------------------
# A job's thread is told when its phase changes. A vendor word that changes inside the same phase changes only
# what the parent message shows (it is updated in place), unless the word carries meaning of its own: the job
# ran into trouble, or someone has to act. Then the thread is told, both when such a word comes and when it
# goes (a block lifted, a hold released), so the thread's last word is never a stale one. Decided per vendor
# from the documents (the vendor-docs set the adapters cite) and the quotes in the tables above:
#
# Fusion, carry meaning: BLOCKED ([ui] another process "is currently blocking your process"), ERROR_AUTO_RETRY
#   ([ui] "ended with errors but will automatically run again"), HOLD ([ui] "needs someone to release it
#   before it can continue running", Action Required: Yes), ERROR_MANUAL_RECOVERY ([ui] "requires an
#   administrator to move the process to a final state", Yes). Do not: ENQUEUED, SCHEDULED, WAIT, READY,
#   PENDING_VALIDATION (the scheduler's own steps before a run), PAUSED ([ess] "paused for sub-request
#   completion": it waits on its own children, No (in progress)), COMPLETED ([ui] postprocessing after the
#   main part, No (in progress): the result follows), and RUNNING / IN_PROGRESS, two words for one running job
#   (oracle-fusion-jobscheduler.txt; NOTES.md: the progress "can fall from 50 to 0 when RUNNING turns
#   IN_PROGRESS", nothing a reader must know).
# Vault (veeva-vault-jobs.txt): SCHEDULED, QUEUEING and QUEUED are steps of waiting; every other word is alone
#   in its phase or final. None carries more.
# EPM Data Integration and Planning (oracle-epm-data-integration-jobs.txt, oracle-epm-planning-jobs.txt): a
#   job that has not ended is code -1 "In Progress" (or 2 "Cancel Pending") whatever word stands beside the
#   code (RUNNING, PROCESSING...). None carries more.
# Immuta (immuta-jobs.txt): `retry` carries meaning: an attempt failed and the job runs again (NOTES.md: not
#   terminal); `created` does not.
WORDS_WITH_MEANING = frozenset({"BLOCKED", "ERROR_AUTO_RETRY", "HOLD", "ERROR_MANUAL_RECOVERY", "RETRY"})


def carries_meaning(word: str) -> bool:
    """Whether a vendor's status word says more than its phase does (WORDS_WITH_MEANING, and why, above)."""
    return _word(word) in WORDS_WITH_MEANING


def worth_a_reply(old_phase: Phase | None, old_word: str | None, phase: Phase, word: str) -> bool:
    """Whether a job's change of state is told in its thread: a new phase always; a new vendor word inside the
    same phase only when the word it leaves or the word it comes to carries meaning."""
    if old_phase is None or old_phase != phase:
        return True
    if _word(old_word or "") == _word(word):
        return False
    return carries_meaning(old_word or "") or carries_meaning(word)


def _word(word: str) -> str:
    return word.strip().upper().replace(" ", "_")


_unknown_seen: set[tuple[str, str]] = set()


def lookup(table: Mapping[Any, Phase], vendor: str, word: object) -> Phase:
    """Map a vendor word through its table; an unknown word is UNKNOWN (logged once), never an error."""
    key = word.strip().upper() if isinstance(word, str) and table is not IMMUTA else word
    if isinstance(key, str) and table is IMMUTA:
        key = key.strip().lower()
    try:
        phase = table.get(key)
    except TypeError:  # unhashable garbage
        phase = None
    if phase is not None:
        return phase
    marker = (vendor, repr(word)[:80])
    if marker not in _unknown_seen:
        _unknown_seen.add(marker)
        log.warning("unknown %s status %r: shown as is, watch goes on", vendor, word)
    return Phase.UNKNOWN
