"""What a backend answers about a job, in the shape the rest of the bot understands: its status (`JobStatus`),
the links it gives, and what it can tell once the job has ended (`FailureDetails`). Every adapter answers with
these; the store keeps them, rendering shows them (escaped: their text is the vendor's)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.states import Phase


@dataclass(frozen=True)
class Link:
    """A link a backend gives for a job (artifacts, details, log download)."""

    label: str
    url: str


@dataclass(frozen=True)
class JobStatus:
    """One answer about one job, in the shape the rest of the bot understands.

    `vendor_status` keeps the vendor's own status word (shown to users beside the normalised phase);
    `message` is the vendor's failure or detail text; `log_paths` every log/output path the vendor gave.
    """

    job_id: str
    phase: Phase
    vendor_status: str
    name: str | None = None
    progress: int | None = None
    message: str | None = None
    log_paths: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    timeout_s: int | None = None

    @property
    def terminal(self) -> bool:
        return self.phase.terminal


@dataclass(frozen=True)
class FailureDetails:
    """What a backend can tell beyond the status answer once a job has ended (logs, errors, outputs)."""

    lines: tuple[str, ...] = ()  # error lines / details to show in the thread, already bounded
    total_errors: int | None = None  # how many errors the backend reported in all
    files: tuple[tuple[str, int | None], ...] = ()  # (name or path, size in bytes) of outputs
    links: tuple[Link, ...] = ()
    attachment: tuple[str, bytes] | None = None  # (filename, content) small enough to upload
    hint: str | None = None  # where to look when the API has nothing more
