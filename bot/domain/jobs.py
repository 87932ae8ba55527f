"""The domain types store, messages, poller and notifier share: what a message shows about a job, what the
outbox owes a watch (each kind with its payload, as outbox rows hold it), and the enums the database and
Slack hold the values of (outbox kinds, why a watch ended, the buttons' action ids)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, ClassVar, Protocol

from bot.domain.states import Phase
from bot.domain.status import JobStatus, Link


class OutboxKind(StrEnum):
    """What an outbox row owes its watch (outbox.kind); its payload is JSON in outbox.payload."""

    PARENT = "parent"  # post the parent message, rendered when sent: {}
    UPDATE = "update"  # chat.update the parent, rendered when sent: {} (one waiting per watch at most)
    REPLY = "reply"  # a thread reply its owner rendered: Reply's {"text", "blocks", "broadcast"}
    FILE = "file"  # a file in the thread: Upload's {"filename", "content_b64"}
    # a thread reply the notifier renders when it sends it: a JobEvent's {"event", "job", ...}
    EVENT = "event"


class EndedReason(StrEnum):
    """Why a watch ended (watches.ended_reason). A watch Slack ended holds "Slack: <Slack's error code>"
    (`slack_ended`), which the parent message shows as it is."""

    FINISHED = "finished"
    STOPPED = "stopped"
    TIMED_OUT = "timed out"
    SLACK = "Slack"
    # its backend's `channels` no longer allows it (bot/operations/permissions.py)
    NOT_ALLOWED = "not allowed in this channel"


def slack_ended(error: str) -> str:
    """The ended_reason of a watch Slack takes nothing more for."""
    return f"{EndedReason.SLACK.value}: {error}"


class ButtonAction(StrEnum):
    """The buttons on a watch's parent message: each value is the button's action_id."""

    CANCEL = "jobstatus_cancel"
    STOP = "jobstatus_stop"
    REFRESH = "jobstatus_refresh"
    REWATCH = "jobstatus_rewatch"


class Known(Protocol):
    """What the bot knows of a job from its last answer (a job row, or the poller's `Tracked`)."""

    @property
    def phase(self) -> Phase: ...
    @property
    def vendor_status(self) -> str: ...
    @property
    def progress(self) -> int | None: ...
    @property
    def name(self) -> str | None: ...


class Change(IntEnum):
    """How a vendor's answer changes a job, least first: decided by `change_of` alone, for every caller (the
    poller, its writes in bot/store/polls.py, a watch created in bot/store/watches.py)."""

    NONE = 0  # nothing the bot keeps or shows: not written (only the next poll time)
    SHOWN = 1  # the parent reads differently (progress, a name learnt), in the same state
    STATE = 2  # a new phase or vendor word: history, the job's changed_at, a reply when it is worth one


def change_of(known: Known, st: JobStatus) -> Change:
    """How the answer `st` changes what the bot knows of the job (an answer without a name keeps the name)."""
    if st.phase != known.phase or st.vendor_status != known.vendor_status:
        return Change.STATE
    if st.progress != known.progress or (st.name and st.name != known.name):
        return Change.SHOWN
    return Change.NONE


def shown_progress(phase: Phase, progress: int | None, last: int | None = None) -> int | None:
    """The progress a job's messages show. A job that failed or was cancelled did not do all its work, so a
    100 % its vendor reports then (Fusion's percentage of a finished request) is not progress: the last
    progress seen while it ran stands instead (`last`), or none."""
    if progress is not None and progress >= 100 and phase in (Phase.FAILED, Phase.CANCELLED):
        return last
    return progress


@dataclass(frozen=True)
class JobView:
    """What the messages show about a job (from the database or a fresh status answer)."""

    backend: str
    job_id: str
    name: str | None
    phase: Phase
    vendor_status: str
    progress: int | None
    message: str | None
    log_paths: Sequence[str]
    links: Sequence[Link]
    checked_at: float
    error_text: str | None = None
    # this run's start, and its past runs' median and count (bot/domain/durations.py)
    started_at: float | None = None
    usual_s: float | None = None
    usual_runs: int = 0

    @classmethod
    def of_status(cls, backend: str, st: JobStatus, now: float) -> JobView:
        return cls(backend, st.job_id, st.name, st.phase, st.vendor_status,
                   shown_progress(st.phase, st.progress), st.message, st.log_paths, st.links, now)

    def payload(self) -> dict[str, Any]:
        return {"backend": self.backend, "job_id": self.job_id, "name": self.name, "phase": self.phase.value,
                "vendor_status": self.vendor_status, "progress": self.progress, "message": self.message,
                "log_paths": list(self.log_paths), "links": [[link.label, link.url] for link in self.links],
                "checked_at": self.checked_at, "error_text": self.error_text, "started_at": self.started_at,
                "usual_s": self.usual_s, "usual_runs": self.usual_runs}

    @classmethod
    def of_payload(cls, p: Mapping[str, Any]) -> JobView:
        return cls(str(p["backend"]), str(p["job_id"]), p["name"], Phase(p["phase"]), str(p["vendor_status"]),
                   p["progress"], p["message"], tuple(p["log_paths"]),
                   tuple(Link(label, url) for label, url in p["links"]), float(p["checked_at"]),
                   p["error_text"],
                   # older rows lack these
                   p.get("started_at"), p.get("usual_s"), int(p.get("usual_runs") or 0))


# -- what the outbox owes, besides the parent and its updates ------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A thread reply as Slack takes it: the fallback text, the blocks, and whether it is also shown in the
    channel. Its payload is the one shape every release has written for a `reply` row, plus `"details": true`
    on a job's details (messages.details): those are posted only where the backend's `details` allows them at
    the moment they are sent (bot/engine/notifier/), not only when they were owed."""

    text: str
    blocks: list[dict[str, Any]]
    broadcast: bool = False
    details: bool = False

    def payload(self) -> dict[str, Any]:
        p: dict[str, Any] = {"text": self.text, "blocks": self.blocks, "broadcast": self.broadcast}
        if self.details:
            p["details"] = True
        return p

    @classmethod
    def of_payload(cls, p: Mapping[str, Any]) -> Reply:
        return cls(str(p.get("text") or " "), list(p.get("blocks") or []), bool(p.get("broadcast")),
                   bool(p.get("details")))


@dataclass(frozen=True)
class Upload:
    """A file for the thread (a job's log). Its name (also its title in Slack) is the bot's: `of_log`."""

    filename: str
    content: bytes

    @classmethod
    def of_log(cls, backend: str, job_id: str, content: bytes) -> Upload:
        """A job's log as `<backend>-<job>.log`, made filename-safe. Never the vendor's name for the file: it
        is the vendor's text (a path, mentions, a misleading name such as `invoice.pdf.exe`), and Slack shows
        a file's name and title as they are."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{backend}-{job_id}").strip("._-")[:120] or "job"
        return cls(f"{safe}.log", content)

    def payload(self) -> dict[str, Any]:
        return {"filename": self.filename, "content_b64": base64.b64encode(self.content).decode()}

    @classmethod
    def of_payload(cls, p: Mapping[str, Any]) -> Upload:
        return cls(str(p["filename"]), base64.b64decode(p["content_b64"]))


@dataclass(frozen=True)
class Changed:
    """The job's state changed; `old_phase` None: a watch began on a job that had ended already."""

    tag: ClassVar[str] = "changed"
    job: JobView
    watcher: str
    old_phase: Phase | None
    old_word: str | None

    def payload(self) -> dict[str, Any]:
        old = self.old_phase.value if self.old_phase is not None else None
        return {"watcher": self.watcher, "old_phase": old, "old_word": self.old_word}

    @classmethod
    def of_payload(cls, job: JobView, p: Mapping[str, Any]) -> Changed:
        old = Phase(p["old_phase"]) if p["old_phase"] is not None else None
        return cls(job, str(p["watcher"]), old, p["old_word"])


@dataclass(frozen=True)
class Recovered:
    """The backend answers again after an outage the thread was told about."""

    tag: ClassVar[str] = "recovered"
    job: JobView

    def payload(self) -> dict[str, Any]:
        return {}

    @classmethod
    def of_payload(cls, job: JobView, p: Mapping[str, Any]) -> Recovered:
        return cls(job)


@dataclass(frozen=True)
class Outage:
    """Polls of the job have failed since `since` (the job view holds the last error's text)."""

    tag: ClassVar[str] = "outage"
    job: JobView
    since: float
    error_kind: str | None

    def payload(self) -> dict[str, Any]:
        return {"since": self.since, "error_kind": self.error_kind}

    @classmethod
    def of_payload(cls, job: JobView, p: Mapping[str, Any]) -> Outage:
        return cls(job, float(p["since"]), p["error_kind"])


@dataclass(frozen=True)
class TimedOut:
    """The watch ended after its watch timeout, `hours` long, with the job not done."""

    tag: ClassVar[str] = "timed_out"
    job: JobView
    hours: float

    def payload(self) -> dict[str, Any]:
        return {"hours": self.hours}

    @classmethod
    def of_payload(cls, job: JobView, p: Mapping[str, Any]) -> TimedOut:
        return cls(job, float(p["hours"]))


@dataclass(frozen=True)
class Late:
    """The run has taken `seconds` so far, past `late_after` (the 90th percentile of its past runs, whose
    median and count the job view holds): longer than usual."""

    tag: ClassVar[str] = "late"
    job: JobView
    watcher: str
    seconds: float
    late_after: float

    def payload(self) -> dict[str, Any]:
        return {"watcher": self.watcher, "seconds": self.seconds, "late_after": self.late_after}

    @classmethod
    def of_payload(cls, job: JobView, p: Mapping[str, Any]) -> Late:
        return cls(job, str(p["watcher"]), float(p["seconds"]), float(p["late_after"]))


@dataclass(frozen=True)
class CaughtUp:
    """The first answer after the bot was away (down, or its replica gone) changed the job's state: what
    changed meanwhile, as far as the vendor's times tell (`steps`: each phase after the old one, with when it
    began where known, the last one's time being when it was seen if the vendor gives none)."""

    tag: ClassVar[str] = "caught_up"
    job: JobView
    watcher: str
    old_phase: Phase
    old_word: str
    steps: tuple[tuple[Phase, float | None], ...]

    def payload(self) -> dict[str, Any]:
        return {"watcher": self.watcher, "old_phase": self.old_phase.value, "old_word": self.old_word,
                "steps": [[phase.value, at] for phase, at in self.steps]}

    @classmethod
    def of_payload(cls, job: JobView, p: Mapping[str, Any]) -> CaughtUp:
        return cls(job, str(p["watcher"]), Phase(p["old_phase"]), str(p["old_word"]),
                   tuple((Phase(phase), at) for phase, at in p["steps"]))


@dataclass(frozen=True)
class Flapping:
    """The job's state changed `changes` times in `seconds`, between `states` (the words, in the order first
    seen): from now on only the parent follows it, until it holds one state for a while
    (bot/store/polls.py)."""

    tag: ClassVar[str] = "flapping"
    job: JobView
    states: tuple[str, ...]
    changes: int
    seconds: float
    quiet_until_s: float  # how long it must hold one state for the thread to hear of its changes again

    def payload(self) -> dict[str, Any]:
        return {"states": list(self.states), "changes": self.changes, "seconds": self.seconds,
                "quiet_until_s": self.quiet_until_s}

    @classmethod
    def of_payload(cls, job: JobView, p: Mapping[str, Any]) -> Flapping:
        return cls(job, tuple(str(w) for w in p["states"]), int(p["changes"]), float(p["seconds"]),
                   float(p["quiet_until_s"]))


@dataclass(frozen=True)
class Settled:
    """A flapping job has held one state (the job view's) for `held_s` seconds: its changes are told again."""

    tag: ClassVar[str] = "settled"
    job: JobView
    held_s: float

    def payload(self) -> dict[str, Any]:
        return {"held_s": self.held_s}

    @classmethod
    def of_payload(cls, job: JobView, p: Mapping[str, Any]) -> Settled:
        return cls(job, float(p["held_s"]))


JobEvent = Changed | Recovered | Outage | TimedOut | Late | CaughtUp | Flapping | Settled
_EVENTS: dict[str, type[JobEvent]] = {
    cls.tag: cls for cls in (Changed, Recovered, Outage, TimedOut, Late, CaughtUp, Flapping, Settled)
}


def event_payload(event: JobEvent) -> dict[str, Any]:
    """An `event` row's payload: which event, the job as it was then, and what else the reply says."""
    return {"event": event.tag, "job": event.job.payload(), **event.payload()}


def event_of(p: Mapping[str, Any]) -> JobEvent:
    """The event an `event` row's payload holds. Raises KeyError or ValueError on a payload we never wrote."""
    return _EVENTS[str(p["event"])].of_payload(JobView.of_payload(p["job"]), p)
