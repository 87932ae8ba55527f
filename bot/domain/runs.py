"""Following a job rather than a run: what a backend's listing of recent runs answers (`Run`), what a follow
posts (`FollowMode`), and the key a followed name is matched by (`name_key`).

A followable name is what the vendor lets a run be told apart by in its listing: Oracle Fusion's job
definition (`jobDefinitionId`), Veeva Vault's job `title`, Immuta's job type. Every adapter that can list
runs answers with `Run`s (bot/backends/base.py `Backend.recent_runs`); discovery (bot/engine/) turns the runs
of followed names into watches."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.domain.states import Phase


class FollowMode(StrEnum):
    """What a follow posts: every run (`all`, the default), or only the runs that fail (`failures`: a failed
    run gets its parent and its whole story in one thread; the runs that succeed show in the digest and the
    Home tab, and the first success after failures is posted as "back to normal")."""

    ALL = "all"
    FAILURES = "failures"


@dataclass(frozen=True)
class Run:
    """One run as a backend's listing shows it.

    `name` is the followable name as the vendor spells it; `display_name` what the vendor shows people when
    that differs (Fusion's `jobDisplayName`); times are epoch seconds, the vendor's own (submission or start,
    and end), None when the listing does not say."""

    job_id: str
    name: str
    phase: Phase
    vendor_status: str
    started_at: float | None = None
    ended_at: float | None = None
    display_name: str | None = None


def name_key(name: str, case_sensitive: bool) -> str:
    """The key a followed name is matched by: the name itself where the vendor tells names apart by case,
    else its case-folded form (a follow of "gl_load" then finds "GL_LOAD")."""
    text = " ".join(name.split())
    return text if case_sensitive else text.casefold()
