"""The one normalised state model, and every vendor's status words mapped onto it (one table per vendor)."""

from __future__ import annotations

import logging
from enum import StrEnum

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

# Oracle Fusion saas-batch job scheduler: jobProgress.status (and jobDetails.jobStatus).
FUSION = {
    "WAIT": Phase.QUEUED,
    "READY": Phase.QUEUED,
    "ENQUEUED": Phase.QUEUED,
    "SCHEDULED": Phase.QUEUED,
    "BLOCKED": Phase.QUEUED,
    "HOLD": Phase.PAUSED,
    "PAUSED": Phase.PAUSED,
    "RUNNING": Phase.RUNNING,
    "IN_PROGRESS": Phase.RUNNING,
    "CANCELLING": Phase.CANCELLING,
    "SUCCEEDED": Phase.SUCCEEDED,
    "WARNING": Phase.WARNING,
    "FAILED": Phase.FAILED,
    "ERROR": Phase.FAILED,
    "CANCELED": Phase.CANCELLED,
    "CANCELLED": Phase.CANCELLED,
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

_unknown_seen: set[tuple[str, str]] = set()


def lookup(table: dict, vendor: str, word: object) -> Phase:
    """Map a vendor word through its table; an unknown word is UNKNOWN (logged once), never an error."""
    key = word.strip().upper() if isinstance(word, str) and table is not IMMUTA else word
    if isinstance(key, str) and table is IMMUTA:
        key = key.strip().lower()
    try:
        phase = table.get(key)  # type: ignore[arg-type]
    except TypeError:  # unhashable garbage
        phase = None
    if phase is not None:
        return phase
    marker = (vendor, repr(word)[:80])
    if marker not in _unknown_seen:
        _unknown_seen.add(marker)
        log.warning("unknown %s status %r: shown as is, watch goes on", vendor, word)
    return Phase.UNKNOWN
