"""The database, the one home of every transaction: tables (models), the engine and its thread (engine),
the schema's revisions and upgrades (schema, migrations/), the watch lifecycle (watches), poll results and the
passing of time (polls), the Slack outbox (outbox), pruning old history (history), run durations (runs),
daily digests (digests), quotas' counts (quotas), rotating credentials (secrets), and the leases that let
replicas share PostgreSQL (leases). Functions take a session and are run with `Store.run`; they return data
and render nothing (what a thread is told is written as data the notifier renders when it sends it).

May import: support and domain only (what it stores is the domain's types); never an adapter, rendering, the
engine, operations, the ways in, `bot.app` or `bot.cli`."""

from bot.store.engine import InUse, Store, engine_url
from bot.store.history import Pruned, prune_history
from bot.store.home import PollFigures, poll_figures, user_watches, watch_user
from bot.store.models import Job, Outbox, Secret, StateChange, Watch
from bot.store.outbox import (
    Owed,
    OwedMessage,
    claim,
    forget_parent,
    owe,
    owe_many,
    peek,
    pending,
    release,
    replace_owed,
    retry_later,
    sent,
)
from bot.store.polls import (
    Applied,
    PollResult,
    Tracked,
    apply_results,
    expire_watches,
    job_state,
    note_late_runs,
    note_outages,
    polling_ids,
    polling_job,
    polling_jobs,
    set_next_polls,
)
from bot.store.watches import (
    Figures,
    Owes,
    active_watch,
    channel_watch,
    channel_watches,
    claim_cancel,
    counts,
    create_watch,
    discard_watch,
    end_disallowed,
    end_watch,
    end_watch_for_slack,
    figures,
    find_job,
    job_owner,
    note_cancel,
    refresh_job,
    release_cancel,
    rewatch,
    stop_watch,
    watch_and_job,
    watch_channels,
    watches_of,
)

__all__ = [
    "Applied", "Figures", "InUse", "PollFigures", "poll_figures", "user_watches", "watch_user", "Job",
    "Outbox", "Owed", "OwedMessage", "Owes", "PollResult", "Pruned", "Secret", "StateChange", "Store",
    "Tracked", "Watch", "active_watch", "apply_results", "channel_watch", "channel_watches", "claim",
    "claim_cancel", "counts", "create_watch", "discard_watch", "end_watch", "end_watch_for_slack",
    "engine_url", "expire_watches", "figures", "find_job", "forget_parent", "job_state", "note_cancel",
    "note_late_runs", "note_outages", "owe", "owe_many", "peek", "pending", "polling_ids", "polling_job",
    "polling_jobs", "prune_history", "refresh_job", "release", "release_cancel", "replace_owed",
    "retry_later", "rewatch", "sent", "set_next_polls", "stop_watch", "watch_and_job", "watches_of",
    "end_disallowed", "job_owner", "watch_channels",
]
